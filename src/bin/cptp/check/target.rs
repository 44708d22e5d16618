//! The implementation under test: started in a fresh folder named the course's way
//! (`peer1-2`), in its own process group, with its output read through a cap.
//!
//! A target can be anything a student wrote, so nothing it does may hang or exhaust
//! `cptp`: its stdout and stderr are read by threads of their own that keep at most
//! [`MAX_OUTPUT`] bytes and [`MAX_LINE`] bytes per line and drain the rest, and every wait
//! on it has a deadline. Dropping a [`Target`] kills its whole group and removes its
//! folder.

use super::cleanup;
use super::timing::scaled;
use peer::output::parse_address_line;
use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddrV4;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes of stdout (and, separately, stderr) kept per target; the rest is read and dropped.
pub const MAX_OUTPUT: usize = 256 * 1024;
/// Bytes kept of one line; a longer line is cut.
pub const MAX_LINE: usize = 4096;
/// PROTOCOL 7.1: the address line comes as soon as the listener is bound. Rule
/// 7.1-address-line allows 3 s for it.
pub const ADDRESS_WITHIN: Duration = Duration::from_secs(3);
/// The other rules only need the address, so they wait longer: on a loaded grading
/// machine a slow start then fails 7.1-address-line alone instead of every rule.
pub const ADDRESS_PATIENCE: Duration = Duration::from_secs(10);
/// How many lines may come before the address line and still be accepted as a late one.
const LINES_BEFORE_ADDRESS: usize = 20;

/// How to start the implementation under test.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The command and its arguments, run in the target's folder.
    pub command: Vec<String>,
    /// A folder whose contents are copied into each target folder first.
    pub copy: Option<PathBuf>,
}

/// One start of the target: its ID and table size (the folder name) and whom it joins.
#[derive(Debug, Clone)]
pub struct Spec {
    pub id: String,
    pub size: usize,
    pub join: Option<SocketAddrV4>,
}

impl Spec {
    pub fn new(id: &str, size: usize) -> Spec {
        Spec {
            id: id.to_string(),
            size,
            join: None,
        }
    }

    pub fn joining(id: &str, size: usize, peer: SocketAddrV4) -> Spec {
        Spec {
            join: Some(peer),
            ..Spec::new(id, size)
        }
    }

    /// The folder name, `ID-SIZE`.
    pub fn folder(&self) -> String {
        format!("{}-{}", self.id, self.size)
    }
}

