//! The implementation under test, started once per rule in a fresh folder named the
//! course's way (`peer1-2`) inside a scratch folder without dashes
//! (`/tmp/cptpcheck.PID.N/peer1-2`): a peer that splits its whole path at the dashes
//! still finds its ID and size.
//!
//! A target is a command (a student's `node peer.js`, the reference `peer`), run through
//! the harness in its own process group with its output capped, or a peer written in
//! Rust and run on threads of this process ([`Launcher::InProcess`], the tests' broken
//! peers). Either way a rule sees the same [`Target`]: its stdout lines, its stderr, whether
//! it still runs, and the TCP ports it listens on.
//!
//! **Where it listens** comes from the kernel, not from what it prints
//! ([`Target::address`]): the sockets its processes hold in LISTEN state. Of several, the
//! one named on a line that begins like the address line wins, else the one that answers a
//! silent join with cPTP; a port on some other line (another server's) never counts.
//! Only rule 7.1 judges the wording of the address line. Because the address is a socket
//! in LISTEN state, no rule joins a target that printed its address before listening.

use crate::contract::Header;
use crate::harness::cleanup;
use crate::harness::client::{drain, is_timeout};
use crate::harness::process::{Next, Process, Start, copy_tree};
use crate::harness::procfs::{self, Socket};
use crate::harness::sandbox::Sandbox;
use crate::sync::lock;
use crate::text::first;
use std::fmt;
use std::io::{self, Read};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes of stdout (and, separately, stderr) kept per target; the rest is counted.
pub const MAX_OUTPUT: usize = 256 * 1024;
/// Lines of a target's output quoted in a verdict.
const SHOWN_LINES: usize = 12;
/// Lines of each of a target's streams kept in a rule's evidence.
const EVIDENCE_LINES: usize = 200;

/// One start of the target: its ID and table size (the folder name) and whom it joins.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A peer run on threads of this process: given its spec and a console, it serves until
/// [`Console::stopped`]. When the function returns, the target has exited.
pub type InProcessPeer = dyn Fn(&Spec, &Console) + Send + Sync;

/// How to start the implementation under test.
#[derive(Clone)]
pub enum Launcher {
    /// A command run in the target's folder, after copying `copy`'s contents into it.
    /// `-p IP:PORT` is appended when the target must join.
    Command {
        command: Vec<String>,
        copy: Option<PathBuf>,
    },
    /// A peer written in Rust, run in this process (the fault fixtures of the tests).
    InProcess {
        name: String,
        peer: Arc<InProcessPeer>,
    },
}

impl Launcher {
    /// What is checked, for the report's title.
    pub fn name(&self) -> String {
        match self {
            Launcher::Command {
                command,
                copy: Some(dir),
            } => format!("{} (in a copy of {})", command.join(" "), dir.display()),
            Launcher::Command { command, .. } => command.join(" "),
            Launcher::InProcess { name, .. } => format!("{name} (in process)"),
        }
    }

    /// True for a command, which a sandbox can confine (an in-process peer is this
    /// process itself).
    pub fn confinable(&self) -> bool {
        matches!(self, Launcher::Command { .. })
    }

    /// True when the target is Node.js, whose writes to a pipe are synchronous on Linux:
    /// a line it printed is never stuck in a buffer.
    pub fn is_node(&self) -> bool {
        match self {
            Launcher::Command { command, .. } => command.first().is_some_and(|program| {
                let name = Path::new(program).file_name().unwrap_or_default();
                name == "node" || name == "nodejs"
            }),
            Launcher::InProcess { .. } => true,
        }
    }
}

/// Where and how the targets of one check run: their scratch folders and their sandbox.
#[derive(Debug)]
pub struct Grounds {
    pub scratches: Scratches,
    pub sandbox: Sandbox,
}

impl Grounds {
    /// No sandbox: for tests, and for in-process targets.
    pub fn unconfined() -> Grounds {
        Grounds {
            scratches: Scratches::new(),
            sandbox: Sandbox::none("in-process targets"),
        }
    }
}

