//! PROTOCOL 3, 4.5 and 6: the target joining. `cptp` runs fake peers (see `fake.rs`) and
//! starts the target with `-p` pointing at one of them.

use super::{Ctx, Verdict, address};
use crate::check::fake::{Answer, Fake, LIST_WITHIN};
use crate::check::lines::{Expected, expect_sequence, judge, wait_for};
use crate::check::net;
use crate::check::outcome::Outcome;
use crate::check::target::{Spec, Target};
use crate::check::timing::{scaled, secs};
use peer::wire::{Kind, Message};
use std::net::{SocketAddrV4, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

/// How long the joiner's lines may take: one round trip to a local fake, or a few.
const LINES_WITHIN: Duration = Duration::from_secs(5);
/// How long the joiner may take to reach the fake it was pointed at.
const VISIT_WITHIN: Duration = Duration::from_secs(5);

fn fake(id: &str, answer: Answer) -> Result<Fake, Outcome> {
    Fake::start(id, answer).map_err(|e| Outcome::skip(format!("cannot start a fake peer: {e}")))
}

/// An address on loopback where nothing listens (bound, then closed at once).
fn dead_address() -> SocketAddrV4 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()
        .and_then(peer::sockets::ipv4)
        .unwrap_or_else(|| SocketAddrV4::new([127, 0, 0, 1].into(), 9))
}

fn peered_with(peers: &[SocketAddrV4]) -> String {
    format!("  which is peered with: {}", peer::output::peer_list(peers))
}

/// Starts the target in `peer2-2` (ID peer2, a table of 2) joining the fake `first`.
fn joiner(ctx: &Ctx, first: &Fake) -> Result<Target, Outcome> {
    ctx.start(Spec::joining("peer2", 2, first.addr))
}

fn note_fakes(ctx: &Ctx, fakes: &[&Fake]) {
    for fake in fakes {
        ctx.note(fake.report());
    }
}

/// 6.2-welcome-lines.
pub fn welcome_lines(ctx: &Ctx) -> Verdict {
    let listed = vec![dead_address(), dead_address()];
    let a = fake("fakeA", Answer::Welcome)?;
    a.set_list(listed.clone());
    let mut target = joiner(ctx, &a)?;
    let port = a.addr.port();
    let connected = format!("Connected to peer fakeA:{port} at timestamp: ");
    let ack = format!("Received ack from fakeA:{port}");
    let peered = peered_with(&listed);
    let (outcome, _) = expect_sequence(
        &mut target,
        &[
            Expected::Numbered(&connected),
            Expected::Line(&ack),
            Expected::Line(&peered),
        ],
        ctx.strict,
        scaled(LINES_WITHIN),
    );
    note_fakes(ctx, &[&a]);
    Ok(outcome)
}

/// 3.1-timestamp: the number is the timer: at least 1, at most 999 plus the 10 ms ticks
/// since start (and a margin for a slow machine).
pub fn timestamp(ctx: &Ctx) -> Verdict {
    let a = fake("fakeA", Answer::Welcome)?;
    a.set_list(vec![]);
    let mut target = joiner(ctx, &a)?;
    let prefix = format!("Connected to peer fakeA:{} at timestamp: ", a.addr.port());
    let found = wait_for(
        &mut target,
        Expected::Numbered(&prefix),
        scaled(LINES_WITHIN),
    );
    let Some(number) = found.number else {
        return Err(judge(
            &found,
            Expected::Numbered(&prefix),
            ctx.strict,
            scaled(LINES_WITHIN),
        ));
    };
    let ticks = target.age().as_millis() as u64 / 10;
    let most = 999 + ticks + 100;
    let expected = format!("a timer value from 1 to {most} (999 + {ticks} ticks of 10 ms + 100)");
    let actual = found.line.clone().unwrap_or_default();
    if (1..=most).contains(&number) {
        Ok(Outcome::pass(expected, actual))
    } else {
        Err(Outcome::fail(
            expected,
            actual,
            format!("{number} is not a value the 10 ms timer can have yet"),
        ))
    }
}

/// Starts a joiner at a fake that welcomes it, and waits for the join.
fn joined_once(ctx: &Ctx) -> Result<(Fake, Target, SocketAddrV4), Outcome> {
    let a = fake("fakeA", Answer::Welcome)?;
    a.set_list(vec![]);
    let mut target = joiner(ctx, &a)?;
    let Some(visit) = a.wait_visit(VISIT_WITHIN) else {
        return Err(Outcome::fail(
            format!("a connection to {} within {}", a.addr, secs(VISIT_WITHIN)),
            format!("none; stdout: {:?}", target.seen()),
            "the target never joined the peer given with -p",
        ));
    };
    let _ = target.exit_status();
    Ok((a, target, visit.from))
}

