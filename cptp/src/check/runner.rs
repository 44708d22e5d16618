//! Runs rules, several at once, each on a thread of its own with its own time limit.
//!
//! Rules are independent (each starts its own target), so a check takes about as long as
//! its slowest rules rather than their sum. A rule that depends on gates (`Rule::after`)
//! starts only once they have finished; when one of them failed, the rule is not run but
//! reported BLOCKED by it, so a report names a root cause once instead of a dozen times.
//! A rule that overruns its limit FAILs, and the process groups it started are killed,
//! which ends its blocked I/O; its thread is left to finish on its own.

use super::ctx::{Ctx, Subject};
use super::rule::{Needs, Rule};
use super::scale::Scale;
use super::target::Grounds;
use super::verdict::{Status, Verdict};
use crate::harness::cleanup;
use crate::harness::sandbox::{enter_network, private_network};
use crate::sync::lock;
use std::collections::HashMap;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// No rule starts later than this after the check began, so a target that hangs every
/// rule is done with in under 2 minutes (this plus the longest rule).
pub const CHECK_LIMIT: Duration = Duration::from_secs(85);

/// How to check one target: what it is and the options that shape the verdicts.
pub struct Check {
    pub subject: Subject,
    pub strict: bool,
    pub scale: Scale,
    /// Rules run at once.
    pub parallel: usize,
    /// The weight of each rule that `--points` weighs; unlisted rules weigh 1.
    pub points: HashMap<String, f64>,
    /// Where the targets run: their scratch folders and their sandbox.
    pub grounds: Arc<Grounds>,
}

/// The verdict of one rule with its evidence and weight.
#[derive(Debug, Clone)]
pub struct RuleResult {
    pub rule: &'static Rule,
    pub verdict: Verdict,
    /// What the rule did and saw, in order, then the targets' output.
    pub evidence: Vec<String>,
    pub elapsed: Duration,
    /// The rule's weight (`--points`), 1 unless set.
    pub points: f64,
}

impl RuleResult {
    /// Points earned: all of them for PASS and WARN, none otherwise.
    pub fn score(&self) -> f64 {
        match self.verdict.status.earns() {
            true => self.points,
            false => 0.0,
        }
    }

    /// Points at stake: none for a skipped rule.
    pub fn max_score(&self) -> f64 {
        match self.verdict.status {
            Status::Skip => 0.0,
            _ => self.points,
        }
    }
}

/// A whole check of one target.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was checked, as the user gave it.
    pub target: String,
    /// How the targets ran: the sandbox's line of the header.
    pub sandbox: String,
    pub strict: bool,
    pub scale: Scale,
    pub results: Vec<RuleResult>,
    pub elapsed: Duration,
}

/// Counts of each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub warned: usize,
    pub skipped: usize,
    pub blocked: usize,
}

impl Report {
    pub fn tally(&self) -> Tally {
        let mut tally = Tally::default();
        for result in &self.results {
            match result.verdict.status {
                Status::Pass => tally.passed += 1,
                Status::Fail => tally.failed += 1,
                Status::Warn => tally.warned += 1,
                Status::Skip => tally.skipped += 1,
                Status::Blocked => tally.blocked += 1,
            }
        }
        tally
    }

    pub fn score(&self) -> f64 {
        self.results.iter().map(RuleResult::score).sum()
    }

    pub fn max_score(&self) -> f64 {
        self.results.iter().map(RuleResult::max_score).sum()
    }

    /// True when no rule that carries points failed or was blocked. A rule of weight 0
    /// (`--points ID=0`) is informational: checked and shown, never failing the check.
    pub fn conforms(&self) -> bool {
        !self
            .results
            .iter()
            .any(|r| r.points > 0.0 && matches!(r.verdict.status, Status::Fail | Status::Blocked))
    }
}

