//! `peer_tools`: what the tests, the benchmark and the soak run of `peer` share.
//!
//! - [`process`]: the `peer` binary (or anything that prints a peer's first line) run as a
//!   child in a folder named like the course's (`peer1-2`), its lines read with deadlines;
//! - [`net`]: joining a peer the way a peer does, and small socket helpers;
//! - [`fake`]: stand-in peers written in a few lines, which reply whatever a test wants;
//! - [`procfs`]: what /proc says about a running peer (threads, memory, CPU time);
//! - [`netns`]: test hosts on one switch, made of Linux network namespaces (needs root);
//! - [`need_tool`] and [`skip_or_fail`]: what a test does when a program it needs (`node`,
//!   `prlimit`, `tshark`, `ip`) or root is missing: skip on a developer's machine, fail
//!   under CI;
//! - [`run_bounded`]: a short-lived program run to its end, or killed at a deadline.
//!
//! The integration tests in `tests/` and the examples take it as a dev-dependency; `bench`,
//! `soak`, `floor` and `map_bench` in `src/bin/` are the tools behind `make bench`,
//! `make soak` and `make map-bench`.

pub mod process;
pub mod net;
pub mod fake;
pub mod procfs;
pub mod netns;

pub use fake::FakePeer;
pub use net::{dead_address, hold_open, jammed_listener, join, listed, local_addr, reset};
pub use process::{Capture, PeerProcess, Scratch, Start};

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

/// How long anything waits for what a peer should do promptly.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// True if the program `tool` can be started here.
pub fn has_tool(tool: &str) -> bool {
    run_bounded(Command::new(tool).arg("--version"), PATIENCE).is_ok()
}

/// Runs `command` to its end with stdin empty, for up to `limit`: its exit status and
/// everything it printed. `Err` says why not: it could not start, or it ran longer and was
/// killed. Threads read stdout and stderr, so a program that fills a pipe is not stuck.
pub fn run_bounded(command: &mut Command, limit: Duration) -> Result<Output, String> {
    let deadline = Instant::now() + limit;
    let what = format!("{:?}", command.get_program());
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let stdout = read_to_end(child.stdout.take());
    let stderr = read_to_end(child.stderr.take());
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} still ran after {limit:?}; killed"));
            }
            Err(e) => return Err(format!("waiting for {what}: {e}")),
        }
    };
    // A child of the program may hold the pipes open: what came by the deadline counts.
    let collect = |text: Receiver<Vec<u8>>| {
        let left = deadline.saturating_duration_since(Instant::now());
        text.recv_timeout(left.max(Duration::from_millis(100)))
            .unwrap_or_default()
    };
    Ok(Output {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

/// Reads `pipe` to its end on a thread of its own; the bytes arrive on the channel.
fn read_to_end(pipe: Option<impl Read + Send + 'static>) -> Receiver<Vec<u8>> {
    let (tx, rx) = channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = tx.send(bytes);
        });
    } else {
        let _ = tx.send(Vec::new());
    }
    rx
}

/// Whether a test that needs the program `tool` can run; see [`skip_or_fail`].
pub fn need_tool(tool: &str) -> bool {
    if has_tool(tool) {
        return true;
    }
    skip_or_fail(&format!("{tool} is missing; install it to run this test"));
    false
}

/// The one policy for a test that cannot run here (a program or a permission missing):
/// skipped with a visible message on a developer's machine, a failure under CI (the
/// environment variable `CI` is set), where `.ci/run` installs what the tests need.
pub fn skip_or_fail(reason: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    assert!(
        !ci,
        "{reason}; CI is set, so this is a failure (.ci/run installs what tests need)"
    );
    // Straight to stderr: the test harness captures `eprintln!` of a passing test.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}