/// Where the scratch folders of one check go, and their count.
#[derive(Debug)]
pub struct Scratches {
    base: PathBuf,
    count: AtomicU64,
}

impl Scratches {
    /// Scratch folders under the system's temporary folder, or `/tmp` if its path has a
    /// dash (a peer may split its whole path at the dashes).
    pub fn new() -> Scratches {
        let temp = std::env::temp_dir();
        let dashed = temp.to_string_lossy().contains('-');
        let base = match dashed && Path::new("/tmp").is_dir() {
            true => PathBuf::from("/tmp"),
            false => temp,
        };
        Scratches {
            base,
            count: AtomicU64::new(0),
        }
    }

    /// A new folder `cptpcheck.PID.N` (not yet created).
    fn next(&self) -> PathBuf {
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        self.base
            .join(format!("cptpcheck.{}.{n}", std::process::id()))
    }
}

impl Default for Scratches {
    fn default() -> Scratches {
        Scratches::new()
    }
}

/// What a rule keeps of the targets it starts: their output for its evidence, the limits
/// of the sandbox that stopped them, and the process groups still running (to kill if the
/// rule runs out of time). Clones share the same records.
#[derive(Clone, Default)]
pub struct Ledger {
    pub log: Arc<Mutex<Vec<String>>>,
    pub limits_hit: Arc<Mutex<Vec<String>>>,
    pub groups: Arc<Mutex<Vec<i32>>>,
}

/// Why a target has no address to join.
#[derive(Debug, Clone)]
pub enum NoAddress {
    /// It ended before listening.
    Exited { status: String, after: Duration },
    /// It ran the whole time but listened on no TCP port.
    NotListening { within: Duration },
}

impl fmt::Display for NoAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoAddress::Exited { status, after } => write!(
                f,
                "the target exited after {:.1} s ({status}) without listening on a TCP port",
                after.as_secs_f64()
            ),
            NoAddress::NotListening { within } => write!(
                f,
                "the target listened on no TCP port within {:.1} s",
                within.as_secs_f64()
            ),
        }
    }
}

/// Looks at the TCP sockets of a target's processes (of this process, for an in-process
/// peer).
#[derive(Debug, Clone, Copy)]
pub struct SocketsSeer(u32);

impl SocketsSeer {
    pub fn sockets(&self) -> Vec<Socket> {
        procfs::sockets(&procfs::family(self.0))
    }
}

/// What started: a child process, or an in-process peer.
enum Running {
    Process(Box<Process>),
    InProcess(InProcess),
}

/// A running target. Dropping it ends it (its whole process group), writes its output into
/// the rule's evidence and removes its scratch folder.
pub struct Target {
    pub spec: Spec,
    running: Running,
    scratch: PathBuf,
    /// The address found, once [`Target::address`] found it.
    address: Option<SocketAddrV4>,
    /// The first line that begins like the address line, and the address it names.
    claim: Option<(String, Option<SocketAddrV4>)>,
    /// Lines read while looking for the address, not yet handed to the rule.
    pending: Vec<String>,
    /// Every stdout line read so far, in order.
    seen: Vec<String>,
    /// What the rule keeps of its targets.
    ledger: Ledger,
    node: bool,
}

