//! A soak run: mixed hostile load against one peer for a while, then a report.
//!
//! ```text
//! cargo run --release -p peer-tools --bin soak -- target/release/peer 60
//! ```
//!
//! The peer (table size 4) is started with `-p` pointing at a fake peer whose Redirect
//! lists only misbehaving fakes (wrong version, silence, trickle, reset, a lying length),
//! so its joiner meets bad replies while the server side takes:
//! - floods: connections that read the reply, never read it, reset at once, or send junk;
//! - churn: links that are welcomed, held a moment and closed.
//!
//! Every reply read is checked: it is a whole valid message, lists at most the table size,
//! and never lists a link closed more than a second before. Threads and RSS are sampled
//! from /proc. Loopback only; every loop ends by the deadline. Exit status 1 if any
//! invariant broke.

use cptp::contract::{Kind, Message};
use cptp::harness::client::{ReadError, read_message};
use cptp::harness::sockets::ipv4;
use cptp::harness::{Capture, Fake, Process, Start, procfs, reset};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const TABLE_SIZE: usize = 4;
/// How long after a link closes its address may still be listed.
const DEPARTURE_GRACE: Duration = Duration::from_secs(1);
/// Unread connections each flood worker keeps open at most.
const HELD_MOST: usize = 64;

/// What the load saw, shared by the workers.
#[derive(Default)]
struct Tally {
    /// Connections by what was done with them.
    counts: Mutex<BTreeMap<&'static str, u64>>,
    /// Errors seen by the clients, by kind.
    errors: Mutex<BTreeMap<String, u64>>,
    /// Invariant violations, in words.
    broken: Mutex<Vec<String>>,
    /// When each connection from an address started connecting, in order.
    opens: Mutex<HashMap<SocketAddrV4, Vec<Instant>>>,
    /// When each connection from an address was closed, in order.
    closes: Mutex<HashMap<SocketAddrV4, Vec<Instant>>>,
    /// Listings of a closed address, judged at the end: a connection that reused the
    /// port may have been listed before its worker could record it.
    suspects: Mutex<Vec<(SocketAddrV4, Instant)>>,
}

impl Tally {
    fn count(&self, what: &'static str) {
        *self.counts.lock().unwrap().entry(what).or_default() += 1;
    }

    fn error(&self, what: String) {
        *self.errors.lock().unwrap().entry(what).or_default() += 1;
    }

    fn broke(&self, what: String) {
        let mut broken = self.broken.lock().unwrap();
        if broken.len() < 20 {
            broken.push(what);
        }
    }

    /// Checks a reply against the invariants.
    fn check(&self, reply: &Message, received: Instant) {
        let listed = reply.peers.len();
        match reply.kind {
            Kind::Welcome if listed >= TABLE_SIZE => self.broke(format!(
                "Welcome listed {listed} peers with a table of {TABLE_SIZE}"
            )),
            Kind::Redirect if listed != TABLE_SIZE => self.broke(format!(
                "Redirect listed {listed} peers, not the full table"
            )),
            _ => {}
        }
        let closes = self.closes.lock().unwrap();
        for peer in &reply.peers {
            if closes
                .get(peer)
                .is_some_and(|c| c.last().is_some_and(|at| received - *at > DEPARTURE_GRACE))
            {
                self.suspects.lock().unwrap().push((*peer, received));
            }
        }
    }

    /// Connects to `addr`, recording when the attempt started under the port it got.
    fn connect(&self, addr: SocketAddrV4) -> Option<TcpStream> {
        let started = Instant::now();
        match TcpStream::connect_timeout(&addr.into(), Duration::from_secs(3)) {
            Ok(stream) => {
                if let Some(local) = stream.local_addr().ok().and_then(ipv4) {
                    self.opens
                        .lock()
                        .unwrap()
                        .entry(local)
                        .or_default()
                        .push(started);
                }
                Some(stream)
            }
            Err(e) => {
                self.error(format!("connect failed ({:?})", e.kind()));
                None
            }
        }
    }

    /// Records that `stream` is about to be closed.
    fn closing(&self, stream: &TcpStream) {
        if let Some(addr) = stream.local_addr().ok().and_then(ipv4) {
            self.closes
                .lock()
                .unwrap()
                .entry(addr)
                .or_default()
                .push(Instant::now());
        }
    }

    /// Judges the suspects: a listing at `received` breaks the rule if the address's last
    /// close more than the grace period before was not followed by a new connection
    /// started before `received`.
    fn judge(&self) {
        let opens = self.opens.lock().unwrap();
        let closes = self.closes.lock().unwrap();
        for (peer, received) in self.suspects.lock().unwrap().iter() {
            let before = |times: Option<&Vec<Instant>>, limit: Instant| {
                times.and_then(|t| t.iter().rev().find(|at| **at <= limit).copied())
            };
            let Some(closed) = before(closes.get(peer), *received - DEPARTURE_GRACE) else {
                continue;
            };
            let reopened = before(opens.get(peer), *received).is_some_and(|o| o > closed);
            if !reopened {
                self.broke(format!(
                    "{peer} listed {:?} after its link closed",
                    *received - closed
                ));
            }
        }
    }
}

