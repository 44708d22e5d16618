//! The library's own entry points: the auto-join's bounds and stopping a running node.

use peer::joiner::{self, JoinLimits};
use peer::node::{Config, Node};
use peer::wire::{Kind, Message};
use peer_tools::{FakePeer, PATIENCE, hold_open, join};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::channel;
use std::thread;
use std::time::{Duration, Instant};

fn node(limits: JoinLimits) -> Node {
    let config = Config {
        join: None,
        id: "lib".into(),
        table_size: 2,
        bind: Ipv4Addr::LOCALHOST,
    };
    Node::bind(&config, limits).expect("bind")
}

/// A fake that counts its connections and redirects each to `next`.
fn redirector(next: Vec<SocketAddrV4>, count: &Arc<AtomicUsize>) -> FakePeer {
    let bytes = Message::new(Kind::Redirect, "r", next).unwrap().to_bytes();
    let count = Arc::clone(count);
    FakePeer::start(1, move |mut stream| {
        count.fetch_add(1, Ordering::Relaxed);
        let _ = stream.write_all(&bytes);
        hold_open(stream);
    })
}

#[test]
fn auto_join_stops_after_its_attempt_limit() {
    let count = Arc::new(AtomicUsize::new(0));
    // A chain of ten peers, each redirecting to the next.
    let mut next = Vec::new();
    let mut fakes = Vec::new();
    for _ in 0..10 {
        let fake = redirector(next, &count);
        next = vec![fake.addr];
        fakes.push(fake);
    }
    let limits = JoinLimits {
        max_attempts: 3,
        ..JoinLimits::default()
    };
    let node = node(limits.clone());
    assert!(joiner::join(next[0], node.shared(), &limits).is_none());
    assert_eq!(count.load(Ordering::Relaxed), 3);
}

#[test]
fn auto_join_stops_at_its_time_budget() {
    let silent: Vec<FakePeer> = (0..5).map(|_| FakePeer::start(1, hold_open)).collect();
    let first = {
        let count = Arc::new(AtomicUsize::new(0));
        redirector(silent.iter().map(|f| f.addr).collect(), &count)
    };
    let limits = JoinLimits {
        budget: Duration::from_secs(1),
        ..JoinLimits::default()
    };
    let node = node(limits.clone());
    let started = Instant::now();
    assert!(joiner::join(first.addr, node.shared(), &limits).is_none());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "gave up early: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "budget overrun: {took:?}");
}

#[test]
fn a_running_node_stops_when_asked() {
    let node = node(JoinLimits::default());
    let (addr, stopper) = (node.addr(), node.stopper());
    let (done_tx, done_rx) = channel();
    thread::spawn(move || {
        let _ = done_tx.send(node.run().is_ok());
    });
    let (_link, welcome, _) = join(addr);
    assert_eq!(welcome.kind(), Kind::Welcome);
    stopper.stop();
    // The accept loop returns and joins the clock and the link thread (it notices within
    // a second).
    assert_eq!(done_rx.recv_timeout(PATIENCE), Ok(true));
}
