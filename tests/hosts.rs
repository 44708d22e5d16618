//! Peers on several machines: test hosts built from Linux network namespaces.
//!
//! Each test builds a small network of its own: a bridge in a namespace of its own (the
//! switch) and one namespace per host, plugged into it by a veth pair, with the addresses
//! 198.18.0.1, .2, ... (the benchmarking range; nothing leaves these namespaces). Real
//! `peer` processes run inside with `ip netns exec`. The namespaces, and the hosts files in
//! `/etc/netns/`, are removed when the test ends, also when it fails.
//!
//! Building hosts needs root and `ip`. Where they cannot be built the tests say so on
//! stderr and pass, except under CI (env `CI` set), where that is a failure ([`hosts`]).

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a test waits for anything a peer should do promptly.
const PATIENCE: Duration = Duration::from_secs(10);

/// A vanished machine must be noticed within this (PROTOCOL 5.4).
const VANISHED_WITHIN: Duration = Duration::from_secs(30);

/// Makes the names of each test's namespaces unique within this process.
static NEXT_NET: AtomicU32 = AtomicU32::new(0);

/// The hosts of one test, or `None` (said on stderr) where namespaces cannot be made.
/// Under CI they must be made: CI runs as root, so failing there is a real failure.
fn hosts(count: usize) -> Option<Net> {
    match Net::build(count) {
        Ok(net) => Some(net),
        Err(why) => {
            peer_tools::skip_or_fail(&format!(
                "cannot build test hosts ({why}); they need root and `ip`"
            ));
            None
        }
    }
}

/// Runs `ip` with `args`; its stderr is the error.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A switch and its hosts; host `i` (from 0) is `198.18.0.{i + 1}`.
struct Net {
    /// The namespace holding the bridge `br0`; host `i` plugs in as `v{i + 1}`.
    switch: String,
    /// One namespace per host, each with `lo` and `eth0` up.
    hosts: Vec<String>,
    /// Course-style peer folders (`peer1-2`), one set per test.
    scratch: tempfile::TempDir,
}

impl Net {
    fn build(count: usize) -> Result<Net, String> {
        let tag = format!(
            "peer-test-{}-{}",
            std::process::id(),
            NEXT_NET.fetch_add(1, Ordering::Relaxed)
        );
        let mut net = Net {
            switch: format!("{tag}-switch"),
            hosts: Vec::new(),
            scratch: tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?,
        };
        // From here on, whatever was made is removed by Drop, also on an early return.
        ip(&["netns", "add", &net.switch])?;
        ip(&["-n", &net.switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &net.switch, "link", "set", "br0", "up"])?;
        for i in 0..count {
            let host = format!("{tag}-h{}", i + 1);
            ip(&["netns", "add", &host])?;
            net.hosts.push(host.clone());
            let port = format!("v{}", i + 1);
            let cidr = format!("{}/24", Net::ip(i));
            ip(&[
                "-n",
                &host,
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                &net.switch,
            ])?;
            ip(&[
                "-n",
                &net.switch,
                "link",
                "set",
                &port,
                "master",
                "br0",
                "up",
            ])?;
            ip(&["-n", &host, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", &host, "link", "set", "eth0", "up"])?;
            ip(&["-n", &host, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// The address of host `i`.
    fn ip(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 0, i as u8 + 1)
    }

    /// Unplugs host `i`: its cable is cut at the switch, so nothing it sends arrives.
    fn unplug(&self, i: usize) {
        let port = format!("v{}", i + 1);
        ip(&["-n", &self.switch, "link", "set", &port, "down"]).expect("unplug");
    }

    /// Gives host `i` the hosts file `text` (`ip netns exec` mounts it over /etc/hosts),
    /// and a resolver that asks only host 1, where no DNS server runs: a name missing from
    /// the file fails at once without leaving the test network.
    fn hosts_file(&self, i: usize, text: &str) {
        let dir = Path::new("/etc/netns").join(&self.hosts[i]);
        std::fs::create_dir_all(&dir).expect("create /etc/netns/HOST");
        std::fs::write(dir.join("hosts"), text).expect("write hosts");
        let resolver = format!("nameserver {}\noptions timeout:1 attempts:1\n", Net::ip(0));
        std::fs::write(dir.join("resolv.conf"), resolver).expect("write resolv.conf");
    }

    /// A command that runs the peer binary on host `i` in the folder `folder`.
    fn peer_command(&self, i: usize, folder: &str, args: &[&str]) -> Command {
        let dir = self.scratch.path().join(folder);
        std::fs::create_dir_all(&dir).expect("create peer folder");
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.hosts[i], env!("CARGO_BIN_EXE_peer")])
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG");
        command
    }

    /// Starts a peer on host `i` and waits for its address line.
    fn start(&self, i: usize, folder: &str, args: &[&str]) -> Peer {
        Peer::spawn(self.peer_command(i, folder, args))
    }

    /// Runs a peer on host `i` that should exit by itself within [`PATIENCE`]: its exit
    /// status and stderr.
    fn run_to_end(&self, i: usize, folder: &str, args: &[&str]) -> (Option<i32>, String) {
        let mut child = self.peer_command(i, folder, args).spawn().expect("spawn");
        let stderr = child.stderr.take().map(read_all).expect("stderr");
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(20));
        };
        (status, stderr.recv_timeout(PATIENCE).unwrap_or_default())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its interfaces; the peers in it are killed first
        // (each test declares its peers after the net, so they are dropped before it).
        for name in self.hosts.iter().chain([&self.switch]) {
            let _ = ip(&["netns", "del", name]);
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(name));
        }
    }
}

