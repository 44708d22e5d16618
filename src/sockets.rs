//! Sockets with the options a peer needs (PROTOCOL 6.1).
//!
//! A joining peer connects *from its own listening port*, so that the address the other
//! side records for it (and later hands out in Redirects) is one where it really accepts
//! joins. Two sockets may share a port only if both asked before `bind`: SO_REUSEADDR
//! everywhere, and on Unix also SO_REUSEPORT, which Linux requires while one of them is
//! listening. The standard library binds as it creates, so socket2 sets them first.
//!
//! A link carries no data, so a linked peer whose machine vanishes would never be noticed:
//! every link gets TCP keepalive ([`keep_alive`], PROTOCOL 5.4). And a peer that listens on
//! all interfaces or on loopback needs to know this machine's addresses: the one it shows
//! ([`machine_address`]) and the one that reaches a given target ([`route_source`]).

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

/// Pending connections the kernel may queue before `accept`: floods wait here.
pub const LISTEN_BACKLOG: i32 = 1024;

/// Replies up to this size always fit a fresh socket's send buffer, so writing them never
/// blocks. Larger ones (tables of over a thousand peers) get a bigger buffer first.
const SMALL_REPLY: usize = 8 * 1024;

/// Bounds a write that still cannot finish at once, so a peer that never reads cannot
/// stall the accept loop for long.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// An idle link is probed after this long without hearing from the other side...
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
/// ...then again this often...
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// ...and dropped after this many probes go unanswered: 10 + 3 × 5 = 25 s (PROTOCOL 5.4).
pub const KEEPALIVE_PROBES: u32 = 3;
/// Data sent on a link (the Welcome) that stays unacknowledged this long drops it too;
/// keepalive does not probe while data is outstanding, and TCP's own retries take ~15 min.
pub const UNACKED_LIMIT: Duration = Duration::from_secs(25);

/// A destination in the benchmarking range (RFC 2544), used only to ask the kernel which
/// interface its default route leaves by. Connecting a UDP socket sends nothing.
pub const PROBE_DESTINATION: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

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

/// A connection made by [`connect_from`].
pub struct Outbound {
    pub stream: TcpStream,
    /// Why the connection could not come from the listening port, when it could not: it
    /// then came from another port, which the other side will record and hand out.
    pub other_port: Option<io::Error>,
}

/// Connects to `remote` from `local`, this peer's listening address, within `timeout`.
/// Where the port cannot be shared, connects from another port rather than not at all.
pub fn connect_from(
    local: SocketAddrV4,
    remote: SocketAddrV4,
    timeout: Duration,
) -> io::Result<Outbound> {
    if let Some(advice) = bind_advice(*local.ip(), *remote.ip()) {
        return Err(io::Error::new(io::ErrorKind::AddrNotAvailable, advice));
    }
    let socket = reusable_socket()?;
    if let Err(e) = socket.bind(&SocketAddr::V4(local).into()) {
        let fallback = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        fallback.connect_timeout(&SocketAddr::V4(remote).into(), timeout)?;
        return Ok(Outbound {
            stream: fallback.into(),
            other_port: Some(e),
        });
    }
    socket.connect_timeout(&SocketAddr::V4(remote).into(), timeout)?;
    Ok(Outbound {
        stream: socket.into(),
        other_port: None,
    })
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

/// Turns on what finds a vanished peer on an idle link (PROTOCOL 5.4): keepalive probes,
/// and a bound on how long sent data may stay unacknowledged.
pub fn keep_alive(stream: &TcpStream) -> io::Result<()> {
    let socket = SockRef::from(stream);
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL);
    #[cfg(not(any(target_os = "openbsd", target_os = "redox", target_os = "solaris")))]
    let keepalive = keepalive.with_retries(KEEPALIVE_PROBES);
    socket.set_tcp_keepalive(&keepalive)?;
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    socket.set_tcp_user_timeout(Some(UNACKED_LIMIT))?;
    Ok(())
}

/// The address this machine sends from toward `destination`: the interface the route to
/// it leaves by. `None` if there is no route. A UDP connect only looks the route up.
pub fn route_source(destination: Ipv4Addr) -> Option<Ipv4Addr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((destination, 9)).ok()?;
    match socket.local_addr().ok()? {
        SocketAddr::V4(v4) if !v4.ip().is_unspecified() => Some(*v4.ip()),
        _ => None,
    }
}

/// True if `ip` is an address of this machine (a socket can be bound to it).
pub fn is_local(ip: Ipv4Addr) -> bool {
    ip.is_loopback() || UdpSocket::bind((ip, 0)).is_ok()
}

/// The address a peer listening on all interfaces shows in its first line (PROTOCOL 7.1):
/// the one the default route leaves by, else the first other interface's, else loopback.
pub fn machine_address() -> Ipv4Addr {
    route_source(PROBE_DESTINATION)
        .filter(|ip| !ip.is_loopback())
        .or_else(|| {
            let table = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
            local_addresses(&table)
                .into_iter()
                .find(|ip| !ip.is_loopback())
        })
        .unwrap_or(Ipv4Addr::LOCALHOST)
}

