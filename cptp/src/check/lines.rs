//! Matching the target's stdout against the lines of the contract (PROTOCOL 5, 6, 7).
//!
//! Course implementations print `Connected from peer: IP:PORT`, `performing...` or their
//! folder name where the ID belongs. Those are the contract's line with a cosmetic
//! difference, so by default they match with a warning that names the difference; only
//! `--strict` fails them. Lines that are no contract line at all (debug output) are
//! skipped, and `--strict` fails a rule that had to skip one.

use super::target::Target;
use super::verdict::{Status, Verdict};
use crate::harness::process::Next;
use std::time::{Duration, Instant};

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

/// True when the words of `line` begin with `prefix` (lower case), whatever the spacing,
/// punctuation and case around them.
pub fn begins_with(line: &str, prefix: &[&str]) -> bool {
    let w = words(line);
    w.len() >= prefix.len() && w.iter().zip(prefix).all(|(a, b)| a == b)
}

/// True for a line that is (cosmetically) one of the contract's lines, whatever the
/// addresses, IDs and numbers in it.
pub fn is_contract_line(line: &str) -> bool {
    let w = words(line);
    let starts = |prefix: &[&str]| begins_with(line, prefix);
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
    /// Stdout closed before a match: how the target ended, if it had, and after how long.
    pub closed: Option<(Option<String>, Duration)>,
    /// The target is Node.js (its writes to a pipe are never buffered).
    pub node: bool,
    /// When the very next line had to match and another came: what happened instead.
    pub instead: Option<String>,
    /// Debug lines that came between the lines of one event.
    pub between: Vec<String>,
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
            closed: None,
            node: false,
            instead: None,
            between: Vec::new(),
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

/// How a target's stdout closed: its exit status if it has exited, and its age.
fn closing(target: &mut Target) -> (Option<String>, Duration) {
    // The exit follows the close by a moment.
    let mut status = target.exit_status();
    for _ in 0..20 {
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
        status = target.exit_status();
    }
    (status, target.age())
}

/// Waits up to `within` for a line matching `expected`, skipping others. The wait is
/// bounded by time; the number of lines by what the target's output keeps.
pub fn wait_for(target: &mut Target, expected: Expected<'_>, within: Duration) -> Found {
    scan(target, expected, within, false)
}

/// Reads lines until one matches `expected`, stdout closes or `within` passes. Debug lines
/// are set aside (as `between` when `next` asks for the very next contract line, else as
/// `extra`); another contract line is skipped, or with `next` ends the wait, which then
/// goes on to say whether the expected line came later.
fn scan(target: &mut Target, expected: Expected<'_>, within: Duration, next: bool) -> Found {
    let deadline = Instant::now() + within;
    let (id, folder) = (target.spec.id.clone(), target.folder());
    let mut found = Found::nothing();
    found.node = target.is_node();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match target.next_line(left) {
            Next::Line(line) => line,
            Next::Quiet => return found,
            Next::Closed => {
                found.closed = Some(closing(target));
                return found;
            }
        };
        found.looked_at.push(line.clone());
        let (matched, number) = matches(expected, &line, &id, &folder);
        if matched != Match::No {
            found.line = Some(line);
            found.matched = matched;
            found.number = number;
            return found;
        }
        match (is_contract_line(&line), next) {
            (false, false) => found.extra.push(line),
            // A debug line inside an event: set aside, as debug lines are, but noted
            // (PROTOCOL 7.2 writes an event in one piece).
            (false, true) => found.between.push(line),
            (true, false) => {}
            (true, true) => {
                let left = deadline.saturating_duration_since(Instant::now());
                let later = wait_for(target, expected, left);
                found.instead = Some(match later.line {
                    Some(_) => format!(
                        "came {} line(s) later, after {:?} (PROTOCOL 6: these lines follow each other)",
                        later.looked_at.len(),
                        line
                    ),
                    None => format!("{line:?} came instead"),
                });
                return found;
            }
        }
    }
}

/// The first lines of `lines`, quoted, and how many more there were.
fn quoted(lines: &[String]) -> String {
    let quoted: Vec<String> = lines.iter().map(|l| format!("{l:?}")).collect();
    crate::text::first(&quoted, 12)
}

