//! A peer run as a child process, the course's way: in a folder named `ID-SIZE`, its first
//! line read for the address, every later line read with a deadline, killed when dropped.
//!
//! The tests, the demo, the soak run and the benchmark all start peers through [`Start`].
//! What differs between them is an option: where stdout and stderr go ([`Capture`]), a
//! program the peer runs under (`taskset`, `prlimit`), extra environment. Lines read from a
//! pipe are kept up to [`MAX_KEPT`] per stream; beyond that they are only counted, so a peer
//! that prints millions of lines (the soak run) costs no more memory than one that prints a
//! hundred thousand.

use crate::PATIENCE;
use peer::output::parse_address_line;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// The most lines kept from one stream; later ones are counted and dropped.
pub const MAX_KEPT: usize = 100_000;

/// A folder that is removed when dropped, holding course-style peer folders, and the binary
/// to start in them.
pub struct Scratch {
    dir: tempfile::TempDir,
    binary: PathBuf,
}

impl Scratch {
    /// A new scratch folder for peers run from `binary` (in a test:
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
    pub fn start(&self, name: &str, args: &[&str]) -> PeerProcess {
        self.command(name, args).run()
    }
}

/// Where a started peer's stdout or stderr goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Capture {
    /// A pipe read line by line by a thread of the harness (the default).
    Lines,
    /// `stdout.txt` or `stderr.txt` in the peer's folder: printing costs the peer one write
    /// and wakes nobody, as it would with stdout redirected to a file.
    File,
    /// Nowhere.
    Discard,
    /// A pipe read up to the address line and never again, though kept open: the peer
    /// meets a full pipe (stdout only).
    Unread,
}

/// How to start a peer: the program, its folder and arguments, and the options.
pub struct Start {
    program: PathBuf,
    folder: PathBuf,
    args: Vec<String>,
    under: Vec<String>,
    env: Vec<(String, String)>,
    stdout: Capture,
    stderr: Capture,
}