/// 6.1-join-from-listening-port.
pub fn join_from_listening_port(ctx: &Ctx) -> Verdict {
    let (a, mut target, from) = joined_once(ctx)?;
    note_fakes(ctx, &[&a]);
    let listening = address(&mut target)?;
    let expected = format!("the join comes from {listening}, the address the target listens on");
    let actual = format!("the join came from {from}");
    if from == listening {
        Ok(Outcome::pass(expected, actual))
    } else {
        Err(Outcome::fail(
            expected,
            actual,
            format!(
                "joined from another port: the peer it joined records {from}, where it accepts no joins"
            ),
        ))
    }
}

/// 6.1-accepts-after-join.
pub fn accepts_after_join(ctx: &Ctx) -> Verdict {
    let (a, mut target, _) = joined_once(ctx)?;
    thread::sleep(scaled(Duration::from_millis(200)));
    let listening = address(&mut target)?;
    let joined = ctx.join(listening, "a Welcome")?;
    note_fakes(ctx, &[&a]);
    let expected =
        format!("a Welcome at {listening} after the target joined (its table of 2 has room)");
    if joined.message.kind() == Kind::Welcome {
        Ok(Outcome::pass(expected, joined.describe()))
    } else {
        Err(Outcome::fail(
            expected,
            joined.describe(),
            "the target did not welcome a join after its own",
        ))
    }
}

/// 6.3-redirect-lines.
pub fn redirect_lines(ctx: &Ctx) -> Verdict {
    let b = fake("fakeB", Answer::Welcome)?;
    b.set_list(vec![]);
    let a = fake("fakeA", Answer::Redirect)?;
    a.set_list(vec![b.addr]);
    let mut target = joiner(ctx, &a)?;
    let ack = format!("Received ack from fakeA:{}", a.addr.port());
    let peered = peered_with(&[b.addr]);
    let declined = "The join has been declined; the auto-join process is performing ...";
    let (outcome, _) = expect_sequence(
        &mut target,
        &[
            Expected::Line(&ack),
            Expected::Line(&peered),
            Expected::Line(""),
            Expected::Line(declined),
            Expected::Line(""),
        ],
        ctx.strict,
        scaled(LINES_WITHIN),
    );
    note_fakes(ctx, &[&a, &b]);
    Ok(outcome)
}

/// Waits for the `Connected to peer ID:PORT` line of a join to `fake`.
fn connected_to(ctx: &Ctx, target: &mut Target, fake: &Fake) -> Outcome {
    let prefix = format!(
        "Connected to peer {}:{} at timestamp: ",
        fake.id,
        fake.addr.port()
    );
    let found = wait_for(
        target,
        Expected::Numbered(&prefix),
        scaled(Duration::from_secs(8)),
    );
    judge(
        &found,
        Expected::Numbered(&prefix),
        ctx.strict,
        scaled(Duration::from_secs(8)),
    )
}

/// 6.3-auto-join-first: A redirects to [B, C]; B must be tried first.
pub fn auto_join_first(ctx: &Ctx) -> Verdict {
    let b = fake("fakeB", Answer::Welcome)?;
    let c = fake("fakeC", Answer::Welcome)?;
    b.set_list(vec![]);
    c.set_list(vec![]);
    let a = fake("fakeA", Answer::Redirect)?;
    a.set_list(vec![b.addr, c.addr]);
    let mut target = joiner(ctx, &a)?;
    let mut outcome = connected_to(ctx, &mut target, &b);
    note_fakes(ctx, &[&a, &b, &c]);
    let (first_b, first_c) = (
        b.visits().first().map(|v| v.at),
        c.visits().first().map(|v| v.at),
    );
    let expected = format!(
        "after the Redirect listing [{}, {}], a join to {} first",
        b.addr, c.addr, b.addr
    );
    let order_ok = match (first_b, first_c) {
        (Some(tb), Some(tc)) => tb < tc,
        (Some(_), None) => true,
        _ => false,
    };
    if !order_ok {
        return Err(Outcome::fail(
            expected,
            format!("{}; {}", b.report(), c.report()),
            "the first listed peer was not tried first",
        ));
    }
    outcome.expected = format!("{expected}, and {}", outcome.expected);
    Ok(outcome)
}

