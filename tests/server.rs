//! Being joined (PROTOCOL 5): exact reply bytes, concurrent joins, and links that close.

use cptp::contract::{Kind, Message};
use cptp::harness::{PATIENCE, Scratch, join, local_addr};
use std::io::Write;
use std::net::SocketAddrV4;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// The peer binary Cargo built for these tests.
const PEER: &str = env!("CARGO_BIN_EXE_peer");

fn entry(addr: SocketAddrV4) -> Vec<u8> {
    [&addr.ip().octets()[..], &addr.port().to_be_bytes()].concat()
}

#[test]
fn welcome_and_redirect_bytes_are_exact() {
    let scratch = Scratch::new(PEER);
    let mut peer = scratch.start("peer1-2", &[]);
    let id = b"peer1";

    let (first, _, raw) = join(peer.addr).into_parts();
    assert_eq!(raw, [&[0xE0, 0x20, 0x00, 0x05][..], id].concat());
    let (second, _, raw) = join(peer.addr).into_parts();
    let expected = [
        &[0xE0, 0x20, 0x01, 0x05][..],
        id,
        &entry(local_addr(&first)),
    ]
    .concat();
    assert_eq!(raw, expected, "Welcome lists the table before the joiner");

    let (third, _, raw) = join(peer.addr).into_parts();
    let expected = [
        &[0xE0, 0x40, 0x02, 0x05][..],
        id,
        &entry(local_addr(&first)),
        &entry(local_addr(&second)),
    ]
    .concat();
    assert_eq!(raw, expected, "Redirect lists the whole table");
    // The redirected connection is closed after exactly the message.
    third.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut &third, &mut rest).unwrap();
    assert!(rest.is_empty(), "bytes after the Redirect: {rest:?}");

    peer.expect_lines(&[
        &format!("Connected from peer {}", local_addr(&first)),
        &format!("Connected from peer {}", local_addr(&second)),
        &format!("Peer table full: {} redirected", local_addr(&third)),
    ]);
}

#[test]
fn thirty_two_joins_at_once_get_two_welcomes_and_thirty_redirects() {
    let scratch = Scratch::new(PEER);
    let mut peer = scratch.start("peer1-2", &[]);
    let start = Arc::new(Barrier::new(32));
    let joins: Vec<_> = (0..32)
        .map(|_| {
            let start = Arc::clone(&start);
            let addr = peer.addr;
            thread::spawn(move || {
                start.wait();
                join(addr).into_parts()
            })
        })
        .collect();
    let replies: Vec<_> = joins.into_iter().map(|j| j.join().unwrap()).collect();
    let count = |kind| replies.iter().filter(|(_, m, _)| m.kind == kind).count();
    assert_eq!(count(Kind::Welcome), 2);
    assert_eq!(count(Kind::Redirect), 30);
    let welcomed: Vec<_> = replies
        .iter()
        .filter(|(_, m, _)| m.kind == Kind::Welcome)
        .map(|(s, _, _)| local_addr(s))
        .collect();
    for (_, message, _) in replies.iter().filter(|(_, m, _)| m.kind == Kind::Redirect) {
        let mut listed = message.peers.to_vec();
        listed.sort();
        let mut expected = welcomed.clone();
        expected.sort();
        assert_eq!(
            listed, expected,
            "every Redirect lists the two welcomed peers"
        );
    }
    let lines: Vec<String> = (0..32).map(|_| peer.next_line()).collect();
    let connected = lines
        .iter()
        .filter(|l| l.starts_with("Connected from peer"))
        .count();
    let full = lines
        .iter()
        .filter(|l| l.starts_with("Peer table full: "))
        .count();
    assert_eq!((connected, full), (2, 30), "{lines:#?}");
}

#[test]
fn a_killed_peer_frees_its_slot() {
    let scratch = Scratch::new(PEER);
    let mut peer1 = scratch.start("peer1-1", &[]);
    let mut peer2 = scratch.start("peer2-1", &["-p", &peer1.addr.to_string()]);
    peer1.expect_lines(&[&format!("Connected from peer {}", peer2.addr)]);
    peer2.kill();
    let gone = Instant::now();
    peer1.expect_lines(&[&format!("Peer {} left", peer2.addr)]);
    assert!(gone.elapsed() < Duration::from_secs(1), "removed at once");
    let (_link, welcome, _) = join(peer1.addr).into_parts();
    assert_eq!(welcome.kind, Kind::Welcome);
    assert!(welcome.peers.is_empty(), "the departed peer is not listed");
}

#[test]
fn the_joining_side_also_drops_a_link_that_closes() {
    let scratch = Scratch::new(PEER);
    let mut peer1 = scratch.start("peer1-1", &[]);
    let mut peer2 = scratch.start("peer2-1", &["-p", &peer1.addr.to_string()]);
    peer2.wait_for("the join", |l| l.starts_with("Received ack from peer1"));
    peer1.kill();
    peer2.expect_lines(&[&format!("Peer {} left", peer1.addr)]);
    let (_link, welcome, _) = join(peer2.addr).into_parts();
    assert_eq!(welcome.kind, Kind::Welcome);
    assert!(welcome.peers.is_empty());
}

#[test]
fn a_link_that_sends_bytes_stays_a_link() {
    let scratch = Scratch::new(PEER);
    let mut peer = scratch.start("peer1-1", &[]);
    let (mut link, _, _) = join(peer.addr).into_parts();
    let me = local_addr(&link);
    peer.expect_lines(&[&format!("Connected from peer {me}")]);
    link.write_all(b"hello, anyone there?\n").unwrap();
    let (_, redirect, _) = join(peer.addr).into_parts();
    assert_eq!(redirect.peers, &[me], "still listed after sending junk");
    drop(link);
    peer.wait_for("the departure", |l| l == format!("Peer {me} left"));
}

#[test]
fn welcome_order_is_table_before_the_joiner() {
    let scratch = Scratch::new(PEER);
    let peer = scratch.start("peer1-3", &[]);
    let (a, _, _) = join(peer.addr).into_parts();
    let (b, _, _) = join(peer.addr).into_parts();
    let (_c, third, _) = join(peer.addr).into_parts();
    let expected = Message::new(Kind::Welcome, "peer1", vec![local_addr(&a), local_addr(&b)]);
    assert_eq!(third, expected);
}
