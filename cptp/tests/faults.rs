//! Every rule of `cptp check` is shown to fail, by a broken peer of its own, without
//! Node.js: the fixture peer of `tests/fixture` (written on the harness, run in this
//! process) with one fault switched on fails exactly the rules its entry names, and
//! passes every other; with no fault it passes them all. A rule that no entry names is a
//! rule that no test has seen fail, and the first test says which.

mod fixture;

use cptp::check::ctx::Subject;
use cptp::check::rules;
use cptp::check::runner::{self, Check, Report};
use cptp::check::scale::Scale;
use cptp::check::target::Grounds;
use fixture::Fault::{self, *};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// A fault, whether `--strict` is on, and the rules it must fail (or warn), by status.
type Entry = (
    &'static [Fault],
    bool,
    &'static [(&'static str, &'static str)],
);

/// The table of broken peers. Every rule ID appears in at least one entry.
const ENTRIES: &[Entry] = &[
    (&[], false, &[]),
    (&[], true, &[]),
    (
        &[WelcomeIdHardcoded],
        false,
        &[("2.2-id-from-folder", "fail")],
    ),
    (
        &[SenderIsFolderName],
        false,
        &[
            ("2.2-id-from-folder", "fail"),
            ("5.1-welcome-bytes", "fail"),
        ],
    ),
    // A gate failed: the rules behind it are BLOCKED by it (added by `expected`).
    (
        &[HeaderBitOff],
        false,
        &[("1.3-silent-join-answered", "fail")],
    ),
    (&[WaitsForNewline], false, &[("6.2-takes-welcome", "fail")]),
    (
        &[TimerZero],
        false,
        &[("3.1-timestamp", "fail"), ("3.1-timer-rate", "fail")],
    ),
    (
        &[TimerConnectMillis],
        false,
        &[("3.1-timestamp", "fail"), ("3.1-timer-rate", "fail")],
    ),
    (&[TimerDouble], false, &[("3.1-timer-rate", "fail")]),
    (&[PadReplies], false, &[("4.2-exact-length", "warn")]),
    (&[PadReplies], true, &[("4.2-exact-length", "fail")]),
    (&[JunkTail], false, &[("4.2-exact-length", "fail")]),
    (&[CrashOnReset], false, &[("4.5-survives-reset", "fail")]),
    (&[CrashOnJunk], false, &[("4.5-survives-junk", "fail")]),
    (
        &[CrashOnBadVersion],
        false,
        &[("4.5-reply-bad-version", "fail")],
    ),
    (
        &[CrashOnUnknownType],
        false,
        &[("4.5-reply-unknown-type", "fail")],
    ),
    (
        &[CrashOnTruncated],
        false,
        &[("4.5-reply-truncated", "fail")],
    ),
    (&[JoinBlocksServer], false, &[("4.5-reply-silent", "fail")]),
    (
        &[WelcomeNewestFirst],
        false,
        &[("5.1-welcome-lists-table", "fail")],
    ),
    (
        &[CloseAfterWelcome],
        false,
        &[("5.1-link-stays-open", "fail")],
    ),
    (&[NoConnectedLine], false, &[("5.1-connected-line", "fail")]),
    (&[ConnectedColon], false, &[("5.1-connected-line", "warn")]),
    (&[ConnectedColon], true, &[("5.1-connected-line", "fail")]),
    (
        &[TableOneBigger],
        false,
        &[
            ("5.2-table-size", "fail"),
            ("5.2-redirect-lists-table", "fail"),
            ("5.2-full-line", "fail"),
            ("5.2-redirect-closed", "fail"),
            ("5.3-concurrent-joins", "fail"),
            ("5.4-departed-not-listed", "fail"),
            ("6.2-counts-joined-peer", "fail"),
        ],
    ),
    (
        &[RedirectOmitsLast],
        false,
        &[
            ("5.2-redirect-lists-table", "fail"),
            ("5.3-concurrent-joins", "fail"),
            ("6.2-counts-joined-peer", "fail"),
        ],
    ),
    (&[NoFullLine], false, &[("5.2-full-line", "fail")]),
    (
        &[RedirectLeftOpen],
        false,
        &[("5.2-redirect-closed", "fail")],
    ),
    (&[RacyAdmission], false, &[("5.3-concurrent-joins", "fail")]),
    (
        &[NeverFrees],
        false,
        &[
            ("5.4-slot-freed", "fail"),
            ("5.4-departed-not-listed", "fail"),
        ],
    ),
    (&[StaleList], false, &[("5.4-departed-not-listed", "fail")]),
    (&[NoLeftLine], false, &[("5.4-left-line", "fail")]),
    (
        &[JoinFromEphemeral],
        false,
        &[("6.1-join-from-listening-port", "fail")],
    ),
    (
        &[StopsListeningAfterWelcome],
        false,
        &[
            ("6.1-accepts-after-join", "fail"),
            ("6.2-counts-joined-peer", "fail"),
        ],
    ),
    (&[NoAckLine], false, &[("6.2-welcome-lines", "fail")]),
    (&[ExtraLineInEvent], false, &[("6.2-welcome-lines", "warn")]),
    (&[ExtraLineInEvent], true, &[("6.2-welcome-lines", "fail")]),
    (
        &[DepartureEndsServing],
        false,
        &[
            ("4.5-survives-reset", "fail"),
            ("5.4-slot-freed", "fail"),
            ("5.4-departed-not-listed", "fail"),
        ],
    ),
    (&[NoBlankLines], false, &[("6.3-redirect-lines", "fail")]),
    (&[DeclinedFirst], false, &[("6.3-redirect-lines", "fail")]),
    (&[NoAutoJoin], false, &[("6.3-follows-redirect", "fail")]),
    (
        &[AutoJoinLastFirst],
        false,
        &[("6.3-auto-join-first", "fail")],
    ),
    (
        &[FollowsOneRedirectOnly],
        false,
        &[("6.3-auto-join-two-levels", "fail")],
    ),
    (
        &[RetriesTried],
        false,
        &[("6.3-redirect-loop-ends", "fail")],
    ),
    (&[JoinsItself], false, &[("6.3-no-self-join", "fail")]),
    (&[NoGiveUpLine], false, &[("6.4-gives-up", "fail")]),
    (&[CrashOnRefused], false, &[("6.4-gives-up", "fail")]),
    (
        &[CrashOnSecondRedirect],
        false,
        &[
            ("6.3-auto-join-two-levels", "fail"),
            ("6.3-redirect-loop-ends", "fail"),
        ],
    ),
    (
        &[JoinedNotCounted],
        false,
        &[("6.2-counts-joined-peer", "fail")],
    ),
    (
        &[StaleInRedirect],
        false,
        &[("5.4-departed-not-listed", "fail")],
    ),
    (
        &[AddressLineAfterJoin],
        false,
        &[("7.1-address-line-joining", "fail")],
    ),
    (
        &[AddressLineOffByOne],
        false,
        &[("7.1-address-line", "fail")],
    ),
    (
        &[AddressLineWrongPort],
        false,
        &[("7.1-address-joinable", "fail")],
    ),
];

