//! The course's three-peer chain, run for a few seconds: `make demo`.
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

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

struct Running {
    name: &'static str,
    child: Child,
    lines: Receiver<String>,
    shown: Vec<String>,
}

impl Running {
    /// Starts the peer in `dir/name` and waits for its address line.
    fn start(
        binary: &Path,
        dir: &Path,
        name: &'static str,
        args: &[&str],
    ) -> Result<Running, String> {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        let mut child = Command::new(binary)
            .args(args)
            .current_dir(&folder)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let (tx, lines) = channel();
        for stream in [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("piped")),
        ] {
            let tx = tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut peer = Running {
            name,
            child,
            lines,
            shown: Vec::new(),
        };
        let first = peer
            .lines
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| format!("{name} printed no address line"))?;
        peer.shown.push(first);
        Ok(peer)
    }

    /// Waits (10 s at most) until the peer prints a line starting with `start`, so that the
    /// next peer joins a chain that has formed (without it, peer3 can reach peer2 while
    /// peer2's own join is still under way).
    fn wait_for(&mut self, start: &str) -> Result<(), String> {
        let until = Instant::now() + Duration::from_secs(10);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.starts_with(start);
                    self.shown.push(line);
                    if found {
                        return Ok(());
                    }
                }
                Err(_) => break,
            }
        }
        Err(format!("{} never printed '{start}...'", self.name))
    }

    /// The `IP:PORT` of the address line.
    fn addr(&self) -> String {
        self.shown[0]
            .split_whitespace()
            .nth(4)
            .unwrap_or_default()
            .to_string()
    }
}

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
    let dir = std::env::temp_dir().join(format!("peer-demo-{}", std::process::id()));
    let result = run(&binary, &dir, Duration::from_secs(seconds));
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(binary: &Path, dir: &Path, watch: Duration) -> Result<(), String> {
    let mut peers = Vec::new();
    println!(
        "Starting the chain peer1-2 <- peer2-1 <- peer3-2 in {}",
        dir.display()
    );
    peers.push(Running::start(binary, dir, "peer1-2", &[])?);
    let first = peers[0].addr();
    peers.push(Running::start(binary, dir, "peer2-1", &["-p", &first])?);
    peers[1].wait_for("Connected to peer")?;
    let second = peers[1].addr();
    peers.push(Running::start(binary, dir, "peer3-2", &["-p", &second])?);
    peers[2].wait_for("Connected to peer")?;

    // Collect what the peers print while they run.
    collect(&mut peers, watch);
    for peer in &mut peers {
        peer.shown
            .push("-- cptp map starts; the lines below are its joins --".into());
    }
    let map = map_the_chain(binary, &first);
    // The map's own joins show in the peers' output too; give those lines a moment.
    collect(&mut peers, Duration::from_millis(300));
    // What they print while being stopped (links closing) is not part of the chain.
    for peer in &mut peers {
        let _ = peer.child.kill();
        let _ = peer.child.wait();
    }
    for peer in &peers {
        println!("\n===== {} =====", peer.name);
        for line in &peer.shown {
            println!("{line}");
        }
    }
    println!("\n===== cptp map {first} =====");
    match map {
        Ok((text, svg)) => {
            print!("{text}");
            println!("\nThe picture of the chain is in {}", svg.display());
        }
        Err(e) => println!("not mapped: {e}"),
    }
    println!("\nAll three peers stopped.");
    Ok(())
}

/// Moves what the peers print into their `shown` lines for `how_long`.
fn collect(peers: &mut [Running], how_long: Duration) {
    let until = Instant::now() + how_long;
    while Instant::now() < until {
        for peer in peers.iter_mut() {
            while let Ok(line) = peer.lines.try_recv() {
                peer.shown.push(line);
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
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
    let output = Command::new(&cptp)
        .args(["map", first, "--timeout", "10", "--svg"])
        .arg(&svg)
        .arg("--dot")
        .arg(out.join("map.dot"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cptp.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed: {}",
            cptp.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok((String::from_utf8_lossy(&output.stdout).into_owned(), svg))
}