impl Target {
    /// Starts the target for `spec` in a new scratch folder, confined as `grounds` say; the
    /// `ledger` receives its output when it ends, and the limit that stopped it, if one did.
    pub fn start(
        launcher: &Launcher,
        spec: Spec,
        grounds: &Grounds,
        ledger: &Ledger,
    ) -> io::Result<Target> {
        let scratch = grounds.scratches.next();
        let folder = scratch.join(spec.folder());
        cleanup::add_folder(scratch.clone());
        let started = std::fs::create_dir_all(&folder).and_then(|()| match launcher {
            Launcher::Command { command, copy } => {
                if let Some(from) = copy {
                    copy_tree(from, &folder)?;
                }
                let Some((program, args)) = command.split_first() else {
                    return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
                };
                let mut args: Vec<String> = args.to_vec();
                if let Some(peer) = spec.join {
                    args.extend(["-p".to_string(), peer.to_string()]);
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let name = scratch
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let confinement = grounds
                    .sandbox
                    .confine(&name, &scratch, &folder, Path::new(program))
                    .map_err(|e| io::Error::other(format!("cannot make the sandbox: {e}")))?;
                let process = Start::new(program, &folder, &args)
                    .keep(MAX_OUTPUT)
                    .confine(confinement)
                    .spawn();
                process.map(|p| Running::Process(Box::new(p))).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot run '{}': {e}", command.join(" ")))
                })
            }
            Launcher::InProcess { peer, .. } => {
                InProcess::start(Arc::clone(peer), &spec, &folder).map(Running::InProcess)
            }
        });
        let running = match started {
            Ok(running) => running,
            Err(e) => {
                cleanup::remove_folder(&scratch);
                return Err(e);
            }
        };
        Ok(Target {
            spec,
            running,
            scratch,
            address: None,
            claim: None,
            pending: Vec::new(),
            seen: Vec::new(),
            ledger: ledger.clone(),
            node: launcher.is_node(),
        })
    }

    /// The folder name the target runs in.
    pub fn folder(&self) -> String {
        self.spec.folder()
    }

    /// The process group to kill when the rule runs out of time.
    pub fn group(&self) -> Option<i32> {
        match &self.running {
            Running::Process(p) => Some(p.pid() as i32),
            Running::InProcess(_) => None,
        }
    }

    /// True for a Node.js target, whose stdout is never block-buffered.
    pub fn is_node(&self) -> bool {
        self.node
    }

    /// How long ago the target was started.
    pub fn age(&self) -> Duration {
        match &self.running {
            Running::Process(p) => p.age(),
            Running::InProcess(p) => p.started.elapsed(),
        }
    }

    /// The next stdout line, waiting at most `within`.
    pub fn next_line(&mut self, within: Duration) -> Next {
        if !self.pending.is_empty() {
            return Next::Line(self.pending.remove(0));
        }
        let next = match &mut self.running {
            Running::Process(p) => p.next_within(within),
            Running::InProcess(p) => p.next_within(within),
        };
        if let Next::Line(line) = &next {
            self.seen.push(line.clone());
        }
        next
    }

    /// Every stdout line read so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// The stdout lines read so far as a report shows them: the first few, quoted, and
    /// how many more there were.
    pub fn shown(&self) -> String {
        let quoted: Vec<String> = self.seen.iter().map(|l| format!("{l:?}")).collect();
        format!("[{}]", first(&quoted, SHOWN_LINES))
    }

    /// Every stderr line so far (up to the cap).
    pub fn stderr(&self) -> Vec<String> {
        match &self.running {
            Running::Process(p) => p.stderr(),
            Running::InProcess(_) => Vec::new(),
        }
    }

    /// `Some(status)` once the target has exited.
    pub fn exit_status(&mut self) -> Option<String> {
        match &mut self.running {
            Running::Process(p) => p.exit_status(),
            Running::InProcess(p) => p.ended.load(Ordering::SeqCst).then(|| "it returned".into()),
        }
    }

    /// The TCP sockets the target holds: for a process, its group's; for an in-process
    /// peer, every socket of this process (a rule looks for its own connections in them).
    pub fn sockets(&self) -> Vec<Socket> {
        self.sockets_seer().sockets()
    }

    /// What looks at the target's sockets, apart from the target, for a thread that
    /// watches them while the rule reads the target's lines.
    pub fn sockets_seer(&self) -> SocketsSeer {
        SocketsSeer(match &self.running {
            Running::Process(p) => p.pid(),
            Running::InProcess(_) => std::process::id(),
        })
    }

    /// The addresses the target listens on now, with a listener on every address shown
    /// as 127.0.0.1 (where a local join reaches it).
    pub fn listening(&self) -> Vec<SocketAddrV4> {
        match &self.running {
            Running::Process(p) => p.listening().iter().map(|s| s.local).collect(),
            Running::InProcess(p) => lock(&p.console.listening).clone(),
        }
    }

    /// The first line that begins like the address line (read by [`Target::address`]).
    pub fn address_line(&self) -> Option<&str> {
        self.claim.as_ref().map(|(line, _)| line.as_str())
    }

    /// The address the address line names, if it names one.
    pub fn claimed(&self) -> Option<SocketAddrV4> {
        self.claim.as_ref().and_then(|(_, addr)| *addr)
    }

    /// Where the target listens, waiting up to `patience` from its start (see the module's
    /// notes): a socket in LISTEN state, chosen by the address line or a silent join.
    /// Lines read meanwhile are handed to the rule afterwards, in order.
    pub fn address(
        &mut self,
        patience: Duration,
        grace: Duration,
    ) -> Result<SocketAddrV4, NoAddress> {
        if let Some(addr) = self.address {
            return Ok(addr);
        }
        let deadline = Instant::now() + patience.saturating_sub(self.age());
        let mut first_listener: Option<Instant> = None;
        let mut claimed_at: Option<Instant> = None;
        let mut closed = false;
        loop {
            while !closed {
                let line = match &mut self.running {
                    Running::Process(p) => p.next_within(Duration::ZERO),
                    Running::InProcess(p) => p.next_within(Duration::ZERO),
                };
                match line {
                    Next::Line(line) => {
                        self.seen.push(line.clone());
                        if self.claim.is_none() && begins_like_address_line(&line) {
                            self.claim = Some((line.clone(), loose_address(&line)));
                            claimed_at = Some(Instant::now());
                        }
                        self.pending.push(line);
                    }
                    Next::Quiet => break,
                    Next::Closed => closed = true,
                }
            }
            let listening = self.listening();
            if !listening.is_empty() {
                let at = *first_listener.get_or_insert_with(Instant::now);
                let claimed = self.claimed();
                if let Some(claim) = claimed
                    && let Some(addr) = listening.iter().find(|a| same_port(a, &claim))
                {
                    return Ok(self.found(*addr));
                }
                // A line named a port not listened on (yet): give it a moment to listen,
                // then believe the kernel. No line yet: give one a moment to come.
                let waited = match (claimed, claimed_at) {
                    (Some(_), Some(line)) => line.elapsed() >= grace,
                    _ => at.elapsed() >= grace,
                };
                if waited || Instant::now() >= deadline {
                    let addr = self.choose(&listening);
                    return Ok(self.found(addr));
                }
            }
            if let Some(status) = self.exit_status() {
                return Err(NoAddress::Exited {
                    status,
                    after: self.age(),
                });
            }
            if Instant::now() >= deadline {
                return Err(NoAddress::NotListening { within: patience });
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Reads lines until one satisfies `matches`, for up to `within`: that line, or `None`
    /// (the lines read stay in [`Target::seen`]).
    pub fn wait_for_line(
        &mut self,
        within: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Next::Line(line) if matches(&line) => return Some(line),
                Next::Line(_) => {}
                Next::Quiet | Next::Closed => return None,
            }
        }
    }

    /// The address the address line names, reading lines for up to `patience` from the
    /// target's start if none has named one yet. Lines read are handed to the rule later.
    pub fn wait_claim(&mut self, patience: Duration) -> Option<SocketAddrV4> {
        while self.claim.is_none() {
            let left = patience.saturating_sub(self.age());
            let line = match &mut self.running {
                Running::Process(p) => p.next_within(left),
                Running::InProcess(p) => p.next_within(left),
            };
            let Next::Line(line) = line else { break };
            self.seen.push(line.clone());
            if begins_like_address_line(&line) {
                self.claim = Some((line.clone(), loose_address(&line)));
            }
            self.pending.push(line);
        }
        self.claimed()
    }

    fn found(&mut self, addr: SocketAddrV4) -> SocketAddrV4 {
        self.address = Some(addr);
        addr
    }

    /// Of several listening sockets, the one that answers a silent join with a cPTP
    /// header; the first if none does (or there is only one). That join is a real one: the
    /// peer lists it until it sees it leave, so it is given a moment to, and the evidence
    /// says so.
    fn choose(&self, listening: &[SocketAddrV4]) -> SocketAddrV4 {
        if let [only] = listening {
            return *only;
        }
        let Some(found) = listening.iter().find(|addr| answers_cptp(**addr)) else {
            return listening[0];
        };
        lock(&self.ledger.log).push(format!(
            "it listens on {} sockets and no line names one: cptp joined {found} once, which answered with cPTP",
            listening.len()
        ));
        thread::sleep(Duration::from_millis(300));
        *found
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Running::Process(p) = &mut self.running
            && let Some(hit) = p.limit_hit()
        {
            lock(&self.ledger.limits_hit).push(format!("{} {hit}", self.spec.folder()));
        }
        // Once it is reaped its group's ID may be another's: forget it first.
        if let Some(group) = self.group() {
            lock(&self.ledger.groups).retain(|g| *g != group);
        }
        match &mut self.running {
            Running::Process(p) => p.kill(),
            Running::InProcess(p) => p.stop(),
        }
        // The lines the harness read after the rule stopped taking them belong to the
        // evidence too.
        let rest = match &mut self.running {
            // The process kept every line it handed over, and then the rest.
            Running::Process(p) => p.seen.split_off(self.seen.len().min(p.seen.len())),
            Running::InProcess(p) => p.rest(),
        };
        self.seen.extend(rest);
        let stderr = self.stderr();
        let mut log = lock(&self.ledger.log);
        for (name, lines) in [("stdout", &self.seen), ("stderr", &stderr)] {
            if lines.is_empty() && name == "stderr" {
                continue;
            }
            log.push(format!("{} {name}:", self.folder()));
            log.extend(
                lines
                    .iter()
                    .take(EVIDENCE_LINES)
                    .map(|l| format!("  | {l}")),
            );
            if lines.len() > EVIDENCE_LINES {
                log.push(format!(
                    "  | ... and {} more lines",
                    lines.len() - EVIDENCE_LINES
                ));
            }
        }
        drop(log);
        cleanup::remove_folder(&self.scratch);
    }
}

