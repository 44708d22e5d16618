//! The joiner against misbehaving peers (PROTOCOL 4.5, 6.4): each is reported on stderr with the peer's
//! address and what went wrong, nothing panics, and the peer keeps serving.

use cptp::contract::{Kind, Message};
use cptp::harness::sockets::ipv4;
use cptp::harness::{
    Fake, PATIENCE, Process, Scratch, dead_address, hold_open, jammed_listener, join,
};
use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

/// The peer binary Cargo built for these tests.
const PEER: &str = env!("CARGO_BIN_EXE_peer");

const STANDALONE: &str = "No peer accepted the join; running standalone";

/// Starts a joiner against `fake`, waits for it to give up, and checks that it reported
/// `complaint` about the fake, did not panic, and still accepts joins.
fn joiner_reports(fake: &Fake, complaint: &str) -> Process {
    let scratch = Scratch::new(PEER);
    let mut joiner = scratch.start("joiner-2", &["-p", &fake.addr.to_string()]);
    joiner.expect_lines(&[STANDALONE]);
    // One log line, with the level and the module, naming the peer and what went wrong.
    let named = format!("[WARN  peer::joiner] join {}: ", fake.addr);
    let line = joiner.wait_for_stderr(&[&named, complaint]);
    assert!(line.starts_with(&named), "{line}");
    let stderr = joiner.stderr();
    let about: Vec<_> = stderr
        .iter()
        .filter(|l| l.contains(&fake.addr.to_string()))
        .collect();
    assert_eq!(
        about,
        [&line],
        "one line about the peer; stderr: {stderr:#?}"
    );
    let (_link, welcome, _) = join(joiner.addr).into_parts();
    assert_eq!(welcome.kind, Kind::Welcome, "still serving");
    assert!(joiner.is_running());
    assert!(
        !joiner.stderr().iter().any(|l| l.contains("panicked")),
        "{:?}",
        joiner.stderr()
    );
    joiner
}

#[test]
fn wrong_version_is_reported() {
    let fake = Fake::replying(vec![0x20, 0x20, 0x00, 0x02, b'p', b'1']);
    joiner_reports(&fake, "wrong protocol version 1");
}

#[test]
fn unknown_type_is_reported() {
    let fake = Fake::replying(vec![0xE0, 0x60, 0x00, 0x02, b'p', b'1']);
    joiner_reports(&fake, "unknown message type 3");
}

#[test]
fn truncated_message_is_reported() {
    let fake = Fake::serve(|mut stream| {
        // Announces one peer, sends half of it, then closes.
        let _ = stream.write_all(&[0xE0, 0x20, 0x01, 0x02, b'p', b'1', 127, 0]);
    });
    joiner_reports(&fake, "closed the link mid-message (8 of 12 bytes)");
}

#[test]
fn a_peer_that_closes_without_replying_is_reported() {
    let fake = Fake::serve(drop);
    joiner_reports(&fake, "closed the link without replying");
}

#[test]
fn silence_times_out_after_five_seconds() {
    let fake = Fake::serve(hold_open);
    let started = Instant::now();
    joiner_reports(&fake, "sent no reply within 5.0 s");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(5), "gave up early: {took:?}");
}

#[test]
fn a_valid_message_followed_by_junk_joins() {
    let welcome = Message::new(Kind::Welcome, "node7", vec![]);
    let bytes = [welcome.encode(), b"\n\0\0\0garbage".to_vec()].concat();
    let fake = Fake::replying(bytes);
    let scratch = Scratch::new(PEER);
    let mut joiner = scratch.start("joiner-2", &["-p", &fake.addr.to_string()]);
    let line = joiner.next_line();
    let prefix = format!(
        "Connected to peer node7:{} at timestamp: ",
        fake.addr.port()
    );
    assert!(line.starts_with(&prefix), "{line}");
    joiner.expect_lines(&[&format!("Received ack from node7:{}", fake.addr.port())]);
    // The fake is in the table: the joiner's next Welcome lists it.
    let (_link, next, _) = join(joiner.addr).into_parts();
    assert_eq!(next.peers, &[fake.addr]);
    assert!(joiner.stderr().is_empty(), "{:?}", joiner.stderr());
}

#[test]
fn an_unreachable_first_peer_is_reported() {
    let scratch = Scratch::new(PEER);
    let dead = dead_address();
    let mut joiner = scratch.start("joiner-2", &["-p", &dead.to_string()]);
    joiner.expect_lines(&[STANDALONE]);
    joiner.wait_for_stderr(&[&dead.to_string(), "cannot connect"]);
    let (_link, welcome, _) = join(joiner.addr).into_parts();
    assert_eq!(welcome.kind, Kind::Welcome);
}

#[test]
fn a_bad_peer_in_a_redirect_is_skipped() {
    let scratch = Scratch::new(PEER);
    let mut good = scratch.start("good-2", &[]);
    let bad = Fake::replying(vec![0xFF; 4]); // V = 7, type 255
    let list = vec![bad.addr, good.addr];
    let redirect = Message::new(Kind::Redirect, "r", list).encode();
    let first = Fake::replying(redirect);
    let mut joiner = scratch.start("joiner-2", &["-p", &first.addr.to_string()]);
    joiner.wait_for("the join", |l| {
        l.starts_with(&format!("Connected to peer good:{}", good.addr.port()))
    });
    joiner.wait_for_stderr(&[&bad.addr.to_string(), "unknown message type 255"]);
    good.expect_lines(&[&format!("Connected from peer {}", joiner.addr)]);
}