/// Reads a stream to its end on a thread of its own; the text arrives on the channel.
fn read_all(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stream).read_to_string_lossy(&mut text);
        let _ = tx.send(text);
    });
    rx
}

trait ReadLossy {
    fn read_to_string_lossy(self, text: &mut String) -> std::io::Result<()>;
}

impl<R: std::io::Read> ReadLossy for BufReader<R> {
    fn read_to_string_lossy(mut self, text: &mut String) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut self, &mut bytes)?;
        text.push_str(&String::from_utf8_lossy(&bytes));
        Ok(())
    }
}

/// A `peer` running on a test host, killed when dropped.
struct Peer {
    child: Child,
    lines: Receiver<String>,
    /// Every stdout line read so far.
    seen: Vec<String>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// The address its first line shows.
    addr: SocketAddrV4,
}

impl Peer {
    fn spawn(mut command: Command) -> Peer {
        let mut child = command.spawn().expect("start peer");
        let (tx, lines) = channel();
        let out = child.stdout.take().expect("stdout");
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (sink, err) = (Arc::clone(&stderr), child.stderr.take().expect("stderr"));
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut peer = Peer {
            child,
            lines,
            seen: Vec::new(),
            stderr,
            addr: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
        };
        let first = peer.line(PATIENCE);
        let addr = first
            .strip_prefix("This peer address is ")
            .and_then(|rest| rest.split_once(" located at "))
            .map(|(addr, _)| addr.parse().expect("address"));
        peer.addr = addr.unwrap_or_else(|| panic!("first line was {first:?}"));
        peer
    }

    fn target(&self) -> String {
        self.addr.to_string()
    }