/// What the reason of a FAIL must say: it names what happened, not a guess.
const REASONS: &[(&[Fault], &str, &str)] = &[
    (
        &[ExtraLineInEvent],
        "6.2-welcome-lines",
        "between the lines of one event",
    ),
    (&[NoAckLine], "6.2-welcome-lines", "came instead"),
    (
        &[DeclinedFirst],
        "6.3-redirect-lines",
        "came 1 line(s) later",
    ),
    (
        &[DepartureEndsServing],
        "5.4-slot-freed",
        "the last join after the departure failed",
    ),
    (
        &[AddressLineAfterJoin],
        "7.1-address-line-joining",
        "a line of the join came before it",
    ),
    (
        &[CrashOnBadVersion],
        "4.5-reply-bad-version",
        "stopped the target",
    ),
    (
        &[JoinsItself],
        "6.3-no-self-join",
        "TCP connection to itself",
    ),
];

/// Deadlines are doubled: the machines that run the tests are shared, and only a failing
/// rule waits its deadline out, so a passing one costs no more.
const SCALE: f64 = 2.0;

/// Runs every rule against the fixture with `faults`.
fn check(faults: &[Fault], strict: bool) -> Report {
    let check = Check {
        subject: Subject::Launch(Arc::new(fixture::launcher(faults))),
        strict,
        scale: Scale(SCALE),
        parallel: 8,
        points: HashMap::new(),
        grounds: Arc::new(Grounds::unconfined()),
    };
    let all: Vec<_> = rules::all().collect();
    runner::run(&check, &all, format!("{faults:?}"))
}

