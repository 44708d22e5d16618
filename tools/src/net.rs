//! Talking to a peer over loopback: a join the way a peer does it, and the few socket
//! helpers the tests and tools need.

use crate::PATIENCE;
use peer::reader::{Deadline, read_message};
use peer::sockets::ipv4;
use peer::wire::Message;
use socket2::{Domain, SockRef, Socket, Type};
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

/// The sockets behind a [`jammed_listener`]; the jam lasts while this is held.
pub struct Jam {
    _listener: Socket,
    _fillers: Vec<Socket>,
}

/// An address on loopback where a connect neither succeeds nor is refused (Linux): a
/// listener with a backlog of 0 that never accepts, its queue filled by connections made
/// here, so the kernel drops every further SYN and the connecting side waits for its own
/// timeout.
pub fn jammed_listener() -> (SocketAddrV4, Jam) {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("an address");
    listener.bind(&any.into()).expect("bind 127.0.0.1:0");
    listener.listen(0).expect("listen");
    let addr = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .and_then(ipv4)
        .expect("an IPv4 socket");
    let fillers = (0..4)
        .map(|_| {
            let filler = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
            let _ = filler.connect_timeout(&addr.into(), Duration::from_millis(200));
            filler
        })
        .collect();
    let jam = Jam {
        _listener: listener,
        _fillers: fillers,
    };
    (addr, jam)
}
