//! What one rule found: a status, what the contract required, what happened, and the
//! evidence a person needs to believe it.

use std::fmt;

/// The verdict of one rule. Ordered from best to worst, so a rule that checks several
/// things keeps the worst with `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// The target did what the contract says.
    Pass,
    /// The rule could not be run (the reason says why); it counts neither way.
    Skip,
    /// Tolerated by the contract but worth fixing (a newline after a message, a line that
    /// differs only in punctuation). `--strict` turns these into failures.
    Warn,
    /// The target broke the rule.
    Fail,
}

impl Status {
    /// The lower-case name used in the JSON report.
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Skip => "skip",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Skip => "SKIP",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        })
    }
}

/// The result of one rule, as the rule itself reports it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    /// What the contract expects, concretely for this run (bytes, a line, a count).
    pub expected: String,
    /// What the target did.
    pub actual: String,
    /// Why a rule warned, failed or skipped, in one sentence; empty on a plain pass.
    pub reason: String,
}

impl Outcome {
    pub fn pass(expected: impl Into<String>, actual: impl Into<String>) -> Outcome {
        Outcome::new(Status::Pass, expected, actual, "")
    }

    pub fn fail(
        expected: impl Into<String>,
        actual: impl Into<String>,
        reason: impl Into<String>,
    ) -> Outcome {
        Outcome::new(Status::Fail, expected, actual, reason)
    }

    pub fn skip(reason: impl Into<String>) -> Outcome {
        Outcome::new(Status::Skip, "", "", reason)
    }

    pub fn new(
        status: Status,
        expected: impl Into<String>,
        actual: impl Into<String>,
        reason: impl Into<String>,
    ) -> Outcome {
        Outcome {
            status,
            expected: expected.into(),
            actual: actual.into(),
            reason: reason.into(),
        }
    }

    /// A WARN under the lenient default, a FAIL under `--strict`.
    pub fn tolerated(
        strict: bool,
        expected: impl Into<String>,
        actual: impl Into<String>,
        reason: impl Into<String>,
    ) -> Outcome {
        let status = if strict { Status::Fail } else { Status::Warn };
        Outcome::new(status, expected, actual, reason)
    }
}
