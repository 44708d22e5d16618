//! The library's own entry points: the auto-join's bounds (PROTOCOL 6.5) and stopping a running node.

use cptp::contract::{Kind, Message};
use cptp::harness::{Fake, PATIENCE, hold_open, jammed_listener, join};
use peer::joiner::{self, JoinLimits};
use peer::node::{Config, Node};
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
fn redirector(next: Vec<SocketAddrV4>, count: &Arc<AtomicUsize>) -> Fake {
    let bytes = Message::new(Kind::Redirect, "r", next).encode();
    let count = Arc::clone(count);
    Fake::serve(move |mut stream| {
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
    let silent: Vec<Fake> = (0..5).map(|_| Fake::serve(hold_open)).collect();
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

/// A fake that counts its connections and answers each with a Welcome.
fn welcomer(count: &Arc<AtomicUsize>) -> Fake {
    let bytes = Message::new(Kind::Welcome, "w", vec![]).encode();
    let count = Arc::clone(count);
    Fake::serve(move |mut stream| {
        count.fetch_add(1, Ordering::Relaxed);
        let _ = stream.write_all(&bytes);
        hold_open(stream);
    })
}

#[test]
fn auto_join_skips_a_peer_it_is_already_linked_with() {
    let linked_count = Arc::new(AtomicUsize::new(0));
    let linked = welcomer(&linked_count);
    let first = redirector(vec![linked.addr], &Arc::new(AtomicUsize::new(0)));
    let node = node(JoinLimits::default());
    node.shared().table.insert(linked.addr).unwrap();
    assert!(joiner::join(first.addr, node.shared(), &JoinLimits::default()).is_none());
    assert_eq!(linked_count.load(Ordering::Relaxed), 0, "joined twice");
}

#[test]
fn the_first_redirect_is_tried_in_the_order_listed() {
    // PROTOCOL 6.3: the first listed peer first; `peer` keeps the whole first list in
    // order (only later Redirects are shuffled). Each listed fake hangs up at once.
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let listed: Vec<Fake> = (0..5)
        .map(|i| {
            let order = Arc::clone(&order);
            Fake::serve(move |stream| {
                order.lock().unwrap().push(i);
                drop(stream);
            })
        })
        .collect();
    let first = redirector(
        listed.iter().map(|f| f.addr).collect(),
        &Arc::new(AtomicUsize::new(0)),
    );
    let node = node(JoinLimits::default());
    assert!(joiner::join(first.addr, node.shared(), &JoinLimits::default()).is_none());
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn a_node_stopped_mid_auto_join_tries_no_further_peer() {
    let node = node(JoinLimits::default());
    let second_count = Arc::new(AtomicUsize::new(0));
    let second = welcomer(&second_count);
    let stop = Arc::clone(&node.shared().stop);
    let bytes = Message::new(Kind::Redirect, "r", vec![second.addr]).encode();
    // The first peer stops the node before it answers, as Ctrl-C might.
    let first = Fake::serve(move |mut stream| {
        stop.store(true, Ordering::Relaxed);
        let _ = stream.write_all(&bytes);
        hold_open(stream);
    });
    assert!(joiner::join(first.addr, node.shared(), &JoinLimits::default()).is_none());
    assert_eq!(second_count.load(Ordering::Relaxed), 0, "searched on");
}

#[test]
#[cfg(target_os = "linux")]
fn a_connect_that_hangs_ends_with_the_whole_budget() {
    // A listener that never accepts, with its queue full: Linux drops further SYNs.
    let (target, _jam) = jammed_listener();
    let limits = JoinLimits {
        budget: Duration::from_secs(1),
        ..JoinLimits::default()
    };
    let node = node(limits.clone());
    let started = Instant::now();
    assert!(joiner::join(target, node.shared(), &limits).is_none());
    let took = started.elapsed();
    // The connect alone may take 3 s; the whole search has only 1 s. The upper bound
    // leaves room for a loaded machine and still tells the budget from the 3 s timeout.
    assert!(
        took >= Duration::from_millis(900),
        "gave up early: {took:?}"
    );
    assert!(
        took < Duration::from_millis(2800),
        "connect overran the budget: {took:?}"
    );
}

#[test]
fn two_nodes_in_one_process_print_to_their_own_outputs() {
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sinks = [Captured::default(), Captured::default()];
    let mut running = Vec::new();
    for sink in &sinks {
        let node = node(JoinLimits::default()).output_to(Box::new(sink.clone()));
        let (addr, stopper) = (node.addr(), node.stopper());
        let handle = thread::spawn(move || node.run().is_ok());
        running.push((addr, stopper, handle));
    }
    // Join the first node only; its link is closed before it stops.
    let (link, _, _) = join(running[0].0).into_parts();
    let me = link.local_addr().unwrap();
    drop(link);
    let deadline = Instant::now() + PATIENCE;
    let text = |sink: &Captured| String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    while !text(&sinks[0]).contains(" left") && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    for (_, stopper, handle) in running {
        stopper.stop();
        assert!(handle.join().unwrap());
    }
    let (first, second) = (text(&sinks[0]), text(&sinks[1]));
    let addr0 = running_addr(&first);
    assert_eq!(
        first,
        format!(
            "This peer address is {addr0} located at lib\nConnected from peer {me}\nPeer {me} left\n"
        )
    );
    assert!(second.starts_with("This peer address is "), "{second}");
    assert_eq!(second.lines().count(), 1, "{second}");
}

/// The address in the first line of `text`.
fn running_addr(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    peer::output::parse_address_line(first)
        .map(|(addr, _)| addr.to_string())
        .unwrap_or_default()
}

#[test]
fn a_running_node_stops_when_asked() {
    let node = node(JoinLimits::default()).output_to(Box::new(std::io::sink()));
    let (addr, stopper) = (node.addr(), node.stopper());
    let (done_tx, done_rx) = channel();
    thread::spawn(move || {
        let _ = done_tx.send(node.run().is_ok());
    });
    let (_link, welcome, _) = join(addr).into_parts();
    assert_eq!(welcome.kind, Kind::Welcome);
    stopper.stop();
    // The accept loop returns and joins the clock and the link thread (it notices within
    // a second).
    assert_eq!(done_rx.recv_timeout(PATIENCE), Ok(true));
}
