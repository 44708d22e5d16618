//! Interoperation with a peer written the way the course's Node.js peers are
//! (`cptp/tests/fixtures/course-peer.js`): its own bit packing in JavaScript, joins from an
//! ephemeral port, and optionally a newline after every message.
//!
//! Needs `node`: where it is missing each test says so and is skipped, except under CI
//! (`CI` set), where that is a failure ([`cptp::harness::need_tool`]).

use cptp::contract::{Kind, Message};
use cptp::harness::{Process, Scratch, Start, join, local_addr, need_tool};

/// The peer binary Cargo built for these tests.
const PEER: &str = env!("CARGO_BIN_EXE_peer");

/// The Node.js peer, run by `node`.
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/cptp/tests/fixtures/course-peer.js"
);

/// Starts the Node.js peer in the folder `name` (ID-SIZE) of `scratch`; with `quirk`, it
/// sends a newline after every message.
fn start_node(scratch: &Scratch, name: &str, args: &[&str], quirk: bool) -> Process {
    let args = [&[SCRIPT], args].concat();
    let node = Start::new("node", &scratch.folder(name), &args);
    match quirk {
        true => node.env("QUIRK", "newline").run(),
        false => node.run(),
    }
}

#[test]
fn node_replies_are_byte_for_byte_ours() {
    if !need_tool("node") {
        return;
    }
    let scratch = Scratch::new(PEER);
    let node = start_node(&scratch, "n1-1", &[], false);
    let (first, _, raw) = join(node.addr).into_parts();
    assert_eq!(raw, Message::new(Kind::Welcome, "n1", vec![]).encode());
    let seen = local_addr(&first);
    let (_, _, raw) = join(node.addr).into_parts();
    let redirect = Message::new(Kind::Redirect, "n1", vec![seen]);
    assert_eq!(raw, redirect.encode());
}

#[test]
fn our_peer_joins_a_node_peer_from_its_listening_port() {
    if !need_tool("node") {
        return;
    }
    let scratch = Scratch::new(PEER);
    let mut node = start_node(&scratch, "n1-2", &[], true);
    let mut ours = scratch.start("peer2-2", &["-p", &node.addr.to_string()]);
    let line = ours.next_line();
    assert!(
        line.starts_with(&format!(
            "Connected to peer n1:{} at timestamp: ",
            node.addr.port()
        )),
        "{line}"
    );
    ours.expect_lines(&[&format!("Received ack from n1:{}", node.addr.port())]);
    // The Node peer records us under our listening address: what it hands out works.
    node.expect_lines(&[&format!("Connected from peer {}", ours.addr)]);
    assert!(ours.stderr().is_empty(), "{:?}", ours.stderr());
}

#[test]
fn a_node_peer_joins_ours() {
    if !need_tool("node") {
        return;
    }
    let scratch = Scratch::new(PEER);
    let mut ours = scratch.start("peer1-2", &[]);
    let mut node = start_node(&scratch, "n2-2", &["-p", &ours.addr.to_string()], false);
    node.expect_lines(&[
        &format!(
            "Connected to peer peer1:{} at timestamp: 1",
            ours.addr.port()
        ),
        &format!("Received ack from peer1:{}", ours.addr.port()),
    ]);
    let line = ours.next_line();
    assert!(line.starts_with("Connected from peer 127.0.0.1:"), "{line}");
}

#[test]
fn a_full_node_peer_redirects_and_ours_auto_joins() {
    if !need_tool("node") {
        return;
    }
    let scratch = Scratch::new(PEER);
    let mut node = start_node(&scratch, "n1-1", &[], true);
    let mut first = scratch.start("peer2-2", &["-p", &node.addr.to_string()]);
    first.wait_for("the join", |l| l.starts_with("Received ack from n1"));
    node.expect_lines(&[&format!("Connected from peer {}", first.addr)]);

    let mut second = scratch.start("peer3-2", &["-p", &node.addr.to_string()]);
    second.expect_redirect("n1", node.addr.port(), &[first.addr]);
    let line = second.next_line();
    assert!(
        line.starts_with(&format!("Connected to peer peer2:{}", first.addr.port())),
        "{line}"
    );
    first.wait_for("the second join", |l| {
        l == format!("Connected from peer {}", second.addr)
    });
}