    /// The next stdout line, waiting up to `patience`.
    fn line(&mut self, patience: Duration) -> String {
        match self.lines.recv_timeout(patience) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(e) => panic!(
                "no line within {patience:?} ({e}); stdout: {:#?}\nstderr: {:#?}",
                self.seen,
                self.stderr()
            ),
        }
    }

    /// Asserts that the next lines are exactly `expected`.
    fn expect_lines(&mut self, expected: &[&str]) {
        for want in expected {
            let got = self.line(PATIENCE);
            assert_eq!(&got, want, "stdout so far: {:#?}", self.seen);
        }
    }

    /// Reads lines until one starts with `prefix`, for up to `patience`; returns it.
    fn wait_for(&mut self, prefix: &str, patience: Duration) -> String {
        let deadline = Instant::now() + patience;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.line(left.max(Duration::from_millis(1)));
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until some stderr line contains every one of `parts`; returns it.
    fn wait_for_stderr(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = self
                .stderr()
                .into_iter()
                .find(|l| parts.iter().all(|p| l.contains(p)));
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no stderr line with {parts:?}: {:#?}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The course's chain on hosts 1, 2, 3 with the given binds, then a fourth host joins the
/// full peer1 and is led by the addresses it is handed to the one free slot, peer3's.
fn chain_on_four_hosts(binds: [&str; 4]) {
    let Some(net) = hosts(4) else { return };
    let mut peer1 = net.start(0, "peer1-2", &["-b", binds[0]]);
    assert_eq!(
        *peer1.addr.ip(),
        Net::ip(0),
        "the first line shows host 1's address"
    );
    let (a1, p1) = (peer1.target(), peer1.addr.port());
    let mut peer2 = net.start(1, "peer2-1", &["-b", binds[1], "-p", &a1]);
    assert_eq!(*peer2.addr.ip(), Net::ip(1));
    let (a2, p2) = (peer2.target(), peer2.addr.port());
    peer2.wait_for(
        &format!("Connected to peer peer1:{p1} at timestamp: "),
        PATIENCE,
    );
    peer2.expect_lines(&[&format!("Received ack from peer1:{p1}")]);
    peer1.expect_lines(&[&format!("Connected from peer {a2}")]);

    let mut peer3 = net.start(2, "peer3-2", &["-b", binds[2], "-p", &a2]);
    let (a3, p3) = (peer3.target(), peer3.addr.port());
    peer2.expect_lines(&[&format!("Peer table full: {a3} redirected")]);
    peer3.expect_lines(&[
        &format!("Received ack from peer2:{p2}"),
        &format!("  which is peered with: [{a1}]"),
        "",
        "The join has been declined; the auto-join process is performing ...",
        "",
    ]);
    peer3.wait_for(
        &format!("Connected to peer peer1:{p1} at timestamp: "),
        PATIENCE,
    );
    peer3.expect_lines(&[
        &format!("Received ack from peer1:{p1}"),
        &format!("  which is peered with: [{a2}]"),
    ]);
    peer1.expect_lines(&[&format!("Connected from peer {a3}")]);

    // peer1 hands out peer2 and peer3 as it saw them; from host 4 they are joinable.
    let mut peer4 = net.start(3, "peer4-2", &["-b", binds[3], "-p", &a1]);
    peer4.expect_lines(&[
        &format!("Received ack from peer1:{p1}"),
        &format!("  which is peered with: [{a2}], [{a3}]"),
    ]);
    peer4.wait_for(
        &format!("Connected to peer peer3:{p3} at timestamp: "),
        PATIENCE,
    );
    peer3.expect_lines(&[&format!("Connected from peer {}", peer4.addr)]);
    for peer in [&peer1, &peer2, &peer3] {
        assert!(peer.stderr().is_empty(), "{:?}", peer.stderr());
    }
}

#[test]
fn chain_across_hosts_each_bound_to_its_own_address() {
    chain_on_four_hosts(["198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"]);
}

#[test]
fn chain_across_hosts_bound_to_every_interface() {
    chain_on_four_hosts(["0.0.0.0"; 4]);
}

#[test]
fn a_host_name_is_resolved_through_the_hosts_file() {
    let Some(net) = hosts(2) else { return };
    net.hosts_file(1, "127.0.0.1 localhost\n198.18.0.1 lab-01\n");
    let mut peer1 = net.start(0, "peer1-2", &["-b", "0.0.0.0"]);
    let p1 = peer1.addr.port();
    let by_name = format!("lab-01:{p1}");
    let mut peer2 = net.start(1, "peer2-2", &["-b", "0.0.0.0", "-p", &by_name]);
    peer2.wait_for(
        &format!("Connected to peer peer1:{p1} at timestamp: "),
        PATIENCE,
    );
    peer1.expect_lines(&[&format!("Connected from peer {}", peer2.addr)]);

    let (status, stderr) = net.run_to_end(1, "peer3-2", &["-b", "0.0.0.0", "-p", "lab-99:4000"]);
    assert_eq!(status, Some(2), "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.contains("'lab-99' does not resolve"), "{stderr}");
}

#[test]
fn a_peer_joined_over_loopback_is_handed_to_other_hosts_at_this_hosts_address() {
    let Some(net) = hosts(2) else { return };
    let mut peer1 = net.start(0, "peer1-1", &["-b", "0.0.0.0"]);
    let p1 = peer1.addr.port();
    // A second peer on host 1 joins over loopback: peer1 records it as 127.0.0.1.
    let local = format!("127.0.0.1:{p1}");
    let mut peer2 = net.start(0, "peer2-2", &["-b", "0.0.0.0", "-p", &local]);
    let p2 = peer2.addr.port();
    peer2.wait_for(&format!("Connected to peer peer1:{p1}"), PATIENCE);
    peer1.expect_lines(&[&format!("Connected from peer 127.0.0.1:{p2}")]);

    // Host 2 is handed host 1's address with peer2's port, and joins peer2 there.
    let mut peer3 = net.start(1, "peer3-2", &["-b", "0.0.0.0", "-p", &peer1.target()]);
    peer1.wait_for("Peer table full: ", PATIENCE);
    peer3.expect_lines(&[
        &format!("Received ack from peer1:{p1}"),
        &format!("  which is peered with: [{}:{p2}]", Net::ip(0)),
    ]);
    peer3.wait_for(
        &format!("Connected to peer peer2:{p2} at timestamp: "),
        PATIENCE,
    );
    peer2.wait_for(&format!("Connected from peer {}", peer3.addr), PATIENCE);
}

/// Host `gone` vanishes (its cable cut, then its peer killed, so not even a reset gets
/// out); the peer linked to it on host `stays` must say it left within 30 s, and the slot
/// must take a join from host 3.
fn a_vanished_host_is_dropped(gone_accepts: bool) {
    let Some(net) = hosts(3) else { return };
    let mut accepting = net.start(0, "peer1-1", &["-b", "198.18.0.1"]);
    let mut joining = net.start(
        1,
        "peer2-1",
        &["-b", "198.18.0.2", "-p", &accepting.target()],
    );
    joining.wait_for("Connected to peer peer1:", PATIENCE);
    accepting.wait_for("Connected from peer ", PATIENCE);
    let (gone, stays, gone_host) = match gone_accepts {
        true => (&mut accepting, &mut joining, 0),
        false => (&mut joining, &mut accepting, 1),
    };
    net.unplug(gone_host);
    gone.kill();
    let cut = Instant::now();
    let left = format!("Peer {} left", gone.addr);
    stays.wait_for(&left, VANISHED_WITHIN);
    eprintln!(
        "noticed a vanished host after {:.1} s",
        cut.elapsed().as_secs_f64()
    );
    let mut newcomer = net.start(2, "peer3-1", &["-b", "198.18.0.3", "-p", &stays.target()]);
    newcomer.wait_for("Connected to peer ", PATIENCE);
}

#[test]
fn a_vanished_joining_host_is_dropped_by_the_accepting_peer() {
    a_vanished_host_is_dropped(false);
}

#[test]
fn a_vanished_accepting_host_is_dropped_by_the_joining_peer() {
    a_vanished_host_is_dropped(true);
}

#[test]
fn a_loopback_peer_is_told_which_bind_reaches_another_host() {
    let Some(net) = hosts(2) else { return };
    // Told to join another machine: exit 2 at once, naming the -b that routes there.
    let far = format!("{}:4000", Net::ip(1));
    let (status, stderr) = net.run_to_end(0, "peer1-2", &["-p", &far]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("another machine (198.18.0.2)"), "{stderr}");
    assert!(stderr.contains("-b 198.18.0.1"), "{stderr}");

    // This machine's own address is no other machine: the join is tried. A peer there on
    // loopback only refuses it, and the advice names the loopback address to use.
    let mut peer1 = net.start(0, "peer1-2", &[]);
    let p1 = peer1.addr.port();
    let own = format!("{}:{p1}", Net::ip(0));
    let mut peer2 = net.start(0, "peer2-2", &["-p", &own]);
    peer2.wait_for("No peer accepted the join", PATIENCE);
    let advice = peer2.wait_for_stderr(&["Connection refused", "is this machine"]);
    assert!(advice.contains(&format!("-p 127.0.0.1:{p1}")), "{advice}");
    assert!(!advice.contains("another machine"), "{advice}");

    // From another machine, the refusal says what is likely wrong.
    let mut peer3 = net.start(1, "peer3-2", &["-b", "198.18.0.2", "-p", &own]);
    peer3.wait_for("No peer accepted the join", PATIENCE);
    peer3.wait_for_stderr(&["Connection refused", "127.0.0.1 only", "-b 198.18.0.1"]);

    // And a loopback peer joining a peer on all interfaces at this machine's address works.
    let mut open = net.start(0, "peer4-2", &["-b", "0.0.0.0"]);
    let mut peer5 = net.start(0, "peer5-2", &["-p", &open.target()]);
    peer5.wait_for("Connected to peer peer4:", PATIENCE);
    open.expect_lines(&[&format!("Connected from peer {}", peer5.addr)]);
    peer1.kill();
}