/// 6.3-auto-join-two-levels: A redirects to [B], B to [C], C welcomes.
pub fn auto_join_two_levels(ctx: &Ctx) -> Verdict {
    let c = fake("fakeC", Answer::Welcome)?;
    c.set_list(vec![]);
    let b = fake("fakeB", Answer::Redirect)?;
    b.set_list(vec![c.addr]);
    let a = fake("fakeA", Answer::Redirect)?;
    a.set_list(vec![b.addr]);
    let mut target = joiner(ctx, &a)?;
    let outcome = connected_to(ctx, &mut target, &c);
    note_fakes(ctx, &[&a, &b, &c]);
    if c.count() == 0 {
        return Err(Outcome::fail(
            format!("a join to {} (listed by B, which A listed)", c.addr),
            format!("{}; {}; {}", a.report(), b.report(), c.report()),
            "the auto-join did not follow the second Redirect",
        ));
    }
    Ok(outcome)
}

/// The give-up line of PROTOCOL 6.4.
const GIVE_UP: &str = "No peer accepted the join; running standalone";

/// Waits for the give-up line (up to `within`), then watches `quiet` more for attempts.
fn wait_give_up(
    target: &mut Target,
    within: Duration,
    quiet: Duration,
) -> crate::check::lines::Found {
    let found = wait_for(target, Expected::Line(GIVE_UP), within);
    thread::sleep(quiet);
    found
}

/// 6.3-redirect-loop-ends: A lists B, B lists A.
pub fn redirect_loop_ends(ctx: &Ctx) -> Verdict {
    let a = fake("fakeA", Answer::Redirect)?;
    let b = fake("fakeB", Answer::Redirect)?;
    a.set_list(vec![b.addr]);
    b.set_list(vec![a.addr]);
    let mut target = joiner(ctx, &a)?;
    wait_give_up(
        &mut target,
        scaled(Duration::from_secs(6)),
        scaled(Duration::from_secs(1)),
    );
    note_fakes(ctx, &[&a, &b]);
    let expected = format!("one join to {} and one to {}, then no more", a.addr, b.addr);
    let actual = format!("{}; {}", a.report(), b.report());
    match (a.count(), b.count()) {
        (1, 1) => Ok(Outcome::pass(expected, actual)),
        (_, 0) => Err(Outcome::fail(
            expected,
            actual,
            "the target never followed the Redirect",
        )),
        (na, nb) => Err(Outcome::fail(
            expected,
            actual,
            format!("addresses tried more than once ({na} and {nb} joins)"),
        )),
    }
}

/// 6.3-no-self-join: A redirects to [the target itself, B].
pub fn no_self_join(ctx: &Ctx) -> Verdict {
    let b = fake("fakeB", Answer::Welcome)?;
    b.set_list(vec![]);
    let a = fake("fakeA", Answer::Redirect)?;
    let mut target = joiner(ctx, &a)?;
    // A's reply waits for its list, which needs the target's address.
    let own = match address(&mut target) {
        Ok(own) => own,
        Err(e) => {
            a.set_list(vec![b.addr]);
            return Err(e);
        }
    };
    let known_at = Instant::now();
    a.set_list(vec![own, b.addr]);
    // A's reply can list the target only once the target has said where it listens.
    if let Some(visit) = a.visits().first()
        && visit.at + scaled(LIST_WITHIN) < known_at
    {
        note_fakes(ctx, &[&a, &b]);
        return Err(Outcome::fail(
            format!(
                "a join to {} after a Redirect listing the target's own address",
                b.addr
            ),
            format!("stdout {:?}", target.seen()),
            "the target joined long before it printed its address (PROTOCOL 7.1: the address line comes first, as soon as it listens), so its own address could not be listed",
        ));
    }
    let outcome = connected_to(ctx, &mut target, &b);
    note_fakes(ctx, &[&a, &b]);
    let expected = format!(
        "after a Redirect listing [{own}, {}], a join to {} and none to itself",
        b.addr, b.addr
    );
    let self_join = target.seen().iter().find(|line| {
        line.contains(&format!("Connected to peer {}", target.spec.id))
            || line.contains(&format!("Connected from peer {own}"))
    });
    if let Some(line) = self_join {
        return Err(Outcome::fail(
            expected,
            line.clone(),
            "the target joined itself",
        ));
    }
    if b.count() == 0 {
        return Err(Outcome::fail(
            expected,
            format!("{}; stdout {:?}", b.report(), target.seen()),
            "the target never joined the other listed peer",
        ));
    }
    Ok(outcome)
}

