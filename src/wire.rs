//! The cPTP wire format of PROTOCOL 4: one message type with no I/O in sight.
//!
//! A message is a 4-byte header followed by the sender's ID and a list of peers:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-----+---------------+-------------------------+---------------+
//! |  V  | Message type  |     Number of peers     | Sender ID len |
//! +-----+---------------+-------------------------+---------------+
//! |        Sender ID (Sender ID len bytes) ...                    |
//! |        then per peer: IPv4 address (4 bytes), port (2 bytes)  |
//! ```
//!
//! The header is one big-endian 32-bit word; each field is a mask over that word and is
//! read by shifting down by the mask's trailing zeros. [`Header::parse`] lets a stream
//! reader learn how many more bytes to read; [`Message::parse`] decodes a whole message;
//! [`Message::emit`] writes one. Limits are checked when a [`Message`] is built, so
//! emitting can never truncate a field.

use byteorder::{BigEndian, ByteOrder};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

/// The only protocol version there is.
pub const VERSION: u8 = 7;
/// Bytes in the fixed header.
pub const HEADER_LEN: usize = 4;
/// Bytes in one peer entry: IPv4 address then port.
pub const ENTRY_LEN: usize = 6;
/// The sender ID length is an 8-bit field.
pub const MAX_ID_LEN: usize = 255;
/// The number of peers is a 13-bit field.
pub const MAX_PEERS: usize = 8191;
/// The largest message the header can announce: a reader never needs more than this.
pub const MAX_MESSAGE_LEN: usize = HEADER_LEN + MAX_ID_LEN + ENTRY_LEN * MAX_PEERS;

/// Bit masks of the header fields within the first big-endian 32-bit word.
mod field {
    pub const VERSION: u32 = 0b1110_0000_0000_0000_0000_0000_0000_0000;
    pub const KIND: u32 = 0b0001_1111_1110_0000_0000_0000_0000_0000;
    pub const PEER_COUNT: u32 = 0b0000_0000_0001_1111_1111_1111_0000_0000;
    pub const ID_LEN: u32 = 0b0000_0000_0000_0000_0000_0000_1111_1111;
}

/// Reads one field out of the header word.
fn get(word: u32, mask: u32) -> u32 {
    (word & mask) >> mask.trailing_zeros()
}

/// Places one field into the header word. The caller has checked that `value` fits.
fn put(value: u32, mask: u32) -> u32 {
    (value << mask.trailing_zeros()) & mask
}

/// What a message says about the join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The join was accepted; the list is the sender's table before the joiner.
    Welcome = 1,
    /// The sender's table is full; the list is the whole table, to try instead.
    Redirect = 2,
}

impl Kind {
    fn from_code(code: u8) -> Option<Kind> {
        match code {
            1 => Some(Kind::Welcome),
            2 => Some(Kind::Redirect),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Welcome => "Welcome",
            Kind::Redirect => "Redirect",
        })
    }
}

