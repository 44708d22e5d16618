//! A program under test run as a child: in a folder of its own (named the course's way,
//! `peer1-2`), in a process group of its own, its lines read with deadlines, and the whole
//! group killed when it is dropped.
//!
//! The program can be anything a student wrote, so nothing it does may hang or exhaust
//! whoever runs it: stdout and stderr are read by threads of their own into line queues
//! that keep at most [`Start::keep`] bytes (and [`MAX_LINE`] bytes of one line) and count
//! the rest; every wait has a deadline; killing the group ends whatever it started.
//!
//! What differs between users is an option of [`Start`]: where the output goes
//! ([`Capture`]: lines, a file, nowhere, or a pipe left unread), a program to run under
//! (`taskset`, `prlimit`, `ip netns exec`), extra environment. [`Start::spawn`] only
//! starts; [`Start::run`] also waits for the address line of PROTOCOL 7.1 and reads it
//! strictly, which is what the peer's own tests want (the checker finds the address from
//! the kernel instead, see [`Process::listening`]).

use super::cleanup;
use super::procfs::{self, Socket};
use super::programs::PATIENCE;
use super::sandbox::Confinement;
use crate::contract::line;
use crate::sync::lock;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::SocketAddrV4;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// Bytes kept of one line; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 4096;
/// Bytes of output kept per stream unless [`Start::keep`] says otherwise.
pub const DEFAULT_KEEP: usize = 16 << 20;

/// A folder removed when dropped, holding course-style peer folders, and the binary to
/// start in them: how the peer's tests start peers.
pub struct Scratch {
    dir: tempfile::TempDir,
    binary: PathBuf,
}

impl Scratch {
    /// A new scratch folder for peers run from `binary` (in a test of the peer:
    /// `env!("CARGO_BIN_EXE_peer")`).
    pub fn new(binary: impl Into<PathBuf>) -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
            binary: binary.into(),
        }
    }

    /// The folder `name` inside the scratch folder, created the first time.
    pub fn folder(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(&path).expect("create peer folder");
        path
    }

    /// How to start the binary in the folder `name` with `args`, options still to add.
    pub fn command(&self, name: &str, args: &[&str]) -> Start {
        Start::new(&self.binary, &self.folder(name), args)
    }

    /// Starts the binary in the folder `name` with `args` and waits for its address line.
    pub fn start(&self, name: &str, args: &[&str]) -> Process {
        self.command(name, args).run()
    }
}

/// Where a child's stdout or stderr goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Capture {
    /// A pipe read line by line by a thread of the harness (the default).
    Lines,
    /// `stdout.txt` or `stderr.txt` in the program's folder: printing costs the program
    /// one write and wakes nobody, as with output redirected to a file.
    File,
    /// Nowhere.
    Discard,
    /// A pipe read up to the first line and never again, though kept open: the program
    /// meets a full pipe (stdout only).
    Unread,
}

/// How to start a program: what to run, where, and the options.
pub struct Start {
    program: PathBuf,
    folder: PathBuf,
    args: Vec<String>,
    under: Vec<String>,
    env: Vec<(String, String)>,
    stdout: Capture,
    stderr: Capture,
    keep: usize,
    confinement: Confinement,
}

impl Start {
    /// `program` run in `folder` (created if missing) with `args`; both outputs read as
    /// lines, stdin empty, and `RUST_LOG` removed so a Rust peer logs at its default level.
    /// A relative `program` with a slash (`./target/debug/peer`) is the one seen from here,
    /// not from `folder`; a bare name is looked up on PATH, as a shell would.
    pub fn new(program: impl Into<PathBuf>, folder: &Path, args: &[&str]) -> Start {
        Start {
            program: program.into(),
            folder: folder.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            under: Vec::new(),
            env: Vec::new(),
            stdout: Capture::Lines,
            stderr: Capture::Lines,
            keep: DEFAULT_KEEP,
            confinement: Confinement::default(),
        }
    }

