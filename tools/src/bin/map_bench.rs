//! How long `cptp map` takes on a big overlay: `make map-bench`.
//!
//! Starts COUNT real peers on 127.0.0.1 (default 1000), each in a folder `pK-3` (table of
//! 3), each joining a random earlier peer once that one's own join has finished, so they
//! form one overlay. Then runs `cptp map` on the first peer, times it from start to exit,
//! checks that it found every peer and every link, and stops every peer.
//!
//! The peers are started through `cptp`'s harness with stdout in a file in each
//! folder and stderr discarded (no pipe, no reader thread per peer); the harness polls
//! those files, each wait with a deadline.
//!
//! Usage: `map_bench PATH-TO-PEER PATH-TO-CPTP [COUNT] [JOBS,JOBS,...]`: one map per JOBS
//! value (`cptp map -j JOBS`), all on the same overlay. With `MAP_BENCH_HOLD=SECS` in the
//! environment the overlay stays up SECS seconds more, to try `cptp map` on it by hand.

use cptp::harness::{Capture, PATIENCE, Process, Start, run_bounded};
use std::collections::BTreeSet;
use std::net::SocketAddrV4;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::thread;
use std::time::{Duration, Instant};

/// The longest one `cptp map` may take before it is killed and the bench fails.
const MAP_LIMIT: Duration = Duration::from_secs(600);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(peer), Some(cptp)) = (args.first(), args.get(1)) else {
        eprintln!("usage: map_bench PATH-TO-PEER PATH-TO-CPTP [COUNT] [JOBS,JOBS,...]");
        return ExitCode::from(2);
    };
    let count: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let jobs: Vec<usize> = match args.get(3) {
        None => vec![64],
        Some(list) => list.split(',').filter_map(|s| s.parse().ok()).collect(),
    };
    let (peer, cptp) = match (
        Path::new(peer).canonicalize(),
        Path::new(cptp).canonicalize(),
    ) {
        (Ok(peer), Ok(cptp)) => (peer, cptp),
        _ => {
            eprintln!("map_bench: {peer} or {cptp} not found (make map-bench builds them)");
            return ExitCode::from(2);
        }
    };
    let dir = std::env::temp_dir().join(format!("peer-map-bench-{}", std::process::id()));
    let result = run(&peer, &cptp, &dir, count, &jobs);
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(()) => {
            println!("All {count} peers stopped.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("map_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(peer: &Path, cptp: &Path, dir: &Path, count: usize, jobs: &[usize]) -> Result<(), String> {
    let started = Instant::now();
    // Every peer started, killed when dropped, even on an error.
    let mut peers: Vec<Process> = Vec::with_capacity(count);
    let mut random = 0x2545_f491_4f6c_dd1d_u64;
    let mut joined = 0;
    for k in 1..=count {
        let target = match peers.len() {
            0 => None,
            n => {
                // xorshift: a fixed sequence, so every run builds the same shape of overlay.
                random ^= random << 13;
                random ^= random >> 7;
                random ^= random << 17;
                Some(peers[(random % n as u64) as usize].addr)
            }
        };
        let name = format!("p{k}-3");
        let join = target.map(|t| t.to_string());
        let args: Vec<&str> = join.iter().flat_map(|t| ["-p", t.as_str()]).collect();
        let mut started = Start::new(peer, &dir.join(&name), &args)
            .stdout(Capture::File)
            .stderr(Capture::Discard)
            .try_run()?;
        if target.is_some() {
            let line = started
                .try_wait_for(PATIENCE, |l| {
                    l.starts_with("Connected to peer ") || l.starts_with("No peer accepted")
                })
                .map_err(|e| format!("{name}: its join did not end: {e}"))?;
            if line.starts_with("Connected") {
                joined += 1;
            }
        }
        peers.push(started);
        if k % 250 == 0 {
            println!("  {k} peers started");
        }
    }
    println!(
        "{count} peers started and joined into an overlay in {:.1} s ({joined} joins welcomed)",
        started.elapsed().as_secs_f64()
    );

    let first = peers[0].addr;
    let all: BTreeSet<SocketAddrV4> = peers.iter().map(|p| p.addr).collect();
    for &jobs in jobs {
        map_once(cptp, first, count, jobs, &all, joined)?;
    }
    let hold: u64 = std::env::var("MAP_BENCH_HOLD")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if hold > 0 {
        println!("Holding the overlay for {hold} s: try cptp map {first}");
        thread::sleep(Duration::from_secs(hold.min(3600)));
    }
    Ok(())
}

/// Maps the overlay from `first` with `-j jobs`, prints the time, checks the result.
fn map_once(
    cptp: &Path,
    first: SocketAddrV4,
    count: usize,
    jobs: usize,
    all: &BTreeSet<SocketAddrV4>,
    joined: usize,
) -> Result<(), String> {
    let first = first.to_string();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpu_before = children_cpu();
    let clock = Instant::now();
    let mut command = Command::new(cptp);
    command
        .args(["map", &first, "--max-peers", &count.to_string(), "-j"])
        .arg(jobs.to_string());
    let output = run_bounded(&mut command, MAP_LIMIT)?;
    let took = clock.elapsed();
    let cpu = children_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let text = String::from_utf8_lossy(&output.stdout);
    let summary = text.lines().next().unwrap_or_default();
    println!(
        "cptp map {first} -j {jobs}: {:.3} s from start to exit",
        took.as_secs_f64()
    );
    println!("  {summary}");
    // The crawler's own CPU time against the wall time shows whether it works or waits
    // for the peers (all on this machine, competing for its cores).
    if let Some(cpu) = cpu {
        println!(
            "  cptp used {cpu:.2} s of CPU; load average before: {}",
            load.split_whitespace().next().unwrap_or("?")
        );
    }

    // Check: every peer found, and as many links as joins were welcomed (a tree).
    let found: BTreeSet<SocketAddrV4> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once(" ->")?.0.split(' ').nth(1)?.parse().ok())
        .collect();
    let links_ok = summary.contains(&format!(", {joined} links;"));
    if !output.status.success() || found != *all || !links_ok {
        return Err(format!(
            "the map is not the overlay: {} of {} peers found, summary '{summary}', stderr: {}",
            found.intersection(all).count(),
            all.len(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    println!("  every peer and every link found");
    Ok(())
}

/// CPU seconds (user + system) of this process's children that have been waited for
/// (Linux: fields 16 and 17 of /proc/self/stat, in clock ticks of 10 ms). The peers are
/// waited for only at the end, so between two calls this is the `cptp` run alone.
fn children_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u64 = fields.get(13)?.parse().ok()?;
    let system: u64 = fields.get(14)?.parse().ok()?;
    Some((user + system) as f64 / 100.0)
}