fn classify(e: &ReadError) -> String {
    match e {
        ReadError::Malformed { .. } => "reply malformed".into(),
        ReadError::Closed { bytes, .. } if bytes.is_empty() => "closed without reply".into(),
        ReadError::Closed { .. } => "closed mid-reply".into(),
        ReadError::TimedOut { .. } => "reply timed out".into(),
        ReadError::Io { error, .. } => format!("reply read error ({:?})", error.kind()),
    }
}

/// Joins the peer and reads its reply; on a reply, checks it.
fn join(addr: SocketAddrV4, tally: &Tally) -> Option<(TcpStream, Message)> {
    let stream = tally.connect(addr)?;
    match read_message(&stream, Duration::from_secs(5)) {
        Ok((reply, _)) => {
            tally.check(&reply, Instant::now());
            Some((stream, reply))
        }
        Err(e) => {
            tally.error(classify(&e));
            None
        }
    }
}

/// Floods the peer with connections of four kinds until `until`.
fn flood(addr: SocketAddrV4, tally: &Tally, until: Instant, worker: usize) {
    let mut held: VecDeque<TcpStream> = VecDeque::new();
    let mut i = worker;
    while Instant::now() < until {
        i += 1;
        match i % 4 {
            0 => {
                if let Some((stream, reply)) = join(addr, tally) {
                    tally.count(if reply.kind == Kind::Welcome {
                        "read: Welcome"
                    } else {
                        "read: Redirect"
                    });
                    tally.closing(&stream);
                }
            }
            1 => {
                if let Some(stream) = tally.connect(addr) {
                    tally.count("held unread");
                    held.push_back(stream);
                    if held.len() > HELD_MOST
                        && let Some(old) = held.pop_front()
                    {
                        tally.closing(&old);
                    }
                }
            }
            2 => {
                if let Some(stream) = tally.connect(addr) {
                    tally.count("reset at once");
                    tally.closing(&stream);
                    reset(stream);
                }
            }
            _ => {
                if let Some(mut stream) = tally.connect(addr) {
                    tally.count("sent junk");
                    let _ = stream.write_all(&[0xE0; 64]);
                    tally.closing(&stream);
                }
            }
        }
    }
    for stream in held {
        tally.closing(&stream);
    }
}

/// Opens links and closes them after a short while, until `until`.
fn churn(addr: SocketAddrV4, tally: &Tally, until: Instant) {
    let mut open: VecDeque<(TcpStream, Instant)> = VecDeque::new();
    let mut n: u64 = 0;
    while Instant::now() < until {
        n += 1;
        if let Some((stream, reply)) = join(addr, tally) {
            if reply.kind == Kind::Welcome {
                tally.count("churn: link");
                let hold = Duration::from_millis(20 + (n * 37) % 200);
                open.push_back((stream, Instant::now() + hold));
            } else {
                tally.count("read: Redirect");
                tally.closing(&stream);
            }
        }
        while open.front().is_some_and(|(_, at)| *at <= Instant::now()) {
            if let Some((stream, _)) = open.pop_front() {
                tally.closing(&stream);
            }
        }
        thread::sleep(Duration::from_millis(2));
    }
    for (stream, _) in open {
        tally.closing(&stream);
    }
}

/// A fake peer that answers each connection with `behave`, until it is dropped.
fn fake(behave: fn(TcpStream)) -> Fake {
    Fake::serve(behave)
}

fn hold_silent(stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = (&stream).read(&mut [0u8; 1]);
}

/// The misbehaving peers the joiner is sent to, by way of a Redirect: the first is the
/// one to join. They answer until they are dropped.
fn bad_network() -> Vec<Fake> {
    let bad: Vec<Fake> = vec![
        fake(|mut s| {
            let _ = s.write_all(&[0x20, 0x20, 0, 1, b'v']);
        }),
        fake(|mut s| {
            let _ = s.write_all(&[0xE0, 0x60, 0, 1, b't']);
        }),
        fake(hold_silent),
        fake(|mut s| {
            for b in [0xE0u8, 0x40, 0x05, 0x01, b's'] {
                let _ = s.write_all(&[b]);
                thread::sleep(Duration::from_millis(1500));
            }
        }),
        fake(|mut s| {
            let _ = s.write_all(&[0xE0, 0x5F, 0xFF, 0x01, b'x', 1, 2, 3]);
        }),
        fake(|mut s| {
            let _ = s.write_all(&[0xE0, 0x40, 0x01]);
            reset(s);
        }),
    ];
    let listed: Vec<SocketAddrV4> = bad.iter().map(|f| f.addr).collect();
    let redirect = Message::new(Kind::Redirect, "liar", listed).encode();
    let first = Fake::serve(move |mut stream| {
        let _ = stream.write_all(&redirect);
    });
    let mut network = vec![first];
    network.extend(bad);
    network
}

