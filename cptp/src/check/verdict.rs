//! What a rule decided, and why.
//!
//! A rule returns one [`Verdict`]: PASS, WARN or FAIL when it saw the target do something,
//! SKIP when it could not run here, BLOCKED when an earlier rule it depends on (a gate)
//! failed, so nothing could be observed. Every verdict but a plain PASS says why in one
//! sentence, and what the contract expected against what happened; `hints` name a likely
//! root cause when the evidence shows one (a version written as a whole byte, a port
//! already in use), so that a student can act on the report.

use std::fmt;

/// The verdict's kind, from best to worst for a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// The target did what the contract says.
    Pass,
    /// The rule could not run here (the reason says why); it counts neither way.
    Skip,
    /// Tolerated by the contract but worth fixing (a newline after a message, a line that
    /// differs only in punctuation). `--strict` makes these failures.
    Warn,
    /// Not observed: a gate this rule depends on failed. Scored 0, named once by its gate.
    Blocked,
    /// The target broke the rule.
    Fail,
}

impl Status {
    /// The lower-case name of the JSON report.
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Skip => "skip",
            Status::Warn => "warn",
            Status::Blocked => "blocked",
            Status::Fail => "fail",
        }
    }

    /// True for the statuses that earn a rule's points.
    pub fn earns(self) -> bool {
        matches!(self, Status::Pass | Status::Warn)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Skip => "SKIP",
            Status::Warn => "WARN",
            Status::Blocked => "BLOCKED",
            Status::Fail => "FAIL",
        })
    }
}

/// What one rule decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    /// What the contract expects, concretely for this run (bytes, a line, a count).
    pub expected: String,
    /// What the target did.
    pub actual: String,
    /// Why the rule warned, failed, skipped or was blocked, in one sentence; empty on a
    /// plain pass.
    pub reason: String,
    /// Likely root causes the evidence points to, each a sentence a student can act on.
    pub hints: Vec<String>,
    /// The gate that blocked this rule.
    pub blocked_by: Option<&'static str>,
}

impl Verdict {
    fn new(
        status: Status,
        expected: impl Into<String>,
        actual: impl Into<String>,
        reason: impl Into<String>,
    ) -> Verdict {
        Verdict {
            status,
            expected: expected.into(),
            actual: actual.into(),
            reason: reason.into(),
            hints: Vec::new(),
            blocked_by: None,
        }
    }

    pub fn pass(expected: impl Into<String>, actual: impl Into<String>) -> Verdict {
        Verdict::new(Status::Pass, expected, actual, "")
    }

    pub fn fail(
        expected: impl Into<String>,
        actual: impl Into<String>,
        reason: impl Into<String>,
    ) -> Verdict {
        Verdict::new(Status::Fail, expected, actual, reason)
    }

    pub fn skip(reason: impl Into<String>) -> Verdict {
        Verdict::new(Status::Skip, "", "", reason)
    }

    /// A WARN under the lenient default, a FAIL under `--strict`.
    pub fn tolerated(
        strict: bool,
        expected: impl Into<String>,
        actual: impl Into<String>,
        reason: impl Into<String>,
    ) -> Verdict {
        let status = if strict { Status::Fail } else { Status::Warn };
        Verdict::new(status, expected, actual, reason)
    }

    /// Not observed, because the gate `by` failed for `reason`.
    pub fn blocked(by: &'static str, reason: &str) -> Verdict {
        let mut verdict = Verdict::new(
            Status::Blocked,
            "",
            "not run",
            format!("BLOCKED by {by}: {reason}"),
        );
        verdict.blocked_by = Some(by);
        verdict
    }

    /// The same verdict with `hint` added (once).
    pub fn hint(mut self, hint: impl Into<String>) -> Verdict {
        let hint = hint.into();
        if !self.hints.contains(&hint) {
            self.hints.push(hint);
        }
        self
    }

    /// The same verdict with these hints added.
    pub fn hints(self, hints: impl IntoIterator<Item = String>) -> Verdict {
        hints.into_iter().fold(self, Verdict::hint)
    }

    /// Of two verdicts on parts of one rule, the one that counts: the worse, keeping the
    /// hints of both.
    pub fn worse(self, other: Verdict) -> Verdict {
        let (mut worse, better) = match other.status > self.status {
            true => (other, self),
            false => (self, other),
        };
        for hint in better.hints {
            if !worse.hints.contains(&hint) {
                worse.hints.push(hint);
            }
        }
        worse
    }
}

/// Ends a rule early with a verdict: `need!(ctx.server(..))` gives the value of an
/// `Ok`, or returns the `Err`'s verdict from the rule. The rules' helpers return
/// `Result<T, Verdict>`: the value a rule needs to go on, or the verdict that ends it.
macro_rules! need {
    ($value:expr) => {
        match $value {
            Ok(value) => value,
            Err(verdict) => return verdict,
        }
    };
}
pub(crate) use need;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worse_verdict_counts_and_keeps_every_hint() {
        let warn = Verdict::tolerated(false, "e", "a", "spacing").hint("one");
        let fail = Verdict::fail("e", "a", "wrong").hint("two");
        let worst = warn.clone().worse(fail.clone());
        assert_eq!(worst.status, Status::Fail);
        assert_eq!(worst.hints, ["two", "one"]);
        assert_eq!(
            Verdict::pass("e", "a").worse(warn.clone()).status,
            Status::Warn
        );
        assert_eq!(fail.worse(warn).reason, "wrong");
        assert_eq!(Verdict::tolerated(true, "", "", "").status, Status::Fail);
    }

    #[test]
    fn a_blocked_verdict_names_its_gate_and_earns_nothing() {
        let blocked = Verdict::blocked("6.2-takes-welcome", "the joiner crashed");
        assert_eq!(blocked.blocked_by, Some("6.2-takes-welcome"));
        assert_eq!(
            blocked.reason,
            "BLOCKED by 6.2-takes-welcome: the joiner crashed"
        );
        assert!(!blocked.status.earns() && Status::Warn.earns());
    }
}
