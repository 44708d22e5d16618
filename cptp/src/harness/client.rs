//! One join, the way a peer joins: connect (the connection is the request, PROTOCOL 1.3),
//! read one reply with a deadline, and keep the connection (the link, after a Welcome).
//!
//! The reply is read by `cptp`'s own decoder ([`crate::contract`]): the header, then
//! exactly the bytes it announced. What follows a message stays unread for
//! [`read_trailing`] to look at, and is drained before the connection closes, so that a
//! peer that pads its replies sees an orderly close and not a reset (the kernel answers a
//! close with unread bytes by resetting the connection).

use crate::contract::{HEADER_BYTES, Header, Message, Problem};
use crate::text::{first, short_hex};
use std::fmt;
use std::io::{self, Read};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes of a reply shown in hex in a report line; a 49 KB reply would otherwise make a
/// 150 KB line.
const SHOWN_BYTES: usize = 64;
/// Peers shown of a list, for the same reason.
const SHOWN_PEERS: usize = 16;
/// The most bytes read after a message when looking at what follows it.
const MOST_TRAILING: usize = 64 * 1024;
/// After a reply that does not parse, how long to wait for more of it, so the report shows
/// what the peer meant to send (ASCII digits, a version byte) and not only four bytes.
const MORE_OF_A_BAD_REPLY: Duration = Duration::from_millis(200);

/// Every way reading one reply can fail, with the bytes that did arrive.
#[derive(Debug)]
pub enum ReadError {
    /// The bytes are not a cPTP message.
    Malformed { problem: Problem, bytes: Vec<u8> },
    /// The connection closed after these bytes, before the whole message.
    Closed { bytes: Vec<u8>, needed: usize },
    /// The whole message did not come in time.
    TimedOut { bytes: Vec<u8>, after: Duration },
    /// The system reported an error on the connection (a reset).
    Io { error: io::Error, bytes: Vec<u8> },
}

