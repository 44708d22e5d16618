//! Small socket helpers for tests and fakes: an address where nothing listens, a reset
//! instead of a close, a connection held open, a listener that never answers.

use socket2::{Domain, SockRef, Socket, Type};
use std::io::Read;
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::time::Duration;

/// The IPv4 address of `addr`, if it is one.
pub fn ipv4(addr: SocketAddr) -> Option<SocketAddrV4> {
    match addr {
        SocketAddr::V4(v4) => Some(v4),
        SocketAddr::V6(_) => None,
    }
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
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()
        .and_then(ipv4)
        .unwrap_or_else(|| SocketAddrV4::new([127, 0, 0, 1].into(), 9))
}

/// Closes `stream` with a reset (RST) instead of an orderly close.
pub fn reset(stream: TcpStream) {
    // SO_LINGER 0: closing sends a RST instead of a FIN.
    let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Keeps a connection open until the other side closes it or 20 s pass.
pub fn hold_open(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
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
    let any: SocketAddr = "127.0.0.1:0".parse().expect("an address");
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
