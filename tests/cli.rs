//! The command line (PROTOCOL 2) and the first line (PROTOCOL 7.1), through the real binary.

use cptp::contract::Kind;
use cptp::harness::{Scratch, join};
use std::process::{Command, Stdio};

/// The peer binary Cargo built for these tests.
const PEER: &str = env!("CARGO_BIN_EXE_peer");

fn run_to_end(args: &[&str]) -> (i32, String, String) {
    let scratch = Scratch::new(PEER);
    let out = bounded(
        Command::new(PEER)
            .args(args)
            .current_dir(scratch.folder("peer1-2"))
            .stdin(Stdio::null()),
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_prints_the_usage_and_succeeds() {
    for flag in ["-h", "--help"] {
        let (code, stdout, _) = run_to_end(&[flag]);
        assert_eq!(code, 0);
        assert!(
            stdout.starts_with("Usage: peer [-p <peerIP>:<port>]"),
            "{stdout}"
        );
        for option in ["--peer", "--max-peers", "--id", "--bind", "--help"] {
            assert!(stdout.contains(option), "{option} missing");
        }
    }
}

#[test]
fn invalid_input_exits_2_with_one_line_and_the_usage() {
    let cases: &[(&[&str], &str)] = &[
        (&["-p", "localhost"], "no ':PORT'"),
        (&["-p", "198.18.0.300:5"], "IPv4"),
        (&["-p", "[::1]:4000"], "IPv6"),
        (&["-p", "0.0.0.0:4000"], "0.0.0.0"),
        (&["-p", "127.0.0.1:0"], "port"),
        (&["-n", "0"], "1 to 8191"),
        (&["-n", "9000"], "1 to 8191"),
        (&["-i", ""], "1 to 255"),
        (&["-b", "nowhere"], "IPv4"),
        (&["--frobnicate"], "frobnicate"),
        (&["-p"], "p"),
    ];
    for (args, reason) in cases {
        let (code, stdout, stderr) = run_to_end(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with("peer: "), "{args:?}: {stderr}");
        assert!(first.contains(reason), "{args:?}: {first}");
        assert!(stderr.contains("Usage: peer"), "{args:?}: {stderr}");
    }
}

#[test]
fn the_first_line_names_the_address_and_the_folder_id() {
    let scratch = Scratch::new(PEER);
    let peer = scratch.start("peer7-3", &[]);
    assert_eq!(peer.id, "peer7");
    assert!(peer.addr.ip().is_loopback());
    assert_ne!(peer.addr.port(), 0);
    // The size 3 comes from the folder: three Welcomes, then a Redirect.
    let links: Vec<_> = (0..3).map(|_| join(peer.addr)).collect();
    assert!(links.iter().all(|j| j.message.kind == Kind::Welcome));
    assert_eq!(join(peer.addr).message.kind, Kind::Redirect);
}

#[test]
fn flags_override_the_folder() {
    let scratch = Scratch::new(PEER);
    let peer = scratch.start("peer7-3", &["-i", "alice", "-n", "1"]);
    assert_eq!(peer.id, "alice");
    let (_link, welcome, _) = join(peer.addr).into_parts();
    assert_eq!(welcome.sender_id(), "alice");
    assert_eq!(
        join(peer.addr).message.kind,
        Kind::Redirect,
        "-n 1 holds one"
    );
}

#[test]
fn a_folder_that_does_not_fit_warns_and_runs() {
    let scratch = Scratch::new(PEER);
    let peer = scratch.start("workspace", &[]);
    assert_eq!(peer.id, "workspace");
    peer.wait_for_stderr(&["WARN", "'workspace' is not ID-SIZE"]);
    let links: Vec<_> = (0..2).map(|_| join(peer.addr)).collect();
    assert!(links.iter().all(|j| j.message.kind == Kind::Welcome));
    assert_eq!(
        join(peer.addr).message.kind,
        Kind::Redirect,
        "default size 2"
    );
}

#[test]
fn binding_all_interfaces_shows_it_and_accepts_on_loopback() {
    let scratch = Scratch::new(PEER);
    let peer = scratch.start("peer1-2", &["-b", "0.0.0.0"]);
    // The line shows an address of this machine that others can use, not 0.0.0.0.
    let shown = *peer.addr.ip();
    assert!(!shown.is_unspecified(), "{}", peer.addr);
    assert!(
        std::net::UdpSocket::bind((shown, 0)).is_ok(),
        "{shown} is ours"
    );
    // Where this machine has a default route, it is the address that route leaves by.
    let route = peer::sockets::route_source(peer::sockets::PROBE_DESTINATION);
    if let Some(route) = route.filter(|r| !r.is_loopback()) {
        assert_eq!(shown, route);
    }
    let loopback = std::net::SocketAddrV4::new([127, 0, 0, 1].into(), peer.addr.port());
    let (_link, welcome, _) = join(loopback).into_parts();
    assert_eq!(welcome.kind, Kind::Welcome);
}

#[test]
fn debug_logging_shows_each_message_decoded_and_in_hex() {
    let scratch = Scratch::new(PEER);
    let debug = |name, args| scratch.command(name, args).env("RUST_LOG", "debug").run();
    let peer1 = debug("peer1-2", &[]);
    let (first, _, _) = join(peer1.addr).into_parts();
    let first = first.local_addr().unwrap();
    peer1.wait_for_stderr(&[
        "sent to",
        "Welcome from 'peer1' listing no peers; bytes: E0 20 00 05 70 65 65 72 31",
    ]);
    // The joining side decodes what it receives the same way.
    let target = peer1.addr.to_string();
    let peer2 = debug("peer2-2", &["-p", &target]);
    peer2.wait_for_stderr(&[
        &format!("received from {target}: Welcome from 'peer1' listing 1 peer: {first}"),
        "; bytes: E0 20 01 05 70 65 65 72 31 7F 00 00 01",
    ]);
}

/// Runs `command` to its end, which a command line that only prints comes to at once.
fn bounded(command: &mut Command) -> std::process::Output {
    cptp::harness::run_bounded(command, cptp::harness::PATIENCE).unwrap_or_else(|e| panic!("{e}"))
}