/// True when `a` and `b` have the same port: a listener on every address is shown as
/// 127.0.0.1, and a line may name the machine's address for it.
fn same_port(a: &SocketAddrV4, b: &SocketAddrV4) -> bool {
    a.port() == b.port()
}

/// True for a line that begins like PROTOCOL 7.1's address line, whatever its spacing,
/// punctuation or case: `This peer address is ...`.
pub fn begins_like_address_line(line: &str) -> bool {
    let words: Vec<String> = line
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(4)
        .map(str::to_ascii_lowercase)
        .collect();
    words.len() >= 3 && words[..3] == ["this", "peer", "address"]
}

/// The first `IP:PORT` anywhere in a line, whatever surrounds it (`:127.0.0.1:4000`,
/// `[127.0.0.1:4000]`, `127.0.0.1:4000.`).
pub fn loose_address(line: &str) -> Option<SocketAddrV4> {
    let bytes = line.as_bytes();
    (0..bytes.len())
        .filter(|&i| bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()))
        .find_map(|start| {
            let end = bytes[start..]
                .iter()
                .position(|b| !(b.is_ascii_digit() || *b == b'.' || *b == b':'))
                .map_or(bytes.len(), |n| start + n);
            line[start..end].trim_end_matches(['.', ':']).parse().ok()
        })
}

