//! Peers joining peers (PROTOCOL 6): the course's three-peer chain, handed-out addresses, auto-join.

use cptp::contract::{Kind, Message};
use cptp::harness::{Fake, Scratch, dead_address, join, listed};
use std::time::Instant;

/// The peer binary Cargo built for these tests.
const PEER: &str = env!("CARGO_BIN_EXE_peer");

/// Checks a `Connected to peer ID:PORT at timestamp: N` line; the timer started at 1..=999
/// and gains 100 a second.
fn assert_connected_line(line: &str, id: &str, port: u16, started: Instant) {
    let prefix = format!("Connected to peer {id}:{port} at timestamp: ");
    let stamp: u64 = line
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{line:?} does not start with {prefix:?}"))
        .parse()
        .expect("numeric timestamp");
    let most = 999 + 100 * (started.elapsed().as_secs() + 1);
    assert!(
        (1..=most).contains(&stamp),
        "timestamp {stamp} out of range"
    );
}

#[test]
fn three_peer_chain_redirects_and_auto_joins() {
    let scratch = Scratch::new(PEER);
    let started = Instant::now();
    let mut peer1 = scratch.start("peer1-2", &[]);
    let a1 = peer1.addr.to_string();
    let mut peer2 = scratch.start("peer2-1", &["-p", &a1]);
    let a2 = peer2.addr.to_string();
    let line = peer2.next_line();
    assert_connected_line(&line, "peer1", peer1.addr.port(), started);
    peer2.expect_lines(&[&format!("Received ack from peer1:{}", peer1.addr.port())]);
    peer1.expect_lines(&[&format!("Connected from peer {a2}")]);

    let mut peer3 = scratch.start("peer3-2", &["-p", &a2]);
    let a3 = peer3.addr.to_string();
    peer2.expect_lines(&[&format!("Peer table full: {a3} redirected")]);
    peer3.expect_redirect("peer2", peer2.addr.port(), &[peer1.addr]);
    let line = peer3.next_line();
    assert_connected_line(&line, "peer1", peer1.addr.port(), started);
    peer3.expect_lines(&[
        &format!("Received ack from peer1:{}", peer1.addr.port()),
        &format!("  which is peered with: [{a2}]"),
    ]);
    peer1.expect_lines(&[&format!("Connected from peer {a3}")]);
    assert_eq!(peer1.id, "peer1");
    assert_eq!(peer3.id, "peer3");

    // Final tables, read from the replies: peer1 and peer2 are full and redirect.
    assert_eq!(listed(peer1.addr), vec![peer2.addr, peer3.addr]);
    assert_eq!(listed(peer2.addr), vec![peer1.addr]);
    // peer3 has one free slot: its Welcome lists the table before the joiner.
    let (_link, welcome, _) = join(peer3.addr).into_parts();
    assert_eq!(welcome.kind, Kind::Welcome);
    assert_eq!(welcome.peers, &[peer1.addr]);
    assert_eq!(welcome.sender_id(), "peer3");
    for p in [&peer1, &peer2, &peer3] {
        assert!(p.stderr().is_empty(), "{:?}", p.stderr());
    }
}

#[test]
fn the_address_handed_out_for_a_peer_accepts_joins() {
    let scratch = Scratch::new(PEER);
    let peer1 = scratch.start("peer1-1", &[]);
    let mut peer2 = scratch.start("peer2-2", &["-p", &peer1.addr.to_string()]);
    peer2.wait_for("the join", |l| l.starts_with("Connected to peer peer1:"));
    // peer1 is full: its Redirect lists peer2 under the address peer1 saw.
    let (_, redirect, _) = join(peer1.addr).into_parts();
    assert_eq!(redirect.kind, Kind::Redirect);
    assert_eq!(
        redirect.peers,
        &[peer2.addr],
        "peer2 joined from its listening port"
    );
    let (_link, welcome, _) = join(redirect.peers[0]).into_parts();
    assert_eq!(welcome.kind, Kind::Welcome);
    assert_eq!(welcome.sender_id(), "peer2");
    assert_eq!(welcome.peers, &[peer1.addr]);
}

#[test]
fn auto_join_follows_two_levels_of_redirects_past_unreachable_peers() {
    let scratch = Scratch::new(PEER);
    let mut target = scratch.start("target-2", &[]);
    let unreachable = dead_address();
    let second = {
        let list = vec![target.addr, unreachable];
        Fake::replying(Message::new(Kind::Redirect, "second", list).encode())
    };
    let first = {
        let list = vec![unreachable, second.addr];
        Fake::replying(Message::new(Kind::Redirect, "first", list).encode())
    };
    let mut joiner = scratch.start("joiner-2", &["-p", &first.addr.to_string()]);
    joiner.expect_redirect("first", first.addr.port(), &[unreachable, second.addr]);
    joiner.expect_redirect("second", second.addr.port(), &[target.addr, unreachable]);
    let line = joiner.next_line();
    assert!(
        line.starts_with(&format!("Connected to peer target:{}", target.addr.port())),
        "{line}"
    );
    joiner.expect_lines(&[&format!("Received ack from target:{}", target.addr.port())]);
    target.expect_lines(&[&format!("Connected from peer {}", joiner.addr)]);
    // The unreachable peer was tried once, first (it was listed first), and reported.
    let reports: Vec<_> = joiner
        .stderr()
        .into_iter()
        .filter(|l| l.contains(&unreachable.to_string()))
        .collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].contains("cannot connect"), "{reports:?}");
}

#[test]
fn a_network_with_no_free_slot_leaves_the_joiner_standalone_and_serving() {
    let scratch = Scratch::new(PEER);
    let peer1 = scratch.start("peer1-1", &[]);
    let mut peer2 = scratch.start("peer2-1", &["-p", &peer1.addr.to_string()]);
    peer2.wait_for("the join", |l| l.starts_with("Received ack from peer1"));
    // peer2 redirects to peer1, peer1 back to peer2 (already tried): nobody accepts.
    let mut peer3 = scratch.start("peer3-1", &["-p", &peer2.addr.to_string()]);
    peer3.wait_for("the standalone line", |l| {
        l == "No peer accepted the join; running standalone"
    });
    let tried: Vec<_> = peer3
        .seen
        .iter()
        .filter(|l| l.starts_with("Received ack from"))
        .cloned()
        .collect();
    assert_eq!(tried.len(), 2, "each peer tried once: {tried:?}");
    let (_link, welcome, _) = join(peer3.addr).into_parts();
    assert_eq!(
        welcome.kind,
        Kind::Welcome,
        "a standalone peer still serves"
    );
}
