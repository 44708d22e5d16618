//! The event lines of SPEC section 7: stdout, one event at a time, flushed at once.
//!
//! An event of several lines is written in one call, so lines from different threads
//! never interleave. A closed stdout (the reader of a pipe went away) must not take the
//! peer down, so write errors are ignored: the peer's job is to serve, not to print.

use std::io::Write;

/// Writes `text`, which holds one or more whole lines, to stdout and flushes it.
pub fn say(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Formats a list of peers as the `which is peered with` line shows them.
pub fn peer_list(peers: &[std::net::SocketAddrV4]) -> String {
    let items: Vec<String> = peers.iter().map(|p| format!("[{p}]")).collect();
    items.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_listed_in_brackets() {
        let peers = [
            "127.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:7".parse().unwrap(),
        ];
        assert_eq!(peer_list(&peers), "[127.0.0.1:40000], [10.0.0.2:7]");
        assert_eq!(peer_list(&[]), "");
    }
}
