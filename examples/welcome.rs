//! The wire format by hand: the worked examples of PROTOCOL 4.3, built, shown and read back.
//!
//! Each message is built with `peer::wire`, its bytes are printed in hex as PROTOCOL 4.3
//! writes them, the first 32-bit word is split into its four fields, and the bytes are
//! decoded back. Last, a message cut short shows what a receiver gets instead of a panic.
//!
//! Run: `cargo run --example welcome`

use peer::wire::{HEADER_LEN, Header, Kind, Message, hex};
use std::error::Error;
use std::net::{Ipv4Addr, SocketAddrV4};

fn main() -> Result<(), Box<dyn Error>> {
    let local = |port| SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let examples = [
        (Kind::Welcome, "peer1", vec![]),
        (Kind::Welcome, "peer1", vec![local(39670)]),
        (Kind::Redirect, "p1", vec![local(40000), local(40001)]),
    ];
    let mut last = Vec::new();
    for (kind, id, peers) in examples {
        // Building checks the limits (an ID of 1 to 255 bytes, at most 8191 peers), so
        // emitting the bytes can never truncate a field.
        let bytes = Message::new(kind, id, peers)?.to_bytes();
        println!("{kind} from {id}: {}", hex(&bytes));

        // The header is one big-endian word: from the most significant bit, 3 bits of
        // version, 8 of message type, 13 of number of peers and 8 of ID length.
        let word = u32::from_be_bytes(bytes[..HEADER_LEN].try_into()?);
        let (v, t) = (word >> 29, (word >> 21) & 0xFF);
        let (n, l) = ((word >> 8) & 0x1FFF, word & 0xFF);
        println!("  first word: {v:03b} {t:08b} {n:013b} {l:08b} = V {v}, type {t}, N {n}, L {l}");

        // A receiver reads the header first: it says how many bytes follow (PROTOCOL 4.4).
        let header = Header::parse(&bytes)?;
        println!("  so 4 + {l} + 6 x {n} = {} bytes", header.message_len());
        let message = Message::parse(&bytes)?;
        let (sender, peers) = (message.sender_id(), message.peers());
        println!(
            "  decoded: a {} from '{sender}' listing {peers:?}\n",
            message.kind()
        );
        last = bytes;
    }

    // A connection that closes one byte early gives an error to report, never a panic.
    if let Some((_, cut)) = last.split_last() {
        match Message::parse(cut) {
            Ok(message) => println!("cut short, yet decoded: {message:?}"),
            Err(e) => println!("the Redirect without its last byte: {e}"),
        }
    }
    Ok(())
}
