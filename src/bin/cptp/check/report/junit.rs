//! JUnit XML, the format GitLab, Jenkins and the GitHub test reporters read: one
//! `testsuite`, one `testcase` per rule; a FAIL has a `failure` child, a SKIP a `skipped`
//! child, a WARN passes with its reason in `system-out`.

use crate::check::outcome::Status;
use crate::check::runner::Report;
use crate::xml::escape;
use std::fmt::Write;

pub fn render(report: &Report) -> String {
    let t = report.tally();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"cptp check\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        report.results.len(),
        t.failed,
        t.skipped,
        report.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        escape(&format!("cptp check of {}", report.target)),
        report.results.len(),
        t.failed,
        t.skipped,
        report.elapsed.as_secs_f64()
    );
    for r in &report.results {
        let o = &r.outcome;
        let _ = write!(
            out,
            "    <testcase classname=\"PROTOCOL.{}\" name=\"{}\" time=\"{:.3}\">",
            escape(r.rule.section),
            escape(r.rule.id),
            r.elapsed.as_secs_f64()
        );
        let details = format!(
            "requirement: {}\nexpected: {}\nactual: {}\n{}",
            r.rule.requirement,
            o.expected,
            o.actual,
            r.evidence.join("\n")
        );
        match o.status {
            Status::Fail => {
                let _ = write!(
                    out,
                    "\n      <failure message=\"{}\" type=\"FAIL\">{}</failure>\n    ",
                    escape(&o.reason),
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
