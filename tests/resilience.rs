//! Fault tests (PROTOCOL 8.2): floods, descriptor exhaustion, churn, and peers that reply slowly, lie
//! about their length or reset. Loopback only; every loop is bounded in count and time.

use cptp::contract::{Kind, Message};
use cptp::harness::client::read_message;
use cptp::harness::{
    Capture, Fake, PATIENCE, Process, Scratch, hold_open, join, local_addr, need_tool, procfs,
    reset,
};
use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::net::{SocketAddrV4, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The peer binary Cargo built for these tests.
const PEER: &str = env!("CARGO_BIN_EXE_peer");

/// Samples the thread count of `pid` until `stop`; returns the largest seen.
fn watch_threads(pid: u32, stop: Arc<AtomicBool>) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let mut most = 0;
        let deadline = Instant::now() + PATIENCE * 6;
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            most = most.max(procfs::live_threads(pid).unwrap_or(0));
            thread::sleep(Duration::from_millis(5));
        }
        most
    })
}

#[test]
#[cfg(target_os = "linux")]
fn a_connection_flood_against_a_full_table_is_answered_without_threads() {
    const WORKERS: usize = 4;
    const PER_WORKER: usize = 750;
    const HELD_PER_WORKER: usize = 100;
    let scratch = Scratch::new(PEER);
    let mut hub = scratch.start("hub-2", &[]);
    let (link1, _, _) = join(hub.addr).into_parts();
    let (_link2, _, _) = join(hub.addr).into_parts();
    let members = vec![local_addr(&link1), local_addr(&_link2)];

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = watch_threads(hub.pid(), Arc::clone(&stop));
    let answered = Arc::new(AtomicUsize::new(0));
    let flood: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (addr, answered, members) = (hub.addr, Arc::clone(&answered), members.clone());
            thread::spawn(move || {
                let mut held = VecDeque::new();
                let deadline = Instant::now() + PATIENCE * 4;
                for i in 0..PER_WORKER {
                    if Instant::now() > deadline {
                        panic!("worker {w} ran out of time at {i}");
                    }
                    let Ok(stream) = TcpStream::connect(addr) else {
                        continue;
                    };
                    match i % 3 {
                        // Read the whole reply: it must be a Redirect listing the table.
                        0 => {
                            let (reply, _) = read_message(&stream, PATIENCE)
                                .expect("a flooded peer still answers");
                            assert_eq!(reply.kind, Kind::Redirect);
                            assert_eq!(reply.peers, &members[..]);
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        // Never read; keep a bounded number open.
                        1 => {
                            held.push_back(stream);
                            if held.len() > HELD_PER_WORKER {
                                held.pop_front();
                            }
                        }
                        // Reset at once.
                        _ => reset(stream),
                    }
                }
            })
        })
        .collect();

    // Well-behaved joins during the flood get a whole, valid reply.
    for _ in 0..5 {
        let (_, reply, _) = join(hub.addr).into_parts();
        assert_eq!(reply.kind, Kind::Redirect);
        assert_eq!(reply.peers, &members[..]);
    }
    for worker in flood {
        worker.join().expect("flood worker");
    }
    stop.store(true, Ordering::Relaxed);
    let most_threads = sampler.join().unwrap();
    assert_eq!(answered.load(Ordering::Relaxed), WORKERS * PER_WORKER / 3);
    // main + clock + output + one per link: a Redirect never holds a thread.
    assert!(most_threads >= 3, "the thread count was never sampled");
    assert!(
        most_threads <= 3 + 2,
        "{most_threads} threads during the flood"
    );
    assert!(hub.is_running());

    // After the flood: free a slot, and a real peer joins with a Welcome.
    drop(link1);
    hub.wait_for("the departure", |l| {
        l == format!("Peer {} left", members[0])
    });
    let mut newcomer = scratch.start("newcomer-1", &["-p", &hub.addr.to_string()]);
    newcomer.wait_for("the welcome", |l| l.starts_with("Connected to peer hub:"));
    assert!(!hub.stderr().iter().any(|l| l.contains("panicked")));
}

