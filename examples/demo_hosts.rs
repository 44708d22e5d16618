//! The course's three-peer chain on three machines: `make demo-hosts` (needs root).
//!
//! The machines are Linux network namespaces plugged into one bridge, with the addresses
//! 198.18.0.1, .2 and .3 (the benchmarking range; nothing leaves them), built by
//! `cptp::harness::netns`. Each peer listens on every interface (`-b 0.0.0.0`), so its first
//! line shows its machine's address, and joins the previous machine's peer by that
//! address once that peer's own join is done. Everything is removed at the end.
//!
//! Usage: `demo_hosts PATH-TO-PEER-BINARY [SECONDS]`

use cptp::harness::netns::Net;
use cptp::harness::{PATIENCE, Process, Scratch};
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

/// The course's chain: peer1 (table of 2), peer2 (1) joins peer1, peer3 (2) joins peer2.
const FOLDERS: [&str; 3] = ["peer1-2", "peer2-1", "peer3-2"];

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(peer) = args
        .next()
        .and_then(|p| PathBuf::from(p).canonicalize().ok())
    else {
        eprintln!("usage: demo_hosts PATH-TO-PEER-BINARY [SECONDS]");
        return ExitCode::from(2);
    };
    let watch = Duration::from_secs(args.next().and_then(|s| s.parse().ok()).unwrap_or(3));
    let net = match Net::build(FOLDERS.len()) {
        Ok(net) => net,
        Err(e) => {
            eprintln!("demo-hosts needs root, to make network namespaces: {e}");
            return ExitCode::FAILURE;
        }
    };
    let scratch = Scratch::new(peer);
    println!("Starting the chain peer1-2 <- peer2-1 <- peer3-2 on 198.18.0.1, .2, .3");
    let mut peers = match start_chain(&net, &scratch) {
        Ok(peers) => peers,
        Err(e) => {
            eprintln!("demo-hosts: {e}");
            return ExitCode::FAILURE;
        }
    };
    thread::sleep(watch);
    let shown: Vec<(Vec<String>, Vec<String>)> = peers
        .iter_mut()
        .map(|peer| {
            while peer.poll_line().is_some() {}
            (peer.seen.clone(), peer.stderr())
        })
        .collect();
    // What they print while being stopped (links closing) is not part of the chain; the
    // peers are stopped before their machines are removed.
    drop(peers);
    drop(net);
    for (i, (stdout, stderr)) in shown.iter().enumerate() {
        println!("\n===== {} on {} =====", FOLDERS[i], Net::address(i));
        println!("{}", stdout.join("\n"));
        if !stderr.is_empty() {
            println!("(stderr)\n{}", stderr.join("\n"));
        }
    }
    println!("\nAll three peers stopped; the namespaces are removed.");
    ExitCode::SUCCESS
}

/// Starts peer `i` on machine `i`, joining the one before, and waits (up to
/// [`PATIENCE`]) for its join to be done, so the chain forms in order.
fn start_chain(net: &Net, scratch: &Scratch) -> Result<Vec<Process>, String> {
    let mut peers: Vec<Process> = Vec::new();
    for (i, folder) in FOLDERS.iter().enumerate() {
        // The address from the previous peer's first line, as the harness parsed it.
        let target = peers.last().map(|p| p.addr.to_string());
        let mut args = vec!["-b", "0.0.0.0"];
        args.extend(target.iter().flat_map(|t| ["-p", t.as_str()]));
        let mut peer = scratch
            .command(folder, &args)
            .under(&net.exec(i))
            .try_run()?;
        if target.is_some() {
            peer.try_wait_for(PATIENCE, |l| l.starts_with("Connected to peer"))
                .map_err(|e| format!("{folder} did not join: {e}; it printed {:?}", peer.seen))?;
        }
        peers.push(peer);
    }
    Ok(peers)
}