/// The rules that did not pass, with their status.
fn not_passed(report: &Report) -> BTreeMap<String, String> {
    report
        .results
        .iter()
        .filter(|r| r.verdict.status.name() != "pass")
        .map(|r| (r.rule.id.to_string(), r.verdict.status.name().to_string()))
        .collect()
}

#[test]
fn every_rule_has_a_broken_peer_that_fails_it() {
    let named: Vec<&str> = ENTRIES
        .iter()
        .flat_map(|(_, _, rules)| rules.iter().map(|(id, _)| *id))
        .collect();
    let unseen: Vec<&str> = rules::all()
        .map(|r| r.id)
        .filter(|id| !named.contains(id))
        .collect();
    assert!(unseen.is_empty(), "no broken peer fails {unseen:?}");
    for id in named {
        assert!(rules::find(id).is_some(), "{id} is no rule");
    }
}

/// The statuses an entry expects: its own, and BLOCKED for every rule behind a gate it
/// fails.
fn expected(broken: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut expected: BTreeMap<String, String> = broken
        .iter()
        .map(|(id, status)| (id.to_string(), status.to_string()))
        .collect();
    for rule in rules::all() {
        let gate_failed = rule
            .after
            .iter()
            .any(|gate| expected.get(*gate).is_some_and(|s| s == "fail"));
        if gate_failed {
            expected.insert(rule.id.to_string(), "blocked".to_string());
        }
    }
    expected
}

/// Checks one entry; a mismatch is checked once more before it counts (a loaded machine
/// can make a deadline pass), and a real one repeats.
fn check_entry((faults, strict, broken): &Entry) -> Result<(), String> {
    let expected = expected(broken);
    let mut report = check(faults, *strict);
    if not_passed(&report) != expected {
        eprintln!(
            "{faults:?} strict={strict}: rerun after {:?}",
            not_passed(&report)
        );
        report = check(faults, *strict);
    }
    for (with, id, says) in REASONS.iter().filter(|(f, _, _)| f == faults) {
        let result = report
            .results
            .iter()
            .find(|r| r.rule.id == *id)
            .expect("the rule");
        if !result.verdict.reason.contains(says) {
            return Err(format!(
                "{with:?}: {id} should say {says:?}, not {:?}",
                result.verdict.reason
            ));
        }
    }
    match not_passed(&report) == expected {
        true => Ok(()),
        false => Err(format!(
            "{faults:?} strict={strict}: expected {expected:?}, got {:?}\n{}",
            not_passed(&report),
            cptp::check::report::text::render(&report, false, false)
        )),
    }
}

#[test]
fn each_broken_peer_fails_exactly_its_rules() {
    // Eight workers take entries off the table; each check runs eight rules at once. The
    // peers run in this process and mostly wait, so this costs little CPU.
    let next = AtomicUsize::new(0);
    let problems = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                while let Some(entry) = ENTRIES.get(next.fetch_add(1, Ordering::SeqCst)) {
                    if let Err(problem) = check_entry(entry) {
                        problems.lock().unwrap().push(problem);
                    }
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
