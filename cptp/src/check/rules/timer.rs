//! PROTOCOL 3, the timer: a value from 1 to 999 at start, plus one every 10 ms, printed
//! when a join succeeds.

use super::support::{LINES_WITHIN, joiner};
use crate::check::ctx::Ctx;
use crate::check::lines::{Expected, judge, wait_for};
use crate::check::rule::{Needs, Rule, SHORT};
use crate::check::verdict::{Verdict, need};
use crate::contract::line;
use crate::harness::fake::Answer;

pub static RULES: &[Rule] = &[TIMESTAMP];

pub const TIMESTAMP: Rule = Rule {
    id: "3.1-timestamp",
    requirement: "The timestamp printed for a Welcome is the 10 ms timer: from 1 to 999 plus the ticks since start",
    needs: Needs::Fresh,
    after: &[],
    limit: SHORT,
    run: timestamp,
};

/// The number is the timer: at least 1, at most 999 plus the 10 ms ticks since start
/// (and a margin for a slow machine).
fn timestamp(ctx: &Ctx) -> Verdict {
    let a = need!(ctx.fake("fakeA", Answer::Welcome));
    a.set_list(vec![]);
    let mut target = need!(joiner(ctx, &a));
    let prefix = line::connected_to("fakeA", a.addr.port());
    let within = ctx.time(LINES_WITHIN);
    let found = wait_for(&mut target, Expected::Numbered(&prefix), within);
    let Some(number) = found.number else {
        return judge(&found, Expected::Numbered(&prefix), ctx.strict, within);
    };
    let ticks = target.age().as_millis() as u64 / 10;
    let most = 999 + ticks + 100;
    let expected = format!("a timer value from 1 to {most} (999 + {ticks} ticks of 10 ms + 100)");
    let actual = found.line.clone().unwrap_or_default();
    if (1..=most).contains(&number) {
        Verdict::pass(expected, actual)
    } else {
        Verdict::fail(
            expected,
            actual,
            format!("{number} is not a value the 10 ms timer can have yet"),
        )
    }
}
