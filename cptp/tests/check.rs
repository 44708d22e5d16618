//! `cptp check` against real targets: the reference `peer` passes every rule (also under
//! `--strict`), and the Node.js course peer (`tests/interop/course-peer.js`, `MODE=full`)
//! with one fault switched on fails exactly the rule that fault breaks. The JSON, JUnit
//! and Gradescope files are parsed, not just looked at.
//!
//! Tests that need `node` follow [`cptp::harness::need_tool`]: skipped with a message on a developer
//! machine without it, failed on CI (env `CI` set).

use cptp::harness::{Scratch, need_tool, workspace_binary};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

fn cptp() -> &'static str {
    env!("CARGO_BIN_EXE_cptp")
}

/// The reference peer, a target that passes every rule.
fn peer() -> String {
    workspace_binary("peer").display().to_string()
}

/// The folder of the Node.js fixtures.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The checker's deadlines are tripled in these tests (env `CPTP_TEST_TIME_SCALE`
/// overrides it): test machines are shared and loaded, and only failing rules wait their
/// deadlines out, so a conforming target costs no more time.
fn time_scale() -> String {
    std::env::var("CPTP_TEST_TIME_SCALE").unwrap_or_else(|_| "3".into())
}

/// One finished run of `cptp check` and the files it wrote.
struct Run {
    code: i32,
    stdout: String,
    json: Value,
    junit: String,
    gradescope: Value,
    _dir: tempfile::TempDir,
}

impl Run {
    /// Every rule's status, from the JSON report.
    fn statuses(&self) -> BTreeMap<String, String> {
        self.json["rules"]
            .as_array()
            .expect("rules array")
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().expect("id").to_string(),
                    r["status"].as_str().expect("status").to_string(),
                )
            })
            .collect()
    }

    /// The rules that did not pass, with their status.
    fn not_passed(&self) -> BTreeMap<String, String> {
        self.statuses()
            .into_iter()
            .filter(|(_, status)| status != "pass")
            .collect()
    }
}

/// Runs `cptp check ARGS -- TARGET` with `env`, writing all three report files.
fn check(args: &[&str], env: &[(&str, &str)], target: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let junit = dir.path().join("junit.xml");
    let gradescope = dir.path().join("results.json");
    let mut command = Command::new(cptp());
    command
        .arg("check")
        .args(["--time-scale", &time_scale()])
        .arg("--json")
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .arg("--gradescope")
        .arg(&gradescope)
        .args(args)
        .arg("--")
        .args(target)
        .env_remove("MODE")
        .env_remove("BREAK")
        .env_remove("QUIRK");
    for (key, value) in env {
        command.env(key, value);
    }
    let out = bounded(&mut command);
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        json: serde_json::from_str(&read(&json)).unwrap_or(Value::Null),
        junit: read(&junit),
        gradescope: serde_json::from_str(&read(&gradescope)).unwrap_or(Value::Null),
        _dir: dir,
    };
    assert!(
        run.json.is_object(),
        "no JSON report; stdout:\n{}\nstderr:\n{}",
        run.stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    run
}

/// Checks the Node peer with `env`; `extra` are more options.
fn check_node(extra: &[&str], env: &[(&str, &str)]) -> Run {
    let copy = fixtures().display().to_string();
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["--copy", &copy]);
    check(&args, env, &["node", "course-peer.js"])
}

/// Asserts that the JUnit file is well-formed XML with one testcase per rule and a
/// `failure` exactly for the failed rules.
fn assert_junit_matches(run: &Run) {
    let doc = roxmltree::Document::parse(&run.junit).expect("JUnit XML parses");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let statuses = run.statuses();
    assert_eq!(cases.len(), statuses.len(), "one testcase per rule");
    for case in cases {
        let id = case.attribute("name").expect("testcase name");
        let failed = case.children().any(|c| c.has_tag_name("failure"));
        let skipped = case.children().any(|c| c.has_tag_name("skipped"));
        let earned_nothing = statuses[id] == "fail" || statuses[id] == "blocked";
        assert_eq!(failed, earned_nothing, "{id} in JUnit");
        assert_eq!(skipped, statuses[id] == "skip", "{id} in JUnit");
        assert!(
            case.attribute("classname")
                .is_some_and(|c| c.starts_with("PROTOCOL."))
        );
    }
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("testsuite");
    let failures: usize = suite.attribute("failures").unwrap().parse().unwrap();
    let earned_nothing = |s: &&String| *s == "fail" || *s == "blocked";
    assert_eq!(failures, statuses.values().filter(earned_nothing).count());
}

