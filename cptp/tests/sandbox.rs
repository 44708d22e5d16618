//! The sandbox of `cptp check`, attacked: a class of submissions in which each hostile one
//! tries one thing a grader must not suffer (read a sibling, write into the grader's home
//! or the reports, delete its folder's parent, reach a test host on 198.18.0.0/15 or a
//! service's socket in /run, fork
//! without end, allocate 8 GB, write a 10 GB file, sleep forever, kill its parent, leave a
//! child behind), beside a good submission.
//!
//! For each: the attempt fails (the attacker prints what it got, and the report keeps it),
//! a limit is named in the verdict, the good submission gets exactly the verdicts it gets
//! alone, every file outside the scratch folders is as it was (digests before and after),
//! and nothing is left running. The harmless attacks run once more with `--sandbox none`,
//! to show that they get through there, as the report's header warns; the fork bomb, the
//! 8 GB and the 10 GB never run unconfined.
//!
//! Needs root (the test host and the target's own network), bubblewrap and Node.js;
//! skipped with a message where one is missing, failed under CI.

use cptp::harness::netns::Net;
use cptp::harness::sandbox::enter_network;
use cptp::harness::{need_tool, run_bounded, skip_or_fail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::net::{SocketAddrV4, TcpListener};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

fn cptp() -> &'static str {
    env!("CARGO_BIN_EXE_cptp")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The marker the detached child carries in its command line.
const LEFT_BEHIND: &str = "600.321";

/// Each attack: its name, whether it is harmless enough to run unconfined, and its code
/// (run once the good peer has started; `say` reports on stderr).
const ATTACKS: &[(&str, bool, &str)] = &[
    (
        "read-sibling",
        true,
        "try { say('GOT ' + fs.readFileSync(SIBLING).length + ' bytes'); } catch (e) { say('blocked: ' + e.code); }",
    ),
    (
        "write-home",
        true,
        "try { fs.writeFileSync(HOME_FILE, 'owned'); say('GOT it written'); } catch (e) { say('blocked: ' + e.code); }",
    ),
    (
        "write-out",
        true,
        "try { fs.writeFileSync(OUT_FILE, 'owned'); say('GOT it written'); } catch (e) { say('blocked: ' + e.code); }",
    ),
    (
        "connect-host",
        true,
        "const c = net.connect(HOST_PORT, '198.18.0.1'); c.on('connect', () => say('GOT a connection')); c.on('error', (e) => say('blocked: ' + e.code));",
    ),
    (
        "connect-socket",
        true,
        "const c = net.connect(SOCKET); c.on('connect', () => say('GOT a connection')); c.on('error', (e) => say('blocked: ' + e.code));",
    ),
    (
        "leave-child",
        true,
        "cp.spawn('sh', ['-c', '(sleep 600.321 &)'], { detached: true, stdio: 'ignore' }).unref(); say('left a child');",
    ),
    (
        "delete-parent",
        false,
        "try { fs.rmSync(path.resolve('..', '..'), { recursive: true, force: true }); say('deleted'); } catch (e) { say('blocked: ' + e.code); }",
    ),
    (
        "fork-bomb",
        false,
        "cp.spawn('sh', ['-c', 'f() { f | f & }; f'], { stdio: 'ignore' }); say('a fork bomb');",
    ),
    (
        "alloc-8gb",
        false,
        "const keep = []; for (let i = 0; i < 8; i++) { keep.push(Buffer.alloc(1 << 30, 1)); say((i + 1) + ' GB'); }",
    ),
    (
        "write-10gb",
        false,
        "const fd = fs.openSync('big', 'w'); const mb = Buffer.alloc(1 << 20, 7); for (let i = 0; i < 10240; i++) fs.writeSync(fd, mb); say('GOT 10 GB written');",
    ),
    ("sleep-forever", false, "SLEEP"),
    (
        "kill-parent",
        false,
        "try { process.kill(process.ppid, 'SIGKILL'); say('sent SIGKILL to ' + process.ppid); } catch (e) { say('blocked: ' + e.code); }",
    ),
];

/// What a limit attack's verdicts must name.
const LIMITS: &[(&str, &str)] = &[
    ("fork-bomb", "processes and threads"),
    ("alloc-8gb", "MB of memory"),
    ("write-10gb", "larger than 64 MB"),
];

/// The test's own world: a class, a grader's home, a reports folder, a marker in /tmp.
struct World {
    root: tempfile::TempDir,
    marker: PathBuf,
    host: SocketAddrV4,
    socket: PathBuf,
}

impl World {
    fn class(&self) -> PathBuf {
        self.root.path().join("class")
    }
    fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }
    fn out(&self) -> PathBuf {
        self.root.path().join("reports")
    }

    /// A submission named `name`: the good peer, and `attack` run once it has started.
    fn submit(&self, name: &str, attack: &str) {
        let folder = self.class().join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::copy(
            fixtures().join("course-peer.js"),
            folder.join("course-peer.js"),
        )
        .unwrap();
        let attack = match attack {
            "SLEEP" => "setInterval(() => {}, 1 << 30); say('sleeping');".to_string(),
            code => format!(
                "process.env.MODE = 'full'; require('./course-peer.js'); setTimeout(() => {{ {code} }}, 50);"
            ),
        };
        let script = format!(
            "const fs = require('fs'), net = require('net'), cp = require('child_process'), path = require('path');\n\
             const say = (what) => console.error('attack {name}: ' + what);\n\
             const SIBLING = {sibling:?}, HOME_FILE = {home:?}, OUT_FILE = {out:?}, HOST_PORT = {port}, SOCKET = {socket:?};\n\
             {attack}\n",
            sibling = self.class().join("good/attack.js").display().to_string(),
            home = self.home().join("owned.txt").display().to_string(),
            out = self.out().join("owned.txt").display().to_string(),
            port = self.host.port(),
            socket = self.socket.display().to_string(),
        );
        std::fs::write(folder.join("attack.js"), script).unwrap();
    }

    /// `cptp check --submissions` of the class, with the grader's home set to the test's.
    fn grade(&self, sandbox: &str) -> Output {
        let out = run_bounded(
            Command::new(cptp())
                .args(["check", "--sandbox", sandbox, "--time-scale", "2"])
                .args([
                    "--rule",
                    "1.3",
                    "--rule",
                    "7.1-address-line",
                    "--submissions",
                ])
                .arg(self.class())
                .args(["-j", "4", "--out"])
                .arg(self.out())
                .args(["--", "node", "attack.js"])
                .env("HOME", self.home()),
            Duration::from_secs(600),
        );
        out.unwrap_or_else(|e| panic!("{e}"))
    }

    /// A submission's JSON report.
    fn report(&self, name: &str) -> Value {
        let text =
            std::fs::read_to_string(self.out().join(name).join("report.json")).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

/// Every rule's status in a report.
fn statuses(report: &Value) -> BTreeMap<String, String> {
    report["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or("").to_string(),
                r["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Every line of a report: reasons, evidence, everything.
fn text(report: &Value) -> String {
    report.to_string()
}

/// Names and contents of every file below `dir`, for a before-and-after comparison.
fn digest(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let mut bytes = Vec::new();
                let _ = File::open(&path).and_then(|mut f| f.read_to_end(&mut bytes));
                found.insert(path, bytes);
            }
        }
    }
    found
}

/// Processes whose command line contains `marker`.
fn running(marker: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) && !cmdline.contains("cptp") {
                found.push((pid, cmdline));
            }
        }
    }
    found
}

