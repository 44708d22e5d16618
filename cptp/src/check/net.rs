//! Talking to the target as a joining peer would: connect (the connection is the join),
//! read one reply with the library's reader, and look at what follows it.

use super::timing::scaled;
use peer::reader::{Deadline, ReadError, read_message};
use peer::wire::{Message, hex};
use std::fmt;
use std::io::{self, Read};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

/// PROTOCOL 6.5: 3 s to connect.
pub const CONNECT_WITHIN: Duration = Duration::from_secs(3);
/// PROTOCOL 6.5: 5 s for a whole reply; a local target needs far less, so rules wait 3 s.
pub const REPLY_WITHIN: Duration = Duration::from_secs(3);
/// The most bytes read after a message when looking for padding.
const MAX_TRAILING: usize = 64 * 1024;

/// Every way a join can fail.
#[derive(Debug)]
pub enum JoinError {
    Connect(SocketAddrV4, io::Error),
    Reply(SocketAddrV4, ReadError),
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Connect(addr, e) => write!(f, "cannot connect to {addr}: {e}"),
            JoinError::Reply(addr, e) => write!(f, "{addr} {e}"),
        }
    }
}

impl std::error::Error for JoinError {}

/// An open join: the connection, the reply and its exact bytes.
pub struct Joined {
    pub stream: TcpStream,
    pub message: Message,
    pub raw: Vec<u8>,
    /// The address the target sees for this joiner.
    pub local: SocketAddrV4,
}

/// Bytes shown in hex in a report line; a 49 KB reply would otherwise make a 150 KB line.
const SHOWN_BYTES: usize = 64;
/// Peers shown of a list, for the same reason.
const SHOWN_PEERS: usize = 16;

impl Joined {
    /// The reply in the report's words: kind, sender, list, then the hex.
    pub fn describe(&self) -> String {
        format!(
            "{} ({} bytes: {})",
            summary(&self.message),
            self.raw.len(),
            short_hex(&self.raw)
        )
    }
}

/// The first [`SHOWN_BYTES`] bytes in hex, and how many more there are.
pub fn short_hex(bytes: &[u8]) -> String {
    match bytes.len().checked_sub(SHOWN_BYTES) {
        Some(more) if more > 0 => {
            format!("{} ... and {more} more", hex(&bytes[..SHOWN_BYTES]))
        }
        _ => hex(bytes),
    }
}

/// `Welcome from 'peer1' listing [127.0.0.1:4000]`, at most [`SHOWN_PEERS`] of the list.
pub fn summary(message: &Message) -> String {
    let all = message.peers();
    let mut peers: Vec<String> = all
        .iter()
        .take(SHOWN_PEERS)
        .map(ToString::to_string)
        .collect();
    if all.len() > SHOWN_PEERS {
        peers.push(format!("... and {} more", all.len() - SHOWN_PEERS));
    }
    format!(
        "{} from '{}' listing [{}]",
        message.kind(),
        message.sender_id(),
        peers.join(", ")
    )
}

/// Joins `addr` and reads the reply.
pub fn join(addr: SocketAddrV4) -> Result<Joined, JoinError> {
    let stream = TcpStream::connect_timeout(&addr.into(), scaled(CONNECT_WITHIN))
        .map_err(|e| JoinError::Connect(addr, e))?;
    let local = match stream.local_addr() {
        Ok(SocketAddr::V4(v4)) => v4,
        _ => SocketAddrV4::new([127, 0, 0, 1].into(), 0),
    };
    let (message, raw) = read_message(&mut Deadline::new(&stream, scaled(REPLY_WITHIN)))
        .map_err(|e| JoinError::Reply(addr, e))?;
    Ok(Joined {
        stream,
        message,
        raw,
        local,
    })
}

/// What came after a message, read for `within`.
#[derive(Debug, Default)]
pub struct Trailing {
    pub bytes: Vec<u8>,
    /// The target closed the connection, after this long.
    pub closed_after: Option<Duration>,
}

/// Reads whatever follows a message for up to `within`, stopping early when the target
/// closes the connection.
pub fn read_trailing(stream: &TcpStream, within: Duration) -> Trailing {
    let started = Instant::now();
    let mut trailing = Trailing::default();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.saturating_sub(started.elapsed());
        if left.is_zero() || trailing.bytes.len() >= MAX_TRAILING {
            return trailing;
        }
        if stream.set_read_timeout(Some(left)).is_err() {
            return trailing;
        }
        match (&mut &*stream).read(&mut buf) {
            Ok(0) => {
                trailing.closed_after = Some(started.elapsed());
                return trailing;
            }
            Ok(n) => trailing.bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if peer::reader::is_timeout(&e) => return trailing,
            // A reset is the target closing too, just less politely.
            Err(_) => {
                trailing.closed_after = Some(started.elapsed());
                return trailing;
            }
        }
    }
}

/// Names harmless trailing bytes: zero padding or a line ending.
pub fn harmless_padding(bytes: &[u8]) -> Option<&'static str> {
    if bytes.iter().all(|b| *b == 0) {
        Some("zero padding")
    } else if bytes == b"\n" || bytes == b"\r\n" {
        Some("a trailing newline")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_named_and_junk_is_not() {
        assert_eq!(harmless_padding(&[0, 0, 0]), Some("zero padding"));
        assert_eq!(harmless_padding(b"\n"), Some("a trailing newline"));
        assert_eq!(harmless_padding(b"\r\n"), Some("a trailing newline"));
        assert_eq!(harmless_padding(b"xyz"), None);
        assert_eq!(harmless_padding(b"\n\n"), None);
    }

    #[test]
    fn long_hex_is_cut_with_a_count() {
        assert_eq!(short_hex(&[0xE0, 0x20]), "E0 20");
        let long = short_hex(&[0xAB; 100]);
        assert!(long.ends_with("AB ... and 36 more"), "{long}");
    }
}