    /// Runs the program confined: under the sandbox's command, with its limits, in its
    /// control group (see [`super::sandbox`]).
    pub fn confine(mut self, confinement: Confinement) -> Start {
        self.confinement = confinement;
        self
    }

    /// Runs the program under another, e.g. `["taskset", "-c", "0"]`: the program's path
    /// and arguments follow `wrapper`.
    pub fn under(mut self, wrapper: &[&str]) -> Start {
        self.under = wrapper.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Sets an environment variable for the program.
    pub fn env(mut self, key: &str, value: &str) -> Start {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn stdout(mut self, to: Capture) -> Start {
        self.stdout = to;
        self
    }

    pub fn stderr(mut self, to: Capture) -> Start {
        self.stderr = to;
        self
    }

    /// Keeps at most `bytes` of each stream's lines; later lines are counted, and one
    /// note line says that output was dropped.
    pub fn keep(mut self, bytes: usize) -> Start {
        self.keep = bytes;
        self
    }

    /// Starts the program and waits for its address line; panics (with what it printed)
    /// if that fails.
    pub fn run(self) -> Process {
        self.try_run().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the program and waits up to [`PATIENCE`] for its first line, which must be
    /// the address line worded exactly as PROTOCOL 7.1 says.
    pub fn try_run(self) -> Result<Process, String> {
        let what = format!("{} in {}", self.program.display(), self.folder.display());
        let mut process = self
            .spawn()
            .map_err(|e| format!("cannot start {what}: {e}"))?;
        let first = match process.next_within(PATIENCE) {
            Next::Line(line) => line,
            other => {
                process.err.wait_closed(Duration::from_secs(1));
                let why = match other {
                    Next::Closed => "stdout closed before the address line".to_string(),
                    _ => format!("no address line within {PATIENCE:?}"),
                };
                return Err(format!("{what}: {why}; stderr: {:#?}", process.stderr()));
            }
        };
        let (addr, id) = line::parse_address(&first)
            .ok_or_else(|| format!("{what}: the first line was {first:?}, not an address"))?;
        process.addr = addr;
        process.id = id.to_string();
        process.started_in = process.started.elapsed();
        Ok(process)
    }

    /// Starts the program in a process group of its own and returns at once.
    pub fn spawn(self) -> io::Result<Process> {
        std::fs::create_dir_all(&self.folder)?;
        let program = resolve(&self.program);
        let under: Vec<String> = self
            .confinement
            .wrapper
            .iter()
            .chain(&self.under)
            .cloned()
            .collect();
        let mut command = match under.split_first() {
            Some((wrapper, wrapper_args)) => {
                let mut c = Command::new(wrapper);
                c.args(wrapper_args).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        command
            .args(&self.args)
            .current_dir(&self.folder)
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(self.stdio(self.stdout, "stdout.txt")?)
            .stderr(self.stdio(self.stderr, "stderr.txt")?)
            .process_group(0);
        // SAFETY: the closure only makes system calls on what was prepared before the fork.
        unsafe {
            command.pre_exec(self.confinement.before_exec());
        }
        let mut child = command.spawn()?;
        let started = Instant::now();
        let pgid = child.id() as i32;
        cleanup::add_group(pgid);
        let out = Stream::read(
            child.stdout.take(),
            self.stdout == Capture::Unread,
            self.keep,
        );
        let err = Stream::read(child.stderr.take(), false, self.keep);
        Ok(Process {
            child,
            pgid,
            reaped: false,
            started_at: SystemTime::now(),
            confinement: self.confinement,
            folder: self.folder,
            stdout: self.stdout,
            stderr: self.stderr,
            out,
            err,
            file_read: 0,
            started,
            seen: Vec::new(),
            addr: SocketAddrV4::new([0, 0, 0, 0].into(), 0),
            id: String::new(),
            started_in: Duration::ZERO,
        })
    }

    fn stdio(&self, output: Capture, file: &str) -> io::Result<Stdio> {
        Ok(match output {
            Capture::Lines | Capture::Unread => Stdio::piped(),
            Capture::Discard => Stdio::null(),
            Capture::File => Stdio::from(File::create(self.folder.join(file))?),
        })
    }
}

/// The program to run: a relative path with a slash means the one seen from here, since
/// the program runs in its own folder.
fn resolve(program: &Path) -> PathBuf {
    let relative_with_slash = program.is_relative() && program.components().count() > 1;
    match relative_with_slash {
        true => std::fs::canonicalize(program).unwrap_or_else(|_| program.to_path_buf()),
        false => program.to_path_buf(),
    }
}

/// What waiting for a stdout line gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Line(String),
    /// Nothing within the time.
    Quiet,
    /// Stdout closed: the program exited or closed it.
    Closed,
}

/// A running program, its whole process group killed when dropped.
pub struct Process {
    child: Child,
    pgid: i32,
    /// The program has been reaped: its process ID is no longer its own.
    reaped: bool,
    /// When it started, by the clock files are stamped with.
    started_at: SystemTime,
    /// The sandbox's limits and control group, if any.
    confinement: Confinement,
    folder: PathBuf,
    stdout: Capture,
    stderr: Capture,
    out: Arc<Stream>,
    err: Arc<Stream>,
    /// With stdout in a file: how many of its bytes have been read as lines.
    file_read: u64,
    started: Instant,
    /// Every stdout line taken so far, in order.
    pub seen: Vec<String>,
    /// The address from the address line ([`Start::run`] only; 0.0.0.0:0 otherwise).
    pub addr: SocketAddrV4,
    /// The ID from the address line ([`Start::run`] only).
    pub id: String,
    /// From starting the process to its address line ([`Start::run`] only).
    pub started_in: Duration,
}

impl Process {
    /// The next stdout line, waiting at most `within`.
    pub fn next_within(&mut self, within: Duration) -> Next {
        let next = match self.stdout {
            Capture::File => self.next_in_file(within),
            _ => self.out.pop(within),
        };
        if let Next::Line(line) = &next {
            self.seen.push(line.clone());
        }
        next
    }

    /// With stdout in a file: the next whole line, polling the file until `within`.
    fn next_in_file(&mut self, within: Duration) -> Next {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.whole_line_in_file() {
                return Next::Line(line);
            }
            if Instant::now() >= deadline {
                return Next::Quiet;
            }
            thread::sleep(Duration::from_micros(200));
        }
    }

    fn whole_line_in_file(&mut self) -> Option<String> {
        let mut file = File::open(self.folder.join("stdout.txt")).ok()?;
        file.seek(SeekFrom::Start(self.file_read)).ok()?;
        let mut line = Vec::new();
        BufReader::new(file).read_until(b'\n', &mut line).ok()?;
        if line.pop() != Some(b'\n') {
            return None;
        }
        self.file_read += line.len() as u64 + 1;
        Some(String::from_utf8_lossy(&line).into_owned())
    }

    /// The next stdout line, waiting up to [`PATIENCE`]; panics with what was printed if
    /// none comes (for tests).
    pub fn next_line(&mut self) -> String {
        match self.next_within(PATIENCE) {
            Next::Line(line) => line,
            Next::Quiet => panic!(
                "no line within {PATIENCE:?}{}; stdout so far: {:#?}\nstderr: {:#?}",
                self.out.dropped_note(),
                self.seen,
                self.stderr()
            ),
            Next::Closed => panic!(
                "closed stdout; stdout so far: {:#?}\nstderr: {:#?}",
                self.seen,
                self.stderr()
            ),
        }
    }

    /// The next stdout line and when the harness read it, if one has come; never waits.
    pub fn poll_line(&mut self) -> Option<(String, Instant)> {
        if self.stdout == Capture::File {
            return match self.next_within(Duration::ZERO) {
                Next::Line(line) => Some((line, Instant::now())),
                _ => None,
            };
        }
        let (line, at) = self.out.pop_timed()?;
        self.seen.push(line.clone());
        Some((line, at))
    }

    /// Asserts that the next lines are exactly `expected`.
    pub fn expect_lines(&mut self, expected: &[&str]) {
        for want in expected {
            let got = self.next_line();
            assert_eq!(&got, want, "stdout so far: {:#?}", self.seen);
        }
    }

    /// Asserts that the next lines are what a joiner prints for a Redirect from `id` at
    /// `port` listing `peers` (PROTOCOL 6.3).
    pub fn expect_redirect(&mut self, id: &str, port: u16, peers: &[SocketAddrV4]) {
        let ack = line::ack(id, port);
        let peered = line::peered_with(peers);
        let mut lines = vec![ack.as_str()];
        if !peers.is_empty() {
            lines.push(&peered);
        }
        lines.extend(["", line::DECLINED, ""]);
        self.expect_lines(&lines);
    }

    /// Reads lines until one satisfies `matches`; returns it. Panics, with what was
    /// printed, if none comes within [`PATIENCE`].
    pub fn wait_for(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        self.try_wait_for(PATIENCE, matches).unwrap_or_else(|e| {
            panic!(
                "never printed {what}: {e}; stdout: {:#?}\nstderr: {:#?}",
                self.seen,
                self.stderr()
            )
        })
    }

    /// Reads lines until one satisfies `matches`, for up to `within`: that line, or why
    /// none came (the lines read are in [`Process::seen`]).
    pub fn try_wait_for(
        &mut self,
        within: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_within(left) {
                Next::Line(line) if matches(&line) => return Ok(line),
                Next::Line(_) => {}
                Next::Quiet => return Err(format!("no such line within {within:?}")),
                Next::Closed => return Err("stdout closed".into()),
            }
        }
    }

    /// Asserts that nothing more is printed on stdout for `quiet`.
    pub fn expect_silence(&mut self, quiet: Duration) {
        if let Next::Line(line) = self.next_within(quiet) {
            panic!("unexpected line {line:?}; stdout so far: {:#?}", self.seen);
        }
    }

    /// How many lines the program has printed on stdout so far (read or not).
    pub fn printed(&self) -> u64 {
        match self.stdout {
            Capture::File => {
                let text = std::fs::read(self.folder.join("stdout.txt")).unwrap_or_default();
                text.iter().filter(|b| **b == b'\n').count() as u64
            }
            _ => lock(&self.out.lines).total,
        }
    }

    /// Every stderr line so far (up to what is kept when read from a pipe).
    pub fn stderr(&self) -> Vec<String> {
        match self.stderr {
            Capture::File => std::fs::read_to_string(self.folder.join("stderr.txt"))
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect(),
            _ => lock(&self.err.lines).all.clone(),
        }
    }

    /// Waits until some stderr line contains every one of `parts`; returns it.
    pub fn wait_for_stderr(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stderr = self.stderr();
            if let Some(line) = stderr.iter().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no stderr line with {parts:?}; stderr: {stderr:#?}"
            );
            match self.stderr {
                Capture::Lines => self.err.wait_for_more(stderr.len(), left),
                _ => thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The folder the program runs in.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// How long ago the program was started.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// True while the program has not exited.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// How the program ended (`exit status: 1`, `signal: 9 (SIGKILL)`), once it has.
    ///
    /// It looks without reaping (`waitid` with `WNOWAIT`): until [`Process::kill`] reaps
    /// it, the ended program keeps its process ID, so no other process can be given that
    /// ID and then be signalled in its place.
    pub fn exit_status(&mut self) -> Option<String> {
        if self.reaped {
            return Some("it was ended".into());
        }
        // SAFETY: waitid writes the siginfo given; WNOWAIT leaves the child a zombie.
        let info = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let options = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            if libc::waitid(libc::P_PID, self.child.id(), &mut info, options) != 0 {
                return None;
            }
            info
        };
        // SAFETY: the fields of a siginfo that waitid filled for a child.
        let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
        if pid == 0 {
            return None;
        }
        Some(match code {
            libc::CLD_EXITED => format!("exit status: {status}"),
            libc::CLD_DUMPED => format!("signal: {status} ({}) (core dumped)", signal_name(status)),
            _ => format!("signal: {status} ({})", signal_name(status)),
        })
    }

    /// The TCP sockets the program's processes hold (its group and its descendants).
    pub fn sockets(&self) -> Vec<Socket> {
        procfs::sockets(&procfs::family(self.child.id()))
    }

    /// The sockets the program's processes listen on.
    pub fn listening(&self) -> Vec<Socket> {
        procfs::listening(&procfs::family(self.child.id()))
    }

    /// The limit of its sandbox the program was stopped by, in words, if one was.
    pub fn limit_hit(&mut self) -> Option<String> {
        let limits = self.confinement.limits?;
        let hits = self
            .confinement
            .cgroup
            .as_ref()
            .map(|c| c.hits())
            .unwrap_or_default();
        let status = self.exit_status();
        // The largest file it wrote, looked at only once it has ended: a file the
        // submission came with is not one it wrote.
        let written = match status {
            Some(_) => largest_file(&self.folder, self.started_at),
            None => 0,
        };
        limits.explain(hits, status.as_deref(), written)
    }

    /// Kills the whole process group (SIGKILL), whatever else the program started (the
    /// processes descended from it, and those of its control group), reaps the program,
    /// and waits a little for the last of what it printed to be read.
    pub fn kill(&mut self) {
        // Once reaped, the program's ID may belong to another process: never signal again.
        if self.reaped {
            return;
        }
        let family = procfs::family(self.child.id());
        cleanup::kill_group(self.pgid);
        for pid in family {
            // SAFETY: kill only sends a signal; a process that is gone gives ESRCH.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
        if let Some(cgroup) = &self.confinement.cgroup {
            cgroup.kill_all();
        }
        let _ = self.child.wait();
        self.reaped = true;
        for (stream, output) in [(&self.out, self.stdout), (&self.err, self.stderr)] {
            if output == Capture::Lines {
                stream.wait_closed(Duration::from_secs(2));
            }
        }
        // Lines still queued arrived before the kill: they belong to what was seen.
        while let Some((line, _)) = self.out.pop_timed() {
            self.seen.push(line);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The name the standard library shows for a signal.
fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => "a signal",
    }
}

/// The size of the largest file below `folder` changed since `since` (looking at 10,000
/// entries at most).
fn largest_file(folder: &Path, since: SystemTime) -> u64 {
    let mut largest = 0;
    let mut folders = vec![folder.to_path_buf()];
    let mut looked = 0;
    while let Some(dir) = folders.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            looked += 1;
            if looked > 10_000 {
                return largest;
            }
            match entry.metadata() {
                Ok(m) if m.is_dir() => folders.push(entry.path()),
                Ok(m) if m.modified().is_ok_and(|t| t >= since) => largest = largest.max(m.len()),
                Ok(_) => {}
                Err(_) => {}
            }
        }
    }
    largest
}

/// Copies the contents of `from` into `to`: folders, regular files and symbolic links
/// (recreated as links). Deeper than 64 levels is an error (a loop, or no submission).
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    copy_level(from, to, 0)
}

fn copy_level(from: &Path, to: &Path, depth: usize) -> io::Result<()> {
    if depth > 64 {
        return Err(io::Error::other(format!(
            "{} is more than 64 folders deep",
            from.display()
        )));
    }
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            std::fs::create_dir_all(&dest)?;
            copy_level(&entry.path(), &dest, depth + 1)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

/// The lines of one of a child's pipes, filled by a reader thread.
struct Stream {
    lines: Mutex<Lines>,
    /// Signalled on every line and at the end of the stream.
    changed: Condvar,
}

#[derive(Default)]
struct Lines {
    /// Lines not yet taken, with the time each was read.
    queue: VecDeque<(String, Instant)>,
    /// Every line kept, taken or not (stderr is read whole, not taken).
    all: Vec<String>,
    /// Bytes kept so far; past the limit, lines are only counted.
    kept: usize,
    /// Every line read.
    total: u64,
    /// Lines not kept because the limit was reached.
    dropped: u64,
    /// The pipe reached its end.
    closed: bool,
    /// The pipe of a [`Capture::Unread`] stream, held open but never read again.
    held: Option<Box<dyn Read + Send>>,
}

impl Stream {
    /// Reads `pipe` on a thread of its own, keeping at most `keep` bytes; with
    /// `only_first`, stops after one line and holds the pipe open, unread. Without a pipe
    /// the stream is empty and closed.
    fn read(
        pipe: Option<impl Read + Send + 'static>,
        only_first: bool,
        keep: usize,
    ) -> Arc<Stream> {
        let stream = Arc::new(Stream {
            lines: Mutex::new(Lines::default()),
            changed: Condvar::new(),
        });
        let Some(mut pipe) = pipe else {
            lock(&stream.lines).closed = true;
            return stream;
        };
        let filler = Arc::clone(&stream);
        let spawned = thread::Builder::new()
            .name("child-output".into())
            .spawn(move || {
                let mut chunk = [0u8; 8192];
                let mut line = Vec::new();
                loop {
                    let n = match pipe.read(&mut chunk) {
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
                        filler.push(&line, keep);
                        line.clear();
                        if only_first {
                            // Held open and never read again: the program meets a full pipe.
                            lock(&filler.lines).held = Some(Box::new(pipe));
                            return;
                        }
                    }
                }
                if !line.is_empty() {
                    filler.push(&line, keep);
                }
                lock(&filler.lines).closed = true;
                filler.changed.notify_all();
            });
        if spawned.is_err() {
            lock(&stream.lines).closed = true;
        }
        stream
    }

    fn push(&self, line: &[u8], keep: usize) {
        let text = String::from_utf8_lossy(line);
        let text = text.strip_suffix('\r').unwrap_or(&text).to_string();
        let mut lines = lock(&self.lines);
        lines.total += 1;
        if lines.kept < keep {
            lines.kept += text.len() + 1;
            lines.all.push(text.clone());
            lines.queue.push_back((text, Instant::now()));
        } else {
            lines.dropped += 1;
            if lines.dropped == 1 {
                let note = format!("[output beyond {} KB not kept]", keep / 1024);
                lines.all.push(note.clone());
                lines.queue.push_back((note, Instant::now()));
            }
        }
        self.changed.notify_all();
    }

    /// Takes the oldest line, waiting up to `wait` for one.
    fn pop(&self, wait: Duration) -> Next {
        let deadline = Instant::now() + wait;
        let mut lines = lock(&self.lines);
        loop {
            if let Some((line, _)) = lines.queue.pop_front() {
                return Next::Line(line);
            }
            if lines.closed {
                return Next::Closed;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Next::Quiet;
            }
            lines = self
                .changed
                .wait_timeout(lines, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Takes the oldest line with the time it was read, if there is one.
    fn pop_timed(&self) -> Option<(String, Instant)> {
        lock(&self.lines).queue.pop_front()
    }

    /// Waits up to `wait` until more than `known` lines are kept or the stream ends.
    fn wait_for_more(&self, known: usize, wait: Duration) {
        let lines = lock(&self.lines);
        let _ = self
            .changed
            .wait_timeout_while(lines, wait, |l| l.all.len() <= known && !l.closed);
    }

    /// Waits up to `wait` for the end of the stream.
    fn wait_closed(&self, wait: Duration) {
        let lines = lock(&self.lines);
        let _ = self.changed.wait_timeout_while(lines, wait, |l| !l.closed);
    }

    /// Words for a failure message when lines were dropped.
    fn dropped_note(&self) -> String {
        match lock(&self.lines).dropped {
            0 => String::new(),
            n => format!(" ({n} lines dropped past what is kept)"),
        }
    }
}
