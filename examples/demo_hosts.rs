//! The course's three-peer chain on three machines: `make demo-hosts` (needs root).
//!
//! The machines are Linux network namespaces plugged into one bridge, with the addresses
//! 198.18.0.1, .2 and .3 (the benchmarking range; nothing leaves them). Each peer listens on
//! every interface (`-b 0.0.0.0`), so its first line shows its machine's address, and
//! joins the next machine's peer by that address. Everything is removed at the end.
//!
//! Usage: `demo_hosts PATH-TO-PEER-BINARY [SECONDS]`

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

/// The course's chain: peer1 (table of 2), peer2 (1) joins peer1, peer3 (2) joins peer2.
const FOLDERS: [&str; 3] = ["peer1-2", "peer2-1", "peer3-2"];

/// Runs one `ip` command line; what it says on failure goes straight to stderr.
fn ip(line: &str) -> Result<(), String> {
    let status = Command::new("ip").args(line.split(' ')).status();
    let ok = status.is_ok_and(|s| s.success());
    ok.then_some(()).ok_or_else(|| format!("ip {line} failed"))
}

/// The namespaces of this run: the switch first, then the hosts. Removed when dropped.
struct Machines(Vec<String>);

impl Machines {
    /// A bridge `br0` in a switch namespace; host `i` plugs in with `eth0` at 198.18.0.i.
    fn build(tag: &str) -> Result<Machines, String> {
        let sw = format!("{tag}-switch");
        let mut script = vec![
            format!("netns add {sw}"),
            format!("-n {sw} link add br0 type bridge"),
        ];
        script.push(format!("-n {sw} link set br0 up"));
        for i in 1..=3 {
            let h = format!("{tag}-h{i}");
            script.extend([
                format!("netns add {h}"),
                format!("-n {h} link add eth0 type veth peer name v{i} netns {sw}"),
                format!("-n {sw} link set v{i} master br0 up"),
                format!("-n {h} addr add 198.18.0.{i}/24 dev eth0"),
                format!("-n {h} link set eth0 up"),
                format!("-n {h} link set lo up"),
            ]);
        }
        let mut made = Machines(Vec::new());
        for line in &script {
            ip(line)?;
            made.0
                .extend(line.strip_prefix("netns add ").map(String::from));
        }
        Ok(made)
    }
}

impl Drop for Machines {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = ip(&format!("netns del {name}"));
        }
    }
}

/// A peer on one machine: its stdout lines as they come (stderr goes to ours). Killed
/// when dropped.
struct Running {
    child: Child,
    lines: Receiver<String>,
    shown: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(peer: &Path, host: &str, dir: PathBuf, args: &[&str]) -> Result<Running, String> {
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut command = Command::new("ip");
    command.args(["netns", "exec", host]).arg(peer).args(args);
    let spawned = command.current_dir(&dir).stdout(Stdio::piped()).spawn();
    let mut child = spawned.map_err(|e| format!("cannot start {}: {e}", peer.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, lines) = channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = lines.recv_timeout(Duration::from_secs(10));
    let shown = vec![first.map_err(|_| format!("{} printed no address line", dir.display()))?];
    Ok(Running {
        child,
        lines,
        shown,
    })
}

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
    let tag = format!("peer-demo-{}", std::process::id());
    let machines = match Machines::build(&tag) {
        Ok(machines) => machines,
        Err(e) => {
            eprintln!("demo-hosts needs root, to make network namespaces: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = std::env::temp_dir().join(&tag);
    let result = run(&peer, &machines, &dir, watch);
    drop(machines);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        eprintln!("demo-hosts: {e}");
        return ExitCode::FAILURE;
    }
    println!("\nAll three peers stopped; the namespaces are removed.");
    ExitCode::SUCCESS
}

fn run(peer: &Path, machines: &Machines, dir: &Path, watch: Duration) -> Result<(), String> {
    println!("Starting the chain peer1-2 <- peer2-1 <- peer3-2 on 198.18.0.1, .2, .3");
    let mut peers: Vec<Running> = Vec::new();
    for (i, folder) in FOLDERS.iter().enumerate() {
        let target = peers
            .last()
            .and_then(|p| p.shown[0].split_whitespace().nth(4));
        let mut args = vec!["-b", "0.0.0.0"];
        args.extend(target.map(|t| ["-p", t]).iter().flatten());
        peers.push(start(peer, &machines.0[i + 1], dir.join(folder), &args)?);
    }
    let until = Instant::now() + watch;
    while Instant::now() < until {
        for peer in &mut peers {
            peer.shown.extend(peer.lines.try_iter());
        }
        thread::sleep(Duration::from_millis(20));
    }
    // What they print while being stopped (links closing) is not part of the chain.
    for (i, peer) in peers.iter_mut().enumerate() {
        let _ = peer.child.kill();
        let _ = peer.child.wait();
        let shown = peer.shown.join("\n");
        println!(
            "\n===== {} on 198.18.0.{} =====\n{shown}",
            FOLDERS[i],
            i + 1
        );
    }
    Ok(())
}