impl Start {
    /// `program` run in `folder` (created if missing) with `args`; both outputs read as
    /// lines, stdin empty, and `RUST_LOG` removed so the peer logs at its default level.
    pub fn new(program: impl Into<PathBuf>, folder: &Path, args: &[&str]) -> Start {
        Start {
            program: program.into(),
            folder: folder.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            under: Vec::new(),
            env: Vec::new(),
            stdout: Capture::Lines,
            stderr: Capture::Lines,
        }
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

    /// Starts the program and waits for its address line; panics (with what it printed)
    /// if that fails.
    pub fn run(self) -> PeerProcess {
        self.try_run().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the program and waits up to [`PATIENCE`] for its address line.
    pub fn try_run(self) -> Result<PeerProcess, String> {
        let what = format!("{} in {}", self.program.display(), self.folder.display());
        std::fs::create_dir_all(&self.folder).map_err(|e| format!("{what}: {e}"))?;
        let mut command = match self.under.split_first() {
            Some((wrapper, wrapper_args)) => {
                let mut c = Command::new(wrapper);
                c.args(wrapper_args).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        command
            .args(&self.args)
            .current_dir(&self.folder)
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(self.stdio(self.stdout, "stdout.txt")?)
            .stderr(self.stdio(self.stderr, "stderr.txt")?);
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {what}: {e}"))?;
        let out = Stream::read(child.stdout.take(), self.stdout == Capture::Unread);
        let err = Stream::read(child.stderr.take(), self.stderr == Capture::Unread);
        let mut process = PeerProcess {
            child,
            folder: self.folder,
            stdout: self.stdout,
            stderr: self.stderr,
            out,
            err,
            file_read: 0,
            seen: Vec::new(),
            addr: SocketAddrV4::new([0, 0, 0, 0].into(), 0),
            id: String::new(),
            started_in: Duration::ZERO,
        };
        let (first, at) = process.first_line().map_err(|e| {
            process.err.wait_closed(Duration::from_secs(1));
            format!("{what}: {e}; stderr: {:#?}", process.stderr())
        })?;
        let (addr, id) = parse_address_line(&first)
            .ok_or_else(|| format!("{what}: the first line was {first:?}, not an address"))?;
        process.addr = addr;
        process.id = id.to_string();
        process.started_in = at.saturating_duration_since(spawned);
        Ok(process)
    }

    fn stdio(&self, output: Capture, file: &str) -> Result<Stdio, String> {
        Ok(match output {
            Capture::Lines | Capture::Unread => Stdio::piped(),
            Capture::Discard => Stdio::null(),
            Capture::File => {
                let path = self.folder.join(file);
                Stdio::from(File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?)
            }
        })
    }
}

/// A running peer, killed when dropped.
pub struct PeerProcess {
    child: Child,
    folder: PathBuf,
    stdout: Capture,
    stderr: Capture,
    out: Arc<Stream>,
    err: Arc<Stream>,
    /// With stdout in a file: how many of its bytes have been read as lines.
    file_read: u64,
    /// Every stdout line read so far, the address line first.
    pub seen: Vec<String>,
    /// The address from the first line.
    pub addr: SocketAddrV4,
    /// The ID from the first line.
    pub id: String,
    /// From starting the process to its address line.
    pub started_in: Duration,
}

impl PeerProcess {
    /// The address line and when it came.
    fn first_line(&mut self) -> Result<(String, Instant), String> {
        match self.pop(PATIENCE) {
            Pop::Line(line, at) => {
                self.seen.push(line.clone());
                Ok((line, at))
            }
            Pop::Timeout => Err(format!("no address line within {PATIENCE:?}")),
            Pop::Closed => Err("stdout closed before the address line".into()),
        }
    }

    /// Takes the next stdout line, waiting up to `wait`: from the reader thread's queue, or
    /// with stdout in a file, by polling the file for a whole line past those read.
    fn pop(&mut self, wait: Duration) -> Pop {
        if self.stdout != Capture::File {
            return self.out.pop(wait);
        }
        let deadline = Instant::now() + wait;
        loop {
            if let Some(line) = self.next_in_file() {
                return Pop::Line(line, Instant::now());
            }
            if Instant::now() >= deadline {
                return Pop::Timeout;
            }
            thread::sleep(Duration::from_micros(200));
        }
    }

    /// The next whole line of `stdout.txt`, if the peer has finished writing one.
    fn next_in_file(&mut self) -> Option<String> {
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

    /// The next stdout line, waiting up to [`PATIENCE`].
    pub fn next_line(&mut self) -> String {
        match self.pop(PATIENCE) {
            Pop::Line(line, _) => {
                self.seen.push(line.clone());
                line
            }
            Pop::Timeout => panic!(
                "no line within {PATIENCE:?}{}; stdout so far: {:#?}\nstderr: {:#?}",
                self.out.dropped_note(),
                self.seen,
                self.stderr()
            ),
            Pop::Closed => panic!(
                "peer closed stdout; stdout so far: {:#?}\nstderr: {:#?}",
                self.seen,
                self.stderr()
            ),
        }
    }

    /// The next stdout line and when it was read, if one has come; never waits.
    pub fn poll_line(&mut self) -> Option<(String, Instant)> {
        match self.pop(Duration::ZERO) {
            Pop::Line(line, at) => {
                self.seen.push(line.clone());
                Some((line, at))
            }
            Pop::Timeout | Pop::Closed => None,
        }
    }

    /// Asserts that the next lines are exactly `expected`.
    pub fn expect_lines(&mut self, expected: &[&str]) {
        for want in expected {
            let got = self.next_line();
            assert_eq!(&got, want, "stdout so far: {:#?}", self.seen);
        }
    }

    /// Asserts that the next lines are what a joiner prints for a Redirect from `id` at
    /// `port` listing `peers` (PROTOCOL 7).
    pub fn expect_redirect(&mut self, id: &str, port: u16, peers: &[SocketAddrV4]) {
        let ack = format!("Received ack from {id}:{port}");
        let listed: Vec<String> = peers.iter().map(|p| format!("[{p}]")).collect();
        let peered = format!("  which is peered with: {}", listed.join(", "));
        let mut lines = vec![ack.as_str()];
        if !peers.is_empty() {
            lines.push(&peered);
        }
        lines.extend([
            "",
            "The join has been declined; the auto-join process is performing ...",
            "",
        ]);
        self.expect_lines(&lines);
    }

    /// Reads lines until one satisfies `matches`; returns it. Panics, with what the peer
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
    /// none came (the lines read are in [`PeerProcess::seen`]).
    pub fn try_wait_for(
        &mut self,
        within: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.pop(left) {
                Pop::Line(line, _) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return Ok(line);
                    }
                }
                Pop::Timeout => return Err(format!("no such line within {within:?}")),
                Pop::Closed => return Err("stdout closed".into()),
            }
        }
    }

    /// Asserts that nothing more is printed on stdout for `quiet`.
    pub fn expect_silence(&mut self, quiet: Duration) {
        if let Pop::Line(line, _) = self.pop(quiet) {
            panic!("unexpected line {line:?}; stdout so far: {:#?}", self.seen);
        }
    }

    /// How many lines the peer has printed on stdout so far (read or not).
    pub fn printed(&self) -> u64 {
        match self.stdout {
            Capture::File => {
                let text = std::fs::read(self.folder.join("stdout.txt")).unwrap_or_default();
                text.iter().filter(|b| **b == b'\n').count() as u64
            }
            _ => self.out.lock().total,
        }
    }

    /// Every stderr line so far (up to [`MAX_KEPT`] when read from a pipe).
    pub fn stderr(&self) -> Vec<String> {
        match self.stderr {
            Capture::File => std::fs::read_to_string(self.folder.join("stderr.txt"))
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect(),
            _ => self
                .err
                .lock()
                .kept
                .iter()
                .map(|(l, _)| l.clone())
                .collect(),
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

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the process (SIGKILL on Unix), reaps it, and waits a little for the last of
    /// what it printed to be read.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for (stream, output) in [(&self.out, self.stdout), (&self.err, self.stderr)] {
            if output == Capture::Lines {
                stream.wait_closed(Duration::from_secs(2));
            }
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The lines of one of a child's pipes, filled by a reader thread.
#[derive(Default)]
struct Stream {
    lines: Mutex<Lines>,
    /// Signalled on every line and at the end of the stream.
    changed: Condvar,
}

#[derive(Default)]
struct Lines {
    /// Lines not yet taken, with the time each was read.
    kept: VecDeque<(String, Instant)>,
    /// Every line read.
    total: u64,
    /// Lines not kept because `kept` was full.
    dropped: u64,
    /// The pipe reached its end.
    closed: bool,
    /// The pipe of an [`Capture::Unread`] stream, held open but never read again.
    held: Option<Box<dyn Read + Send>>,
}

enum Pop {
    Line(String, Instant),
    Timeout,
    Closed,
}

impl Stream {
    /// Reads `pipe` on a thread of its own; with `only_first`, stops after one line and
    /// keeps the pipe open. Without a pipe, the stream is empty and closed.
    fn read(pipe: Option<impl Read + Send + 'static>, only_first: bool) -> Arc<Stream> {
        let stream = Arc::new(Stream::default());
        let Some(pipe) = pipe else {
            stream.lock().closed = true;
            return stream;
        };
        let filler = Arc::clone(&stream);
        thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = String::new();
            while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                let text = line.strip_suffix('\n').unwrap_or(&line).to_string();
                filler.push(text);
                line.clear();
                if only_first {
                    filler.lock().held = Some(Box::new(reader));
                    return;
                }
            }
            filler.lock().closed = true;
            filler.changed.notify_all();
        });
        stream
    }

    fn lock(&self) -> MutexGuard<'_, Lines> {
        self.lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, line: String) {
        let mut lines = self.lock();
        lines.total += 1;
        if lines.kept.len() < MAX_KEPT {
            lines.kept.push_back((line, Instant::now()));
        } else {
            lines.dropped += 1;
        }
        self.changed.notify_all();
    }

    /// Takes the oldest line, waiting up to `wait` for one.
    fn pop(&self, wait: Duration) -> Pop {
        let deadline = Instant::now() + wait;
        let mut lines = self.lock();
        loop {
            if let Some((line, at)) = lines.kept.pop_front() {
                return Pop::Line(line, at);
            }
            if lines.closed {
                return Pop::Closed;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Pop::Timeout;
            }
            lines = self.changed.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// Waits up to `wait` until more than `known` lines are kept or the stream ends.
    fn wait_for_more(&self, known: usize, wait: Duration) {
        let lines = self.lock();
        let _ = self
            .changed
            .wait_timeout_while(lines, wait, |l| l.kept.len() <= known && !l.closed);
    }

    /// Waits up to `wait` for the end of the stream.
    fn wait_closed(&self, wait: Duration) {
        let lines = self.lock();
        let _ = self.changed.wait_timeout_while(lines, wait, |l| !l.closed);
    }

    /// Words for a failure message when lines were dropped.
    fn dropped_note(&self) -> String {
        match self.lock().dropped {
            0 => String::new(),
            n => format!(" ({n} lines dropped past the {MAX_KEPT} kept)"),
        }
    }
}
