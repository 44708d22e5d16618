//! The benchmark behind `make bench`: `peer` side by side with the floor server.
//!
//! ```text
//! bench PEER-BINARY FLOOR-BINARY [--quick]
//! ```
//!
//! Every figure is the median of 3 runs (with min and max), and the floor's figure is
//! measured in the same invocation, run for run, so each result is also a ratio to the
//! floor on the same machine at the same moment. Sections:
//! - Redirect path (table full): joins/s, latency percentiles (connect start to the last
//!   byte of the reply) and the server's CPU time per join (utime + stime from
//!   /proc/PID/stat before and after 20,000 joins), at 1, 8 and 32 concurrent clients;
//! - Welcome path: 1,000 joins held open against a table of 1,000: joins/s, RSS with all
//!   links held, RSS per held link;
//! - start-up: time from spawning the process to its address line, and idle RSS;
//! - network formation: 200 peers, each started with `-p` to one bootstrap peer.
//!
//! On a machine with `taskset`, servers run on CPU 0 and this load generator on CPU 1.
//! Loopback only; every loop is bounded in count and time. The table is printed and
//! written to `target/bench/bench.csv`.

use cptp::contract::Kind;
use cptp::harness::client::read_message;
use cptp::harness::{Capture, Process, Start, has_tool, procfs};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::net::{SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const RUNS: usize = 3;
const REDIRECT_JOINS: usize = 20_000;
const HELD_LINKS: usize = 1_000;
const NETWORK_PEERS: usize = 200;
/// Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;
/// No run may take longer than this.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// Environment variable set when this program has re-run itself pinned to CPU 1.
const PINNED: &str = "PEER_BENCH_PINNED";

/// What to run: the peer or the floor.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    Peer,
    Floor,
}

struct Setup {
    peer: PathBuf,
    floor: PathBuf,
    /// `taskset` is there: pin servers to CPU 0.
    pin: bool,
    /// Where the peers' folders go.
    scratch: PathBuf,
    /// Fewer joins, for a smoke run.
    quick: bool,
}

impl Setup {
    /// Starts `server` in the folder `name` with `args`, on CPU 0 when pinning, its stdout
    /// to a file (printing costs the server a write, and wakes nobody). Returns it once it
    /// printed its address.
    fn start(&self, server: Server, name: &str, args: &[&str]) -> Result<Process, String> {
        self.start_on(server, name, args, self.pin.then_some("0"), Capture::File)
    }

    /// Starts `server` on `cpus`, its stdout to `stdout`: a file, or lines read as they
    /// come (the first line's arrival is then timed precisely).
    fn start_on(
        &self,
        server: Server,
        name: &str,
        args: &[&str],
        cpus: Option<&str>,
        stdout: Capture,
    ) -> Result<Process, String> {
        let binary = match server {
            Server::Peer => &self.peer,
            Server::Floor => &self.floor,
        };
        let start = Start::new(binary, &self.scratch.join(name), args)
            .stdout(stdout)
            .stderr(Capture::Discard);
        match cpus {
            Some(cpus) => start.under(&["taskset", "-c", cpus]).try_run(),
            None => start.try_run(),
        }
    }
}

/// Waits until `server` has printed `target` lines or `limit` passes.
fn wait_lines(server: &Process, target: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while server.printed() < target {
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
    true
}

/// One join: connect, read the whole reply. Returns the stream, the reply's kind and the
/// time from connect start to the last byte.
fn join(addr: SocketAddrV4) -> Result<(TcpStream, Kind, Duration), String> {
    let started = Instant::now();
    let stream = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(3))
        .map_err(|e| format!("connect: {e}"))?;
    let (reply, _) =
        read_message(&stream, Duration::from_secs(5)).map_err(|e| format!("reply: {e}"))?;
    Ok((stream, reply.kind, started.elapsed()))
}

/// A figure of a Redirect-path run: its name, its unit, and how to read it.
type Figure = (&'static str, &'static str, fn(&RedirectRun) -> f64);

/// The figures of one Redirect-path run.
struct RedirectRun {
    joins_per_sec: f64,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    cpu_us_per_join: f64,
    /// The same from the threads' schedstat, in nanoseconds rather than 10 ms ticks.
    cpu_us_per_join_precise: f64,
    errors: usize,
}