/// The rules still to run and the verdicts so far.
struct Board {
    waiting: Vec<(usize, &'static Rule)>,
    done: HashMap<&'static str, Verdict>,
    results: Vec<(usize, RuleResult)>,
}

/// Runs `rules` against `check`'s subject, `check.parallel` at a time, gates first.
pub fn run(check: &Check, rules: &[&'static Rule], target: String) -> Report {
    let started = Instant::now();
    let board = Mutex::new(Board {
        waiting: rules.iter().copied().enumerate().collect(),
        done: HashMap::new(),
        results: Vec::new(),
    });
    let changed = Condvar::new();
    let selected: Vec<&str> = rules.iter().map(|r| r.id).collect();
    thread::scope(|scope| {
        for _ in 0..check.parallel.clamp(1, rules.len().max(1)) {
            scope.spawn(|| {
                while let Some((index, rule, blocked)) = next(&board, &changed, &selected) {
                    let weight = check.points.get(rule.id).copied().unwrap_or(1.0);
                    let result = match blocked {
                        Some(verdict) => RuleResult {
                            rule,
                            verdict,
                            evidence: Vec::new(),
                            elapsed: Duration::ZERO,
                            points: weight,
                        },
                        None if started.elapsed() > check.scale.of(CHECK_LIMIT) => {
                            not_run(check, rule, weight)
                        }
                        None => run_one(check, rule, weight),
                    };
                    let mut board = lock(&board);
                    board.done.insert(rule.id, result.verdict.clone());
                    board.results.push((index, result));
                    changed.notify_all();
                }
            });
        }
    });
    let mut results = board
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .results;
    results.sort_by_key(|(index, _)| *index);
    Report {
        target,
        sandbox: check.grounds.sandbox.header(),
        strict: check.strict,
        scale: check.scale,
        results: results.into_iter().map(|(_, r)| r).collect(),
        elapsed: started.elapsed(),
    }
}

/// The next rule whose gates have all finished, and the verdict that blocks it if one of
/// them failed; `None` when every rule has been taken. Gates outside the selection do not
/// hold a rule back.
fn next(
    board: &Mutex<Board>,
    changed: &Condvar,
    selected: &[&str],
) -> Option<(usize, &'static Rule, Option<Verdict>)> {
    let mut board = lock(board);
    loop {
        if board.waiting.is_empty() {
            return None;
        }
        let is_ready = |rule: &Rule| {
            rule.after
                .iter()
                .all(|gate| !selected.contains(gate) || board.done.contains_key(gate))
        };
        // Gates first (others wait for them), then the contract's order.
        let is_gate = |rule: &Rule| {
            board
                .waiting
                .iter()
                .any(|(_, r)| r.after.contains(&rule.id))
        };
        let ready = board
            .waiting
            .iter()
            .position(|(_, rule)| is_ready(rule) && is_gate(rule))
            .or_else(|| board.waiting.iter().position(|(_, rule)| is_ready(rule)));
        if let Some(at) = ready {
            let (index, rule) = board.waiting.remove(at);
            let blocked = rule.after.iter().find_map(|gate| {
                let verdict = board.done.get(gate)?;
                (verdict.status == Status::Fail).then(|| Verdict::blocked(gate, &verdict.reason))
            });
            return Some((index, rule, blocked));
        }
        board = changed
            .wait_timeout(board, Duration::from_millis(100))
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// The result of a rule that was not started because the whole check ran out of time.
fn not_run(check: &Check, rule: &'static Rule, points: f64) -> RuleResult {
    let limit = check.scale.of(CHECK_LIMIT).as_secs();
    RuleResult {
        rule,
        verdict: Verdict::fail(
            "the rule runs",
            "not run",
            format!(
                "the whole check's time limit of {limit} s passed before this rule could start (the other rules took too long)"
            ),
        ),
        evidence: Vec::new(),
        elapsed: Duration::ZERO,
        points,
    }
}

/// Runs one rule within its time limit.
fn run_one(check: &Check, rule: &'static Rule, points: f64) -> RuleResult {
    let started = Instant::now();
    let finish = |verdict: Verdict, evidence: Vec<String>| RuleResult {
        rule,
        verdict,
        evidence,
        elapsed: started.elapsed(),
        points,
    };
    if rule.needs == Needs::Fresh && matches!(check.subject, Subject::Running(_)) {
        return finish(
            Verdict::skip(
                "needs a fresh peer started by cptp and its stdout; --addr checks a running peer's server side only",
            ),
            Vec::new(),
        );
    }
    let ctx = Ctx::new(
        check.subject.clone(),
        check.strict,
        check.scale,
        Arc::clone(&check.grounds),
    );
    let ledger = ctx.ledger.clone();
    // A sandboxed target gets a network of its own (as root): the rule's thread enters it
    // first, so that the fakes it starts, the joins it makes and the target it starts all
    // live there, and nothing else does.
    let private = check.grounds.sandbox.on() && check.grounds.sandbox.network.is_ok();
    let launched = matches!(&check.subject, Subject::Launch(l) if l.confinable());
    let (tx, rx) = channel();
    let spawned = thread::Builder::new()
        .name(format!("rule {}", rule.id))
        .spawn(move || {
            if private && launched {
                let entered = private_network().and_then(|net| enter_network(&net));
                if let Err(e) = entered {
                    let _ = tx.send(Verdict::skip(format!(
                        "cptp could not make the target's network: {e}"
                    )));
                    return;
                }
            }
            let verdict = (rule.run)(&ctx);
            drop(ctx);
            let _ = tx.send(verdict);
        });
    if let Err(e) = spawned {
        return finish(
            Verdict::skip(format!("cptp could not start a thread: {e}")),
            Vec::new(),
        );
    }
    let limit = check.scale.of(rule.limit);
    let verdict = match rx.recv_timeout(limit) {
        Ok(verdict) => verdict,
        Err(RecvTimeoutError::Timeout) => {
            for pgid in lock(&ledger.groups).drain(..) {
                cleanup::kill_group(pgid);
            }
            // With its targets gone the rule's waits end soon: give it a moment to hand
            // over the evidence.
            let _ = rx.recv_timeout(Duration::from_secs(1));
            Verdict::fail(
                "the rule finishes",
                format!("still running after {} s", limit.as_secs()),
                format!("the rule's time limit of {} s passed", limit.as_secs()),
            )
        }
        Err(RecvTimeoutError::Disconnected) => Verdict::fail(
            "the rule finishes",
            "the rule's thread panicked",
            "a bug in cptp check, not in the target: please report it",
        ),
    };
    let evidence = lock(&ledger.log).clone();
    let verdict = match lock(&ledger.limits_hit).first() {
        Some(hit) => {
            let mut stopped = Verdict::fail(
                verdict.expected.clone(),
                verdict.actual.clone(),
                format!("a target was stopped by a limit of the sandbox: in {hit}"),
            );
            stopped.hints = verdict.hints;
            stopped
        }
        None => verdict,
    };
    finish(verdict, evidence)
}
