//! Runs rules, several at once, each on a thread of its own with its own time limit.
//!
//! Rules are independent (each starts its own target), so a check takes about as long as
//! its slowest rules rather than their sum. A rule that overruns its limit FAILs, and the
//! process groups it started are killed, which ends its blocked I/O; its thread is left to
//! finish on its own.

use super::outcome::Outcome;
use super::rules::{CHECK_LIMIT, Ctx, Needs, Rule, Subject};
use super::target::lock;
use crate::check::cleanup;
use crate::check::timing::scaled;
use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The outcome of one rule with its evidence and weight.
#[derive(Debug, Clone)]
pub struct RuleResult {
    pub rule: &'static Rule,
    pub outcome: Outcome,
    /// What the rule did and saw, in order, then the target's output.
    pub evidence: Vec<String>,
    pub elapsed: Duration,
    /// The rule's weight (`--points`), 1 unless set.
    pub points: f64,
}

impl RuleResult {
    /// Points earned: all of them for PASS and WARN, none for FAIL and SKIP.
    pub fn score(&self) -> f64 {
        use super::outcome::Status::*;
        match self.outcome.status {
            Pass | Warn => self.points,
            Fail | Skip => 0.0,
        }
    }

    /// Points at stake: none for a skipped rule.
    pub fn max_score(&self) -> f64 {
        match self.outcome.status {
            super::outcome::Status::Skip => 0.0,
            _ => self.points,
        }
    }
}

/// A whole check of one target.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was checked, as the user gave it.
    pub target: String,
    pub strict: bool,
    pub results: Vec<RuleResult>,
    pub elapsed: Duration,
}

/// Counts of each status.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub warned: usize,
    pub skipped: usize,
}

impl Report {
    pub fn tally(&self) -> Tally {
        use super::outcome::Status::*;
        let mut tally = Tally::default();
        for result in &self.results {
            match result.outcome.status {
                Pass => tally.passed += 1,
                Fail => tally.failed += 1,
                Warn => tally.warned += 1,
                Skip => tally.skipped += 1,
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

    /// True when no rule failed.
    pub fn conforms(&self) -> bool {
        self.tally().failed == 0
    }
}

/// Runs `rules` against `subject`, `parallel` at a time.
pub fn run(
    rules: &[&'static Rule],
    subject: &Subject,
    strict: bool,
    parallel: usize,
    points: &HashMap<String, f64>,
    target: String,
) -> Report {
    let started = Instant::now();
    let queue: Mutex<VecDeque<(usize, &'static Rule)>> =
        Mutex::new(rules.iter().copied().enumerate().collect());
    let results: Mutex<Vec<(usize, RuleResult)>> = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..parallel.clamp(1, rules.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let next = lock(&queue).pop_front();
                    let Some((index, rule)) = next else { break };
                    let weight = points.get(rule.id).copied().unwrap_or(1.0);
                    let result = if started.elapsed() > scaled(CHECK_LIMIT) {
                        not_run(rule, weight)
                    } else {
                        run_one(rule, subject, strict, weight)
                    };
                    lock(&results).push((index, result));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(index, _)| *index);
    Report {
        target,
        strict,
        results: results.into_iter().map(|(_, r)| r).collect(),
        elapsed: started.elapsed(),
    }
}

/// The result of a rule that was not started because the whole check ran out of time.
fn not_run(rule: &'static Rule, points: f64) -> RuleResult {
    let limit = scaled(CHECK_LIMIT).as_secs();
    RuleResult {
        rule,
        outcome: Outcome::fail(
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
fn run_one(rule: &'static Rule, subject: &Subject, strict: bool, points: f64) -> RuleResult {
    let started = Instant::now();
    let finish = |outcome: Outcome, evidence: Vec<String>| RuleResult {
        rule,
        outcome,
        evidence,
        elapsed: started.elapsed(),
        points,
    };
    if rule.needs == Needs::Fresh && matches!(subject, Subject::Running(_)) {
        return finish(
            Outcome::skip(
                "needs a fresh peer started by cptp and its stdout; --addr checks a running peer's server side only",
            ),
            Vec::new(),
        );
    }
    let ctx = Ctx::new(subject.clone(), strict);
    let (log, groups) = (Arc::clone(&ctx.log), Arc::clone(&ctx.groups));
    let (tx, rx) = channel();
    let spawned = thread::Builder::new()
        .name(format!("rule {}", rule.id))
        .spawn(move || {
            let verdict = (rule.check)(&ctx);
            drop(ctx);
            let _ = tx.send(verdict.unwrap_or_else(|e| e));
        });
    if let Err(e) = spawned {
        return finish(
            Outcome::skip(format!("cptp could not start a thread: {e}")),
            Vec::new(),
        );
    }
    let limit = scaled(rule.timeout);
    let outcome = match rx.recv_timeout(limit) {
        Ok(outcome) => outcome,
        Err(RecvTimeoutError::Timeout) => {
            for pgid in lock(&groups).drain(..) {
                cleanup::kill_group(pgid);
            }
            // With its targets gone the rule's waits end soon: give it a moment to hand
            // over the evidence.
            let _ = rx.recv_timeout(Duration::from_secs(1));
            Outcome::fail(
                "the rule finishes",
                format!("still running after {} s", limit.as_secs()),
                format!("the rule's time limit of {} s passed", limit.as_secs()),
            )
        }
        Err(RecvTimeoutError::Disconnected) => Outcome::fail(
            "the rule finishes",
            "the rule's thread panicked",
            "a bug in cptp check, not in the target: please report it",
        ),
    };
    let evidence = lock(&log).clone();
    finish(outcome, evidence)
}
