//! Gradescope's `results.json`: a `tests` list with `name`, `number`, `score`,
//! `max_score`, `status` and `output`, and the total `score`.

use super::text;
use crate::check::runner::Report;
use crate::check::verdict::Status;
use serde_json::{Value, json};

pub fn render(report: &Report) -> Value {
    let tests: Vec<Value> = report
        .results
        .iter()
        .map(|r| {
            let o = &r.verdict;
            let mut output = format!("{}: {}", o.status, r.rule.requirement);
            for (label, value) in [
                ("why", &o.reason),
                ("expected", &o.expected),
                ("actual", &o.actual),
            ] {
                if !value.is_empty() {
                    output.push_str(&format!("\n{label}: {value}"));
                }
            }
            for hint in &o.hints {
                output.push_str(&format!("\nhint: {hint}"));
            }
            if o.status == Status::Fail && !r.evidence.is_empty() {
                output.push_str("\n\n");
                output.push_str(&r.evidence.join("\n"));
            }
            json!({
                "name": r.rule.id,
                "number": r.rule.section(),
                "score": r.score(),
                "max_score": r.max_score(),
                "status": if o.status.earns() || o.status == Status::Skip { "passed" } else { "failed" },
                "output": output,
            })
        })
        .collect();
    json!({
        "score": report.score(),
        "execution_time": report.elapsed.as_secs_f64().ceil() as u64,
        "output": text::summary(report, false),
        "tests": tests,
    })
}
