//! What the rules of several sections share: starting the target as a joiner of a fake
//! peer, waiting for one of its lines, and checking that it still serves.

use crate::check::ctx::{Ctx, Server, first_lines};
use crate::check::hints;
use crate::check::lines::{Expected, judge, wait_for};
use crate::check::target::{Spec, Target};
use crate::check::verdict::Verdict;
use crate::contract::Kind;
use crate::harness::client::Joined;
use crate::harness::fake::Fake;
use crate::text::first;
use std::net::SocketAddrV4;
use std::time::Duration;

/// Addresses the way a report lists them: `[a, b, ... and 3 more]`.
pub fn list(peers: &[SocketAddrV4]) -> String {
    format!("[{}]", first(peers, 16))
}

/// How long a rule waits for the target to reach the fake it was pointed at.
pub const VISIT_WITHIN: Duration = Duration::from_secs(5);
/// How long the lines of a join may take: one round trip to a local fake, or a few.
pub const LINES_WITHIN: Duration = Duration::from_secs(5);
/// How long the lines of PROTOCOL 5 may take to appear.
pub const LINE_WITHIN: Duration = Duration::from_secs(2);

/// Starts the target in `peer2-2` (ID peer2, a table of 2) joining the fake `first`.
pub fn joiner(ctx: &Ctx, first: &Fake) -> Result<Target, Verdict> {
    ctx.start(Spec::joining("peer2", 2, first.addr))
}

/// Starts a joiner at `fake` and waits until it has connected; FAIL if it never does.
pub fn visited(ctx: &Ctx, fake: &Fake) -> Result<(Target, SocketAddrV4), Verdict> {
    let mut target = joiner(ctx, fake)?;
    match fake.wait_visit(ctx.time(VISIT_WITHIN)) {
        Some(visit) => Ok((target, visit.from)),
        None => {
            let ended = target.exit_status();
            Err(never_joined(ctx, &mut target, fake, ended))
        }
    }
}

/// The FAIL of a target that never connected to the fake it was given with `-p`.
pub fn never_joined(ctx: &Ctx, target: &mut Target, fake: &Fake, ended: Option<String>) -> Verdict {
    let expected = format!(
        "a connection to {} within {}",
        fake.addr,
        ctx.scale.secs(VISIT_WITHIN)
    );
    let stderr = target.stderr();
    let actual = match &ended {
        Some(status) => format!(
            "none; it exited after {:.1} s ({status}); stderr: {}",
            target.age().as_secs_f64(),
            first_lines(&stderr, 6)
        ),
        None => format!("none; stdout: {}", target.shown()),
    };
    Verdict::fail(
        expected,
        actual,
        "the target never joined the peer given with -p",
    )
    .hints(hints::stderr(&stderr))
}

/// The reply must be a Welcome.
pub fn must_welcome(joined: &Joined, what: &str) -> Result<(), Verdict> {
    if joined.message.kind == Kind::Welcome {
        return Ok(());
    }
    Err(Verdict::fail(
        format!("a Welcome for {what}"),
        joined.describe(),
        format!("{what} was not welcomed"),
    ))
}

/// Judges the target's stdout by whether `line` comes within the line deadline.
pub fn expect_line(ctx: &Ctx, server: &mut Server, line: &str) -> Verdict {
    let Some(target) = server.target.as_mut() else {
        return Verdict::skip("needs the target's stdout");
    };
    let within = ctx.time(LINE_WITHIN);
    let found = wait_for(target, Expected::Line(line), within);
    judge(&found, Expected::Line(line), ctx.strict, within)
}

/// Checks that the target (if cptp started it) runs and that a join still gets a reply.
pub fn still_serving(ctx: &Ctx, server: &mut Server, after: &str) -> Verdict {
    let expected = format!("after {after}: still running, and a join gets a reply");
    if let Some(target) = server.target.as_mut()
        && let Some(status) = target.exit_status()
    {
        let stderr = target.stderr();
        return Verdict::fail(
            expected,
            format!(
                "the target exited ({status}); stderr: {}",
                first_lines(&stderr, 6)
            ),
            format!("{after} stopped the target"),
        )
        .hints(hints::stderr(&stderr));
    }
    match ctx.try_join(server.addr) {
        Ok(joined) => {
            ctx.note(format!("join after {after}: {}", joined.describe()));
            Verdict::pass(expected, joined.describe())
        }
        Err(e) => Verdict::fail(
            expected,
            e.to_string(),
            format!("the target stopped answering after {after}"),
        ),
    }
}