#[test]
fn garbage_sent_to_the_server_does_not_stop_it() {
    let scratch = Scratch::new(PEER);
    let mut peer = scratch.start("peer1-1", &[]);
    // A client that sends junk and resets, many times, while the table fills and empties.
    for _ in 0..20 {
        let mut s = std::net::TcpStream::connect(peer.addr).unwrap();
        let _ = s.write_all(&[0xE0; 300]);
        drop(s);
    }
    thread::sleep(Duration::from_millis(50));
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_link, reply, _) = join(peer.addr).into_parts();
        if reply.kind == Kind::Welcome || Instant::now() > deadline {
            assert_eq!(reply.kind, Kind::Welcome, "slot never freed");
            break;
        }
    }
    assert!(peer.is_running());
    peer.kill();
    assert!(!peer.stderr().iter().any(|l| l.contains("panicked")));
}

#[test]
fn a_welcome_after_the_table_filled_up_closes_that_link() {
    use std::sync::mpsc::channel;
    use std::sync::{Arc, Mutex};
    let (arrived_tx, arrived_rx) = channel();
    let (go_tx, go_rx) = channel::<()>();
    let (closed_tx, closed_rx) = channel();
    let go_rx = Arc::new(Mutex::new(go_rx));
    let welcome = Message::new(Kind::Welcome, "slow", vec![]).encode();
    let fake = Fake::serve(move |mut stream| {
        let _ = arrived_tx.send(());
        // Hold the Welcome back until the joiner's own table is full.
        let _ = go_rx.lock().unwrap().recv_timeout(PATIENCE);
        let _ = stream.write_all(&welcome);
        hold_open(stream);
        let _ = closed_tx.send(());
    });
    let scratch = Scratch::new(PEER);
    let mut joiner = scratch.start("joiner-1", &["-p", &fake.addr.to_string()]);
    arrived_rx
        .recv_timeout(PATIENCE)
        .expect("the joiner connects");
    let (_link, welcome, _) = join(joiner.addr).into_parts();
    assert_eq!(welcome.kind, Kind::Welcome, "the table's one slot is taken");
    let line = joiner.next_line();
    assert!(line.starts_with("Connected from peer"), "{line}");
    go_tx.send(()).unwrap();
    closed_rx
        .recv_timeout(PATIENCE)
        .expect("the joiner closes the link it has no room for");
    joiner.wait_for_stderr(&["slow", &fake.addr.to_string(), "table filled up"]);
    joiner.expect_silence(Duration::from_millis(300));
}

#[test]
fn a_joiner_never_tries_itself() {
    let scratch = Scratch::new(PEER);
    let mut good = scratch.start("good-2", &[]);
    let good_addr = good.addr;
    // The joiner connects from its listening port, so the fake learns the joiner's own
    // address from the connection, and lists it first.
    let fake = Fake::serve(move |mut stream| {
        let me = stream.peer_addr().ok().and_then(ipv4).expect("IPv4");
        let redirect = Message::new(Kind::Redirect, "mirror", vec![me, good_addr]);
        let _ = stream.write_all(&redirect.encode());
        hold_open(stream);
    });
    let mut joiner = scratch.start("joiner-2", &["-p", &fake.addr.to_string()]);
    let own = joiner.addr;
    joiner.expect_redirect("mirror", fake.addr.port(), &[own, good_addr]);
    let line = joiner.next_line();
    assert!(line.starts_with("Connected to peer good:"), "{line}");
    good.expect_lines(&[&format!("Connected from peer {}", joiner.addr)]);
    let me = joiner.addr.to_string();
    assert!(
        !joiner.stderr().iter().any(|l| l.contains(&me)),
        "{:?}",
        joiner.stderr()
    );
}

#[test]
#[cfg(target_os = "linux")]
fn a_connect_that_hangs_gives_up_after_three_seconds() {
    // A listener that never accepts, with its tiny queue filled: Linux drops further SYNs,
    // so a connect to it neither succeeds nor is refused.
    let (addr, _jam) = jammed_listener();
    let scratch = Scratch::new(PEER);
    let started = Instant::now();
    let mut joiner = scratch.start("joiner-2", &["-p", &addr.to_string()]);
    joiner.expect_lines(&[STANDALONE]);
    let took = started.elapsed();
    joiner.wait_for_stderr(&[&addr.to_string(), "cannot connect"]);
    assert!(
        took >= Duration::from_millis(2900),
        "gave up early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn a_redirect_to_another_machine_is_skipped_with_bind_advice() {
    // PROTOCOL 6.6: a peer on 127.0.0.1 cannot join another machine. A benchmarking-range
    // address is never this machine's, and the advice comes before any packet is sent.
    let scratch = Scratch::new(PEER);
    let mut good = scratch.start("good-2", &[]);
    let elsewhere: std::net::SocketAddrV4 = "198.18.0.9:4000".parse().unwrap();
    let redirect = Message::new(Kind::Redirect, "r", vec![elsewhere, good.addr]);
    let first = Fake::replying(redirect.encode());
    let mut joiner = scratch.start("joiner-2", &["-p", &first.addr.to_string()]);
    joiner.wait_for("the join", |l| l.starts_with("Connected to peer good:"));
    let advice = joiner.wait_for_stderr(&[&elsewhere.to_string(), "another machine"]);
    assert!(advice.contains("start it with -b "), "{advice}");
    good.expect_lines(&[&format!("Connected from peer {}", joiner.addr)]);
}
