//! Property tests of the decoder (PROTOCOL 4.4, 4.5): random bytes and mutated valid messages never make the
//! parser or the stream reader panic, the reader never reads past what the header
//! announced, and every valid message round-trips.
//!
//! `make test` runs a short run of each property; `make fuzz` runs them with
//! `PEER_FUZZ_CASES=1000000` (in release) and prints how many cases ran.

use peer::reader::{ReadError, read_message};
use peer::wire::{Header, Kind, MAX_ID_LEN, Message};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4};

/// Cases per property: `PEER_FUZZ_CASES`, or a short run.
fn cases() -> u32 {
    std::env::var("PEER_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000)
}

/// Runs `test` on `cases()` inputs from `strategy`, then prints the count.
fn check<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let cases = cases();
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{name}: {e}");
    }
    println!("fuzz {name}: {cases} cases passed");
}

/// A reader over bytes that hands them out in the given chunk sizes and counts what it
/// gave, so a test can see whether the message reader asked for more than it should.
struct Trickle {
    bytes: Vec<u8>,
    given: usize,
    chunks: Vec<usize>,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let chunk = self
            .chunks
            .get(self.given % self.chunks.len().max(1))
            .copied();
        let n = chunk
            .unwrap_or(usize::MAX)
            .max(1)
            .min(buf.len())
            .min(self.bytes.len() - self.given);
        buf[..n].copy_from_slice(&self.bytes[self.given..self.given + n]);
        self.given += n;
        Ok(n)
    }
}

fn peer_entry() -> impl Strategy<Value = SocketAddrV4> {
    (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| SocketAddrV4::new(Ipv4Addr::from(ip), port))
}

fn valid_message() -> impl Strategy<Value = Message> {
    let kind = prop_oneof![Just(Kind::Welcome), Just(Kind::Redirect)];
    let id = proptest::string::string_regex(&format!("[ -~]{{1,{MAX_ID_LEN}}}")).unwrap();
    let peers = proptest::collection::vec(peer_entry(), 0..64);
    (kind, id, peers).prop_map(|(kind, id, peers)| Message::new(kind, &id, peers).unwrap())
}

/// Bytes that start like a message often enough to reach the body checks.
fn random_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        (0u8..=255, proptest::collection::vec(any::<u8>(), 0..600)).prop_map(|(kind, mut b)| {
            b.splice(0..0, [0xE0 | (kind >> 3), kind << 5]);
            b
        }),
    ]
}

/// What the reader must do with `bytes`, whatever they are.
fn reader_obeys_the_header(bytes: &[u8], chunks: Vec<usize>) -> Result<(), TestCaseError> {
    let mut stream = Trickle {
        bytes: bytes.to_vec(),
        given: 0,
        chunks,
    };
    let result = read_message(&mut stream);
    match Header::parse(bytes) {
        Ok(header) => {
            let announced = header.message_len();
            prop_assert!(stream.given <= announced, "read past the message");
            match result {
                Ok((message, raw)) => {
                    prop_assert_eq!(stream.given, announced);
                    prop_assert_eq!(&raw[..], &bytes[..announced]);
                    prop_assert_eq!(message.to_bytes(), raw);
                }
                Err(ReadError::Closed { got, needed }) => {
                    prop_assert!(bytes.len() < announced);
                    prop_assert_eq!((got, needed), (bytes.len(), announced));
                }
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        Err(_) => {
            prop_assert!(result.is_err());
            prop_assert!(stream.given <= 4, "read a body after a bad header");
        }
    }
    Ok(())
}

#[test]
fn random_bytes_never_panic_and_decode_canonically() {
    check("parse(random bytes)", random_bytes(), |bytes| {
        if let Ok(message) = Message::parse(&bytes) {
            let len = message.buffer_len();
            prop_assert!(len <= bytes.len());
            prop_assert_eq!(message.to_bytes(), bytes[..len].to_vec());
        }
        Ok(())
    });
}

#[test]
fn the_reader_never_reads_past_the_announced_length() {
    let chunks = proptest::collection::vec(1usize..16, 1..8);
    check(
        "reader(random bytes)",
        (random_bytes(), chunks),
        |(bytes, chunks)| reader_obeys_the_header(&bytes, chunks),
    );
}

#[test]
fn valid_messages_round_trip_through_parse_and_reader() {
    let tail = proptest::collection::vec(any::<u8>(), 0..32);
    let chunks = proptest::collection::vec(1usize..64, 1..8);
    check(
        "round trip",
        (valid_message(), tail, chunks),
        |(message, tail, chunks)| {
            let bytes = message.to_bytes();
            prop_assert_eq!(Message::parse(&bytes), Ok(message.clone()));
            let mut stream = Trickle {
                bytes: [bytes.clone(), tail].concat(),
                given: 0,
                chunks,
            };
            let (read, raw) =
                read_message(&mut stream).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(read, message);
            prop_assert_eq!(raw, bytes.clone());
            prop_assert_eq!(stream.given, bytes.len(), "the tail stays unread");
            Ok(())
        },
    );
}

#[test]
fn mutated_messages_never_panic() {
    let edits = proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6);
    let cut = any::<prop::sample::Index>();
    check(
        "mutated messages",
        (valid_message(), edits, cut, any::<bool>()),
        |(message, edits, cut, truncate)| {
            let mut bytes = message.to_bytes();
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            let _ = Message::parse(&bytes);
            reader_obeys_the_header(&bytes, vec![7])
        },
    );
}
