//! Matching the target's stdout against the lines of the contract (PROTOCOL 5, 6, 7).
//!
//! Course implementations print `Connected from peer: IP:PORT`, `performing...` or their
//! folder name where the ID belongs. Those are the contract's line with a cosmetic
//! difference, so by default they match with a warning that names the difference; only
//! `--strict` fails them. Lines that are no contract line at all (debug output) are
//! skipped, and `--strict` fails a rule that had to skip one.

use super::outcome::{Outcome, Status};
use super::target::{Next, Target};
use std::time::{Duration, Instant};

/// The most lines one wait looks at, so a flood cannot keep a rule busy.
const MAX_LINES_PER_WAIT: usize = 2000;

/// How an actual line compares with the expected one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    Exact,
    /// The same line but for the difference named.
    Cosmetic(String),
    No,
}

/// The words and numbers of a line, lower case: what is left once spacing, punctuation
/// and case are set aside.
fn words(line: &str) -> Vec<String> {
    line.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Compares `actual` with `expected`. `id` and `folder` are the target's: a line with the
/// folder name where the ID belongs matches cosmetically.
pub fn compare(expected: &str, actual: &str, id: &str, folder: &str) -> Match {
    if actual == expected {
        return Match::Exact;
    }
    // A blank line in the contract matches only a line of spaces, not one of punctuation.
    let blank_ok = !expected.is_empty() || actual.trim().is_empty();
    if blank_ok && words(actual) == words(expected) {
        return Match::Cosmetic(format!(
            "differs from the contract only in spacing, punctuation or case: expected {expected:?}"
        ));
    }
    if !id.is_empty() && expected.contains(id) {
        let with_folder = expected.replace(id, folder);
        if actual == with_folder || words(actual) == words(&with_folder) {
            return Match::Cosmetic(format!(
                "prints the folder name '{folder}' where the contract has the ID '{id}': expected {expected:?}"
            ));
        }
    }
    Match::No
}

/// Compares a line that ends in a number the rule cannot know (the timestamp): `prefix`
/// is everything before it. Returns the match and the number.
pub fn compare_numbered(
    prefix: &str,
    actual: &str,
    id: &str,
    folder: &str,
) -> (Match, Option<u64>) {
    let digits = actual
        .trim_end()
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or("");
    let Ok(number) = digits.parse::<u64>() else {
        return (Match::No, None);
    };
    let head = &actual.trim_end()[..actual.trim_end().len() - digits.len()];
    (compare(prefix, head, id, folder), Some(number))
}

/// True for a line that is (cosmetically) one of the contract's lines, whatever the
/// addresses, IDs and numbers in it.
pub fn is_contract_line(line: &str) -> bool {
    let w = words(line);
    let starts =
        |prefix: &[&str]| w.len() >= prefix.len() && w.iter().zip(prefix).all(|(a, b)| a == b);
    line.trim().is_empty()
        || starts(&["this", "peer", "address", "is"])
        || starts(&["connected", "from", "peer"])
        || starts(&["connected", "to", "peer"])
        || starts(&["peer", "table", "full"])
        || (starts(&["peer"]) && w.last().is_some_and(|l| l == "left"))
        || starts(&["received", "ack", "from"])
        || starts(&["which", "is", "peered", "with"])
        || starts(&["the", "join", "has", "been", "declined"])
        || starts(&["no", "peer", "accepted"])
}

/// What a wait for an expected line found.
pub struct Found {
    /// The matching line, or `None` when none came in time.
    pub line: Option<String>,
    pub matched: Match,
    /// A number at the end of the line, for [`Expected::Numbered`].
    pub number: Option<u64>,
    /// Lines skipped on the way that are not contract lines (debug output).
    pub extra: Vec<String>,
    /// Every line looked at, for the evidence.
    pub looked_at: Vec<String>,
    /// Stdout closed before a match.
    pub closed: bool,
}

impl Found {
    /// Before any line was looked at.
    fn nothing() -> Found {
        Found {
            line: None,
            matched: Match::No,
            number: None,
            extra: Vec::new(),
            looked_at: Vec::new(),
            closed: false,
        }
    }
}

/// An expected line.
#[derive(Clone, Copy)]
pub enum Expected<'a> {
    Line(&'a str),
    /// A line that ends in a number: the text before it.
    Numbered(&'a str),
}

impl Expected<'_> {
    fn text(&self) -> String {
        match self {
            Expected::Line(line) => line.to_string(),
            Expected::Numbered(prefix) => format!("{prefix}<number>"),
        }
    }
}

/// Waits up to `within` for a line matching `expected`, skipping others.
pub fn wait_for(target: &mut Target, expected: Expected<'_>, within: Duration) -> Found {
    let deadline = Instant::now() + within;
    let (id, folder) = (target.spec.id.clone(), target.folder());
    let mut found = Found::nothing();
    for _ in 0..MAX_LINES_PER_WAIT {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match target.next_line(left) {
            Next::Line(line) => line,
            Next::Quiet => break,
            Next::Closed => {
                found.closed = true;
                break;
            }
        };
        found.looked_at.push(line.clone());
        let (matched, number) = match expected {
            Expected::Line(text) => (compare(text, &line, &id, &folder), None),
            Expected::Numbered(prefix) => compare_numbered(prefix, &line, &id, &folder),
        };
        if matched != Match::No {
            found.line = Some(line);
            found.matched = matched;
            found.number = number;
            return found;
        }
        if !is_contract_line(&line) {
            found.extra.push(line);
        }
    }
    found
}

/// The outcome of waiting for one line: PASS for the exact line, WARN (FAIL under
/// `--strict`) for a cosmetic difference or for debug lines skipped under `--strict`,
/// FAIL when it never came.
pub fn judge(found: &Found, expected: Expected<'_>, strict: bool, within: Duration) -> Outcome {
    let want = expected.text();
    match (&found.line, &found.matched) {
        (Some(line), Match::Exact) if strict && !found.extra.is_empty() => Outcome::fail(
            want,
            line.clone(),
            format!(
                "--strict: extra lines on stdout before it: {:?}",
                found.extra
            ),
        ),
        (Some(line), Match::Exact) => Outcome::pass(want, line.clone()),
        (Some(line), Match::Cosmetic(why)) => {
            Outcome::tolerated(strict, want, line.clone(), why.clone())
        }
        _ => {
            let why = if found.closed {
                "stdout closed (the target exited?) before the line came".to_string()
            } else if found.looked_at.is_empty() {
                // The commonest cause in students' peers: stdout is a pipe here, so a
                // Python or C peer that never flushes keeps its lines in a buffer.
                format!(
                    "no line at all within {:.1} s (if the peer prints it, it may sit in a stdout buffer: PROTOCOL 7.2 wants each line written at once, so flush after each)",
                    within.as_secs_f64()
                )
            } else {
                format!("no such line within {:.1} s", within.as_secs_f64())
            };
            Outcome::fail(want, format!("lines seen: {:?}", found.looked_at), why)
        }
    }
}

/// Waits for `lines` one after the other: the first may come after other lines, each
/// following one must be the very next line. The worst verdict wins.
pub fn expect_sequence(
    target: &mut Target,
    lines: &[Expected<'_>],
    strict: bool,
    within: Duration,
) -> (Outcome, Option<u64>) {
    let deadline = Instant::now() + within;
    let mut worst = Outcome::pass("", "");
    let mut seen = Vec::new();
    let mut number = None;
    let mut why = Vec::new();
    for (i, expected) in lines.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        let found = if i == 0 {
            wait_for(target, *expected, left)
        } else {
            next_must_match(target, *expected, left)
        };
        let outcome = judge(&found, *expected, strict, left);
        seen.push(found.line.clone().unwrap_or_else(|| "(missing)".into()));
        number = number.or(found.number);
        if outcome.status != Status::Pass {
            why.push(format!("line {}: {}", i + 1, outcome.reason));
        }
        if outcome.status > worst.status {
            worst.status = outcome.status;
        }
        if outcome.status == Status::Fail {
            break;
        }
    }
    let expected: Vec<String> = lines.iter().map(Expected::text).collect();
    worst.expected = format!("{expected:?}");
    worst.actual = format!("{seen:?}");
    worst.reason = why.join("; ");
    (worst, number)
}

/// The very next line, which must match `expected`.
fn next_must_match(target: &mut Target, expected: Expected<'_>, within: Duration) -> Found {
    let (id, folder) = (target.spec.id.clone(), target.folder());
    let mut found = Found::nothing();
    match target.next_line(within) {
        Next::Line(line) => {
            let (matched, number) = match expected {
                Expected::Line(text) => (compare(text, &line, &id, &folder), None),
                Expected::Numbered(prefix) => compare_numbered(prefix, &line, &id, &folder),
            };
            found.looked_at.push(line.clone());
            if matched != Match::No {
                found.line = Some(line);
                found.matched = matched;
                found.number = number;
            }
        }
        Next::Quiet => {}
        Next::Closed => found.closed = true,
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosmetic_differences_match_with_a_reason() {
        let expected = "Connected from peer 127.0.0.1:4000";
        assert_eq!(
            compare(expected, expected, "peer1", "peer1-2"),
            Match::Exact
        );
        for actual in [
            "Connected from peer: 127.0.0.1:4000",
            "connected from peer 127.0.0.1:4000",
            "Connected  from peer 127.0.0.1:4000.",
        ] {
            assert!(
                matches!(
                    compare(expected, actual, "peer1", "peer1-2"),
                    Match::Cosmetic(_)
                ),
                "{actual}"
            );
        }
        assert_eq!(
            compare(expected, "Connected from peer 127.0.0.1:4001", "p", "p-1"),
            Match::No
        );
        let declined = "The join has been declined; the auto-join process is performing ...";
        let dots = "The join has been declined; the auto-join process is performing...";
        assert!(matches!(
            compare(declined, dots, "p", "p-1"),
            Match::Cosmetic(_)
        ));
    }

    #[test]
    fn the_folder_name_for_the_id_is_cosmetic() {
        let m = compare(
            "Received ack from peer1:4000",
            "Received ack from peer1-2:4000",
            "peer1",
            "peer1-2",
        );
        assert!(matches!(m, Match::Cosmetic(why) if why.contains("folder name")));
    }

    #[test]
    fn numbered_lines_give_their_number() {
        let (m, n) = compare_numbered(
            "Connected to peer a:1 at timestamp: ",
            "Connected to peer a:1 at timestamp: 42",
            "x",
            "x-1",
        );
        assert_eq!((m, n), (Match::Exact, Some(42)));
        let (m, _) = compare_numbered(
            "Connected to peer a:1 at timestamp: ",
            "Connected to peer a:1 at timestamp 42",
            "x",
            "x-1",
        );
        assert!(matches!(m, Match::Cosmetic(_)));
        assert_eq!(compare_numbered("a ", "a b", "x", "x-1").0, Match::No);
    }

    #[test]
    fn debug_lines_are_not_contract_lines() {
        assert!(is_contract_line("Peer 127.0.0.1:4000 left"));
        assert!(is_contract_line(""));
        assert!(!is_contract_line("DEBUG: got 9 bytes"));
    }
}
