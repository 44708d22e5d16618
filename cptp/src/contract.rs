//! The contract as the judge reads it: the bit layout of PROTOCOL 4 and the lines of
//! PROTOCOL 5, 6 and 7, written down again here, from docs/PROTOCOL.md alone.
//!
//! `cptp` shares no code with the peer it judges. A checker that decoded replies with the
//! peer's own `wire` module, or took the expected lines from the peer's own formatter,
//! would agree with the peer on every bug the two shared: a header packed one bit off
//! would pass the peer's own check. So this module is a second, independent reading of
//! the contract, in a different shape from the peer's (shifts rather than masks, no
//! builder), as h2spec shares no code with the servers it checks.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-----+---------------+-------------------------+---------------+
//! |  V  | Message type  |     Number of peers     | Sender ID len |
//! +-----+---------------+-------------------------+---------------+
//! then the sender ID (L bytes), then N entries of IPv4 address (4 bytes) and port (2 bytes)
//! ```

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

/// PROTOCOL 4.1: the version field is always 7.
pub const VERSION: u8 = 7;
/// PROTOCOL 4.1: the message types.
pub const WELCOME: u8 = 1;
pub const REDIRECT: u8 = 2;
/// Bytes of the header word, and of one peer entry (PROTOCOL 4.2).
pub const HEADER_BYTES: usize = 4;
pub const ENTRY_BYTES: usize = 6;
/// The widest values the fields can hold: an 8-bit ID length, a 13-bit count.
pub const MOST_ID_BYTES: usize = 255;
pub const MOST_PEERS: usize = 8191;

/// The first word of a message, every field as it was sent, sensible or not: a judge must
/// be able to say "version 0" and "type 56", not only "bad".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Bits 0-2.
    pub version: u8,
    /// Bits 3-10.
    pub kind: u8,
    /// Bits 11-23.
    pub count: u16,
    /// Bits 24-31.
    pub id_len: u8,
}

impl Header {
    /// Reads the fields out of the first four bytes, big-endian.
    pub fn read(bytes: [u8; 4]) -> Header {
        let word = u32::from_be_bytes(bytes);
        Header {
            version: (word >> 29) as u8,
            // Eight bits wide: the cast to u8 drops the version above it.
            kind: (word >> 21) as u8,
            count: ((word >> 8) & 0x1FFF) as u16,
            id_len: word as u8,
        }
    }

    /// The four bytes that carry these fields.
    pub fn bytes(&self) -> [u8; 4] {
        let word = (u32::from(self.version & 0b111) << 29)
            | (u32::from(self.kind) << 21)
            | (u32::from(self.count & 0x1FFF) << 8)
            | u32::from(self.id_len);
        word.to_be_bytes()
    }

    /// The bytes that follow the header: the ID and the entries.
    pub fn body_bytes(&self) -> usize {
        usize::from(self.id_len) + ENTRY_BYTES * usize::from(self.count)
    }

    /// The length of the whole message this header announces.
    pub fn message_bytes(&self) -> usize {
        HEADER_BYTES + self.body_bytes()
    }

    /// Whether a receiver may go on reading: version 7 and a known type (PROTOCOL 4.4).
    pub fn check(&self) -> Result<Kind, Problem> {
        if self.version != VERSION {
            return Err(Problem::Version(self.version));
        }
        match self.kind {
            WELCOME => Ok(Kind::Welcome),
            REDIRECT => Ok(Kind::Redirect),
            other => Err(Problem::Type(other)),
        }
    }
}

/// The two messages of cPTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Welcome,
    Redirect,
}

impl Kind {
    /// The number in the type field.
    pub fn code(self) -> u8 {
        match self {
            Kind::Welcome => WELCOME,
            Kind::Redirect => REDIRECT,
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

/// Why bytes are not a cPTP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Fewer bytes than the header, or than the header announced.
    Short { needed: usize, got: usize },
    /// The version field is not 7.
    Version(u8),
    /// The type field is neither 1 nor 2.
    Type(u8),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Short { needed, got } => {
                write!(f, "cut short: {got} of the {needed} bytes announced")
            }
            Problem::Version(v) => write!(f, "version {v} where the contract has 7"),
            Problem::Type(t) => {
                write!(
                    f,
                    "message type {t} where the contract has 1 (Welcome) or 2 (Redirect)"
                )
            }
        }
    }
}

impl std::error::Error for Problem {}

/// A whole message, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: Kind,
    /// The sender's ID as sent (PROTOCOL 4.2 says ASCII; a judge keeps what came).
    pub sender: Vec<u8>,
    pub peers: Vec<SocketAddrV4>,
}