/// Every way a target can fail to start or to say where it listens.
#[derive(Debug)]
pub enum StartError {
    /// The scratch folder could not be made or filled.
    Folder(PathBuf, io::Error),
    /// The command could not be run at all.
    Spawn(String, io::Error),
    /// No address line within the time allowed.
    NoAddress {
        within: Duration,
        exited: Option<String>,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Folder(path, e) => {
                write!(f, "cannot prepare the folder {}: {e}", path.display())
            }
            StartError::Spawn(command, e) => write!(f, "cannot run '{command}': {e}"),
            StartError::NoAddress {
                within,
                exited: Some(status),
            } => write!(
                f,
                "printed no address line within {:.1} s and exited ({status})",
                within.as_secs_f64()
            ),
            StartError::NoAddress {
                within,
                exited: None,
            } => write!(
                f,
                "printed no 'This peer address is IP:PORT located at ID' line within {:.1} s",
                within.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for StartError {}

/// What waiting for a stdout line gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Line(String),
    /// Nothing within the time.
    Quiet,
    /// Stdout closed: the target exited or closed it.
    Closed,
}

/// A running target. Dropping it kills its process group and removes its folder.
pub struct Target {
    pub spec: Spec,
    child: Child,
    pgid: i32,
    started: Instant,
    /// The scratch folder holding the `ID-SIZE` folder.
    scratch: PathBuf,
    stdout: Receiver<String>,
    /// Every stdout line taken so far, in order.
    seen: Vec<String>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// The address line and the address in it, once read.
    address: Option<(String, SocketAddrV4)>,
    /// Whatever the target printed, collected for the report when it is dropped.
    log: Arc<Mutex<Vec<String>>>,
}

static SCRATCH_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Target {
    /// Starts the target for `spec`. `log` receives its output for the report at the end.
    pub fn start(
        launcher: &Launcher,
        spec: Spec,
        log: Arc<Mutex<Vec<String>>>,
        groups: &Mutex<Vec<i32>>,
    ) -> Result<Target, StartError> {
        let n = SCRATCH_COUNTER.fetch_add(1, Ordering::Relaxed);
        let scratch = std::env::temp_dir().join(format!("cptp-check-{}-{n}", std::process::id()));
        let folder = scratch.join(spec.folder());
        cleanup::add_folder(scratch.clone());
        let prepared = std::fs::create_dir_all(&folder).and_then(|()| match &launcher.copy {
            Some(from) => copy_tree(from, &folder, 0),
            None => Ok(()),
        });
        if let Err(e) = prepared {
            cleanup::remove_folder(&scratch);
            return Err(StartError::Folder(folder, e));
        }
        let Some((program, args)) = launcher.command.split_first() else {
            cleanup::remove_folder(&scratch);
            let e = io::Error::new(io::ErrorKind::InvalidInput, "empty command");
            return Err(StartError::Spawn(String::new(), e));
        };
        let mut command = Command::new(resolve(program));
        command
            .args(args)
            .current_dir(&folder)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(peer) = spec.join {
            command.args(["-p", &peer.to_string()]);
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                cleanup::remove_folder(&scratch);
                return Err(StartError::Spawn(launcher.command.join(" "), e));
            }
        };
        let pgid = child.id() as i32;
        cleanup::add_group(pgid);
        lock(groups).push(pgid);
        let (tx, stdout) = channel();
        if let Some(out) = child.stdout.take() {
            spawn_reader(out, LineSink::Channel(tx));
        }
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(err) = child.stderr.take() {
            spawn_reader(err, LineSink::Store(Arc::clone(&stderr)));
        }
        Ok(Target {
            spec,
            child,
            pgid,
            started: Instant::now(),
            scratch,
            stdout,
            seen: Vec::new(),
            stderr,
            address: None,
            log,
        })
    }

    /// The folder name the target runs in.
    pub fn folder(&self) -> String {
        self.spec.folder()
    }

    /// How long ago the target was started.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits for the address line (within [`ADDRESS_PATIENCE`] of the start) and returns the
    /// address. A line that differs from the contract's only in wording is accepted here
    /// when it holds one IPv4 address and port: rule 7.1 judges the wording, the other
    /// rules only need the address.
    pub fn address(&mut self) -> Result<SocketAddrV4, StartError> {
        if let Some((_, addr)) = &self.address {
            return Ok(*addr);
        }
        let deadline = self.started + scaled(ADDRESS_PATIENCE);
        for _ in 0..LINES_BEFORE_ADDRESS {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Next::Line(line) => {
                    let found = parse_address_line(&line)
                        .map(|(addr, _)| addr)
                        .or_else(|| loose_address(&line));
                    if let Some(addr) = found {
                        self.address = Some((line, addr));
                        return Ok(addr);
                    }
                }
                Next::Quiet | Next::Closed => break,
            }
        }
        Err(StartError::NoAddress {
            within: scaled(ADDRESS_PATIENCE),
            exited: self.exit_status(),
        })
    }

    /// The address line as printed, once [`Target::address`] found it.
    pub fn address_line(&self) -> Option<&str> {
        self.address.as_ref().map(|(line, _)| line.as_str())
    }

    /// The next stdout line, waiting at most `within`.
    pub fn next_line(&mut self, within: Duration) -> Next {
        match self.stdout.recv_timeout(within) {
            Ok(line) => {
                self.seen.push(line.clone());
                Next::Line(line)
            }
            Err(RecvTimeoutError::Timeout) => Next::Quiet,
            Err(RecvTimeoutError::Disconnected) => Next::Closed,
        }
    }