/// Starts the peer under test, logging at `info`. Its stdout is only counted; its stderr
/// goes to a file, since a long run logs far more lines than are worth keeping in memory.
fn start_peer(binary: &Path, dir: &Path, join: SocketAddrV4) -> Result<Process, String> {
    let folder = dir.join(format!("soak-{TABLE_SIZE}"));
    Start::new(binary, &folder, &["-p", &join.to_string()])
        .env("RUST_LOG", "info")
        .stderr(Capture::File)
        .try_run()
}

/// Sorts the peer's log lines into kinds.
fn peer_errors(stderr: &[String]) -> BTreeMap<&'static str, u64> {
    let mut kinds = BTreeMap::new();
    for line in stderr {
        let kind = if line.contains("panicked") {
            "PANIC"
        } else if line.contains("not delivered") {
            "reply not delivered (client gone)"
        } else if line.contains("peer::joiner") {
            "joiner: bad or silent peer"
        } else if line.contains("cannot accept") {
            "accept: out of resources"
        } else if line.contains("failed: ") {
            "link failed (reset)"
        } else {
            continue;
        };
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(binary) = args.next().map(PathBuf::from) else {
        eprintln!("usage: soak PATH-TO-PEER-BINARY [SECONDS]");
        return ExitCode::from(2);
    };
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
    let binary = binary.canonicalize().expect("peer binary");
    let dir = std::env::temp_dir().join(format!("peer-soak-{}", std::process::id()));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);

    let network = bad_network();
    let mut peer = match start_peer(&binary, &dir, network[0].addr) {
        Ok(peer) => peer,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (addr, pid) = (peer.addr, peer.pid());
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let (mut threads, mut rss) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                threads = threads.max(procfs::live_threads(pid).unwrap_or(0));
                rss = rss.max(procfs::rss_kib(pid).unwrap_or(0));
                thread::sleep(Duration::from_millis(50));
            }
            (threads, rss)
        })
    };
    let mut workers = Vec::new();
    for w in 0..3 {
        let tally = Arc::clone(&tally);
        workers.push(thread::spawn(move || flood(addr, &tally, until, w)));
    }
    {
        let tally = Arc::clone(&tally);
        workers.push(thread::spawn(move || churn(addr, &tally, until)));
    }
    for worker in workers {
        let _ = worker.join();
    }
    // Links closed at the end must be gone within the grace period too.
    thread::sleep(DEPARTURE_GRACE + Duration::from_millis(200));
    let after = join(addr, &tally);
    drop(after);
    stop.store(true, Ordering::Relaxed);
    let (threads, rss_kib) = sampler.join().unwrap_or((0, 0));
    let alive = peer.is_running();
    peer.kill();
    let peer_kinds = peer_errors(&peer.stderr());
    let lines = peer.printed();
    drop(peer);
    let _ = std::fs::remove_dir_all(&dir);

    tally.judge();
    let counts = tally.counts.lock().unwrap().clone();
    let errors = tally.errors.lock().unwrap().clone();
    let mut broken = tally.broken.lock().unwrap().clone();
    if !alive {
        broken.push("the peer exited".into());
    }
    if peer_kinds.contains_key("PANIC") {
        broken.push("the peer panicked".into());
    }
    // main, clock, output and connector, and one per table slot.
    let thread_cap = TABLE_SIZE + 4;
    if threads > thread_cap {
        broken.push(format!(
            "{threads} threads, more than table + 4 = {thread_cap}"
        ));
    }

    let total: u64 = counts.values().sum();
    println!("soak: {seconds} s against one peer (table {TABLE_SIZE}), pid {pid}");
    println!(
        "connections handled: {total} ({:.0}/s)",
        total as f64 / seconds as f64
    );
    for (what, n) in &counts {
        println!("  {what}: {n}");
    }
    println!("errors seen by the clients:");
    if errors.is_empty() {
        println!("  none");
    }
    for (what, n) in &errors {
        println!("  {what}: {n}");
    }
    println!("errors the peer logged, by kind:");
    for (what, n) in &peer_kinds {
        println!("  {what}: {n}");
    }
    println!("event lines the peer printed: {lines}");
    println!("largest thread count: {threads} (cap: table + 4 = {thread_cap})");
    println!("largest RSS: {rss_kib} KiB");
    if broken.is_empty() {
        println!(
            "invariants: all held (never over size, departures gone within 1 s, alive, no panic)"
        );
        ExitCode::SUCCESS
    } else {
        println!("invariants BROKEN:");
        for what in &broken {
            println!("  {what}");
        }
        ExitCode::FAILURE
    }
}