impl ReadError {
    /// The bytes that arrived before the error.
    pub fn bytes(&self) -> &[u8] {
        match self {
            ReadError::Malformed { bytes, .. }
            | ReadError::Closed { bytes, .. }
            | ReadError::TimedOut { bytes, .. }
            | ReadError::Io { bytes, .. } => bytes,
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let got = |bytes: &[u8]| match bytes.is_empty() {
            true => String::new(),
            false => format!(" (got {}: {})", bytes.len(), short_hex(bytes, SHOWN_BYTES)),
        };
        match self {
            ReadError::Malformed { problem, bytes } => {
                write!(
                    f,
                    "sent a reply that is no cPTP message: {problem}{}",
                    got(bytes)
                )
            }
            ReadError::Closed { bytes, .. } if bytes.is_empty() => {
                f.write_str("closed the connection without replying")
            }
            ReadError::Closed { bytes, needed } => write!(
                f,
                "closed the connection after {} of {needed} bytes{}",
                bytes.len(),
                got(bytes)
            ),
            ReadError::TimedOut { bytes, after } if bytes.is_empty() => {
                write!(f, "sent no reply within {:.1} s", after.as_secs_f64())
            }
            ReadError::TimedOut { bytes, after } => write!(
                f,
                "sent only part of a reply within {:.1} s{}",
                after.as_secs_f64(),
                got(bytes)
            ),
            ReadError::Io { error, bytes } => write!(f, "connection error: {error}{}", got(bytes)),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads exactly one message from `stream` within `within`, leaving what follows it unread.
/// Returns the message and its bytes.
pub fn read_message(stream: &TcpStream, within: Duration) -> Result<(Message, Vec<u8>), ReadError> {
    let deadline = Instant::now() + within;
    let mut bytes = Vec::with_capacity(64);
    let stopped = |stop: Stop, bytes: Vec<u8>, needed: usize| match stop {
        Stop::Closed => ReadError::Closed { bytes, needed },
        Stop::TimedOut => ReadError::TimedOut {
            bytes,
            after: within,
        },
        Stop::Io(error) => ReadError::Io { error, bytes },
    };
    if let Err(stop) = fill(stream, &mut bytes, HEADER_BYTES, deadline) {
        return Err(stopped(stop, bytes, HEADER_BYTES));
    }
    let header = Header::read([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if let Err(problem) = header.check() {
        let _ = fill(
            stream,
            &mut bytes,
            SHOWN_BYTES,
            Instant::now() + MORE_OF_A_BAD_REPLY,
        );
        return Err(ReadError::Malformed { problem, bytes });
    }
    let needed = header.message_bytes();
    if let Err(stop) = fill(stream, &mut bytes, needed, deadline) {
        return Err(stopped(stop, bytes, needed));
    }
    match Message::decode(&bytes) {
        Ok((message, _)) => Ok((message, bytes)),
        Err(problem) => Err(ReadError::Malformed { problem, bytes }),
    }
}

/// Why [`fill`] stopped short.
enum Stop {
    Closed,
    TimedOut,
    Io(io::Error),
}

/// Reads until `bytes` holds `needed` bytes, by `deadline`.
fn fill(
    stream: &TcpStream,
    bytes: &mut Vec<u8>,
    needed: usize,
    deadline: Instant,
) -> Result<(), Stop> {
    let mut chunk = [0u8; 4096];
    while bytes.len() < needed {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Stop::TimedOut);
        }
        let want = (needed - bytes.len()).min(chunk.len());
        let _ = stream.set_read_timeout(Some(left));
        match (&mut &*stream).read(&mut chunk[..want]) {
            Ok(0) => return Err(Stop::Closed),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => {}
            Err(error) => return Err(Stop::Io(error)),
        }
    }
    Ok(())
}

/// True for the errors a socket read timeout gives (they differ by platform).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Every way a join can fail.
#[derive(Debug)]
pub enum JoinError {
    Connect(SocketAddrV4, io::Error),
    Reply(SocketAddrV4, ReadError),
}

impl JoinError {
    /// True when nothing listened at the address (the connection was refused).
    pub fn refused(&self) -> bool {
        matches!(self, JoinError::Connect(_, e) if e.kind() == io::ErrorKind::ConnectionRefused)
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Connect(addr, e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                write!(
                    f,
                    "cannot connect to {addr}: refused (nothing listens there)"
                )
            }
            JoinError::Connect(addr, e) => write!(f, "cannot connect to {addr}: {e}"),
            JoinError::Reply(addr, e) => write!(f, "{addr} {e}"),
        }
    }
}

impl std::error::Error for JoinError {}

/// An open join: the connection, the reply, its exact bytes, and the address the peer sees
/// for this joiner. Dropping it drains what the peer sent after the reply, then closes.
#[derive(Debug)]
pub struct Joined {
    pub stream: TcpStream,
    pub message: Message,
    pub raw: Vec<u8>,
    pub local: SocketAddrV4,
}

impl Joined {
    /// The reply in a report's words: kind, sender and list, then the bytes in hex.
    pub fn describe(&self) -> String {
        format!(
            "{} ({} bytes: {})",
            summary(&self.message),
            self.raw.len(),
            short_hex(&self.raw, SHOWN_BYTES)
        )
    }

    /// The connection alone, to close some other way (a reset) or keep; what had already
    /// arrived after the reply is drained first.
    pub fn into_stream(self) -> io::Result<TcpStream> {
        let stream = self.stream.try_clone()?;
        drop(self);
        // The drain made the shared connection non-blocking.
        stream.set_nonblocking(false)?;
        Ok(stream)
    }

    /// The connection, the reply and its bytes, apart (for tests). What followed the reply
    /// and had already arrived is drained first.
    pub fn into_parts(self) -> (TcpStream, Message, Vec<u8>) {
        let stream = self
            .stream
            .try_clone()
            .expect("a second handle on the connection");
        let (message, raw) = (self.message.clone(), self.raw.clone());
        drop(self);
        let _ = stream.set_nonblocking(false);
        (stream, message, raw)
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        drain(&self.stream);
    }
}

/// Reads and drops whatever has already arrived on `stream`, so that closing it is an
/// orderly close and not a reset.
pub fn drain(stream: &TcpStream) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    for _ in 0..MOST_TRAILING / sink.len() {
        match (&mut &*stream).read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// `Welcome from 'peer1' listing [127.0.0.1:4000]`, at most [`SHOWN_PEERS`] of the list.
pub fn summary(message: &Message) -> String {
    format!(
        "{} from '{}' listing [{}]",
        message.kind,
        message.sender_id(),
        first(&message.peers, SHOWN_PEERS)
    )
}

/// Joins `addr` and reads the reply, with these limits for the connect and the reply.
pub fn join_within(
    addr: SocketAddrV4,
    connect: Duration,
    reply: Duration,
) -> Result<Joined, JoinError> {
    let stream = TcpStream::connect_timeout(&addr.into(), connect)
        .map_err(|e| JoinError::Connect(addr, e))?;
    let _ = stream.set_nodelay(true);
    let local = match stream.local_addr() {
        Ok(SocketAddr::V4(v4)) => v4,
        _ => SocketAddrV4::new([127, 0, 0, 1].into(), 0),
    };
    match read_message(&stream, reply) {
        Ok((message, raw)) => Ok(Joined {
            stream,
            message,
            raw,
            local,
        }),
        Err(e) => {
            drain(&stream);
            Err(JoinError::Reply(addr, e))
        }
    }
}

/// Joins `addr` like [`join_within`], but a refused connection is tried again for up to
/// `refused_for`: a program that printed its address just before it listens (Node.js binds
/// on a later tick) is given that moment.
pub fn join_patiently(
    addr: SocketAddrV4,
    connect: Duration,
    reply: Duration,
    refused_for: Duration,
) -> Result<Joined, JoinError> {
    let started = Instant::now();
    loop {
        match join_within(addr, connect, reply) {
            Err(e) if e.refused() && started.elapsed() < refused_for => {
                thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Joins `addr` and reads its reply; panics if either takes longer than
/// [`super::programs::PATIENCE`] (for tests).
pub fn join(addr: SocketAddrV4) -> Joined {
    join_within(addr, super::programs::PATIENCE, super::programs::PATIENCE)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The peers `addr` lists in its reply to a join (its whole table, when it is full). A
/// join changes the table when there is room, so use this on full tables (for tests).
pub fn listed(addr: SocketAddrV4) -> Vec<SocketAddrV4> {
    join(addr).message.peers.clone()
}

/// What came after a message, read for a while.
#[derive(Debug, Default)]
pub struct Trailing {
    pub bytes: Vec<u8>,
    /// The peer closed the connection, after this long.
    pub closed_after: Option<Duration>,
}

/// Reads whatever follows a message for up to `within`, stopping early when the peer
/// closes the connection.
pub fn read_trailing(stream: &TcpStream, within: Duration) -> Trailing {
    let started = Instant::now();
    let mut trailing = Trailing::default();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.saturating_sub(started.elapsed());
        if left.is_zero() || trailing.bytes.len() >= MOST_TRAILING {
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
            Err(e) if is_timeout(&e) => return trailing,
            // A reset is the peer closing too, just less politely.
            Err(_) => {
                trailing.closed_after = Some(started.elapsed());
                return trailing;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Kind;
    use std::io::Write;
    use std::net::TcpListener;

    /// A listener that answers one connection with `bytes`, then closes (or holds it).
    fn answering(bytes: Vec<u8>, hold: bool) -> SocketAddrV4 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = match listener.local_addr().unwrap() {
            SocketAddr::V4(v4) => v4,
            other => panic!("{other}"),
        };
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let _ = stream.write_all(&bytes);
            if hold {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = stream.read(&mut [0u8; 1]);
            }
        });
        addr
    }

    #[test]
    fn a_reply_is_read_exactly_and_what_follows_is_left() {
        let welcome = Message::new(Kind::Welcome, "p1", vec![]).encode();
        let addr = answering([&welcome[..], &[0, 0]].concat(), true);
        let joined = join(addr);
        assert_eq!(
            (joined.message.kind, joined.raw.clone()),
            (Kind::Welcome, welcome)
        );
        assert_eq!(
            read_trailing(&joined.stream, Duration::from_millis(300)).bytes,
            [0, 0]
        );
    }

    #[test]
    fn a_bad_reply_keeps_its_bytes_for_the_report() {
        // Bits sent as ASCII digits: "11100000..." is no header.
        let addr = answering(b"111000000010000000000000000000101peer1".to_vec(), false);
        let e = join_within(addr, Duration::from_secs(2), Duration::from_secs(2)).unwrap_err();
        let JoinError::Reply(_, e) = e else {
            panic!("{e}")
        };
        assert!(e.bytes().len() > 4, "{e}");
        assert!(e.to_string().contains("31 31 31 30"), "{e}");
    }

    #[test]
    fn a_refused_join_is_told_apart() {
        let dead = crate::harness::sockets::dead_address();
        let e = join_within(dead, Duration::from_secs(1), Duration::from_secs(1)).unwrap_err();
        assert!(e.refused(), "{e}");
        assert!(e.to_string().contains("nothing listens"), "{e}");
    }
}
