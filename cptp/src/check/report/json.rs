//! The JSON report; its schema is documented in docs/CHECK.md.

use crate::check::runner::Report;
use serde_json::{Value, json};

/// Version of the schema below; bump it when a field changes meaning or goes away. (2: the
/// status "blocked", and the fields `hints`, `blocked_by` and `summary.blocked`.)
pub const SCHEMA: u32 = 2;

pub fn render(report: &Report) -> Value {
    let t = report.tally();
    let rules: Vec<Value> = report
        .results
        .iter()
        .map(|r| {
            json!({
                "id": r.rule.id,
                "section": r.rule.section(),
                "requirement": r.rule.requirement,
                "status": r.verdict.status.name(),
                "expected": r.verdict.expected,
                "actual": r.verdict.actual,
                "reason": r.verdict.reason,
                "hints": r.verdict.hints,
                "blocked_by": r.verdict.blocked_by,
                "evidence": r.evidence,
                "seconds": r.elapsed.as_secs_f64(),
                "points": r.points,
                "score": r.score(),
            })
        })
        .collect();
    json!({
        "schema": SCHEMA,
        "tool": "cptp check",
        "version": env!("CARGO_PKG_VERSION"),
        "target": report.target,
        "sandbox": report.sandbox,
        "strict": report.strict,
        "conforms": report.conforms(),
        "summary": {
            "rules": report.results.len(),
            "passed": t.passed,
            "failed": t.failed,
            "warned": t.warned,
            "skipped": t.skipped,
            "blocked": t.blocked,
            "score": report.score(),
            "max_score": report.max_score(),
            "seconds": report.elapsed.as_secs_f64(),
        },
        "rules": rules,
    })
}