/// Every way a run of bytes can fail to be a cPTP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer bytes than the header or the header's announced lengths need.
    Truncated { needed: usize, got: usize },
    /// The version field is not 7.
    BadVersion(u8),
    /// The message type is neither Welcome (1) nor Redirect (2).
    UnknownKind(u8),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Truncated { needed, got } => {
                write!(f, "message cut short: {got} of {needed} bytes")
            }
            ParseError::BadVersion(v) => write!(f, "wrong protocol version {v} (expected 7)"),
            ParseError::UnknownKind(k) => {
                write!(
                    f,
                    "unknown message type {k} (expected 1 Welcome or 2 Redirect)"
                )
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Every way a message can be refused when it is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// The sender ID is empty.
    EmptyId,
    /// The sender ID is longer than the 8-bit length field can say.
    IdTooLong(usize),
    /// More peers than the 13-bit count field can say.
    TooManyPeers(usize),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::EmptyId => f.write_str("the peer ID is empty"),
            BuildError::IdTooLong(n) => {
                write!(f, "the peer ID is {n} bytes; at most {MAX_ID_LEN} fit")
            }
            BuildError::TooManyPeers(n) => {
                write!(f, "{n} peers listed; at most {MAX_PEERS} fit")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// The decoded 4-byte header: enough to know how long the whole message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub peer_count: usize,
    pub id_len: usize,
}

impl Header {
    /// Decodes the header from the first [`HEADER_LEN`] bytes of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Header, ParseError> {
        if bytes.len() < HEADER_LEN {
            return Err(ParseError::Truncated {
                needed: HEADER_LEN,
                got: bytes.len(),
            });
        }
        let word = BigEndian::read_u32(&bytes[..HEADER_LEN]);
        let version = get(word, field::VERSION) as u8;
        if version != VERSION {
            return Err(ParseError::BadVersion(version));
        }
        let code = get(word, field::KIND) as u8;
        let kind = Kind::from_code(code).ok_or(ParseError::UnknownKind(code))?;
        Ok(Header {
            kind,
            peer_count: get(word, field::PEER_COUNT) as usize,
            id_len: get(word, field::ID_LEN) as usize,
        })
    }

    /// Bytes that follow the header: the ID and the peer entries.
    pub fn body_len(&self) -> usize {
        self.id_len + ENTRY_LEN * self.peer_count
    }

    /// Bytes in the whole message, header included.
    pub fn message_len(&self) -> usize {
        HEADER_LEN + self.body_len()
    }

    fn emit(&self, out: &mut [u8]) {
        let word = put(u32::from(VERSION), field::VERSION)
            | put(self.kind as u32, field::KIND)
            | put(self.peer_count as u32, field::PEER_COUNT)
            | put(self.id_len as u32, field::ID_LEN);
        BigEndian::write_u32(&mut out[..HEADER_LEN], word);
    }
}

/// A whole cPTP message. Built only through [`Message::new`] or [`Message::parse`], so its
/// ID and list always fit the header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    kind: Kind,
    sender_id: Vec<u8>,
    peers: Vec<SocketAddrV4>,
}

impl Message {
    /// Builds a message, refusing an ID or a list that the header cannot describe.
    pub fn new(
        kind: Kind,
        sender_id: &str,
        peers: Vec<SocketAddrV4>,
    ) -> Result<Message, BuildError> {
        check_id(sender_id)?;
        if peers.len() > MAX_PEERS {
            return Err(BuildError::TooManyPeers(peers.len()));
        }
        Ok(Message {
            kind,
            sender_id: sender_id.as_bytes().to_vec(),
            peers,
        })
    }

    /// Decodes one message from the start of `bytes`. Bytes after the message are ignored:
    /// some course peers pad with zeros or append a newline.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        let header = Header::parse(bytes)?;
        let needed = header.message_len();
        if bytes.len() < needed {
            return Err(ParseError::Truncated {
                needed,
                got: bytes.len(),
            });
        }
        let body = &bytes[HEADER_LEN..needed];
        let (id, entries) = body.split_at(header.id_len);
        let peers = entries
            .chunks_exact(ENTRY_LEN)
            .map(|entry| {
                let ip = Ipv4Addr::new(entry[0], entry[1], entry[2], entry[3]);
                SocketAddrV4::new(ip, BigEndian::read_u16(&entry[4..6]))
            })
            .collect();
        Ok(Message {
            kind: header.kind,
            sender_id: id.to_vec(),
            peers,
        })
    }

    /// Bytes [`Message::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        self.header().message_len()
    }

    /// Appends the encoded message to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        self.header().emit(&mut out[start..]);
        out.extend_from_slice(&self.sender_id);
        for peer in &self.peers {
            let mut entry = [0u8; ENTRY_LEN];
            entry[..4].copy_from_slice(&peer.ip().octets());
            BigEndian::write_u16(&mut entry[4..], peer.port());
            out.extend_from_slice(&entry);
        }
    }

    /// The encoded message in a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out);
        out
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The sender's ID as sent. The protocol says ASCII; anything else is shown lossily
    /// rather than refused, since students' peers are not always careful.
    pub fn sender_id(&self) -> String {
        String::from_utf8_lossy(&self.sender_id).into_owned()
    }

    pub fn peers(&self) -> &[SocketAddrV4] {
        &self.peers
    }

    fn header(&self) -> Header {
        Header {
            kind: self.kind,
            peer_count: self.peers.len(),
            id_len: self.sender_id.len(),
        }
    }
}