impl Message {
    pub fn new(kind: Kind, sender: &str, peers: Vec<SocketAddrV4>) -> Message {
        Message {
            kind,
            sender: sender.as_bytes().to_vec(),
            peers,
        }
    }

    /// The sender ID for a report: the bytes as text, with anything not printable shown
    /// as an escape.
    pub fn sender_id(&self) -> String {
        self.sender.escape_ascii().to_string()
    }

    /// The exact bytes of this message (PROTOCOL 4.2: no delimiter, no padding). An ID or
    /// list longer than its field can say is cut to fit: the fakes of `cptp` never send
    /// one, and a test that wants a malformed message writes its bytes by hand.
    pub fn encode(&self) -> Vec<u8> {
        let sender = &self.sender[..self.sender.len().min(MOST_ID_BYTES)];
        let peers = &self.peers[..self.peers.len().min(MOST_PEERS)];
        let header = Header {
            version: VERSION,
            kind: self.kind.code(),
            count: peers.len() as u16,
            id_len: sender.len() as u8,
        };
        let mut bytes = Vec::with_capacity(header.message_bytes());
        bytes.extend_from_slice(&header.bytes());
        bytes.extend_from_slice(sender);
        for peer in peers {
            bytes.extend_from_slice(&peer.ip().octets());
            bytes.extend_from_slice(&peer.port().to_be_bytes());
        }
        bytes
    }

    /// Decodes the message at the start of `bytes`; bytes after it are not looked at
    /// (PROTOCOL 4.4). Returns the message and its length.
    pub fn decode(bytes: &[u8]) -> Result<(Message, usize), Problem> {
        let Some(first) = bytes.first_chunk::<4>() else {
            return Err(Problem::Short {
                needed: HEADER_BYTES,
                got: bytes.len(),
            });
        };
        let header = Header::read(*first);
        let kind = header.check()?;
        let length = header.message_bytes();
        if bytes.len() < length {
            return Err(Problem::Short {
                needed: length,
                got: bytes.len(),
            });
        }
        let id_end = HEADER_BYTES + usize::from(header.id_len);
        let peers = bytes[id_end..length]
            .chunks_exact(ENTRY_BYTES)
            .map(|entry| {
                let ip = Ipv4Addr::new(entry[0], entry[1], entry[2], entry[3]);
                SocketAddrV4::new(ip, u16::from_be_bytes([entry[4], entry[5]]))
            })
            .collect();
        let message = Message {
            kind,
            sender: bytes[HEADER_BYTES..id_end].to_vec(),
            peers,
        };
        Ok((message, length))
    }
}

/// The lines a peer prints, PROTOCOL 5, 6 and 7, each as the contract words it.
pub mod line {
    use std::net::SocketAddrV4;

    const ADDRESS_START: &str = "This peer address is ";
    const ADDRESS_MIDDLE: &str = " located at ";

    /// PROTOCOL 7.1, the first line.
    pub fn address(addr: SocketAddrV4, id: &str) -> String {
        format!("{ADDRESS_START}{addr}{ADDRESS_MIDDLE}{id}")
    }

    /// The address and ID of a line worded exactly as [`address`].
    pub fn parse_address(line: &str) -> Option<(SocketAddrV4, &str)> {
        let rest = line.strip_prefix(ADDRESS_START)?;
        let (addr, id) = rest.split_once(ADDRESS_MIDDLE)?;
        Some((addr.parse().ok()?, id))
    }

    /// PROTOCOL 5.1.
    pub fn connected_from(joiner: SocketAddrV4) -> String {
        format!("Connected from peer {joiner}")
    }

    /// PROTOCOL 5.2.
    pub fn table_full(joiner: SocketAddrV4) -> String {
        format!("Peer table full: {joiner} redirected")
    }

    /// PROTOCOL 5.4.
    pub fn left(peer: SocketAddrV4) -> String {
        format!("Peer {peer} left")
    }

    /// PROTOCOL 6.2, the first line up to the timer's value.
    pub fn connected_to(id: &str, port: u16) -> String {
        format!("Connected to peer {id}:{port} at timestamp: ")
    }

    /// PROTOCOL 6.2 and 6.3.
    pub fn ack(id: &str, port: u16) -> String {
        format!("Received ack from {id}:{port}")
    }

    /// PROTOCOL 6.2 and 6.3: printed only when the list is not empty.
    pub fn peered_with(peers: &[SocketAddrV4]) -> String {
        let listed: Vec<String> = peers.iter().map(|p| format!("[{p}]")).collect();
        format!("  which is peered with: {}", listed.join(", "))
    }

