//! The report a person reads: rules grouped by section, the evidence of every rule that did
//! not pass (all of it with `-v`), and a summary line at the end.

use crate::check::runner::Report;
use crate::check::verdict::Status;
use std::fmt::Write;

/// Renders `report`; `colour` only when stdout is a terminal.
pub fn render(report: &Report, verbose: bool, colour: bool) -> String {
    let mut out = String::new();
    let strict = if report.strict { " (--strict)" } else { "" };
    let scale = report.scale.0;
    let strict = if scale == 1.0 {
        strict.to_string()
    } else {
        format!("{strict} (deadlines x{scale})")
    };
    let _ = writeln!(out, "cptp check of {}{strict}", report.target);
    let _ = writeln!(out, "{}", report.sandbox);
    let mut section = "";
    for result in &report.results {
        let title = section_title(result.rule.section());
        if title != section {
            section = title;
            let _ = writeln!(out, "\n{title}");
        }
        let status = result.verdict.status;
        let informational = match result.points {
            0.0 => " (informational: 0 points)",
            _ => "",
        };
        // Statuses are padded to the widest, BLOCKED, so that the IDs line up.
        let pad = " ".repeat(7usize.saturating_sub(status.to_string().len()));
        let _ = writeln!(
            out,
            "  {}{pad}  {:<30} {}{informational}",
            paint(status, colour),
            result.rule.id,
            result.rule.requirement
        );
        if status == Status::Pass && !verbose {
            continue;
        }
        let v = &result.verdict;
        for (label, text) in [
            ("why", &v.reason),
            ("expected", &v.expected),
            ("actual", &v.actual),
        ] {
            // A blocked rule observed nothing: only its reason is worth a line.
            let observed = status != Status::Blocked || label == "why";
            if observed && !text.is_empty() {
                let _ = writeln!(out, "           {label:<9} {text}");
            }
        }
        for hint in &v.hints {
            let _ = writeln!(out, "           {:<9} {hint}", "hint");
        }
        if verbose || status == Status::Fail {
            let _ = writeln!(
                out,
                "           {:<9} {:.2} s",
                "took",
                result.elapsed.as_secs_f64()
            );
        }
        if verbose {
            for line in &result.evidence {
                let _ = writeln!(out, "           > {line}");
            }
        }
    }
    let _ = writeln!(out, "\n{}", summary(report, colour));
    out
}

/// `31 rules: 29 passed, 1 failed, 1 warned, 0 skipped; score 30/31; 6.1 s: FAIL`, with
/// the blocked rules counted when there are any.
pub fn summary(report: &Report, colour: bool) -> String {
    let t = report.tally();
    let verdict = if report.conforms() {
        Status::Pass
    } else {
        Status::Fail
    };
    let blocked = match t.blocked {
        0 => String::new(),
        n => format!(", {n} blocked"),
    };
    format!(
        "{} rules: {} passed, {} failed{blocked}, {} warned, {} skipped; score {}/{}; {:.1} s: {}",
        report.results.len(),
        t.passed,
        t.failed,
        t.warned,
        t.skipped,
        points(report.score()),
        points(report.max_score()),
        report.elapsed.as_secs_f64(),
        paint(verdict, colour),
    )
}

fn paint(status: Status, colour: bool) -> String {
    if !colour {
        return status.to_string();
    }
    let code = match status {
        Status::Pass => "32",
        Status::Warn => "33",
        Status::Fail => "1;31",
        Status::Blocked => "35",
        Status::Skip => "2",
    };
    format!("\x1b[{code}m{status}\x1b[0m")
}

/// The title of each top-level section of docs/PROTOCOL.md, for grouping.
pub fn section_title(section: &str) -> &'static str {
    match section.split('.').next().unwrap_or("") {
        "1" => "1. What a peer is",
        "2" => "2. Command line",
        "3" => "3. The timer",
        "4" => "4. The wire format",
        "5" => "5. Being joined",
        "6" => "6. Joining",
        "7" => "7. Output",
        "8" => "8. Shape of the program",
        _ => "Other",
    }
}

/// Formats a score without a needless `.0`.
pub fn points(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}