/// Asserts that results.json has Gradescope's fields and agrees with the JSON report.
fn assert_gradescope_matches(run: &Run) {
    let tests = run.gradescope["tests"].as_array().expect("tests[]");
    let statuses = run.statuses();
    assert_eq!(tests.len(), statuses.len());
    let mut total = 0.0;
    for test in tests {
        let name = test["name"].as_str().expect("name");
        assert!(test["number"].is_string(), "{test}");
        assert!(test["output"].is_string(), "{test}");
        let score = test["score"].as_f64().expect("score");
        let max = test["max_score"].as_f64().expect("max_score");
        let status = test["status"].as_str().expect("status");
        let failed = statuses[name] == "fail" || statuses[name] == "blocked";
        assert_eq!(status, if failed { "failed" } else { "passed" }, "{name}");
        assert_eq!(score, if failed { 0.0 } else { max }, "{name}");
        total += score;
    }
    assert_eq!(run.gradescope["score"].as_f64(), Some(total));
}

#[test]
fn peer_passes_every_rule_also_strict() {
    let runs: Vec<Run> = thread::scope(|s| {
        let lenient = s.spawn(|| check(&[], &[], &[&peer()]));
        let strict = s.spawn(|| check(&["--strict"], &[], &[&peer()]));
        vec![lenient.join().unwrap(), strict.join().unwrap()]
    });
    for run in &runs {
        assert_eq!(run.not_passed(), BTreeMap::new(), "{}", run.stdout);
        assert_eq!(run.code, 0);
        assert!(run.statuses().len() >= 30);
        assert_eq!(run.json["conforms"], Value::Bool(true));
        assert_eq!(run.json["summary"]["failed"], 0);
        assert!(run.stdout.contains("PASS"), "{}", run.stdout);
        assert_junit_matches(run);
        assert_gradescope_matches(run);
        // Every rule names its section, and its ID starts with it.
        for rule in run.json["rules"].as_array().unwrap() {
            let section = rule["section"].as_str().unwrap();
            assert!(
                rule["id"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{section}-"))
            );
        }
    }
    assert_eq!(runs[1].json["strict"], Value::Bool(true));
}

/// What the Node peer in MODE=full does not pass whatever the fault: Node.js cannot join
/// from its listening port (PROTOCOL 6.1).
const NODE_CANNOT: (&str, &str) = ("6.1-join-from-listening-port", "fail");

/// Each fault of course-peer.js (MODE=full) with the options, and the rules that must
/// then not pass, beyond [`NODE_CANNOT`].
/// A fault of course-peer.js (its BREAK value), the options of the check, and the rules
/// that must not pass with their status.
type Fault = (
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

const FAULTS: &[Fault] = &[
    ("", &[], &[]),
    ("", &["--strict"], &[]),
    ("padding", &[], &[("4.2-exact-length", "warn")]),
    ("padding", &["--strict"], &[("4.2-exact-length", "fail")]),
    ("junk-tail", &[], &[("4.2-exact-length", "fail")]),
    ("close-welcome", &[], &[("5.1-link-stays-open", "fail")]),
    (
        "never-free",
        &[],
        &[
            ("5.4-slot-freed", "fail"),
            ("5.4-departed-not-listed", "fail"),
        ],
    ),
    ("stale-list", &[], &[("5.4-departed-not-listed", "fail")]),
    ("redirect-open", &[], &[("5.2-redirect-closed", "fail")]),
    ("overfill", &[], &[("5.3-concurrent-joins", "fail")]),
    (
        "endless",
        &[],
        &[("6.3-redirect-loop-ends", "fail"), ("6.4-gives-up", "fail")],
    ),
    ("self-join", &[], &[("6.3-no-self-join", "fail")]),
    ("crash-on-bad", &[], &[("4.5-reply-bad-version", "fail")]),
    ("crash-on-reset", &[], &[("4.5-survives-reset", "fail")]),
    ("colon", &[], &[("5.1-connected-line", "warn")]),
    ("colon", &["--strict"], &[("5.1-connected-line", "fail")]),
    (
        "folder-name",
        &[],
        &[
            ("2.2-id-from-folder", "warn"),
            ("7.1-address-line", "warn"),
            ("7.1-address-line-joining", "warn"),
        ],
    ),
    ("debug", &[], &[]),
    (
        "debug",
        &["--strict"],
        &[
            ("5.1-connected-line", "fail"),
            ("5.2-full-line", "fail"),
            ("5.4-left-line", "fail"),
        ],
    ),
    // Listening only after its join, as the course's sample does: the address line comes
    // too late, for the Redirect that should list it and for PROTOCOL 7.1.
    (
        "late-listen",
        &[],
        &[
            ("6.3-no-self-join", "fail"),
            ("7.1-address-line-joining", "fail"),
        ],
    ),
    // The mistakes of real students' peers (issue 14), each with its fair verdict: what
    // the peer does right passes; a root cause is named once, the rules behind it BLOCKED.
    (
        "imagedb-first",
        &[],
        &[
            ("7.1-address-line", "warn"),
            ("7.1-address-line-joining", "warn"),
        ],
    ),
    ("stray-colon", &[], &[("7.1-address-line", "warn")]),
    (
        "debug-70",
        &[],
        &[
            ("7.1-address-line", "warn"),
            ("7.1-address-line-joining", "warn"),
        ],
    ),
    ("print-before-listen", &[], &[]),
    (
        "split-dashes",
        &[],
        &[
            ("2.2-id-from-folder", "fail"),
            ("5.1-welcome-bytes", "fail"),
            ("7.1-address-line", "fail"),
            ("7.1-address-line-joining", "fail"),
        ],
    ),
    ("version-byte", &[], &[("1.3-silent-join-answered", "fail")]),
    ("ascii-bits", &[], &[("1.3-silent-join-answered", "fail")]),
    (
        "answer-after-data",
        &[],
        &[("1.3-silent-join-answered", "fail")],
    ),
    ("eaddrinuse", &[], &[("6.2-takes-welcome", "fail")]),
    ("bind-outgoing", &[], &[("6.2-takes-welcome", "fail")]),
    ("swapped-connect", &[], &[("6.2-takes-welcome", "fail")]),
    ("wait-newline", &[], &[("6.2-takes-welcome", "fail")]),
    ("bad-decode", &[], &[("6.2-takes-welcome", "fail")]),
    (
        "timer-ms",
        &[],
        &[("3.1-timestamp", "fail"), ("3.1-timer-rate", "fail")],
    ),
    ("timer-double", &[], &[("3.1-timer-rate", "fail")]),
    ("late-line", &[], &[("7.1-address-line-joining", "fail")]),
    (
        "joined-not-counted",
        &[],
        &[("6.2-counts-joined-peer", "fail")],
    ),
    (
        "stale-redirect",
        &[],
        &[("5.4-departed-not-listed", "fail")],
    ),
    (
        "crash-second-redirect",
        &[],
        &[
            ("6.3-auto-join-two-levels", "fail"),
            ("6.3-redirect-loop-ends", "fail"),
        ],
    ),
];

/// The statuses a fault expects: its own, Node's one (unless a gate blocks it), and
/// BLOCKED for every rule behind a gate that fails.
fn expected(broken: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut expected: BTreeMap<String, String> = broken
        .iter()
        .map(|(id, status)| (id.to_string(), status.to_string()))
        .collect();
    expected.insert(NODE_CANNOT.0.into(), NODE_CANNOT.1.into());
    for rule in cptp::check::rules::all() {
        let failed = |gate: &&str| expected.get(*gate).is_some_and(|s| s == "fail");
        if rule.after.iter().any(failed) {
            expected.insert(rule.id.to_string(), "blocked".into());
        }
    }
    expected
}

/// Checks the Node peer with one fault: exactly the fault's rules must not pass.
fn check_fault((fault, options, broken): &Fault) -> Result<(), String> {
    let expected = expected(broken);
    let env = [("MODE", "full"), ("BREAK", *fault)];
    let first = check_node(options, &env);
    // A loaded machine can make a Node peer miss a deadline: a mismatch is checked once
    // more before it counts. A real one repeats.
    let run = if first.not_passed() == expected {
        first
    } else {
        eprintln!(
            "BREAK={fault} {options:?}: rerun after {:?}",
            first.not_passed()
        );
        check_node(options, &env)
    };
    assert_eq!(run.code, 1, "a FAIL means exit status 1");
    assert_junit_matches(&run);
    assert_gradescope_matches(&run);
    if run.not_passed() != expected {
        return Err(format!(
            "BREAK={fault} {options:?}: expected {expected:?}, got {:?}\n{}",
            run.not_passed(),
            run.stdout
        ));
    }
    let rules = run.json["rules"].as_array().expect("rules");
    for (hinted, id, says) in HINTS.iter().filter(|(f, _, _)| f == fault) {
        let rule = rules
            .iter()
            .find(|r| r["id"] == *id)
            .expect("the hinted rule");
        let hints = rule["hints"].to_string();
        if !hints.contains(says) {
            return Err(format!("BREAK={hinted}: {id} should hint {says:?}: {rule}"));
        }
    }
    // Node.js writes a line to a pipe at once: never blame a stdout buffer.
    for rule in rules {
        if rule["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("stdout buffer")
        {
            return Err(format!(
                "BREAK={fault}: a stdout-buffer hint for Node.js: {rule}"
            ));
        }
    }
    Ok(())
}

/// The root cause each mistake's report must name: the fault, the rule, words of the hint.
const HINTS: &[(&str, &str, &str)] = &[
    (
        "version-byte",
        "1.3-silent-join-answered",
        "whole byte (07)",
    ),
    (
        "ascii-bits",
        "1.3-silent-join-answered",
        "characters '0' and '1'",
    ),
    (
        "answer-after-data",
        "1.3-silent-join-answered",
        "only once the joiner sends",
    ),
    ("eaddrinuse", "6.2-takes-welcome", "EADDRINUSE"),
    (
        "bind-outgoing",
        "6.2-takes-welcome",
        "bound to the listening port",
    ),
    ("swapped-connect", "6.2-takes-welcome", "arguments swapped"),
    ("wait-newline", "6.2-takes-welcome", "waits for a newline"),
    ("split-dashes", "2.2-id-from-folder", "holds a path"),
    ("split-dashes", "7.1-address-line", "holds a path"),
    (
        "crash-on-reset",
        "4.5-survives-reset",
        "unhandled 'error' event",
    ),
];

#[test]
fn each_fault_of_the_node_peer_fails_exactly_its_rule() {
    if !need_tool("node") {
        return;
    }
    // Four workers take faults off one list, each check running six targets at once; a
    // slow check (a fault makes rules wait out their deadlines) holds up only its worker.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let problems = std::sync::Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while let Some(fault) = FAULTS.get(next.fetch_add(1, Ordering::SeqCst)) {
                    if let Err(problem) = check_fault(fault) {
                        problems.lock().unwrap().push(problem);
                    }
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn the_course_style_peer_fails_the_joining_rules_with_reasons() {
    if !need_tool("node") {
        return;
    }
    // The default course-peer.js: no auto-join, joins from an ephemeral port, and crashes
    // on a truncated reply or a connection reset before it is accepted.
    let run = check_node(&[], &[]);
    let failed: Vec<String> = run.not_passed().into_keys().collect();
    for id in [
        "6.1-join-from-listening-port",
        "6.3-auto-join-first",
        "6.3-auto-join-two-levels",
        "6.4-gives-up",
        "4.5-reply-truncated",
    ] {
        assert!(
            failed.contains(&id.to_string()),
            "{id} should fail: {failed:?}"
        );
    }
    for id in [
        "5.1-welcome-bytes",
        "5.2-table-size",
        "5.3-concurrent-joins",
        "6.2-welcome-lines",
    ] {
        assert!(
            !failed.contains(&id.to_string()),
            "{id} should pass: {failed:?}"
        );
    }
    let rule = |id: &str| {
        run.json["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    let ephemeral = rule("6.1-join-from-listening-port");
    assert!(
        ephemeral["reason"]
            .as_str()
            .unwrap()
            .contains("accepts no joins"),
        "{ephemeral}"
    );
    let bytes = rule("5.1-welcome-bytes");
    assert!(
        bytes["actual"]
            .as_str()
            .unwrap()
            .contains("E0 20 00 05 70 65 65 72 31"),
        "{bytes}"
    );
    assert!(run.stdout.contains("FAIL"));
}

#[test]
fn the_newline_quirk_is_a_warning() {
    if !need_tool("node") {
        return;
    }
    let quirk = || {
        check_node(
            &["--rule", "4.2", "--rule", "5.1-welcome-bytes"],
            &[("MODE", "full"), ("QUIRK", "newline")],
        )
    };
    let mut run = quirk();
    if run.statuses()["4.2-exact-length"] != "warn" {
        eprintln!("rerun after {:?}: {}", run.not_passed(), run.stdout);
        run = quirk();
    }
    let statuses = run.statuses();
    assert_eq!(statuses.len(), 3, "the two rules and their gate");
    assert_eq!(statuses["1.3-silent-join-answered"], "pass");
    assert_eq!(statuses["4.2-exact-length"], "warn");
    assert_eq!(statuses["5.1-welcome-bytes"], "pass");
    assert_eq!(run.code, 0, "a WARN alone still conforms");
    let rule = &run.json["rules"][1];
    assert_eq!(rule["id"], "4.2-exact-length");
    assert!(rule["actual"].as_str().unwrap().contains("0A"), "{rule}");
}

#[test]
fn addr_checks_a_running_peer_server_side_only() {
    let scratch = Scratch::new(peer());
    let running = scratch.start("peer1-3", &[]);
    let out = bounded(Command::new(cptp()).args(["check", "--addr", &running.addr.to_string()]));
    drop(running);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        shows(&stdout, "PASS", "1.3-silent-join-answered"),
        "{stdout}"
    );
    assert!(shows(&stdout, "PASS", "4.2-exact-length"), "{stdout}");
    assert!(shows(&stdout, "PASS", "7.1-address-joinable"), "{stdout}");
    assert!(shows(&stdout, "SKIP", "5.1-welcome-bytes"), "{stdout}");
    assert!(shows(&stdout, "SKIP", "6.2-takes-welcome"), "{stdout}");
    assert!(stdout.contains("--addr checks a running peer"), "{stdout}");
    assert!(stdout.contains("0 failed"), "{stdout}");
}

#[test]
fn usage_list_and_help() {
    let run = |args: &[&str]| bounded(Command::new(cptp()).arg("check").args(args));
    for bad in [
        &[][..],
        &["--bogus"],
        &["--addr", "nowhere"],
        &["--addr", "127.0.0.1:1", "--", "x"],
        &["--time-scale", "0", "--", "x"],
        &["--rule", "9.9-nothing", "--", "x"],
        &["--points", "5.1-welcome-bytes=lots", "--", "x"],
        &["--sandbox", "maybe", "--", "x"],
        &["--max-memory", "1", "--", "x"],
        &["--max-processes", "many", "--", "x"],
        &["--max-cpu", "0", "--", "x"],
        &["--max-file-size", "-5", "--", "x"],
    ] {
        let out = run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: cptp check"));
    }
    let list = run(&["--list"]);
    assert_eq!(list.status.code(), Some(0));
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.lines().count() >= 30);
    assert!(text.contains("5.1-welcome-bytes") && text.contains("PROTOCOL 5.1"));
    let help = run(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    for option in [
        "--copy",
        "--addr",
        "--submissions",
        "--jobs",
        "--out",
        "--strict",
        "--rule",
        "--parallel",
        "--time-scale",
        "--list",
        "--verbose",
        "--json",
        "--junit",
        "--gradescope",
        "--points",
        "--sandbox",
        "--max-processes",
        "--max-memory",
        "--max-cpu",
        "--max-file-size",
        "Example",
    ] {
        assert!(text.contains(option), "help lacks {option}");
    }
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) && !cmdline.contains("cptp") {
                found.push(cmdline);
            }
        }
    }
    found
}

#[test]
fn hostile_targets_fail_with_reasons_and_leave_nothing_behind() {
    let targets: Vec<(&str, Vec<&str>, &str)> = vec![
        ("exits at once", vec!["sh", "-c", "exit 3"], "exit"),
        (
            "never prints",
            vec!["sh", "-c", "sleep 601.5 & sleep 601.5"],
            "listened on no TCP port",
        ),
        ("floods", vec!["yes", "601.7"], "address"),
        (
            "lies about its address",
            vec![
                "sh",
                "-c",
                "echo This peer address is 127.0.0.1:1 located at peer1; sleep 601.9",
            ],
            "listened on no TCP port",
        ),
    ];
    let started = Instant::now();
    let outputs: Vec<Output> = thread::scope(|s| {
        let handles: Vec<_> = targets
            .iter()
            .map(|(_, command, _)| {
                s.spawn(move || {
                    bounded(
                        Command::new(cptp())
                            .args(["check", "--time-scale", "1", "--"])
                            .args(command),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "took {:?}",
        started.elapsed()
    );
    for ((what, _, reason), out) in targets.iter().zip(outputs) {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{what}: {stdout}");
        if what.starts_with("lies") {
            // Its address line is well formed; nothing else it claims holds, and the gate
            // that nothing answers a join says so once.
            assert!(shows(&stdout, "PASS", "7.1-address-line"), "{stdout}");
            assert!(
                shows(&stdout, "FAIL", "1.3-silent-join-answered"),
                "{stdout}"
            );
            assert!(
                shows(&stdout, "BLOCKED", "7.1-address-joinable"),
                "{stdout}"
            );
            assert!(stdout.contains("1 passed"), "{what}: {stdout}");
        } else {
            assert!(stdout.contains("0 passed"), "{what}: {stdout}");
        }
        assert!(
            stdout.contains(reason),
            "{what} should say {reason:?}: {stdout}"
        );
        assert!(
            stdout.len() < 2_000_000,
            "{what}: the report is {} bytes",
            stdout.len()
        );
    }
    for marker in ["601.5", "601.7", "601.9"] {
        assert_eq!(processes_with(marker), Vec::<String>::new(), "left behind");
    }
}

#[test]
fn sigterm_ends_every_target() {
    let mut child = Command::new(cptp())
        .args(["check", "--rule", "5.4", "--", "sh", "-c", "sleep 602.3"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes_with("602.3").is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !processes_with("602.3").is_empty(),
        "the target never started"
    );
    // SAFETY: sends SIGTERM to the child we started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    thread::sleep(Duration::from_millis(100));
    assert_eq!(processes_with("602.3"), Vec::<String>::new(), "left behind");
}

#[test]
fn a_rule_of_weight_zero_is_informational() {
    if !need_tool("node") {
        return;
    }
    // Node.js cannot join from its listening port; a course may weigh that rule 0.
    let run = check_node(
        &[
            "--rule",
            "6.1",
            "--points",
            "6.1-join-from-listening-port=0",
        ],
        &[("MODE", "full")],
    );
    assert_eq!(run.statuses()["6.1-join-from-listening-port"], "fail");
    assert_eq!(
        run.code, 0,
        "an informational FAIL fails nothing: {}",
        run.stdout
    );
    assert_eq!(run.json["conforms"], Value::Bool(true));
    assert!(
        run.stdout.contains("(informational: 0 points)"),
        "{}",
        run.stdout
    );
}

/// A submission folder holding course-peer.js as `peer.js`, with `env` set inside.
fn submission(root: &Path, name: &str, env: &[(&str, &str)]) {
    let folder = root.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    let script = std::fs::read_to_string(fixtures().join("course-peer.js")).unwrap();
    let mut header = String::new();
    for (key, value) in env {
        header.push_str(&format!("process.env.{key} = '{value}';\n"));
    }
    std::fs::write(folder.join("peer.js"), header + &script).unwrap();
}

#[test]
fn submissions_grades_a_class_with_a_row_and_reports_each() {
    if !need_tool("node") {
        return;
    }
    let class = tempfile::tempdir().unwrap();
    // Alice's peer reads its folder name from the script's location, not the working
    // directory: --copy makes both the course-style folder.
    submission(
        class.path(),
        "alice",
        &[("MODE", "full"), ("FOLDER_FROM", "script")],
    );
    submission(
        class.path(),
        "bob",
        &[("MODE", "full"), ("BREAK", "redirect-open")],
    );
    std::fs::create_dir_all(class.path().join("carol")).unwrap(); // submitted nothing
    let out_dir = class.path().join("reports");
    let out = bounded(
        Command::new(cptp())
            .args([
                "check",
                "--time-scale",
                &time_scale(),
                "--rule",
                "5.2",
                "--rule",
                "7.1",
            ])
            .arg("--submissions")
            .arg(class.path())
            .args(["-j", "3", "--out"])
            .arg(&out_dir)
            .args(["--", "node", "peer.js"]),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}: {stdout}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // name, passed, failed, blocked, warned, skipped, score, seconds
    // 5.2 (4 rules), 7.1 (3) and the gates they stand behind (2).
    assert_eq!(row("alice")[1..7], ["9", "0", "0", "0", "0", "9/9"]);
    assert_eq!(row("bob")[1..7], ["8", "1", "0", "0", "0", "8/9"]);
    // Carol submitted nothing: her gates and 7.1-address-line fail, the rest is BLOCKED.
    assert_eq!(row("carol")[1..7], ["0", "3", "6", "0", "0", "0/9"]);
    for name in ["alice", "bob", "carol"] {
        for file in ["report.txt", "report.json", "junit.xml", "results.json"] {
            assert!(out_dir.join(name).join(file).is_file(), "{name}/{file}");
        }
    }
    let bob: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("bob/report.json")).unwrap())
            .unwrap();
    let failed: Vec<&str> = bob["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["5.2-redirect-closed"]);
    let csv = std::fs::read_to_string(out_dir.join("summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    // A second run does not grade the reports folder inside the class folder.
    let out = bounded(
        Command::new(cptp())
            .args(["check", "--rule", "7.1-address-joinable", "--submissions"])
            .arg(class.path())
            .arg("--out")
            .arg(&out_dir)
            .args(["--", "node", "peer.js"]),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("3 submissions"), "{stdout}");
    assert!(!stdout.contains("\nreports "), "{stdout}");
}

#[test]
fn points_weight_the_score() {
    let run = check(
        &[
            "--rule",
            "5.1-welcome-bytes",
            "--rule",
            "5.2",
            "--points",
            "5.2=3,5.2-full-line=0.5",
        ],
        &[],
        &[&peer()],
    );
    assert_eq!(
        run.json["summary"]["max_score"].as_f64(),
        Some(1.0 + 1.0 + 3.0 * 3.0 + 0.5),
        "the gate, 5.1-welcome-bytes, three 5.2 rules and 5.2-full-line"
    );
    assert_eq!(run.gradescope["score"].as_f64(), Some(11.5));
}

#[test]
fn the_gradescope_autograder_script_writes_results() {
    if !need_tool("node") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    submission(root.path(), "submission", &[("MODE", "full")]);
    std::fs::rename(
        root.path().join("submission/peer.js"),
        root.path().join("submission/index.js"),
    )
    .unwrap();
    let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/gradescope");
    // The bundle's course profile, where the zip puts it.
    std::fs::create_dir_all(root.path().join("source")).unwrap();
    std::fs::copy(
        contrib.join("points.txt"),
        root.path().join("source/points.txt"),
    )
    .unwrap();
    let out = bounded(
        Command::new("bash")
            .arg(contrib.join("run_autograder"))
            .env("AUTOGRADER_ROOT", root.path())
            .env("CPTP", cptp())
            .env(
                "CPTP_CHECK_OPTIONS",
                format!(
                    "--time-scale {} --rule 5.1 --rule 6.1 --rule 6.2",
                    time_scale()
                ),
            ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(root.path().join("results/results.json")).expect("results.json"),
    )
    .unwrap();
    let tests = results["tests"].as_array().unwrap();
    // 5.1 (4 rules), 6.1 (2), 6.2 (3), and the server gate.
    assert_eq!(tests.len(), 10);
    // Node.js cannot join from its listening port: the profile makes that rule
    // informational, so the Node.js peer that does all else right earns every point.
    let rule = |id: &str| tests.iter().find(|t| t["name"] == id).unwrap().clone();
    let listening = rule("6.1-join-from-listening-port");
    assert_eq!(listening["max_score"].as_f64(), Some(0.0), "{listening}");
    assert_eq!(listening["status"], "failed", "{listening}");
    assert_eq!(results["score"].as_f64(), Some(9.0), "{results}");
}

/// A target that answers every join with the largest message there is: a 49,405-byte
/// Redirect listing 8191 peers.
const HUGE_REPLY_PEER: &str = r#"
const net = require('net');
const id = require('path').basename(process.cwd()).replace(/-\d+$/, '');
const body = Buffer.alloc(255 + 6 * 8191, 0x7f);
const head = Buffer.alloc(4);
head.writeUInt32BE(((7 << 29) | (2 << 21) | (8191 << 8) | 255) >>> 0, 0);
const s = net.createServer((c) => { c.on('error', () => {}); c.write(Buffer.concat([head, body])); });
s.listen(0, '127.0.0.1', () => console.log(`This peer address is 127.0.0.1:${s.address().port} located at ${id}`));
"#;

#[test]
fn a_49_kb_reply_fails_without_flooding_the_report() {
    if !need_tool("node") {
        return;
    }
    let run = check(
        &["--rule", "5.1", "--rule", "4.2"],
        &[],
        &["node", "-e", HUGE_REPLY_PEER],
    );
    assert_eq!(run.code, 1);
    let statuses = run.statuses();
    assert_eq!(statuses["5.1-welcome-bytes"], "fail");
    assert_eq!(
        statuses["4.2-exact-length"], "pass",
        "49,405 bytes is exactly 4 + L + 6N"
    );
    assert!(
        run.stdout.contains("(49405 bytes: E0 5F FF FF"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("... and 8175 more"), "{}", run.stdout);
    assert!(
        run.stdout.len() < 20_000,
        "{} bytes of report",
        run.stdout.len()
    );
}

/// True when the text report shows rule `id` with `status`.
fn shows(stdout: &str, status: &str, id: &str) -> bool {
    stdout.lines().any(|line| {
        let mut words = line.split_whitespace();
        words.next() == Some(status) && words.next() == Some(id)
    })
}

/// Runs `command` to its end; a run of `cptp` that hangs fails the test instead of hanging
/// it (a whole check ends within minutes even with the tests' tripled deadlines).
fn bounded(command: &mut Command) -> Output {
    cptp::harness::run_bounded(command, Duration::from_secs(600)).unwrap_or_else(|e| panic!("{e}"))
}