    /// PROTOCOL 6.3, between two blank lines.
    pub const DECLINED: &str =
        "The join has been declined; the auto-join process is performing ...";

    /// PROTOCOL 6.4.
    pub const GIVE_UP: &str = "No peer accepted the join; running standalone";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddrV4 {
        text.parse().unwrap()
    }

    /// The worked examples of PROTOCOL 4.3, byte for byte.
    #[test]
    fn the_worked_examples_encode_and_decode() {
        let examples = [
            (
                Message::new(Kind::Welcome, "peer1", vec![]),
                "E0 20 00 05 70 65 65 72 31",
            ),
            (
                Message::new(Kind::Welcome, "peer1", vec![addr("127.0.0.1:39670")]),
                "E0 20 01 05 70 65 65 72 31 7F 00 00 01 9A F6",
            ),
            (
                Message::new(
                    Kind::Redirect,
                    "p1",
                    vec![addr("127.0.0.1:40000"), addr("127.0.0.1:40001")],
                ),
                "E0 40 02 02 70 31 7F 00 00 01 9C 40 7F 00 00 01 9C 41",
            ),
        ];
        for (message, hex) in examples {
            let bytes = message.encode();
            assert_eq!(crate::text::hex(&bytes), hex);
            assert_eq!(Message::decode(&bytes), Ok((message, bytes.len())));
        }
    }

    #[test]
    fn each_field_sits_in_its_own_bits() {
        // 111 00000010 0000000000010 00000010 (PROTOCOL 4.3).
        let header = Header::read([0xE0, 0x40, 0x02, 0x02]);
        assert_eq!(
            header,
            Header {
                version: 7,
                kind: 2,
                count: 2,
                id_len: 2
            }
        );
        // The widest values of every field, and each field alone.
        let full = Header::read([0xFF; 4]);
        assert_eq!(
            (full.version, full.kind, full.count, full.id_len),
            (7, 255, 8191, 255)
        );
        assert_eq!(Header::read([0x1F, 0xE0, 0, 0]).kind, 255);
        assert_eq!(Header::read([0, 0x1F, 0xFF, 0]).count, 8191);
        for header in [full, Header::read([0x12, 0x34, 0x56, 0x78])] {
            assert_eq!(Header::read(header.bytes()), header);
        }
    }

    #[test]
    fn a_header_one_bit_off_is_refused_with_what_it_said() {
        // A Welcome with the version one bit lower (6), and with the type one bit off (3).
        assert_eq!(
            Message::decode(&[0xC0, 0x20, 0x00, 0x01, b'p']),
            Err(Problem::Version(6))
        );
        assert_eq!(
            Message::decode(&[0xE0, 0x60, 0x00, 0x01, b'p']),
            Err(Problem::Type(3))
        );
    }

    #[test]
    fn every_cut_is_short_and_trailing_bytes_are_left() {
        let bytes = Message::new(Kind::Welcome, "p", vec![addr("10.0.0.1:7")]).encode();
        for cut in 0..bytes.len() {
            assert!(
                matches!(Message::decode(&bytes[..cut]), Err(Problem::Short { .. })),
                "{cut}"
            );
        }
        let padded = [&bytes[..], &[0, 0, b'\n']].concat();
        assert_eq!(Message::decode(&padded).map(|(_, n)| n), Ok(bytes.len()));
    }

    #[test]
    fn the_lines_read_as_the_contract_words_them() {
        let a = addr("127.0.0.1:4000");
        assert_eq!(
            line::address(a, "peer1"),
            "This peer address is 127.0.0.1:4000 located at peer1"
        );
        assert_eq!(
            line::parse_address(&line::address(a, "p-1")),
            Some((a, "p-1"))
        );
        assert_eq!(
            line::parse_address("This peer address is :127.0.0.1:4000 located at p"),
            None
        );
        assert_eq!(
            line::connected_from(a),
            "Connected from peer 127.0.0.1:4000"
        );
        assert_eq!(
            line::table_full(a),
            "Peer table full: 127.0.0.1:4000 redirected"
        );
        assert_eq!(line::left(a), "Peer 127.0.0.1:4000 left");
        assert_eq!(
            line::connected_to("p", 9),
            "Connected to peer p:9 at timestamp: "
        );
        assert_eq!(line::ack("p", 9), "Received ack from p:9");
        assert_eq!(
            line::peered_with(&[a, a]),
            "  which is peered with: [127.0.0.1:4000], [127.0.0.1:4000]"
        );
    }
}
