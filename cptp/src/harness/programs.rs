//! Programs a test or a tool runs besides the peer under test: a short-lived one run to
//! its end with a deadline ([`run_bounded`]), whether one is there ([`has_tool`]), a binary
//! of this workspace ([`workspace_binary`]), and the one policy for a test whose program or
//! permission is missing ([`need_tool`], [`skip_or_fail`]).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

/// How long a test waits for what a peer should do promptly.
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

/// The binary `name` of another package of this workspace, for a test that runs it (the
/// checker's tests run the `peer` binary as a target): the one cargo built beside the
/// running test's own executable, built now with `cargo build --bin NAME` if it is missing.
/// Panics if it cannot be had.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/PROFILE/deps/TEST-HASH: the binaries are in target/PROFILE.
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a test executable inside target/PROFILE/deps")
        .to_path_buf();
    let binary = profile_dir.join(name);
    if !binary.is_file() {
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let mut build = Command::new(cargo);
        // From the workspace's top, over all its packages: the binary may be another's.
        build.args(["build", "--workspace", "--bin", name]);
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let top = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = run_bounded(build.current_dir(top), Duration::from_secs(600))
            .unwrap_or_else(|e| panic!("cannot build {name}: {e}"));
        assert!(
            out.status.success() && binary.is_file(),
            "cargo build --bin {name} did not make {}: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    binary
}
