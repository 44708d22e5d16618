//! PROTOCOL 3, the timer: a value from 1 to 999 at start, plus one every 10 ms, printed
//! when a join succeeds.
//!
//! One printed value says little: the start is random, so a value is the timer's if it
//! lies between 1 plus the ticks since the join and 999 plus the ticks since start. The
//! rules make that window tell a timer from what it is not by holding back the Welcome:
//! 1.5 s is enough to tell it from a count of milliseconds (the milliseconds a connect
//! took, or since start), but a timer that ticks twice as fast (started twice) leaves the
//! window only after 10 s, longer than a joiner waits for one reply (5 s, PROTOCOL 6.5).
//! So `3.1-timer-rate` leads the target through two Redirects, each held back 4 s, to a
//! Welcome 10 s after its join.

use super::support::{LINES_WITHIN, VISIT_WITHIN, joiner, never_joined};
use crate::check::ctx::Ctx;
use crate::check::lines::{Expected, judge, wait_for};
use crate::check::rule::{AFTER_CLIENT, AUTO_JOIN_GATE, CLIENT_GATE, LONG, Needs, Rule, SHORT};
use crate::check::target::Target;
use crate::check::verdict::{Verdict, need};
use crate::contract::line;
use crate::harness::fake::{Answer, Fake};
use std::thread;
use std::time::{Duration, Instant};

pub static RULES: &[Rule] = &[TIMESTAMP, TIMER_RATE];

/// The timer's ticks in a span of time.
fn ticks(d: Duration) -> u64 {
    d.as_millis() as u64 / 10
}

/// Slack, in ticks, for the moments the checker cannot see exactly (a tick in progress,
/// the time a line takes to arrive).
const SLACK: u64 = 3;

/// The window a 10 ms timer's value must lie in, printed at `printed` after the target's
/// start, for a Welcome sent at `welcomed`, `joined` after the start (the timer runs from
/// the start of the program, so at the join at the latest). A timer never runs faster
/// than the clock, so the top is strict; it may run slower on a loaded machine (a
/// Node.js interval that fires late loses its tick), so the bottom allows half the ticks.
fn window(joined: Duration, welcomed: Duration, printed: Duration) -> (u64, u64) {
    let least = 1 + ticks(welcomed.saturating_sub(joined)) / 2;
    let most = 999 + ticks(printed);
    (least.saturating_sub(SLACK), most + SLACK)
}

/// Waits for the Connected line of a join to `fake` and judges its number against the
/// window; `what` says what the window tells apart.
fn judge_timer(
    ctx: &Ctx,
    target: &mut Target,
    fake: &Fake,
    joined: Duration,
    welcomed: Duration,
    what: &str,
) -> Verdict {
    let prefix = line::connected_to(&fake.id, fake.addr.port());
    let within = ctx.time(LINES_WITHIN);
    let found = wait_for(target, Expected::Numbered(&prefix), within);
    let Some(number) = found.number else {
        return judge(&found, Expected::Numbered(&prefix), ctx.strict, within);
    };
    let printed = target.age();
    let (least, most) = window(joined, welcomed, printed);
    let expected = format!(
        "a timer value from {least} to {most}: 1 to 999 at start, then one every 10 ms (joined at {:.2} s, welcomed at {:.2} s, printed by {:.2} s)",
        joined.as_secs_f64(),
        welcomed.as_secs_f64(),
        printed.as_secs_f64()
    );
    let actual = found.line.clone().unwrap_or_default();
    if (least..=most).contains(&number) {
        let line = judge(&found, Expected::Numbered(&prefix), ctx.strict, within);
        return Verdict::pass(expected, actual).worse(line);
    }
    let reason = match number < least {
        true => format!(
            "{number} is less than a 10 ms timer reaches {:.1} s after the join, even one that runs late: a value that is not the timer (the milliseconds a join took?)",
            (welcomed - joined).as_secs_f64()
        ),
        false => format!(
            "{number} is more than a 10 ms timer can reach {:.1} s after the start: {what}",
            printed.as_secs_f64()
        ),
    };
    Verdict::fail(expected, actual, reason)
}

pub const TIMESTAMP: Rule = Rule {
    id: "3.1-timestamp",
    requirement: "The timestamp printed for a Welcome is the 10 ms timer: from 1 to 999 at start, plus the ticks since (a Welcome held back 1.5 s tells it from a count of milliseconds)",
    needs: Needs::Fresh,
    after: AFTER_CLIENT,
    limit: SHORT,
    run: timestamp,
};

/// How long the fake holds its Welcome back in 3.1-timestamp.
const HELD_BACK: Duration = Duration::from_millis(1500);

