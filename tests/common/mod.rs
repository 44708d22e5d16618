//! Helpers for the integration tests: run the real `peer` binary in a folder named like the
//! course's (`peer1-2`), read what it prints with deadlines, and speak cPTP to it.
#![allow(dead_code)] // each test file uses its own share of these

pub mod procfs;

use peer::reader::{Deadline, read_message};
use peer::wire::Message;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a test waits for anything a peer should do promptly.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_peer")
}

/// A folder that is removed when dropped, holding course-style peer folders.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Creates (once) and returns the folder `name` inside the scratch folder.
    pub fn folder(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(&path).expect("create peer folder");
        path
    }

    /// Starts a peer in the folder `name` with the given arguments.
    pub fn start(&self, name: &str, args: &[&str]) -> PeerProcess {
        PeerProcess::start(&self.folder(name), args, &[])
    }
}

/// A running `peer` binary, killed when dropped.
pub struct PeerProcess {
    child: Child,
    stdout: Receiver<String>,
    /// Every stdout line read so far, for messages and whole-output checks.
    pub seen: Vec<String>,
    /// Every stderr line so far, collected by a reader thread.
    stderr: Arc<Mutex<Vec<String>>>,
    /// The address from the first line.
    pub addr: SocketAddrV4,
    /// The ID from the first line.
    pub id: String,
}

impl PeerProcess {
    /// Starts the binary in `dir` and waits for its address line.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> PeerProcess {
        let mut command = Command::new(binary());
        command
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG");
        for (key, value) in env {
            command.env(key, value);
        }
        Self::spawn(command)
    }

    /// Starts a prepared command and waits for its address line.
    pub fn spawn(mut command: Command) -> PeerProcess {
        let mut child = command.spawn().expect("start peer");
        let stdout = lines_of(child.stdout.take().expect("stdout"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        let err = child.stderr.take().expect("stderr");
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut process = PeerProcess {
            child,
            stdout,
            seen: Vec::new(),
            stderr,
            addr: SocketAddrV4::new([0, 0, 0, 0].into(), 0),
            id: String::new(),
        };
        let first = process.next_line();
        let rest = first
            .strip_prefix("This peer address is ")
            .unwrap_or_else(|| panic!("first line was {first:?}"));
        let (addr, id) = rest.split_once(" located at ").expect("address line");
        process.addr = addr.parse().expect("address");
        process.id = id.to_string();
        process
    }

    /// The next stdout line, waiting up to [`PATIENCE`].
    pub fn next_line(&mut self) -> String {
        match self.stdout.recv_timeout(PATIENCE) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(RecvTimeoutError::Timeout) => panic!(
                "no line within {PATIENCE:?}; stdout so far: {:#?}\nstderr: {:#?}",
                self.seen,
                self.stderr()
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "peer closed stdout; stdout so far: {:#?}\nstderr: {:#?}",
                self.seen,
                self.stderr()
            ),
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
    /// `port` listing `peers` (SPEC section 6).
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

    /// Reads lines until one satisfies `matches`; returns it.
    pub fn wait_for(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            let line = self.next_line();
            if matches(&line) {
                return line;
            }
        }
        panic!("never printed {what}; stdout: {:#?}", self.seen)
    }

    /// Asserts that nothing more is printed on stdout for `quiet`.
    pub fn expect_silence(&mut self, quiet: Duration) {
        if let Ok(line) = self.stdout.recv_timeout(quiet) {
            panic!("unexpected line {line:?}; stdout so far: {:#?}", self.seen);
        }
    }

    /// Every stderr line so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until some stderr line contains every one of `parts`; returns it.
    pub fn wait_for_stderr(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self
                .stderr()
                .into_iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no stderr line with {parts:?}; stderr: {:#?}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the process (SIGKILL on Unix) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Forwards the lines of `stream` over a channel, from a thread of its own.
fn lines_of(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Joins `addr` the way a peer does (the connection is the request) and reads the reply.
pub fn join(addr: SocketAddrV4) -> (TcpStream, Message, Vec<u8>) {
    let stream = TcpStream::connect_timeout(&addr.into(), PATIENCE).expect("connect");
    let (message, raw) = read_message(&mut Deadline::new(&stream, PATIENCE)).expect("reply");
    (stream, message, raw)
}

/// The peers `addr` lists in its reply to a join (its whole table, when the table is full).
/// Joining changes the table when there is room, so use this on full tables only.
pub fn listed(addr: SocketAddrV4) -> Vec<SocketAddrV4> {
    let (_, message, _) = join(addr);
    message.peers().to_vec()
}

/// A stand-in peer written in the test: a listener whose connections get `reply`.
pub struct FakePeer {
    pub addr: SocketAddrV4,
}

impl FakePeer {
    /// Accepts up to `connections` connections, each handled by `behave` on its own thread.
    /// The accepting thread ends after that many or after [`PATIENCE`] * 3.
    pub fn start<F>(connections: usize, behave: F) -> FakePeer
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake peer");
        let addr = match listener.local_addr().unwrap() {
            std::net::SocketAddr::V4(v4) => v4,
            other => panic!("{other}"),
        };
        listener.set_nonblocking(true).unwrap();
        let behave = Arc::new(behave);
        thread::spawn(move || {
            let deadline = Instant::now() + PATIENCE * 3;
            let mut served = 0;
            while served < connections && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        served += 1;
                        stream.set_nonblocking(false).unwrap();
                        let behave = Arc::clone(&behave);
                        thread::spawn(move || behave(stream));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakePeer { addr }
    }

    /// A fake peer that sends `bytes` to each connection and then keeps it open a while.
    pub fn replying(bytes: Vec<u8>) -> FakePeer {
        FakePeer::start(4, move |mut stream| {
            use std::io::Write;
            let _ = stream.write_all(&bytes);
            hold_open(stream);
        })
    }
}

/// Keeps a connection open until the other side closes it or [`PATIENCE`] * 2 passes.
pub fn hold_open(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(PATIENCE * 2));
    let mut sink = [0u8; 64];
    while let Ok(n) = stream.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
}

/// An address on loopback where nothing listens (bound, then closed at once).
pub fn dead_address() -> SocketAddrV4 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    match listener.local_addr().unwrap() {
        std::net::SocketAddr::V4(v4) => v4,
        other => panic!("{other}"),
    }
}
