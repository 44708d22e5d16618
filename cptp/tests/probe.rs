//! `cptp probe HOST:PORT`: one join, the reply decoded and in hex.

use cptp::contract::{Kind, Message};
use cptp::harness::{Fake, PATIENCE, dead_address, run_bounded};
use std::process::{Command, Output};

fn probe(args: &[&str]) -> Output {
    run_bounded(
        Command::new(env!("CARGO_BIN_EXE_cptp"))
            .arg("probe")
            .args(args),
        PATIENCE,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_reply_is_shown_decoded_and_in_hex() {
    let listed = "127.0.0.1:39670".parse().unwrap();
    let fake = Fake::replying(Message::new(Kind::Welcome, "peer1", vec![listed]).encode());
    let out = probe(&[&fake.addr.to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with(&format!("Welcome from 'peer1' at {}\n", fake.addr)),
        "{stdout}"
    );
    assert!(
        stdout.contains("peers listed: 1\n  127.0.0.1:39670\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("bytes (15): E0 20 01 05 70 65 65 72 31 7F 00 00 01 9A F6"),
        "{stdout}"
    );
}

#[test]
fn no_peer_and_a_bad_reply_fail_with_the_reason() {
    let out = probe(&[&dead_address().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused"));
    let fake = Fake::replying(vec![0x07, 0x01, 0x00, 0x05]);
    let out = probe(&[&fake.addr.to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("version 0") && stderr.contains("07 01 00 05"),
        "{stderr}"
    );
}

#[test]
fn a_bad_command_line_is_a_usage_error() {
    for bad in [&[][..], &["127.0.0.1"], &["a:1", "b:2"], &["0.0.0.0:9"]] {
        let out = probe(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("cptp probe"),
            "{bad:?}"
        );
    }
    let help = probe(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage: cptp probe HOST:PORT"));
}
