//! Reading one cPTP message off a byte stream (PROTOCOL 4.4, 4.5).
//!
//! The reader takes the 4-byte header, checks it, then reads exactly the bytes the header
//! announced and not one more: whatever a peer sends after a complete message (zero
//! padding, a newline) stays unread. [`Deadline`] turns a socket into a reader whose reads
//! all share one deadline, so a peer that trickles a byte at a time still times out.

use crate::wire::{HEADER_LEN, Header, Message, ParseError};
use std::fmt;
use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Every way reading a reply can fail.
#[derive(Debug)]
pub enum ReadError {
    /// The bytes received are not a cPTP message.
    Malformed(ParseError),
    /// The link closed after `got` of the `needed` bytes.
    Closed { got: usize, needed: usize },
    /// The whole message did not arrive in time; `got` bytes had.
    TimedOut { got: usize, after: Duration },
    /// The operating system reported an error on the link.
    Io(io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Malformed(e) => write!(f, "sent a bad message: {e}"),
            ReadError::Closed { got: 0, .. } => f.write_str("closed the link without replying"),
            ReadError::Closed { got, needed } => {
                write!(f, "closed the link mid-message ({got} of {needed} bytes)")
            }
            ReadError::TimedOut { got: 0, after } => {
                write!(f, "sent no reply within {:.1} s", after.as_secs_f64())
            }
            ReadError::TimedOut { got, after } => write!(
                f,
                "sent only {got} bytes of its reply within {:.1} s",
                after.as_secs_f64()
            ),
            ReadError::Io(e) => write!(f, "link error: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads exactly one message from `reader`, leaving any bytes after it unread.
///
/// Also returns the raw bytes, for the hex dump at debug level.
pub fn read_message<R: Read>(reader: &mut R) -> Result<(Message, Vec<u8>), ReadError> {
    let mut bytes = vec![0u8; HEADER_LEN];
    fill(reader, &mut bytes, 0)?;
    let header = Header::parse(&bytes).map_err(ReadError::Malformed)?;
    // The header fields are 8 and 13 bits wide, so this is at most MAX_MESSAGE_LEN.
    bytes.resize(header.message_len(), 0);
    fill(reader, &mut bytes, HEADER_LEN)?;
    let message = Message::parse(&bytes).map_err(ReadError::Malformed)?;
    Ok((message, bytes))
}

/// Fills `buf[from..]` from `reader`, counting what arrived for the error message.
fn fill<R: Read>(reader: &mut R, buf: &mut [u8], from: usize) -> Result<(), ReadError> {
    let mut got = from;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(ReadError::Closed {
                    got,
                    needed: buf.len(),
                });
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => {
                let after = deadline_of(&e).unwrap_or_default();
                return Err(ReadError::TimedOut { got, after });
            }
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    Ok(())
}

/// True for the errors a socket read timeout produces (they differ by platform).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The time limit a [`Deadline`] reader reports inside its timeout error, if any.
fn deadline_of(e: &io::Error) -> Option<Duration> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Expired>())
        .map(|expired| expired.0)
}

/// The payload of the timeout error [`Deadline`] returns: how long the whole read had.
#[derive(Debug)]
struct Expired(Duration);

impl fmt::Display for Expired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deadline of {:?} passed", self.0)
    }
}

impl std::error::Error for Expired {}

/// A socket whose reads all end by one deadline: each read waits only for the time left.
pub struct Deadline<'a> {
    stream: &'a TcpStream,
    started: Instant,
    limit: Duration,
}

