//! The course's three-peer chain, run for a few seconds: `make demo`.
//!
//! `peer1-2` starts alone; `peer2-1` joins it; `peer3-2` joins `peer2`, whose table of one
//! is full, so it is redirected and auto-joins `peer1`. Each peer runs in a temporary
//! folder named like the course's, and its output is shown under its name at the end.
//!
//! Usage: `demo PATH-TO-PEER-BINARY [SECONDS]`

use peer_tools::{PeerProcess, Scratch};
use std::path::PathBuf;
use std::process::ExitCode;
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
    let scratch = Scratch::new(binary);
    let start = |name: &str, args: &[&str]| scratch.command(name, args).try_run();
    let result = start("peer1-2", &[]).and_then(|peer1| {
        let peer2 = start("peer2-1", &["-p", &peer1.addr.to_string()])?;
        let peer3 = start("peer3-2", &["-p", &peer2.addr.to_string()])?;
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
    // What they printed while running; what they print while being stopped (links
    // closing) is not part of the chain.
    let shown: Vec<(&str, Vec<String>)> = peers
        .iter_mut()
        .map(|(name, peer)| (*name, printed(peer)))
        .collect();
    drop(peers);
    for (name, lines) in shown {
        println!("\n===== {name} =====");
        for line in lines {
            println!("{line}");
        }
    }
    println!("\nAll three peers stopped.");
    ExitCode::SUCCESS
}

/// Every line `peer` has printed so far, stdout then stderr.
fn printed(peer: &mut PeerProcess) -> Vec<String> {
    while peer.poll_line().is_some() {}
    [peer.seen.clone(), peer.stderr()].concat()
}