/// `joins` joins from `clients` threads against `server`, which must answer with Redirects.
fn redirect_run(server: &Process, clients: usize, joins: usize) -> RedirectRun {
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let cpu_before = procfs::cpu_ticks(server.pid()).unwrap_or(0);
    let ns_before = procfs::cpu_ns(server.pid()).unwrap_or(0);
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (next, errors, addr) = (Arc::clone(&next), Arc::clone(&errors), server.addr);
            thread::spawn(move || {
                let mut latencies = Vec::with_capacity(joins / clients + 1);
                while next.fetch_add(1, Ordering::Relaxed) < joins && started.elapsed() < RUN_LIMIT
                {
                    match join(addr) {
                        Ok((_, Kind::Redirect, took)) => latencies.push(took),
                        Ok(_) | Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap_or_default())
        .collect();
    let wall = started.elapsed();
    // Let the server finish closing the last connections before reading its CPU time.
    thread::sleep(Duration::from_millis(50));
    let cpu_after = procfs::cpu_ticks(server.pid()).unwrap_or(0);
    let ns_after = procfs::cpu_ns(server.pid()).unwrap_or(0);
    latencies.sort();
    let done = latencies.len().max(1);
    let pct = |p: f64| {
        latencies
            .get(((done as f64 * p) as usize).min(done - 1))
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    RedirectRun {
        joins_per_sec: latencies.len() as f64 / wall.as_secs_f64(),
        p50_us: pct(0.50),
        p90_us: pct(0.90),
        p99_us: pct(0.99),
        cpu_us_per_join: (cpu_after - cpu_before) as f64 / TICKS_PER_SEC * 1e6 / done as f64,
        cpu_us_per_join_precise: (ns_after - ns_before) as f64 / 1e3 / done as f64,
        errors: errors.load(Ordering::Relaxed),
    }
}

/// Median, min and max of some runs' figures.
#[derive(Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

fn spread(values: &[f64]) -> Spread {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Spread {
        median: v.get(v.len() / 2).copied().unwrap_or(f64::NAN),
        min: v.first().copied().unwrap_or(f64::NAN),
        max: v.last().copied().unwrap_or(f64::NAN),
    }
}

/// One row of the report: a figure of the peer and, where there is one, of the floor.
struct Row {
    section: &'static str,
    figure: String,
    unit: &'static str,
    peer: Spread,
    floor: Option<Spread>,
    /// The median of the run-by-run ratios peer / floor.
    ratio: Option<f64>,
}

fn row(
    section: &'static str,
    figure: impl Into<String>,
    unit: &'static str,
    peer: &[f64],
    floor: Option<&[f64]>,
) -> Row {
    let ratio =
        floor.map(|f| spread(&peer.iter().zip(f).map(|(p, f)| p / f).collect::<Vec<_>>()).median);
    Row {
        section,
        figure: figure.into(),
        unit,
        peer: spread(peer),
        floor: floor.map(spread),
        ratio,
    }
}

/// Redirect path: a full table of 2 (two held links), then joins at each concurrency.
fn redirect_path(setup: &Setup, rows: &mut Vec<Row>, errors: &mut usize) -> Result<(), String> {
    let joins = if setup.quick { 2_000 } else { REDIRECT_JOINS };
    for clients in [1, 8, 32] {
        let mut peer_runs = Vec::new();
        let mut floor_runs = Vec::new();
        for run in 0..RUNS {
            // Alternate which goes first, so drift in the machine's speed hits both alike.
            let order = if run % 2 == 0 {
                [Server::Floor, Server::Peer]
            } else {
                [Server::Peer, Server::Floor]
            };
            for server in order {
                let running = setup.start(server, &format!("redirect{clients}-{run}-2"), &[])?;
                // Fill the peer's table so every join is redirected; the floor needs nothing.
                let held: Vec<TcpStream> = match server {
                    Server::Peer => (0..2)
                        .map(|_| join(running.addr).map(|(s, _, _)| s))
                        .collect::<Result<_, _>>()?,
                    Server::Floor => Vec::new(),
                };
                let result = redirect_run(&running, clients, joins);
                *errors += result.errors;
                drop(held);
                match server {
                    Server::Peer => peer_runs.push(result),
                    Server::Floor => floor_runs.push(result),
                }
            }
        }
        let figures: [Figure; 6] = [
            ("server CPU per join, utime+stime", "us", |r| {
                r.cpu_us_per_join
            }),
            ("server CPU per join, schedstat", "us", |r| {
                r.cpu_us_per_join_precise
            }),
            ("joins/s", "1/s", |r| r.joins_per_sec),
            ("latency p50", "us", |r| r.p50_us),
            ("latency p90", "us", |r| r.p90_us),
            ("latency p99", "us", |r| r.p99_us),
        ];
        for (name, unit, get) in figures {
            let p: Vec<f64> = peer_runs.iter().map(get).collect();
            let f: Vec<f64> = floor_runs.iter().map(get).collect();
            rows.push(row(
                "redirect",
                format!("{name} ({clients} clients)"),
                unit,
                &p,
                Some(&f),
            ));
        }
    }
    Ok(())
}

/// Welcome path: `HELD_LINKS` joins held open against a table of that size.
fn welcome_path(setup: &Setup, rows: &mut Vec<Row>, errors: &mut usize) -> Result<(), String> {
    let links = if setup.quick { 200 } else { HELD_LINKS };
    let size = links.to_string();
    let (mut rate, mut held_rss, mut per_link, mut floor_rate) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS {
        let peer = setup.start(Server::Peer, &format!("welcome{run}-{size}"), &[])?;
        thread::sleep(Duration::from_millis(100));
        let idle = procfs::rss_kib(peer.pid()).unwrap_or(0);
        let (streams, took, failed) = hold_joins(peer.addr, links, Kind::Welcome);
        *errors += failed;
        if !wait_lines(&peer, links as u64 + 1, Duration::from_secs(10)) {
            return Err("the peer did not print every join".into());
        }
        thread::sleep(Duration::from_millis(200));
        let rss = procfs::rss_kib(peer.pid()).unwrap_or(0);
        rate.push(links as f64 / took.as_secs_f64());
        held_rss.push(rss as f64 / 1024.0);
        per_link.push(rss.saturating_sub(idle) as f64 / links as f64);
        drop(streams);

        let floor = setup.start(Server::Floor, &format!("welcomefloor{run}-2"), &[])?;
        let (_, took, failed) = hold_joins(floor.addr, links, Kind::Redirect);
        *errors += failed;
        floor_rate.push(links as f64 / took.as_secs_f64());
    }
    rows.push(row(
        "welcome",
        format!("joins/s ({links} held, 8 clients)"),
        "1/s",
        &rate,
        Some(&floor_rate),
    ));
    rows.push(row(
        "welcome",
        format!("RSS with {links} links held"),
        "MiB",
        &held_rss,
        None,
    ));
    rows.push(row("welcome", "RSS per held link", "KiB", &per_link, None));
    Ok(())
}

/// `count` joins from 8 client threads, every stream kept open; counts wrong replies.
fn hold_joins(
    addr: SocketAddrV4,
    count: usize,
    expected: Kind,
) -> (Vec<TcpStream>, Duration, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (next, failed) = (Arc::clone(&next), Arc::clone(&failed));
            thread::spawn(move || {
                let mut mine = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < count && started.elapsed() < RUN_LIMIT
                {
                    match join(addr) {
                        Ok((stream, kind, _)) if kind == expected => mine.push(stream),
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                mine
            })
        })
        .collect();
    let streams: Vec<TcpStream> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap_or_default())
        .collect();
    (streams, started.elapsed(), failed.load(Ordering::Relaxed))
}

/// Start-up: spawn to address line, 10 starts a run, peer and floor alternating which
/// goes first, each stopped before the next starts; then idle RSS.
fn startup(setup: &Setup, rows: &mut Vec<Row>) -> Result<(), String> {
    let (mut peer_ms, mut floor_ms, mut idle) = (Vec::new(), Vec::new(), Vec::new());
    // Started directly: through taskset the time would include taskset's own exec.
    let cpu0 = None;
    for run in 0..RUNS {
        let (mut p, mut f) = (Vec::new(), Vec::new());
        for start in 0..10 {
            let order = if start % 2 == 0 {
                [Server::Peer, Server::Floor]
            } else {
                [Server::Floor, Server::Peer]
            };
            for server in order {
                let name = format!("start{run}x{start}-2");
                let running = setup.start_on(server, &name, &[], cpu0, Capture::Lines)?;
                let took = running.started_in;
                drop(running);
                match server {
                    Server::Peer => p.push(took.as_secs_f64() * 1e3),
                    Server::Floor => f.push(took.as_secs_f64() * 1e3),
                }
            }
        }
        peer_ms.push(spread(&p).median);
        floor_ms.push(spread(&f).median);
        let peer = setup.start_on(
            Server::Peer,
            &format!("idle{run}-2"),
            &[],
            cpu0,
            Capture::Lines,
        )?;
        thread::sleep(Duration::from_millis(100));
        idle.push(procfs::rss_kib(peer.pid()).unwrap_or(0) as f64 / 1024.0);
    }
    rows.push(row(
        "start-up",
        "process start to address line",
        "ms",
        &peer_ms,
        Some(&floor_ms),
    ));
    rows.push(row("start-up", "RSS when idle", "MiB", &idle, None));
    Ok(())
}

/// What the formation run learned from one peer's output.
#[derive(Default, Clone)]
struct Outcome {
    port: u16,
    /// The port of the peer that welcomed it.
    joined: Option<u16>,
    /// It printed that nobody accepted.
    standalone: bool,
}

/// Network formation: `NETWORK_PEERS` peers started with `-p` to one bootstrap peer.
fn formation(setup: &Setup, rows: &mut Vec<Row>) -> Result<(), String> {
    let count = if setup.quick { 50 } else { NETWORK_PEERS };
    let (mut seconds, mut joined, mut connected) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS {
        // All peers share both CPUs here: there is no client and server to separate.
        let cpus = setup.pin.then_some("0,1");
        let boot = setup.start_on(
            Server::Peer,
            &format!("net{run}-boot-3"),
            &[],
            cpus,
            Capture::File,
        )?;
        let target = boot.addr.to_string();
        let started = Instant::now();
        let mut children = Vec::new();
        let mut outcomes: Vec<Outcome> = Vec::new();
        for i in 0..count {
            let size = 2 + i % 2;
            let name = format!("net{run}-p{i}-{size}");
            let peer =
                setup.start_on(Server::Peer, &name, &["-p", &target], cpus, Capture::Lines)?;
            outcomes.push(Outcome {
                port: peer.addr.port(),
                ..Outcome::default()
            });
            children.push(peer);
        }
        let took = await_outcomes(&mut children, &mut outcomes, started);
        seconds.push(took.as_secs_f64());
        joined.push(outcomes.iter().filter(|o| o.joined.is_some()).count() as f64);
        connected.push(if overlay_connected(boot.addr.port(), &outcomes) {
            1.0
        } else {
            0.0
        });
        drop(children);
    }
    rows.push(row(
        "network",
        format!("time until all {count} peers joined"),
        "s",
        &seconds,
        None,
    ));
    rows.push(row(
        "network",
        format!("peers joined (of {count})"),
        "peers",
        &joined,
        None,
    ));
    rows.push(row(
        "network",
        "overlay connected (1 = yes)",
        "bool",
        &connected,
        None,
    ));
    Ok(())
}

/// Reads the network peers' lines until each has joined or given up, or `RUN_LIMIT`
/// passes. Returns the time from `started` until the last one finished (each line carries
/// the time it was read, so how often this polls does not change the figure).
fn await_outcomes(peers: &mut [Process], outcomes: &mut [Outcome], started: Instant) -> Duration {
    let mut pending = outcomes.len();
    let mut last = started;
    while pending > 0 && started.elapsed() < RUN_LIMIT {
        let mut quiet = true;
        for (peer, outcome) in peers.iter_mut().zip(outcomes.iter_mut()) {
            while let Some((line, at)) = peer.poll_line() {
                quiet = false;
                let before = outcome.joined.is_some() || outcome.standalone;
                if let Some(rest) = line.strip_prefix("Connected to peer ") {
                    // "ID:PORT at timestamp: N"; the ID may hold colons, the port follows
                    // the last.
                    let port = rest
                        .split(" at timestamp")
                        .next()
                        .and_then(|id_port| id_port.rsplit(':').next())
                        .and_then(|p| p.parse().ok());
                    outcome.joined = port;
                } else if line.starts_with("No peer accepted the join") {
                    outcome.standalone = true;
                }
                if !before && (outcome.joined.is_some() || outcome.standalone) {
                    pending -= 1;
                    last = last.max(at);
                }
            }
        }
        if quiet {
            thread::sleep(Duration::from_millis(1));
        }
    }
    last - started
}

/// True if every peer is reachable from the bootstrap over the links the joins made.
fn overlay_connected(boot: u16, peers: &[Outcome]) -> bool {
    let mut edges: HashMap<u16, Vec<u16>> = HashMap::new();
    for peer in peers {
        if let Some(to) = peer.joined {
            edges.entry(peer.port).or_default().push(to);
            edges.entry(to).or_default().push(peer.port);
        }
    }
    let mut seen = HashSet::from([boot]);
    let mut queue = VecDeque::from([boot]);
    while let Some(at) = queue.pop_front() {
        for next in edges.get(&at).into_iter().flatten() {
            if seen.insert(*next) {
                queue.push_back(*next);
            }
        }
    }
    peers.iter().all(|p| seen.contains(&p.port))
}

fn fmt_spread(s: &Spread) -> String {
    let digits = |v: f64| {
        if v.abs() >= 100.0 {
            format!("{v:.0}")
        } else if v.abs() >= 10.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.2}")
        }
    };
    format!("{} ({}–{})", digits(s.median), digits(s.min), digits(s.max))
}

fn report(rows: &[Row], errors: usize, machine: &str) -> (String, String) {
    let mut table = String::new();
    let _ = writeln!(table, "{machine}");
    let _ = writeln!(
        table,
        "median of {RUNS} runs (min–max); ratio = median of run-by-run peer/floor\n"
    );
    let _ = writeln!(table, "| section | figure | unit | peer | floor | ratio |");
    let _ = writeln!(table, "|---|---|---|---|---|---|");
    let mut csv = String::from(
        "section,figure,unit,peer_median,peer_min,peer_max,floor_median,floor_min,floor_max,ratio\n",
    );
    for r in rows {
        let floor = r.floor.as_ref().map_or("–".to_string(), fmt_spread);
        let ratio = r.ratio.map_or("–".to_string(), |x| format!("{x:.2}"));
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} |",
            r.section,
            r.figure,
            r.unit,
            fmt_spread(&r.peer),
            floor,
            ratio
        );
        let f = r.floor.unwrap_or(Spread {
            median: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
        });
        let _ = writeln!(
            csv,
            "{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{}",
            r.section,
            r.figure,
            r.unit,
            r.peer.median,
            r.peer.min,
            r.peer.max,
            f.median,
            f.min,
            f.max,
            r.ratio.map_or(String::new(), |x| format!("{x:.3}"))
        );
    }
    let _ = writeln!(table, "\nerrors: {errors}");
    (table, csv)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    // Count the machine's processors, not this (possibly pinned) process's.
    let cores = std::fs::read_to_string("/proc/cpuinfo").map_or(0, |s| {
        s.lines().filter(|l| l.starts_with("processor")).count()
    });
    format!("machine: {cpu}, {cores} cores, {}", std::env::consts::OS)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: bench PEER-BINARY FLOOR-BINARY [--quick]");
        return ExitCode::from(2);
    }
    let pin = has_tool("taskset");
    if pin && std::env::var_os(PINNED).is_none() {
        // Re-run this load generator on CPU 1; the servers go on CPU 0.
        let status = Command::new("taskset")
            .args(["-c", "1"])
            .args(&args)
            .env(PINNED, "1")
            .status();
        return match status {
            Ok(s) if s.success() => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        };
    }
    let absolute = |p: &str| {
        PathBuf::from(p)
            .canonicalize()
            .map_err(|e| format!("{p}: {e}"))
    };
    let (peer, floor) = match (absolute(&args[1]), absolute(&args[2])) {
        (Ok(p), Ok(f)) => (p, f),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    let scratch = std::env::temp_dir().join(format!("peer-bench-{}", std::process::id()));
    let setup = Setup {
        peer,
        floor,
        pin,
        scratch: scratch.clone(),
        quick: args.iter().any(|a| a == "--quick"),
    };
    let mut rows = Vec::new();
    let mut errors = 0;
    let mut failed = false;
    let mut report_failure = |name: &str, result: Result<(), String>| {
        if let Err(e) = result {
            eprintln!("bench: {name} failed: {e}");
            failed = true;
        }
    };
    eprintln!("bench: Redirect path ...");
    report_failure(
        "Redirect path",
        redirect_path(&setup, &mut rows, &mut errors),
    );
    eprintln!("bench: Welcome path ...");
    report_failure("Welcome path", welcome_path(&setup, &mut rows, &mut errors));
    eprintln!("bench: start-up ...");
    report_failure("start-up", startup(&setup, &mut rows));
    eprintln!("bench: network formation ...");
    report_failure("network formation", formation(&setup, &mut rows));
    let _ = std::fs::remove_dir_all(&scratch);
    let pinning = if pin {
        "servers on CPU 0, load generator on CPU 1"
    } else {
        "no taskset: not pinned"
    };
    let (table, csv) = report(&rows, errors, &format!("{}; {pinning}", machine()));
    println!("{table}");
    let out = Path::new("target/bench");
    if std::fs::create_dir_all(out)
        .and_then(|_| std::fs::write(out.join("bench.csv"), csv))
        .is_ok()
    {
        println!("written: target/bench/bench.csv");
    }
    if failed || errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
