//! Sockets with the options a peer needs (PROTOCOL 6.1).
//!
//! A joining peer connects *from its own listening port*, so that the address the other
//! side records for it (and later hands out in Redirects) is one where it really accepts
//! joins. Two sockets may share a port only if both asked before `bind`: SO_REUSEADDR
//! everywhere, and on Unix also SO_REUSEPORT, which Linux requires while one of them is
//! listening. The standard library binds as it creates, so socket2 sets them first.

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::io::{self, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::Once;
use std::time::Duration;

/// Pending connections the kernel may queue before `accept`: floods wait here.
pub const LISTEN_BACKLOG: i32 = 1024;

/// Replies up to this size always fit a fresh socket's send buffer, so writing them never
/// blocks. Larger ones (tables of over a thousand peers) get a bigger buffer first.
const SMALL_REPLY: usize = 8 * 1024;

/// Bounds a write that still cannot finish at once, so a peer that never reads cannot
/// stall the accept loop for long.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

fn reusable_socket() -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket.set_reuse_port(true)?;
    Ok(socket)
}

/// Binds the listening socket. Port 0 lets the kernel pick one.
pub fn bind_listener(addr: SocketAddrV4) -> io::Result<TcpListener> {
    let socket = reusable_socket()?;
    socket.bind(&SocketAddr::V4(addr).into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Connects to `remote` from `local`, this peer's listening address, within `timeout`.
pub fn connect_from(
    local: SocketAddrV4,
    remote: SocketAddrV4,
    timeout: Duration,
) -> io::Result<TcpStream> {
    if local.ip().is_loopback() && !remote.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!(
                "this peer listens on {} only, so it cannot join other machines; start it with -b 0.0.0.0",
                local.ip()
            ),
        ));
    }
    let socket = reusable_socket()?;
    if let Err(e) = socket.bind(&SocketAddr::V4(local).into()) {
        // Joining still beats not joining, but the other side will record a port that
        // does not accept joins: say so, once.
        static WARNED: Once = Once::new();
        WARNED.call_once(|| {
            log::warn!(
                "cannot connect from the listening port {} ({e}); connecting from another port, so peers will hand out an address that does not accept joins",
                local.port()
            )
        });
        let fallback = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        fallback.connect_timeout(&SocketAddr::V4(remote).into(), timeout)?;
        return Ok(fallback.into());
    }
    socket.connect_timeout(&SocketAddr::V4(remote).into(), timeout)?;
    Ok(socket.into())
}

/// Sends one whole reply in one write, so Nagle's algorithm never holds part of it back.
pub fn send_reply(stream: &TcpStream, reply: &[u8]) -> io::Result<()> {
    if reply.len() > SMALL_REPLY {
        let socket = SockRef::from(stream);
        socket.set_send_buffer_size(reply.len() * 2)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    }
    (&mut &*stream).write_all(reply)
}

/// The IPv4 form of a socket address, if it has one (an IPv4-mapped IPv6 address counts).
pub fn ipv4(addr: SocketAddr) -> Option<SocketAddrV4> {
    match addr {
        SocketAddr::V4(v4) => Some(v4),
        SocketAddr::V6(v6) => v6
            .ip()
            .to_ipv4_mapped()
            .map(|ip| SocketAddrV4::new(ip, v6.port())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::Ipv4Addr;

    #[test]
    fn a_peer_can_connect_from_its_listening_port() {
        let any_port = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        let ours = bind_listener(any_port).unwrap();
        let our_addr = ipv4(ours.local_addr().unwrap()).unwrap();
        let theirs = TcpListener::bind("127.0.0.1:0").unwrap();
        let their_addr = ipv4(theirs.local_addr().unwrap()).unwrap();

        let _link = connect_from(our_addr, their_addr, Duration::from_secs(3)).unwrap();
        let (_, seen) = theirs.accept().unwrap();
        assert_eq!(
            ipv4(seen),
            Some(our_addr),
            "the other side sees our listening port"
        );

        // And the listener still takes joins on that port.
        let mut joiner = TcpStream::connect(our_addr).unwrap();
        let (accepted, _) = ours.accept().unwrap();
        send_reply(&accepted, b"hi").unwrap();
        let mut got = [0u8; 2];
        joiner.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
    }

    #[test]
    fn a_port_that_cannot_be_shared_falls_back_to_another() {
        // A listener bound without the reuse options: nobody may share its port.
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = ipv4(taken.local_addr().unwrap()).unwrap();
        let theirs = TcpListener::bind("127.0.0.1:0").unwrap();
        let their_addr = ipv4(theirs.local_addr().unwrap()).unwrap();
        let link = connect_from(local, their_addr, Duration::from_secs(3)).unwrap();
        let from = ipv4(link.local_addr().unwrap()).unwrap();
        assert_ne!(from.port(), local.port(), "connected from another port");
    }

    #[test]
    fn a_loopback_peer_explains_why_it_cannot_join_elsewhere() {
        let local = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4000);
        let remote = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4000);
        let error = connect_from(local, remote, Duration::from_secs(1)).unwrap_err();
        assert!(error.to_string().contains("-b 0.0.0.0"), "{error}");
    }

    #[test]
    fn a_large_reply_is_sent_whole_even_if_not_read_yet() {
        let listener = bind_listener(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let reply = vec![0xAB; crate::wire::MAX_MESSAGE_LEN];
        send_reply(&server, &reply).unwrap();
        drop(server);
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, reply);
    }
}
