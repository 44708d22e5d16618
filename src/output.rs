//! The event lines of SPEC section 7: stdout, one event at a time, flushed at once.
//!
//! An event of several lines is written in one call, so lines from different threads
//! never interleave. A closed stdout (the reader of a pipe went away) must not take the
//! peer down, so write errors are ignored: the peer's job is to serve, not to print.

use std::fmt;
use std::io::{Cursor, Write};

/// Writes `text`, which holds one or more whole lines, to stdout and flushes it.
pub fn say(text: &str) {
    say_bytes(text.as_bytes());
}

/// Writes one line, formatted from `args`, with its newline.
///
/// The accept loop prints a line per join, so the line is formatted into a buffer on the
/// stack rather than a new `String`: no allocation, and still one write.
pub fn say_line(args: fmt::Arguments<'_>) {
    let mut buf = [0u8; 256];
    let mut cursor = Cursor::new(&mut buf[..]);
    if cursor.write_fmt(args).is_ok() && cursor.write_all(b"\n").is_ok() {
        let len = cursor.position() as usize;
        say_bytes(&buf[..len]);
    } else {
        // Longer than any line the peer prints (an ID is at most 255 bytes).
        say(&format!("{args}\n"));
    }
}

fn say_bytes(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(bytes);
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
    fn a_line_longer_than_the_stack_buffer_is_still_written() {
        // Goes through the String path; nothing to assert but that it does not panic.
        say_line(format_args!("{}", "x".repeat(300)));
    }

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