fn timestamp(ctx: &Ctx) -> Verdict {
    // No list yet: the fake's Welcome waits for one.
    let a = need!(ctx.fake("fakeA", Answer::Welcome));
    let mut target = need!(joiner(ctx, &a));
    let Some(visit) = a.wait_visit(ctx.time(VISIT_WITHIN)) else {
        a.set_list(vec![]);
        let ended = target.exit_status();
        return never_joined(ctx, &mut target, &a, ended);
    };
    let joined = target.age().saturating_sub(visit.at.elapsed());
    thread::sleep(HELD_BACK);
    let welcomed = target.age();
    a.set_list(vec![]);
    let verdict = judge_timer(
        ctx,
        &mut target,
        &a,
        joined,
        welcomed,
        "a count of milliseconds, not ticks of 10 ms?",
    );
    ctx.note_fakes(&[&a]);
    verdict
}

pub const TIMER_RATE: Rule = Rule {
    id: "3.1-timer-rate",
    requirement: "The timer ticks once every 10 ms, not faster: a Welcome held back 10 s still finds a value the timer can have",
    needs: Needs::Fresh,
    after: &[CLIENT_GATE, AUTO_JOIN_GATE, "6.3-auto-join-two-levels"],
    limit: LONG,
    run: timer_rate,
};

/// Each Redirect of the chain is held back this long: under the 5 s a joiner waits.
const HOP: Duration = Duration::from_secs(4);
/// After the join, the Welcome comes at least this late, plus twice the join's own delay:
/// then a timer twice as fast is past the window whatever its start.
const RATE_AFTER: Duration = Duration::from_millis(10_300);

/// A (4 s) redirects to B, B (4 s) redirects to C, C welcomes once the target has run long
/// enough: past 10 s, a timer twice as fast is above any value a 10 ms timer can have.
fn timer_rate(ctx: &Ctx) -> Verdict {
    let patience = Duration::from_secs(30);
    let fake = |id: &str, answer| {
        Fake::answering(id, answer, patience)
            .map_err(|e| Verdict::skip(format!("cptp cannot start a fake peer: {e}")))
    };
    let c = need!(fake("fakeC", Answer::Welcome));
    let b = need!(fake("fakeB", Answer::Redirect));
    let a = need!(fake("fakeA", Answer::Redirect));
    let mut target = need!(joiner(ctx, &a));
    let started = Instant::now() - target.age();
    let mut joined = Duration::ZERO;
    for (fake, next) in [(&a, Some(b.addr)), (&b, Some(c.addr)), (&c, None)] {
        let Some(visit) = fake.wait_visit(HOP + ctx.time(VISIT_WITHIN)) else {
            for f in [&a, &b, &c] {
                f.set_list(vec![]);
            }
            ctx.note_fakes(&[&a, &b, &c]);
            return Verdict::fail(
                format!(
                    "a join to {} (listed by a Redirect held back {} s)",
                    fake.addr,
                    HOP.as_secs()
                ),
                format!("{}; stdout {}", fake.report(), target.shown()),
                "the target did not follow the Redirects that lead to the Welcome the timer's rate is read from",
            );
        };
        match next {
            Some(next) => {
                if joined.is_zero() {
                    joined = visit.at.duration_since(started);
                }
                thread::sleep(HOP.saturating_sub(visit.at.elapsed()));
                fake.set_list(vec![next]);
            }
            None => {
                // Never longer than a hop: the joiner waits 5 s for a reply. A target that
                // was slow to join is then welcomed before the window shuts out a double
                // timer; a 10 ms timer is still judged right.
                let due = RATE_AFTER + joined * 2;
                let hold = due
                    .saturating_sub(started.elapsed())
                    .min(HOP.saturating_sub(visit.at.elapsed()));
                thread::sleep(hold);
                fake.set_list(vec![]);
            }
        }
    }
    let welcomed = started.elapsed();
    let verdict = judge_timer(
        ctx,
        &mut target,
        &c,
        joined,
        welcomed,
        "a timer that ticks faster than every 10 ms (started twice?)",
    );
    ctx.note_fakes(&[&a, &b, &c]);
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_holds_every_start_and_leaves_out_the_impostors() {
        let ms = Duration::from_millis;
        // Held back 1.5 s: any start of a 10 ms timer fits, a count of ms does not.
        let (least, most) = window(ms(100), ms(1600), ms(1610));
        for start in [1, 999] {
            let value = start + ticks(ms(1600)); // the timer ran since the start at most
            assert!(value <= most, "{value} > {most}");
            assert!(start + ticks(ms(1500)) >= least);
        }
        assert!(5 < least, "a connect's milliseconds");
        assert!(1610 > most, "milliseconds since the start");
        // Welcomed 10.5 s after a join 0.1 s in: twice as fast is out whatever its start.
        let (_, most) = window(ms(100), ms(10_500), ms(10_520));
        let twice_least = 1 + 2 * ticks(ms(10_500 - 100));
        assert!(twice_least > most, "{twice_least} <= {most}");
    }
}