/// The addresses of this machine, in the order Linux's `/proc/net/fib_trie` lists them:
/// an address line `|-- IP` followed by `/32 host LOCAL` is one of ours.
fn local_addresses(fib_trie: &str) -> Vec<Ipv4Addr> {
    let mut found = Vec::new();
    let mut last = None;
    for line in fib_trie.lines().map(str::trim) {
        if let Some(ip) = line.strip_prefix("|-- ") {
            last = ip.parse::<Ipv4Addr>().ok();
        } else if line == "/32 host LOCAL"
            && let Some(ip) = last
            && !found.contains(&ip)
        {
            found.push(ip);
        }
    }
    found
}

/// Why a peer listening on `bind` cannot join `target`, with the `-b` that would work; `None`
/// if nothing stands in the way (PROTOCOL 6.6). Only a loopback listener is limited: it can
/// reach this machine's own addresses, never another machine.
pub fn bind_advice(bind: Ipv4Addr, target: Ipv4Addr) -> Option<String> {
    if !bind.is_loopback() || target.is_loopback() || is_local(target) {
        return None;
    }
    let suggestion = match route_source(target) {
        Some(ours) if !ours.is_loopback() => format!(
            "-b {ours} (this machine's address toward {target}) or -b 0.0.0.0 (every interface)"
        ),
        _ => "-b with this machine's address on the network of that machine, or -b 0.0.0.0"
            .to_string(),
    };
    Some(format!(
        "this peer listens on {bind} only, which another machine ({target}) cannot reach; start it with {suggestion}"
    ))
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

        let link = connect_from(our_addr, their_addr, Duration::from_secs(3)).unwrap();
        assert!(link.other_port.is_none());
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
        assert!(link.other_port.is_some(), "says why");
        let from = ipv4(link.stream.local_addr().unwrap()).unwrap();
        assert_ne!(from.port(), local.port(), "connected from another port");
    }

    #[test]
    fn a_loopback_peer_explains_why_it_cannot_join_elsewhere() {
        let local = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4000);
        // Benchmarking range: never an address of this machine, and nothing is sent.
        let remote = SocketAddrV4::new(Ipv4Addr::new(198, 19, 255, 1), 4000);
        let Err(error) = connect_from(local, remote, Duration::from_secs(1)) else {
            panic!("a loopback peer connected to another machine");
        };
        assert!(error.to_string().contains("-b "), "{error}");
        assert!(error.to_string().contains("another machine"), "{error}");
    }

    #[test]
    fn only_a_loopback_listener_joining_another_machine_gets_advice() {
        let elsewhere = Ipv4Addr::new(198, 19, 255, 1);
        assert!(bind_advice(Ipv4Addr::LOCALHOST, elsewhere).is_some());
        assert!(bind_advice(Ipv4Addr::LOCALHOST, Ipv4Addr::new(127, 0, 0, 2)).is_none());
        assert!(bind_advice(Ipv4Addr::UNSPECIFIED, elsewhere).is_none());
        // This machine's own address is not another machine.
        let ours = machine_address();
        assert!(bind_advice(Ipv4Addr::LOCALHOST, ours).is_none(), "{ours}");
    }

    #[test]
    fn the_machine_address_is_one_of_ours() {
        let ip = machine_address();
        assert!(!ip.is_unspecified());
        assert!(is_local(ip), "{ip}");
        assert!(!is_local(Ipv4Addr::new(198, 19, 255, 1)));
        // Where a default route exists, the address is the one it leaves by.
        match route_source(PROBE_DESTINATION).filter(|r| !r.is_loopback()) {
            Some(route) => assert_eq!(ip, route),
            None => eprintln!("no default route here: only the fallbacks were checked"),
        }
    }

    #[test]
    fn local_addresses_come_from_the_host_entries_of_fib_trie() {
        let table = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
            |-- 127.0.0.0\n   /8 host LOCAL\n   |-- 127.0.0.1\n      /32 host LOCAL\n\
            |-- 198.18.0.0\n   /24 link UNICAST\n   |-- 198.18.0.2\n   /32 host LOCAL\n\
            |-- 198.18.0.255\n   /32 link BROADCAST\nLocal:\n   |-- 198.18.0.2\n   /32 host LOCAL\n";
        assert_eq!(
            local_addresses(table),
            [Ipv4Addr::LOCALHOST, Ipv4Addr::new(198, 18, 0, 2)]
        );
        assert!(local_addresses("").is_empty());
    }

    #[test]
    fn keepalive_is_set_on_a_link() {
        let listener = bind_listener(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        keep_alive(&client).unwrap();
        let socket = SockRef::from(&client);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), KEEPALIVE_IDLE);
        assert_eq!(socket.tcp_keepalive_interval().unwrap(), KEEPALIVE_INTERVAL);
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), KEEPALIVE_PROBES);
        #[cfg(target_os = "linux")]
        assert_eq!(socket.tcp_user_timeout().unwrap(), Some(UNACKED_LIMIT));
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
