//! JUnit XML, the format GitLab, Jenkins and the GitHub test reporters read: one
//! `testsuite`, one `testcase` per rule; a FAIL has a `failure` child (as has a BLOCKED
//! rule, with the type BLOCKED: it earned nothing), a SKIP a `skipped` child, a WARN
//! passes with its reason in `system-out`.

use crate::check::runner::Report;
use crate::check::verdict::Status;
use crate::text::xml_escape as escape;
use std::fmt::Write;

pub fn render(report: &Report) -> String {
    let t = report.tally();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"cptp check\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        report.results.len(),
        t.failed + t.blocked,
        t.skipped,
        report.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        escape(&format!("cptp check of {}", report.target)),
        report.results.len(),
        t.failed + t.blocked,
        t.skipped,
        report.elapsed.as_secs_f64()
    );
    for r in &report.results {
        let o = &r.verdict;
        let _ = write!(
            out,
            "    <testcase classname=\"PROTOCOL.{}\" name=\"{}\" time=\"{:.3}\">",
            escape(r.rule.section()),
            escape(r.rule.id),
            r.elapsed.as_secs_f64()
        );
        let hints: String = o.hints.iter().map(|h| format!("hint: {h}\n")).collect();
        let details = format!(
            "requirement: {}\nexpected: {}\nactual: {}\n{hints}{}",
            r.rule.requirement,
            o.expected,
            o.actual,
            r.evidence.join("\n")
        );
        match o.status {
            Status::Fail | Status::Blocked => {
                let _ = write!(
                    out,
                    "\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    ",
                    escape(&o.reason),
                    o.status,
                    escape(&details)
                );
            }
            Status::Skip => {
                let _ = write!(
                    out,
                    "\n      <skipped message=\"{}\"/>\n    ",
                    escape(&o.reason)
                );
            }
            Status::Warn => {
                let _ = write!(
                    out,
                    "\n      <system-out>WARN: {}\n{}</system-out>\n    ",
                    escape(&o.reason),
                    escape(&details)
                );
            }
            Status::Pass => {}
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
