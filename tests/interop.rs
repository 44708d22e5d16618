//! Interoperation with a peer written the way the course's Node.js peers are
//! (`tests/interop/course-peer.js`): its own bit packing in JavaScript, joins from an
//! ephemeral port, and optionally a newline after every message.
//!
//! Needs `node`; where it is missing each test says so and passes without running.

mod common;

use common::{PeerProcess, Scratch, join};
use peer::wire::{Kind, Message};
use std::path::Path;
use std::process::{Command, Stdio};

fn node_available() -> bool {
    let found = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("node not found: interop test not run");
    }
    found
}

/// Starts the Node.js peer in the folder `name` (ID-SIZE) of `scratch`.
fn start_node(scratch: &Scratch, name: &str, args: &[&str], quirk: bool) -> PeerProcess {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/course-peer.js");
    let mut command = Command::new("node");
    command
        .arg(script)
        .args(args)
        .current_dir(scratch.folder(name))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if quirk {
        command.env("QUIRK", "newline");
    }
    PeerProcess::spawn(command)
}

#[test]
fn node_replies_are_byte_for_byte_ours() {
    if !node_available() {
        return;
    }
    let scratch = Scratch::new();
    let node = start_node(&scratch, "n1-1", &[], false);
    let (first, _, raw) = join(node.addr);
    assert_eq!(
        raw,
        Message::new(Kind::Welcome, "n1", vec![])
            .unwrap()
            .to_bytes()
    );
    let seen = match first.local_addr().unwrap() {
        std::net::SocketAddr::V4(v4) => v4,
        other => panic!("{other}"),
    };
    let (_, _, raw) = join(node.addr);
    let redirect = Message::new(Kind::Redirect, "n1", vec![seen]).unwrap();
    assert_eq!(raw, redirect.to_bytes());
}

#[test]
fn our_peer_joins_a_node_peer_from_its_listening_port() {
    if !node_available() {
        return;
    }
    let scratch = Scratch::new();
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
    if !node_available() {
        return;
    }
    let scratch = Scratch::new();
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
    if !node_available() {
        return;
    }
    let scratch = Scratch::new();
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