/// Why an expected line did not come, in words that say what happened instead.
fn missing(found: &Found, within: Duration) -> String {
    if let Some(instead) = &found.instead {
        return instead.clone();
    }
    match &found.closed {
        Some((Some(status), after)) => format!(
            "the target exited after {:.1} s ({status}) before the line came",
            after.as_secs_f64()
        ),
        Some((None, after)) => format!(
            "the target closed its stdout after {:.1} s, before the line came",
            after.as_secs_f64()
        ),
        None if found.looked_at.is_empty() && !found.node => format!(
            // Stdout is a pipe here, so a Python or C peer that never flushes keeps its
            // lines in a buffer. (Node.js writes to a pipe at once: never said of it.)
            "no line at all within {:.1} s (if the peer prints it, it may sit in a stdout buffer: PROTOCOL 7.2 wants each line written at once, so flush after each)",
            within.as_secs_f64()
        ),
        None if found.looked_at.is_empty() => {
            format!("no line at all within {:.1} s", within.as_secs_f64())
        }
        None => format!("no such line within {:.1} s", within.as_secs_f64()),
    }
}

/// The verdict of waiting for one line: PASS for the exact line, WARN (FAIL under
/// `--strict`) for a cosmetic difference or for debug lines skipped under `--strict`,
/// FAIL when it never came.
pub fn judge(found: &Found, expected: Expected<'_>, strict: bool, within: Duration) -> Verdict {
    let want = expected.text();
    match (&found.line, &found.matched) {
        (Some(line), Match::Exact) if strict && !found.extra.is_empty() => Verdict::fail(
            want,
            line.clone(),
            format!(
                "--strict: extra lines on stdout before it: [{}]",
                quoted(&found.extra)
            ),
        ),
        (Some(line), Match::Exact) => Verdict::pass(want, line.clone()),
        (Some(line), Match::Cosmetic(why)) => {
            Verdict::tolerated(strict, want, line.clone(), why.clone())
        }
        _ => Verdict::fail(
            want,
            format!("lines seen: [{}]", quoted(&found.looked_at)),
            missing(found, within),
        ),
    }
}

/// Waits for `lines` one after the other: the first may come after other lines, each
/// following one must be the very next line. The worst verdict wins. Returns the number at
/// the end of a [`Expected::Numbered`] line too.
pub fn expect_sequence(
    target: &mut Target,
    lines: &[Expected<'_>],
    strict: bool,
    within: Duration,
) -> (Verdict, Option<u64>) {
    let deadline = Instant::now() + within;
    let mut worst = Verdict::pass("", "");
    let mut seen = Vec::new();
    let mut number = None;
    let mut why = Vec::new();
    for (i, expected) in lines.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        // The first line may come after others; each later one is the very next.
        let found = scan(target, *expected, left, i > 0);
        let mut verdict = judge(&found, *expected, strict, left);
        if let (Status::Pass, Some(debug)) = (verdict.status, found.between.first()) {
            verdict = Verdict::tolerated(
                strict,
                verdict.expected,
                verdict.actual,
                format!(
                    "a debug line came between the lines of one event ({debug:?}): PROTOCOL 7.2 writes an event in one piece"
                ),
            );
        }
        seen.push(
            found
                .line
                .clone()
                .unwrap_or_else(|| match found.looked_at.first() {
                    Some(other) => other.clone(),
                    None => "(missing)".into(),
                }),
        );
        number = number.or(found.number);
        if verdict.status != Status::Pass {
            why.push(format!("line {}: {}", i + 1, verdict.reason));
        }
        let failed = verdict.status == Status::Fail;
        worst = worst.worse(verdict);
        if failed {
            break;
        }
    }
    let expected: Vec<String> = lines.iter().map(Expected::text).collect();
    worst.expected = format!("{expected:?}");
    worst.actual = format!("{seen:?}");
    worst.reason = why.join("; ");
    (worst, number)
}

/// How `line` compares with `expected`, and the number at its end for a numbered line.
fn matches(expected: Expected<'_>, line: &str, id: &str, folder: &str) -> (Match, Option<u64>) {
    match expected {
        Expected::Line(text) => (compare(text, line, id, folder), None),
        Expected::Numbered(prefix) => compare_numbered(prefix, line, id, folder),
    }
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