#[test]
#[cfg(target_os = "linux")]
fn running_out_of_descriptors_pauses_accepting_and_resumes() {
    if !need_tool("prlimit") {
        return;
    }
    const JOINS: usize = 100;
    let scratch = Scratch::new(PEER);
    let mut hub = scratch
        .command("hub-200", &[])
        .under(&["prlimit", "--nofile=64:64", "--"])
        .run();

    // More links than descriptors: the kernel queues the rest in the backlog.
    let links: Vec<TcpStream> = (0..JOINS)
        .map(|_| TcpStream::connect(hub.addr).expect("connect"))
        .collect();
    let mut welcomed = Vec::new();
    let mut waiting = Vec::new();
    for link in links {
        // Once one join waits, the rest queue behind it: no need to wait long for each.
        let wait = match (welcomed.len(), waiting.len()) {
            (0..40, _) => PATIENCE,
            (_, 0) => Duration::from_millis(500),
            _ => Duration::from_millis(20),
        };
        match read_message(&link, wait) {
            Ok((reply, _)) => {
                assert_eq!(reply.kind, Kind::Welcome);
                welcomed.push(link);
            }
            Err(_) => waiting.push(link),
        }
    }
    assert!(welcomed.len() >= 40, "only {} welcomed", welcomed.len());
    assert!(
        !waiting.is_empty(),
        "the descriptor limit was never reached"
    );
    hub.wait_for_stderr(&["cannot accept joins"]);

    // Free descriptors: the peer takes the waiting joins as soon as it can.
    let freed = welcomed.len().min(waiting.len() + 5);
    welcomed.drain(..freed);
    for link in &waiting {
        let (reply, _) = read_message(link, PATIENCE)
            .expect("a waiting join is answered once descriptors are free");
        assert_eq!(reply.kind, Kind::Welcome);
    }
    hub.wait_for_stderr(&["accepting joins again"]);
    let warnings = hub
        .stderr()
        .iter()
        .filter(|l| l.contains("cannot accept joins"))
        .count();
    assert!(warnings <= 3, "{warnings} warnings: not once per burst");
    assert!(hub.is_running());
}

#[test]
fn churn_keeps_the_table_true() {
    const SIZE: usize = 3;
    const ROUNDS: usize = 8;
    let scratch = Scratch::new(PEER);
    let mut hub = scratch.start("hub-3", &[]);
    let hub_addr = hub.addr.to_string();
    let mut live: Vec<Process> = Vec::new();
    let mut table: HashSet<SocketAddrV4> = HashSet::new();

    // Applies one line of the hub's output to the model of its table.
    let apply = |table: &mut HashSet<SocketAddrV4>, line: &str| {
        if let Some(addr) = line.strip_prefix("Connected from peer ") {
            assert!(table.insert(addr.parse().unwrap()), "{line}: listed twice");
        } else if let Some(addr) = line
            .strip_prefix("Peer ")
            .and_then(|l| l.strip_suffix(" left"))
        {
            assert!(
                table.remove(&addr.parse().unwrap()),
                "{line}: was not listed"
            );
        }
        assert!(table.len() <= SIZE, "the table exceeds its size");
    };

    for round in 0..SIZE + ROUNDS {
        if live.len() == SIZE {
            // Full: a probe is redirected with exactly the live peers.
            let (_, reply, _) = join(hub.addr).into_parts();
            assert_eq!(reply.kind, Kind::Redirect);
            let listed: HashSet<_> = reply.peers.iter().copied().collect();
            assert_eq!(listed, table, "round {round}");
            let line = hub.next_line();
            assert!(line.starts_with("Peer table full"), "{line}");

            let mut victim = live.remove(round % SIZE);
            victim.kill();
            let killed = Instant::now();
            let line = hub.next_line();
            assert_eq!(line, format!("Peer {} left", victim.addr));
            assert!(
                killed.elapsed() < Duration::from_secs(1),
                "kept a departed peer"
            );
            apply(&mut table, &line);

            // A Welcome lists exactly the live peers too.
            let (probe, reply, _) = join(hub.addr).into_parts();
            let listed: HashSet<_> = reply.peers.iter().copied().collect();
            assert_eq!((reply.kind, &listed), (Kind::Welcome, &table));
            let line = hub.next_line();
            apply(&mut table, &line);
            drop(probe);
            let line = hub.next_line();
            apply(&mut table, &line);
        }
        let name = format!("churn{round}-1");
        let joiner = scratch.start(&name, &["-p", &hub_addr]);
        let line = hub.next_line();
        assert_eq!(line, format!("Connected from peer {}", joiner.addr));
        apply(&mut table, &line);
        live.push(joiner);
    }
    assert_eq!(table.len(), SIZE);
}

