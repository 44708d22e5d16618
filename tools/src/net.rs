//! Talking to a peer over loopback: a join the way a peer does it, and the few socket
//! helpers the tests and tools need.

use crate::PATIENCE;
use peer::reader::{Deadline, read_message};
use peer::sockets::ipv4;
use peer::wire::Message;
use socket2::SockRef;
use std::io::Read;
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::time::Duration;

/// Joins `addr` the way a peer does (the connection is the request) and reads the reply.
/// Panics if there is none within [`PATIENCE`].
pub fn join(addr: SocketAddrV4) -> (TcpStream, Message, Vec<u8>) {
    let stream = TcpStream::connect_timeout(&addr.into(), PATIENCE).expect("connect");
    let (message, raw) = read_message(&mut Deadline::new(&stream, PATIENCE)).expect("reply");
    (stream, message, raw)
}

/// The peers `addr` lists in its reply to a join (its whole table, when the table is full).
/// Joining changes the table when there is room, so use this on full tables only.
pub fn listed(addr: SocketAddrV4) -> Vec<SocketAddrV4> {
    let (_, message, _) = join(addr);
    message.peers().to_vec()
}

/// This end's address of a loopback connection.
pub fn local_addr(stream: &TcpStream) -> SocketAddrV4 {
    stream
        .local_addr()
        .ok()
        .and_then(ipv4)
        .expect("an IPv4 socket")
}

/// An address on loopback where nothing listens (bound, then closed at once).
pub fn dead_address() -> SocketAddrV4 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .ok()
        .and_then(ipv4)
        .expect("an IPv4 socket")
}

/// Closes `stream` with a reset (RST) instead of an orderly close.
pub fn reset(stream: TcpStream) {
    let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Keeps a connection open until the other side closes it or [`PATIENCE`] * 2 passes.
pub fn hold_open(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(PATIENCE * 2));
    let mut sink = [0u8; 64];
    while let Ok(n) = stream.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
}