    /// Every stdout line taken so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Every stderr line so far (up to the cap).
    pub fn stderr(&self) -> Vec<String> {
        lock(&self.stderr).clone()
    }

    /// `Some(status)` once the target has exited.
    pub fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        cleanup::kill_group(self.pgid);
        let _ = self.child.wait();
        // Whatever is still queued arrived before the kill: keep it for the report.
        while let Ok(line) = self.stdout.try_recv() {
            self.seen.push(line);
        }
        let mut log = lock(&self.log);
        log.push(format!("{} stdout:", self.folder()));
        log.extend(self.seen.iter().map(|l| format!("  | {l}")));
        let stderr = self.stderr();
        if !stderr.is_empty() {
            log.push(format!("{} stderr:", self.folder()));
            log.extend(stderr.iter().map(|l| format!("  | {l}")));
        }
        drop(log);
        cleanup::remove_folder(&self.scratch);
    }
}

/// The program to run: a relative path with a slash (`./target/debug/peer`) means the
/// one seen from where `cptp` runs, since the target runs in its own folder. A bare name
/// is looked up on PATH, as a shell would.
fn resolve(program: &str) -> PathBuf {
    let path = Path::new(program);
    if path.is_relative()
        && program.contains('/')
        && let Ok(absolute) = std::fs::canonicalize(path)
    {
        return absolute;
    }
    path.to_path_buf()
}

/// Finds `IP:PORT` in a line whose wording is not the contract's.
pub fn loose_address(line: &str) -> Option<SocketAddrV4> {
    line.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .find_map(|word| word.trim_end_matches(['.', ';']).parse().ok())
}

/// Where a reader thread puts the lines it reads.
enum LineSink {
    Channel(Sender<String>),
    Store(Arc<Mutex<Vec<String>>>),
}

impl LineSink {
    /// False once nobody listens any more.
    fn put(&self, line: String) -> bool {
        match self {
            LineSink::Channel(tx) => tx.send(line).is_ok(),
            LineSink::Store(store) => {
                lock(store).push(line);
                true
            }
        }
    }
}

/// Reads `stream` into lines on a thread of its own, keeping at most [`MAX_OUTPUT`] bytes;
/// after that it reads on and drops, so a target that floods never blocks on a full pipe.
fn spawn_reader(mut stream: impl Read + Send + 'static, sink: LineSink) {
    let spawned = thread::Builder::new()
        .name("target-output".into())
        .spawn(move || {
            let mut chunk = [0u8; 8192];
            let mut line = Vec::new();
            let mut kept = 0usize;
            let mut cut = false;
            let mut listening = true;
            loop {
                let n = match stream.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                for &byte in &chunk[..n] {
                    if byte != b'\n' {
                        if line.len() < MAX_LINE {
                            line.push(byte);
                        }
                        continue;
                    }
                    if kept < MAX_OUTPUT && listening {
                        kept += line.len() + 1;
                        let text = String::from_utf8_lossy(&line);
                        listening = sink.put(text.trim_end_matches('\r').to_string());
                    } else if !cut && listening {
                        cut = true;
                        listening = sink.put(format!(
                            "[cptp: output beyond {} KB not kept]",
                            MAX_OUTPUT / 1024
                        ));
                    }
                    line.clear();
                }
            }
            if !line.is_empty() && kept < MAX_OUTPUT && listening {
                sink.put(String::from_utf8_lossy(&line).into_owned());
            }
        });
    if let Err(e) = spawned {
        eprintln!("cptp check: cannot read the target's output: {e}");
    }
}

/// Copies the contents of `from` into `to`: directories, regular files and symbolic links
/// (recreated as links), at most 16 levels deep.
fn copy_tree(from: &Path, to: &Path, depth: usize) -> io::Result<()> {
    if depth > 16 {
        return Ok(());
    }
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            std::fs::create_dir_all(&dest)?;
            copy_tree(&entry.path(), &dest, depth + 1)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path())?;
            std::os::unix::fs::symlink(link, dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