/// Checks that `id` fits the 8-bit length field and is not empty.
pub fn check_id(id: &str) -> Result<(), BuildError> {
    match id.len() {
        0 => Err(BuildError::EmptyId),
        n if n > MAX_ID_LEN => Err(BuildError::IdTooLong(n)),
        _ => Ok(()),
    }
}

/// Formats bytes as space-separated upper-case hex, as the examples of PROTOCOL 4.3 are written.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}

/// A message decoded for the debug log, then its bytes in hex, e.g.
/// `Redirect from 'p1' listing 2 peers: 127.0.0.1:40000, 127.0.0.1:40001; bytes: E0 40 ...`.
pub fn describe(bytes: &[u8]) -> String {
    match Message::parse(bytes) {
        Ok(message) => {
            let peers: Vec<String> = message.peers.iter().map(ToString::to_string).collect();
            let listing = match peers.len() {
                0 => "no peers".to_string(),
                1 => format!("1 peer: {}", peers[0]),
                n => format!("{n} peers: {}", peers.join(", ")),
            };
            format!(
                "{} from '{}' listing {listing}; bytes: {}",
                message.kind,
                message.sender_id(),
                hex(bytes)
            )
        }
        Err(e) => format!("not a message ({e}); bytes: {}", hex(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
    }

    fn unhex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    // The three worked examples of PROTOCOL 4.3.
    const WELCOME_EMPTY: &str = "E0 20 00 05 70 65 65 72 31";
    const WELCOME_ONE: &str = "E0 20 01 05 70 65 65 72 31 7F 00 00 01 9A F6";
    const REDIRECT_TWO: &str = "E0 40 02 02 70 31 7F 00 00 01 9C 40 7F 00 00 01 9C 41";

    fn examples() -> Vec<(Message, Vec<u8>)> {
        vec![
            (
                Message::new(Kind::Welcome, "peer1", vec![]).unwrap(),
                unhex(WELCOME_EMPTY),
            ),
            (
                Message::new(Kind::Welcome, "peer1", vec![addr(39670)]).unwrap(),
                unhex(WELCOME_ONE),
            ),
            (
                Message::new(Kind::Redirect, "p1", vec![addr(40000), addr(40001)]).unwrap(),
                unhex(REDIRECT_TWO),
            ),
        ]
    }

    #[test]
    fn emits_the_spec_examples_byte_for_byte() {
        for (message, bytes) in examples() {
            assert_eq!(message.to_bytes(), bytes, "{message:?}");
            assert_eq!(message.buffer_len(), bytes.len());
        }
    }

    #[test]
    fn parses_the_spec_examples() {
        for (message, bytes) in examples() {
            assert_eq!(Message::parse(&bytes).unwrap(), message);
        }
        let redirect = Message::parse(&unhex(REDIRECT_TWO)).unwrap();
        assert_eq!(redirect.kind(), Kind::Redirect);
        assert_eq!(redirect.sender_id(), "p1");
        assert_eq!(redirect.peers(), &[addr(40000), addr(40001)]);
    }

    #[test]
    fn header_reports_the_whole_length() {
        let header = Header::parse(&unhex(REDIRECT_TWO)).unwrap();
        assert_eq!(header.kind, Kind::Redirect);
        assert_eq!((header.peer_count, header.id_len), (2, 2));
        assert_eq!(header.message_len(), 18);
    }

    #[test]
    fn round_trips_at_the_field_limits() {
        let longest_id = "x".repeat(MAX_ID_LEN);
        let most_peers: Vec<_> = (0..MAX_PEERS)
            .map(|i| SocketAddrV4::new(Ipv4Addr::from(i as u32 * 7919), i as u16))
            .collect();
        for kind in [Kind::Welcome, Kind::Redirect] {
            let message = Message::new(kind, &longest_id, most_peers.clone()).unwrap();
            let bytes = message.to_bytes();
            assert_eq!(bytes.len(), MAX_MESSAGE_LEN);
            assert_eq!(Message::parse(&bytes).unwrap(), message);
        }
    }

    #[test]
    fn every_truncated_prefix_is_an_error() {
        for (_, bytes) in examples() {
            for len in 0..bytes.len() {
                match Message::parse(&bytes[..len]) {
                    Err(ParseError::Truncated { needed, got }) => {
                        assert_eq!(got, len);
                        assert!(needed > len);
                    }
                    other => panic!("prefix of {len} bytes gave {other:?}"),
                }
            }
        }
    }

    #[test]
    fn wrong_version_is_an_error() {
        for version in 0..7u8 {
            let mut bytes = unhex(WELCOME_EMPTY);
            bytes[0] = (bytes[0] & 0x1F) | (version << 5);
            assert_eq!(Message::parse(&bytes), Err(ParseError::BadVersion(version)));
        }
    }

    #[test]
    fn unknown_types_are_errors() {
        for code in (0..=255u8).filter(|c| *c != 1 && *c != 2) {
            let word = put(7, field::VERSION) | put(u32::from(code), field::KIND);
            let bytes = word.to_be_bytes();
            assert_eq!(Message::parse(&bytes), Err(ParseError::UnknownKind(code)));
        }
    }

    #[test]
    fn bytes_after_a_complete_message_are_ignored() {
        for (message, bytes) in examples() {
            for tail in [&[0u8; 16][..], b"\n", b"\r\n", &[0xFF; 3]] {
                let padded = [bytes.as_slice(), tail].concat();
                assert_eq!(Message::parse(&padded).unwrap(), message);
            }
        }
    }

    #[test]
    fn build_refuses_what_the_header_cannot_say() {
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert_eq!(
            Message::new(Kind::Welcome, &long, vec![]),
            Err(BuildError::IdTooLong(256))
        );
        assert_eq!(
            Message::new(Kind::Welcome, "", vec![]),
            Err(BuildError::EmptyId)
        );
        let too_many = vec![addr(1); MAX_PEERS + 1];
        assert_eq!(
            Message::new(Kind::Redirect, "p", too_many),
            Err(BuildError::TooManyPeers(8192))
        );
    }

    #[test]
    fn build_errors_read_as_sentences() {
        assert_eq!(BuildError::EmptyId.to_string(), "the peer ID is empty");
        assert_eq!(
            BuildError::IdTooLong(300).to_string(),
            "the peer ID is 300 bytes; at most 255 fit"
        );
        assert_eq!(
            BuildError::TooManyPeers(9000).to_string(),
            "9000 peers listed; at most 8191 fit"
        );
    }

    #[test]
    fn an_empty_id_on_the_wire_is_tolerated() {
        let message = Message::parse(&[0xE0, 0x20, 0x00, 0x00]).unwrap();
        assert_eq!(message.sender_id(), "");
    }

    #[test]
    fn describe_decodes_then_shows_the_bytes() {
        assert_eq!(
            describe(&unhex(REDIRECT_TWO)),
            format!(
                "Redirect from 'p1' listing 2 peers: 127.0.0.1:40000, 127.0.0.1:40001; bytes: {REDIRECT_TWO}"
            )
        );
        assert_eq!(
            describe(&unhex(WELCOME_ONE)),
            format!("Welcome from 'peer1' listing 1 peer: 127.0.0.1:39670; bytes: {WELCOME_ONE}")
        );
        assert_eq!(
            describe(&unhex(WELCOME_EMPTY)),
            format!("Welcome from 'peer1' listing no peers; bytes: {WELCOME_EMPTY}")
        );
        assert_eq!(
            describe(&[0x20]),
            "not a message (message cut short: 1 of 4 bytes); bytes: 20"
        );
    }

    #[test]
    fn hex_matches_the_spec_notation() {
        assert_eq!(hex(&unhex(WELCOME_ONE)), WELCOME_ONE);
    }
}