/// Runs a joiner against a Redirect that lists `bad` first and a good peer second; checks
/// that `bad` is reported with `complaint` within the read timeout and the join moves on.
fn the_join_moves_past(bad: &Fake, complaint: &str) {
    let scratch = Scratch::new(PEER);
    let mut good = scratch.start("good-2", &[]);
    let redirect = Message::new(Kind::Redirect, "first", vec![bad.addr, good.addr]);
    let first = Fake::replying(redirect.encode());
    let started = Instant::now();
    let mut joiner = scratch.start("joiner-2", &["-p", &first.addr.to_string()]);
    joiner.wait_for("the join", |l| l.starts_with("Connected to peer good:"));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(7), "took {took:?}");
    joiner.wait_for_stderr(&[&bad.addr.to_string(), complaint]);
    good.expect_lines(&[&format!("Connected from peer {}", joiner.addr)]);
}

#[test]
fn a_peer_that_never_replies_times_out() {
    let bad = Fake::serve(hold_open);
    the_join_moves_past(&bad, "sent no reply within 5.0 s");
}

#[test]
fn a_peer_that_trickles_a_byte_per_100ms_times_out() {
    let peers = vec!["127.0.0.1:1".parse().unwrap(); 10];
    let bytes = Message::new(Kind::Redirect, "slow", peers).encode();
    let bad = Fake::serve(move |mut stream| {
        for byte in &bytes {
            if stream.write_all(&[*byte]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    the_join_moves_past(&bad, "sent only");
}

/// A Redirect header announcing 8191 peers, the ID "x", and then only 100 entries:
/// 605 of the 49,151 bytes announced.
fn lying_redirect() -> Vec<u8> {
    [
        &[0xE0, 0x5F, 0xFF, 0x01, b'x'][..],
        &[127, 0, 0, 1, 0, 80].repeat(100),
    ]
    .concat()
}

#[test]
fn a_peer_that_announces_8191_peers_and_sends_fewer_times_out() {
    let bad = Fake::serve(|mut stream| {
        let _ = stream.write_all(&lying_redirect());
        hold_open(stream);
    });
    the_join_moves_past(&bad, "sent only 605 bytes of its reply within 5.0 s");
}

#[test]
fn a_peer_that_announces_8191_peers_and_closes_is_cut_short() {
    let bad = Fake::serve(|mut stream| {
        let _ = stream.write_all(&lying_redirect());
    });
    the_join_moves_past(&bad, "closed the link mid-message (605 of 49151 bytes)");
}

#[test]
fn a_peer_that_resets_mid_message_is_reported() {
    let bad = Fake::serve(|mut stream| {
        let _ = stream.write_all(&[0xE0, 0x40, 0x02, 0x02, b'p']);
        stream.flush().unwrap();
        thread::sleep(Duration::from_millis(100));
        reset(stream);
    });
    the_join_moves_past(&bad, "link error");
}

#[test]
#[cfg(target_os = "linux")]
fn link_threads_never_outnumber_the_table_under_churn() {
    let scratch = Scratch::new(PEER);
    let hub = scratch.start("hub-2", &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = watch_threads(hub.pid(), Arc::clone(&stop));
    // Two clients open and close links as fast as they can: slots free up while the
    // threads that held them are still finishing.
    let churners: Vec<_> = (0..2)
        .map(|_| {
            let addr = hub.addr;
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(3);
                let mut rounds = 0;
                while rounds < 5000 && Instant::now() < deadline {
                    let (link, _, _) = join(addr).into_parts();
                    drop(link);
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let rounds: usize = churners.into_iter().map(|c| c.join().unwrap()).sum();
    stop.store(true, Ordering::Relaxed);
    let most = sampler.join().unwrap();
    assert!(most >= 3, "never sampled");
    assert!(
        most <= 3 + 2,
        "{most} threads: more link threads than table slots"
    );
    assert!(rounds > 100, "only {rounds} rounds");
}

#[test]
fn a_peer_whose_stdout_is_never_read_keeps_serving() {
    const JOINS: usize = 30_000; // some 1.4 MB of lines: past the pipe and the queue
    let scratch = Scratch::new(PEER);
    // The address line is read, then stdout never again (but it stays open).
    let mut peer = scratch
        .command("peer1-1", &[])
        .stdout(Capture::Unread)
        .run();
    let (_link, _, _) = join(peer.addr).into_parts();
    let deadline = Instant::now() + PATIENCE * 3;
    for i in 0..JOINS {
        assert!(Instant::now() < deadline, "only {i} joins answered in time");
        let (_, reply, _) = join(peer.addr).into_parts();
        assert_eq!(reply.kind, Kind::Redirect);
    }
    peer.kill();
    let stderr = peer.stderr();
    let warnings = stderr
        .iter()
        .filter(|l| l.contains("stdout is not being read"))
        .count();
    assert_eq!(warnings, 1, "{stderr:#?}");
}