impl<'a> Deadline<'a> {
    pub fn new(stream: &'a TcpStream, limit: Duration) -> Deadline<'a> {
        Deadline {
            stream,
            started: Instant::now(),
            limit,
        }
    }
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.limit.saturating_sub(self.started.elapsed());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, Expired(self.limit)));
        }
        self.stream.set_read_timeout(Some(left))?;
        match (&mut &*self.stream).read(buf) {
            Err(e) if is_timeout(&e) => {
                Err(io::Error::new(io::ErrorKind::TimedOut, Expired(self.limit)))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Kind;
    use std::io::Cursor;

    const WELCOME_ONE: [u8; 15] = [
        0xE0, 0x20, 0x01, 0x05, b'p', b'e', b'e', b'r', b'1', 0x7F, 0, 0, 1, 0x9A, 0xF6,
    ];

    #[test]
    fn reads_one_message_and_leaves_the_rest() {
        let mut stream = Cursor::new([&WELCOME_ONE[..], b"\n\0\0junk"].concat());
        let (message, raw) = read_message(&mut stream).unwrap();
        assert_eq!(message.kind(), Kind::Welcome);
        assert_eq!(raw, WELCOME_ONE);
        assert_eq!(stream.position(), WELCOME_ONE.len() as u64);
    }

    #[test]
    fn a_link_closing_early_is_reported_with_counts() {
        for len in 0..WELCOME_ONE.len() {
            let mut stream = Cursor::new(WELCOME_ONE[..len].to_vec());
            match read_message(&mut stream) {
                Err(ReadError::Closed { got, needed }) => {
                    assert_eq!(got, len);
                    assert_eq!(needed, if len < 4 { 4 } else { WELCOME_ONE.len() });
                }
                other => panic!("{len} bytes gave {other:?}"),
            }
        }
    }

    #[test]
    fn a_bad_header_is_refused_before_reading_the_body() {
        let mut bytes = WELCOME_ONE.to_vec();
        bytes[0] = 0x20; // version 1
        let mut stream = Cursor::new(bytes);
        assert!(matches!(
            read_message(&mut stream),
            Err(ReadError::Malformed(ParseError::BadVersion(1)))
        ));
        assert_eq!(stream.position(), 4);
    }

    /// A reader interrupted by a signal before every chunk it hands out.
    struct Interrupting {
        bytes: Cursor<Vec<u8>>,
        interrupt_next: bool,
    }

    impl Read for Interrupting {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt_next = !self.interrupt_next;
            if self.interrupt_next {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(3);
            self.bytes.read(&mut buf[..n])
        }
    }

    #[test]
    fn a_read_interrupted_by_a_signal_is_retried() {
        let mut stream = Interrupting {
            bytes: Cursor::new(WELCOME_ONE.to_vec()),
            interrupt_next: false,
        };
        let (_, raw) = read_message(&mut stream).expect("interruptions are not errors");
        assert_eq!(raw, WELCOME_ONE);
    }

    /// A reader that hands out `bytes` and then fails with `error`.
    struct Failing {
        bytes: Cursor<Vec<u8>>,
        error: io::ErrorKind,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.bytes.read(buf)? {
                0 => Err(self.error.into()),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn a_reset_is_a_link_error_and_a_timeout_is_a_timeout() {
        let failing = |error| Failing {
            bytes: Cursor::new(WELCOME_ONE[..6].to_vec()),
            error,
        };
        match read_message(&mut failing(io::ErrorKind::ConnectionReset)) {
            Err(ReadError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
            other => panic!("a reset gave {other:?}"),
        }
        match read_message(&mut failing(io::ErrorKind::WouldBlock)) {
            Err(ReadError::TimedOut { got: 6, .. }) => {}
            other => panic!("a timeout gave {other:?}"),
        }
    }

    #[test]
    fn a_deadline_reader_reports_a_reset_as_a_link_error() {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        // A zero linger makes the close a reset (RST) rather than an orderly close.
        socket2::SockRef::from(&server)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(server);
        match read_message(&mut Deadline::new(&client, Duration::from_secs(5))) {
            Err(ReadError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
            other => panic!("a reset gave {other:?}"),
        }
    }

    #[test]
    fn a_deadline_reader_times_out_with_its_limit() {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let _server = listener.accept().unwrap();
        let limit = Duration::from_millis(50);
        let error = read_message(&mut Deadline::new(&client, limit)).unwrap_err();
        assert!(matches!(error, ReadError::TimedOut { got: 0, after } if after == limit));
        let expired = io::Error::new(io::ErrorKind::TimedOut, Expired(limit));
        assert_eq!(expired.to_string(), "deadline of 50ms passed");
    }

    #[test]
    fn errors_read_as_sentences() {
        let closed = ReadError::Closed { got: 3, needed: 9 };
        assert_eq!(
            closed.to_string(),
            "closed the link mid-message (3 of 9 bytes)"
        );
        let silent = ReadError::TimedOut {
            got: 0,
            after: Duration::from_secs(5),
        };
        assert_eq!(silent.to_string(), "sent no reply within 5.0 s");
    }
}
