//! The course's three-peer chain, run for a few seconds, then mapped: `make demo`.
//!
//! `peer1-2` starts alone; `peer2-1` joins it; `peer3-2` joins `peer2`, whose table of one
//! is full, so it is redirected and auto-joins `peer1`. Each peer runs in a temporary
//! folder named like the course's, and its output is shown under its name at the end.
//!
//! Once the chain has formed, `cptp map` (the binary beside the peer binary) maps it from
//! `peer1`: its lines are printed, and its picture is written to `map.svg` in a `demo`
//! folder beside the binaries' folder (`target/demo/map.svg`), which outlives the demo.
//!
//! Usage: `demo PATH-TO-PEER-BINARY [SECONDS]`

use cptp::harness::{Process, Scratch, run_bounded};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::thread;
use std::time::Duration;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(binary) = args.next().map(PathBuf::from) else {
        eprintln!("usage: demo PATH-TO-PEER-BINARY [SECONDS]");
        return ExitCode::from(2);
    };
    // Each peer runs in its own folder, so a relative path must be made absolute first.
    let binary = match binary.canonicalize() {
        Ok(path) => path,
        Err(e) => {
            eprintln!("demo: {}: {e}", binary.display());
            return ExitCode::from(2);
        }
    };
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);

    println!("Starting the chain peer1-2 <- peer2-1 <- peer3-2");
    let scratch = Scratch::new(&binary);
    // Each peer joins only once the one before has joined, so the chain forms in order.
    let joined = |peer: &mut Process| {
        peer.wait_for("its join", |l| l.starts_with("Connected to peer"));
    };
    let start = |name: &str, args: &[&str]| scratch.command(name, args).try_run();
    let result = start("peer1-2", &[]).and_then(|peer1| {
        let mut peer2 = start("peer2-1", &["-p", &peer1.addr.to_string()])?;
        joined(&mut peer2);
        let mut peer3 = start("peer3-2", &["-p", &peer2.addr.to_string()])?;
        joined(&mut peer3);
        Ok([("peer1-2", peer1), ("peer2-1", peer2), ("peer3-2", peer3)])
    });
    let mut peers = match result {
        Ok(peers) => peers,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };

    thread::sleep(Duration::from_secs(seconds));
    let first = peers[0].1.addr.to_string();
    let before: Vec<usize> = peers
        .iter_mut()
        .map(|(_, peer)| printed(peer).len())
        .collect();
    let map = map_the_chain(&binary, &first);
    // The map's own joins show in the peers' output too; give those lines a moment.
    thread::sleep(Duration::from_millis(300));
    let mut shown: Vec<(&str, Vec<String>)> = Vec::new();
    for ((name, peer), before) in peers.iter_mut().zip(before) {
        let mut lines = printed(peer);
        lines.insert(
            before,
            "-- cptp map ran; the lines below are its joins --".into(),
        );
        shown.push((name, lines));
    }
    // What they print while being stopped (links closing) is not part of the chain.
    drop(peers);
    for (name, lines) in shown {
        println!("\n===== {name} =====");
        for line in lines {
            println!("{line}");
        }
    }
    println!("\n===== cptp map {first} =====");
    let status = match map {
        Ok((text, svg)) => {
            print!("{text}");
            println!("\nThe picture of the network is in {}", svg.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo: not mapped: {e}");
            ExitCode::FAILURE
        }
    };
    println!("\nAll three peers stopped.");
    status
}

/// Every line `peer` has printed on stdout so far.
fn printed(peer: &mut Process) -> Vec<String> {
    while peer.poll_line().is_some() {}
    peer.seen.clone()
}

/// Runs `cptp map` (beside the peer binary) on `first`; returns its text and where the SVG
/// went: `target/demo/map.svg` when the binaries are in `target/release`.
fn map_the_chain(peer_binary: &Path, first: &str) -> Result<(String, PathBuf), String> {
    let bin = peer_binary
        .parent()
        .ok_or("the peer binary has no folder")?;
    let cptp = bin.join("cptp");
    let out = bin.parent().unwrap_or(bin).join("demo");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let svg = out.join("map.svg");
    let mut command = Command::new(&cptp);
    command
        .args(["map", first, "--timeout", "10", "--svg"])
        .arg(&svg)
        .arg("--dot")
        .arg(out.join("map.dot"));
    // The crawl gives up after its own 10 s; the limit is for a map that hangs anyway.
    let output = run_bounded(&mut command, Duration::from_secs(30))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed: {}",
            cptp.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok((String::from_utf8_lossy(&output.stdout).into_owned(), svg))
}