/// True when a silent join to `addr` gets the start of a cPTP message within a moment.
fn answers_cptp(addr: SocketAddrV4) -> bool {
    let Ok(stream) = TcpStream::connect_timeout(&addr.into(), Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut first = [0u8; 4];
    let mut got = 0;
    while got < first.len() {
        match (&mut &stream).read(&mut first[got..]) {
            Ok(0) => return false,
            Ok(n) => got += n,
            Err(e) if is_timeout(&e) => return false,
            Err(_) => return false,
        }
    }
    drain(&stream);
    Header::read(first).check().is_ok()
}

/// The console of an in-process peer: what it prints, where it listens, when to stop.
pub struct Console {
    lines: Sender<String>,
    listening: Arc<Mutex<Vec<SocketAddrV4>>>,
    stop: Arc<AtomicBool>,
    folder: PathBuf,
}

impl Console {
    /// Prints one line on the peer's stdout.
    pub fn say(&self, line: impl Into<String>) {
        let _ = self.lines.send(line.into());
    }

    /// Binds a listener on 127.0.0.1 at a port the kernel picks, and records it as one the
    /// peer listens on (non-blocking: poll it, and look at [`Console::stopped`]). Its
    /// address can be reused, so the peer can join from its listening port (PROTOCOL 6.1).
    pub fn listen(&self) -> io::Result<TcpListener> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        let any: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
        socket.bind(&any.into())?;
        socket.listen(128)?;
        let listener: TcpListener = socket.into();
        listener.set_nonblocking(true)?;
        if let Ok(std::net::SocketAddr::V4(addr)) = listener.local_addr() {
            lock(&self.listening).push(addr);
        }
        Ok(listener)
    }

    /// True once the target is being ended: the peer returns.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The peer's folder (`ID-SIZE`).
    pub fn folder(&self) -> &Path {
        &self.folder
    }
}