/// 6.4-gives-up: A redirects to [B, C]; both close at once. The target gives up, says so,
/// and stops trying: every address tried once at most.
pub fn gives_up(ctx: &Ctx) -> Verdict {
    let b = fake("fakeB", Answer::Close)?;
    let c = fake("fakeC", Answer::Close)?;
    let a = fake("fakeA", Answer::Redirect)?;
    a.set_list(vec![b.addr, c.addr]);
    let mut target = joiner(ctx, &a)?;
    let within = scaled(Duration::from_secs(8));
    let found = wait_give_up(&mut target, within, scaled(Duration::from_millis(1500)));
    note_fakes(ctx, &[&a, &b, &c]);
    let counts = [a.count(), b.count(), c.count()];
    let total: usize = counts.iter().sum();
    let expected = format!("'{GIVE_UP}' and at most one attempt per address (3 in all)");
    if counts.iter().any(|n| *n > 1) {
        return Err(Outcome::fail(
            expected,
            format!(
                "{total} connection attempts: {}; {}; {}",
                a.report(),
                b.report(),
                c.report()
            ),
            "the target keeps retrying peers that refused it",
        ));
    }
    let mut outcome = judge(&found, Expected::Line(GIVE_UP), ctx.strict, within);
    outcome.expected = expected;
    outcome.actual = format!("{}; {total} attempts", outcome.actual);
    if let Some(status) = target.exit_status() {
        return Err(Outcome::fail(
            outcome.expected,
            format!("exited ({status})"),
            "a standalone peer keeps serving; this one exited",
        ));
    }
    Ok(outcome)
}

/// Points the target at a fake answering `answer`, then checks that it still runs and
/// accepts a join.
fn survives_reply(ctx: &Ctx, answer: Answer, what: &str) -> Verdict {
    let a = fake("fakeA", answer)?;
    let mut target = joiner(ctx, &a)?;
    let expected = format!("after {what}: still running, and a join to it gets a reply");
    if a.wait_visit(VISIT_WITHIN).is_none() {
        return Err(Outcome::fail(
            expected,
            format!("stdout {:?}", target.seen()),
            "the target never joined the fake peer",
        ));
    }
    thread::sleep(scaled(Duration::from_millis(500)));
    note_fakes(ctx, &[&a]);
    if let Some(status) = target.exit_status() {
        return Err(Outcome::fail(
            expected,
            format!(
                "exited ({status}); stderr: {}",
                first_lines(&target.stderr())
            ),
            format!("{what} stopped the target"),
        ));
    }
    let listening = address(&mut target)?;
    match net::join(listening) {
        Ok(joined) => Ok(Outcome::pass(expected, joined.describe())),
        Err(e) => Err(Outcome::fail(
            expected,
            e.to_string(),
            format!("after {what} the target no longer accepts joins"),
        )),
    }
}

/// A Welcome from `fakeA` with its first byte's version field set to `version`.
fn welcome_with_version(version: u8) -> Vec<u8> {
    let mut bytes = Message::new(Kind::Welcome, "fakeA", vec![])
        .map(|m| m.to_bytes())
        .unwrap_or_default();
    if let Some(first) = bytes.first_mut() {
        *first = (*first & 0x1F) | (version << 5);
    }
    bytes
}

pub fn reply_bad_version(ctx: &Ctx) -> Verdict {
    survives_reply(
        ctx,
        Answer::Raw(welcome_with_version(6)),
        "a reply with version 6",
    )
}

pub fn reply_unknown_type(ctx: &Ctx) -> Verdict {
    // V = 7, type 3, N = 0, L = 5, then the ID.
    let word: u32 = (7 << 29) | (3 << 21) | 5;
    let bytes = [&word.to_be_bytes()[..], b"fakeA"].concat();
    survives_reply(ctx, Answer::Raw(bytes), "a reply of type 3")
}

pub fn reply_truncated(ctx: &Ctx) -> Verdict {
    // A Welcome that announces a 5-byte ID and 2 peers but stops after 3 bytes of the ID.
    let word: u32 = (7 << 29) | (1 << 21) | (2 << 8) | 5;
    let bytes = [&word.to_be_bytes()[..], b"fak"].concat();
    survives_reply(ctx, Answer::RawClose(bytes), "a reply cut short")
}

pub fn reply_silent(ctx: &Ctx) -> Verdict {
    survives_reply(ctx, Answer::Silent, "a peer that never replies")
}

/// The first few non-blank lines of `lines`, for a reason that fits on a screen (the whole
/// stderr is in the evidence).
fn first_lines(lines: &[String]) -> String {
    let shown: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .take(6)
        .collect();
    shown.join(" | ")
}
