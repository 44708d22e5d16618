//! `HOST:PORT` on the command line of `cptp probe`, `cptp map` and `cptp check --addr`: an
//! IPv4 address or a host name (looked up once with the system's resolver), and a port.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};

/// Reads `HOST:PORT` into an address a peer can be joined at: IPv4 (cPTP carries nothing
/// else), not 0.0.0.0, not port 0. The error says what is wrong with the text.
pub fn parse(text: &str) -> Result<SocketAddrV4, String> {
    parse_with(text, &resolve)
}

/// [`parse`] with the name lookup given, so that tests need no DNS.
pub fn parse_with(
    text: &str,
    resolve: &dyn Fn(&str) -> Option<Ipv4Addr>,
) -> Result<SocketAddrV4, String> {
    let bad = |why: &str| format!("wants HOST:PORT, but '{text}' {why}");
    if let Ok(SocketAddr::V6(_)) = text.parse::<SocketAddr>() {
        return Err(bad("is IPv6; cPTP carries IPv4 addresses only"));
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(bad("has no ':PORT'"));
    };
    let port = match port.parse::<u16>() {
        Ok(port) if port > 0 => port,
        _ => return Err(bad("has no port from 1 to 65535")),
    };
    let ip = match host.parse::<Ipv4Addr>() {
        Ok(ip) => ip,
        Err(_)
            if host.is_empty()
                || host.contains(':')
                || host.bytes().all(|b| b.is_ascii_digit() || b == b'.') =>
        {
            return Err(bad("does not start with an IPv4 address or a host name"));
        }
        Err(_) => resolve(host).ok_or_else(|| {
            format!(
                "wants HOST:PORT, but the host name '{host}' does not resolve to an IPv4 address"
            )
        })?,
    };
    if ip.is_unspecified() {
        return Err(bad("is 0.0.0.0, where no peer can be joined"));
    }
    Ok(SocketAddrV4::new(ip, port))
}

/// The first IPv4 address the system's resolver gives for `host` (hosts file, then DNS).
fn resolve(host: &str) -> Option<Ipv4Addr> {
    (host, 0)
        .to_socket_addrs()
        .ok()?
        .find_map(|addr| match addr {
            SocketAddr::V4(v4) => Some(*v4.ip()),
            SocketAddr::V6(_) => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names_are_read_and_the_unjoinable_refused() {
        let lookup = |host: &str| (host == "lab7").then_some(Ipv4Addr::new(10, 0, 0, 7));
        assert_eq!(
            parse_with("127.0.0.1:4000", &lookup),
            Ok("127.0.0.1:4000".parse().unwrap())
        );
        assert_eq!(
            parse_with("lab7:9", &lookup),
            Ok("10.0.0.7:9".parse().unwrap())
        );
        for (bad, says) in [
            ("127.0.0.1", "no ':PORT'"),
            ("127.0.0.1:0", "no port"),
            ("127.0.0.1:x", "no port"),
            ("[::1]:4000", "IPv6"),
            ("0.0.0.0:4000", "0.0.0.0"),
            ("1.2.3:4000", "IPv4 address or a host name"),
            (":4000", "IPv4 address or a host name"),
            ("nowhere:4000", "does not resolve"),
        ] {
            let e = parse_with(bad, &lookup).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