/// An in-process peer running on a thread of its own.
struct InProcess {
    console: Arc<Console>,
    lines: Receiver<String>,
    ended: Arc<AtomicBool>,
    started: Instant,
    thread: Option<thread::JoinHandle<()>>,
}

impl InProcess {
    fn start(peer: Arc<InProcessPeer>, spec: &Spec, folder: &Path) -> io::Result<InProcess> {
        let (tx, lines) = channel();
        let console = Arc::new(Console {
            lines: tx,
            listening: Arc::default(),
            stop: Arc::default(),
            folder: folder.to_path_buf(),
        });
        let ended = Arc::new(AtomicBool::new(false));
        let (console_, ended_, spec) = (Arc::clone(&console), Arc::clone(&ended), spec.clone());
        let thread = thread::Builder::new()
            .name(format!("in-process {}", spec.folder()))
            .spawn(move || {
                peer(&spec, &console_);
                lock(&console_.listening).clear();
                ended_.store(true, Ordering::SeqCst);
            })?;
        Ok(InProcess {
            console,
            lines,
            ended,
            started: Instant::now(),
            thread: Some(thread),
        })
    }

    fn next_within(&mut self, within: Duration) -> Next {
        match self.lines.recv_timeout(within) {
            Ok(line) => Next::Line(line),
            Err(RecvTimeoutError::Timeout) if self.ended.load(Ordering::SeqCst) => Next::Closed,
            Err(RecvTimeoutError::Timeout) => Next::Quiet,
            Err(RecvTimeoutError::Disconnected) => Next::Closed,
        }
    }

    fn stop(&mut self) {
        self.console.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Lines printed but not yet read.
    fn rest(&mut self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_found_whatever_surrounds_it() {
        for line in [
            "This peer address is 127.0.0.1:4000 located at peer1",
            "This peer address is :127.0.0.1:4000 located at peer2",
            "this peer address: [127.0.0.1:4000].",
        ] {
            assert!(begins_like_address_line(line), "{line}");
            assert_eq!(
                loose_address(line),
                Some("127.0.0.1:4000".parse().unwrap()),
                "{line}"
            );
        }
        let other = "ImageDB server is started at timestamp: 12 and is listening on 127.0.0.1:5000";
        assert!(!begins_like_address_line(other));
        assert_eq!(loose_address("version 1.2.3 at 10:30"), None);
    }

    #[test]
    fn scratch_folders_have_no_dashes() {
        let scratches = Scratches::new();
        let a = scratches.next();
        let b = scratches.next();
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("cptpcheck.") && !name.contains('-'),
            "{name}"
        );
    }
}