/// A listener on the test host 198.18.0.1, counting the connections that reach it.
fn listen_on_host(net: &Net) -> (SocketAddrV4, Arc<AtomicUsize>) {
    let namespace = Path::new("/run/netns").join(net.name(0));
    let (tx, rx) = std::sync::mpsc::channel();
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&reached);
    thread::spawn(move || {
        let handle = OwnedFd::from(File::open(&namespace).expect("the host's namespace"));
        enter_network(&handle).expect("enter the test host");
        let listener = TcpListener::bind("198.18.0.1:0").expect("listen on the test host");
        let addr = match listener.local_addr().unwrap() {
            std::net::SocketAddr::V4(v4) => v4,
            other => panic!("{other}"),
        };
        tx.send(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        count_accepted(&counter, || listener.accept().is_ok());
    });
    (
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the host's listener"),
        reached,
    )
}

/// A service's Unix socket in /run (where a machine's daemons listen), counting the
/// connections that reach it.
fn service_socket() -> (PathBuf, Arc<AtomicUsize>) {
    let path = PathBuf::from(format!(
        "/run/cptp-sandbox-test-{}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("a socket in /run");
    listener.set_nonblocking(true).unwrap();
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&reached);
    thread::spawn(move || count_accepted(&counter, || listener.accept().is_ok()));
    (path, reached)
}

/// Counts the connections `accept` (non-blocking) takes, for as long as the test may run.
fn count_accepted(counter: &AtomicUsize, mut accept: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(600);
    while Instant::now() < until {
        if accept() {
            counter.fetch_add(1, Ordering::SeqCst);
        } else {
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether this machine can run the test: root, bwrap, node, ip.
fn can_run() -> bool {
    // SAFETY: geteuid only reads this process's effective user ID.
    if unsafe { libc::geteuid() } != 0 {
        skip_or_fail("the sandbox's attack test needs root (a test host, a network of its own)");
        return false;
    }
    need_tool("bwrap") && need_tool("node") && need_tool("ip")
}

#[test]
fn hostile_submissions_are_contained_and_the_good_one_is_graded_as_alone() {
    if !can_run() {
        return;
    }
    let mut net = Net::build(1).unwrap_or_else(|e| panic!("{e}"));
    net.plug_this_machine().unwrap_or_else(|e| panic!("{e}"));
    let (host, reached) = listen_on_host(&net);
    let (socket, spoken) = service_socket();
    let root = tempfile::tempdir().unwrap();
    let marker = std::env::temp_dir().join(format!("cptp-sandbox-marker-{}", std::process::id()));
    std::fs::create_dir_all(&marker).unwrap();
    std::fs::write(marker.join("keep"), "kept").unwrap();
    let world = World {
        root,
        marker,
        host,
        socket,
    };
    for dir in [world.home(), world.out()] {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("before.txt"), "as it was").unwrap();
    }

    // The good submission alone: its verdicts, to compare.
    world.submit("good", "say('none');");
    let alone = world.grade("bwrap");
    assert!(
        alone.status.code() == Some(0),
        "{}",
        String::from_utf8_lossy(&alone.stdout)
    );
    let good_alone = statuses(&world.report("good"));
    assert!(good_alone.values().all(|s| s == "pass"), "{good_alone:?}");

    for (name, _, code) in ATTACKS {
        world.submit(name, code);
    }
    let before: Vec<_> = [world.class(), world.home(), world.marker.clone()]
        .iter()
        .map(|d| digest(d))
        .collect();
    let started = Instant::now();
    let run = world.grade("bwrap");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.code() == Some(1),
        "the attackers fail rules: {stdout}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(300),
        "took {:?}",
        started.elapsed()
    );

    // The good one, exactly as alone.
    assert_eq!(statuses(&world.report("good")), good_alone, "{stdout}");
    // Every attempt failed, and the reports say what happened.
    for (name, _, _) in ATTACKS {
        let report = world.report(name);
        let said = text(&report);
        assert!(report.is_object(), "no report for {name}: {stdout}");
        assert!(
            !said.contains(&format!("attack {name}: GOT")),
            "{name} got through: {said}"
        );
    }
    for (name, limit) in LIMITS {
        let said = text(&world.report(name));
        assert!(
            said.contains("stopped by a limit") && said.contains(limit),
            "{name} should name {limit:?}: {said}"
        );
    }
    for (name, _, _) in ATTACKS.iter().filter(|(_, harmless, _)| *harmless) {
        let said = text(&world.report(name));
        if *name != "leave-child" {
            assert!(
                said.contains(&format!("attack {name}: blocked")),
                "{name}: {said}"
            );
        }
    }
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "a sandboxed target reached the test host"
    );
    assert_eq!(
        spoken.load(Ordering::SeqCst),
        0,
        "a sandboxed target reached a service's socket"
    );
    // Nothing outside the scratch folders changed, and nothing is left running.
    let after: Vec<_> = [world.class(), world.home(), world.marker.clone()]
        .iter()
        .map(|d| digest(d))
        .collect();
    assert_eq!(before, after, "files outside the scratch folders changed");
    assert!(
        !world.out().join("owned.txt").exists(),
        "an attacker wrote into the reports"
    );
    for marker in [LEFT_BEHIND, "f | f", "attack.js"] {
        assert_eq!(running(marker), Vec::new(), "left running: {marker}");
    }

    // The same harmless attacks unconfined: they get through, as the header warns.
    std::fs::remove_dir_all(world.class()).unwrap();
    std::fs::remove_dir_all(world.out()).unwrap();
    world.submit("good", "say('none');");
    for (name, _, code) in ATTACKS.iter().filter(|(_, harmless, _)| *harmless) {
        world.submit(name, code);
    }
    let run = world.grade("none");
    let header = String::from_utf8_lossy(
        &std::fs::read(world.out().join("read-sibling/report.txt")).unwrap_or_default(),
    )
    .into_owned();
    assert!(
        header.contains("sandbox: none (--sandbox none)"),
        "{header}"
    );
    let left = running(LEFT_BEHIND);
    for (pid, _) in &left {
        // SAFETY: kill only sends a signal, to the child this test's attacker left.
        unsafe {
            libc::kill(*pid as i32, libc::SIGKILL);
        }
    }
    assert!(!left.is_empty(), "unconfined, the child is left behind");
    for name in [
        "read-sibling",
        "write-home",
        "write-out",
        "connect-host",
        "connect-socket",
    ] {
        let said = text(&world.report(name));
        assert!(
            said.contains(&format!("attack {name}: GOT")),
            "{name} unconfined: {said}\n{}",
            String::from_utf8_lossy(&run.stdout)
        );
    }
    assert!(
        reached.load(Ordering::SeqCst) > 0,
        "unconfined, the test host is reached"
    );
    assert!(
        spoken.load(Ordering::SeqCst) > 0,
        "unconfined, the service's socket is reached"
    );
    assert!(world.home().join("owned.txt").exists());
    let _ = std::fs::remove_dir_all(&world.marker);
    let _ = std::fs::remove_file(&world.socket);
}

#[test]
fn bwrap_asked_for_and_missing_is_a_usage_error() {
    let out = run_bounded(
        Command::new(cptp())
            .args(["check", "--sandbox", "bwrap", "--", "true"])
            .env("PATH", "/nonexistent"),
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bwrap is not installed"));
    let out = run_bounded(
        Command::new(cptp())
            .args(["check", "--rule", "7.1-address-line", "--", "/bin/true"])
            .env("PATH", "/nonexistent"),
        Duration::from_secs(60),
    )
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("sandbox: none (bwrap is not installed)")),
        "{stdout}"
    );
    assert!(stdout.contains("apt-get install bubblewrap"), "{stdout}");
}
