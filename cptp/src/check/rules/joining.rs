//! PROTOCOL 6, joining: the target is started with `-p` pointing at a fake peer of
//! `cptp` (see `harness::fake`), which answers as the rule needs: a Welcome, a Redirect
//! to other fakes, a loop of Redirects, or refusals.

use super::support::{LINES_WITHIN, joiner, list, visited};
use crate::check::ctx::{Ctx, first_lines};
use crate::check::hints;
use crate::check::lines::{Expected, Found, begins_with, expect_sequence, judge, wait_for};
use crate::check::rule::{
    AFTER_AUTO_JOIN, AFTER_BOTH, AFTER_CLIENT, AUTO_JOIN_GATE, CLIENT_GATE, LONG, Needs, Rule,
    SHORT,
};
use crate::check::target::{Spec, Target};
use crate::check::verdict::{Verdict, need};
use crate::contract::{Kind, Message, line};
use crate::harness::fake::{Answer, Fake};
use crate::harness::sockets::dead_address;
use crate::text::short_hex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub static RULES: &[Rule] = &[
    TAKES_WELCOME,
    JOIN_FROM_LISTENING_PORT,
    ACCEPTS_AFTER_JOIN,
    WELCOME_LINES,
    COUNTS_JOINED_PEER,
    REDIRECT_LINES,
    FOLLOWS_REDIRECT,
    AUTO_JOIN_FIRST,
    AUTO_JOIN_TWO_LEVELS,
    REDIRECT_LOOP_ENDS,
    NO_SELF_JOIN,
    GIVES_UP,
];

/// How long a line of an auto-join may take: a few joins to local fakes.
const AUTO_JOIN_WITHIN: Duration = Duration::from_secs(8);

/// Starts a joiner at a fake that welcomes it, and waits for the join.
fn joined_once(ctx: &Ctx) -> Result<(Fake, Target, std::net::SocketAddrV4), Verdict> {
    let a = ctx.fake("fakeA", Answer::Welcome)?;
    a.set_list(vec![]);
    let (target, from) = visited(ctx, &a)?;
    Ok((a, target, from))
}

pub const TAKES_WELCOME: Rule = Rule {
    id: CLIENT_GATE,
    requirement: "Started with -p, the peer takes a conforming Welcome: it says so (a line naming the peer that welcomed it) and keeps running",
    needs: Needs::Fresh,
    after: &[],
    limit: LONG,
    run: takes_welcome,
};

/// The gate of every rule where the target joins. A joiner that crashes at start, cannot
/// decode a Welcome, or waits for bytes no conforming peer sends fails here once, with the
/// cause the evidence shows, and the rules behind it are BLOCKED.
fn takes_welcome(ctx: &Ctx) -> Verdict {
    let a = need!(ctx.fake("fakeA", Answer::Welcome));
    a.set_list(vec![]);
    let (mut target, _) = need!(visited(ctx, &a));
    let expected = format!(
        "'{}<timer>' after a Welcome ({}), and still running",
        line::connected_to("fakeA", a.addr.port()),
        short_hex(&Message::new(Kind::Welcome, "fakeA", vec![]).encode(), 16)
    );
    let within = ctx.time(LINES_WITHIN);
    let took = |l: &str| took_welcome(l, &a);
    let found = target.wait_for_line(within, took);
    ctx.note_fakes(&[&a]);
    if found.is_none() {
        let stderr = target.stderr();
        if let Some(status) = target.exit_status() {
            return Verdict::fail(
                expected,
                format!(
                    "it exited after {:.1} s ({status}); stderr: {}",
                    target.age().as_secs_f64(),
                    first_lines(&stderr, 6)
                ),
                "the target exited once it had joined (it was sent a conforming Welcome), before saying it took it",
            )
            .hints(hints::stderr(&stderr));
        }
        let mut verdict = Verdict::fail(
            expected,
            format!(
                "no 'Connected to peer' line within {}; stdout {}",
                ctx.scale.secs(LINES_WITHIN),
                target.shown()
            ),
            "the target printed nothing for a conforming Welcome (it could not decode it, or waits for more)",
        );
        if takes_welcome_with_newline(ctx) {
            verdict = verdict.hint(
                "it waits for a newline after the message: with '\\n' after the Welcome it goes on. PROTOCOL 4.2: a message has no delimiter, it is exactly 4 + L + 6N bytes; read the header, then exactly the bytes it announces",
            );
        }
        return verdict;
    }
    thread::sleep(ctx.time(Duration::from_millis(500)));
    if let Some(status) = target.exit_status() {
        let stderr = target.stderr();
        return Verdict::fail(
            expected,
            format!(
                "it printed {:?}, then exited ({status}); stderr: {}",
                found.unwrap_or_default(),
                first_lines(&stderr, 6)
            ),
            "the target ended right after taking the Welcome",
        )
        .hints(hints::stderr(&stderr));
    }
    Verdict::pass(expected, found.unwrap_or_default())
}

/// Whether a joiner that said nothing for a Welcome goes on when a newline follows it.
fn takes_welcome_with_newline(ctx: &Ctx) -> bool {
    let welcome = Message::new(Kind::Welcome, "fakeN", vec![]).encode();
    let Ok(n) = ctx.fake("fakeN", Answer::Raw([&welcome[..], b"\n"].concat())) else {
        return false;
    };
    let Ok((mut target, _)) = visited(ctx, &n) else {
        return false;
    };
    let found = target.wait_for_line(ctx.time(LINES_WITHIN), |l| took_welcome(l, &n));
    found.is_some()
}

/// True for a line that says the Welcome of `fake` was taken, however it is worded: the
/// line of PROTOCOL 6.2 as it begins, or any line naming the fake's ID, which only a peer
/// that decoded the Welcome knows (only 6.2-welcome-lines judges the wording).
fn took_welcome(line: &str, fake: &Fake) -> bool {
    begins_with(line, &["connected", "to", "peer"]) || line.contains(&fake.id)
}

pub const JOIN_FROM_LISTENING_PORT: Rule = Rule {
    id: "6.1-join-from-listening-port",
    requirement: "The join comes from the joiner's listening port, so the address others record accepts joins",
    needs: Needs::Fresh,
    after: AFTER_CLIENT,
    limit: SHORT,
    run: join_from_listening_port,
};

fn join_from_listening_port(ctx: &Ctx) -> Verdict {
    let (a, mut target, from) = need!(joined_once(ctx));
    ctx.note_fakes(&[&a]);
    let listening = need!(ctx.address(&mut target));
    let expected = format!("the join comes from {listening}, the address the target listens on");
    let actual = format!("the join came from {from}");
    if from == listening {
        Verdict::pass(expected, actual)
    } else {
        Verdict::fail(
            expected,
            actual,
            format!(
                "joined from another port: the peer it joined records {from}, where it accepts no joins"
            ),
        )
    }
}

pub const ACCEPTS_AFTER_JOIN: Rule = Rule {
    id: "6.1-accepts-after-join",
    requirement: "After joining, the peer still accepts joins at its address",
    needs: Needs::Fresh,
    after: AFTER_BOTH,
    limit: SHORT,
    run: accepts_after_join,
};

fn accepts_after_join(ctx: &Ctx) -> Verdict {
    let (a, mut target, _) = need!(joined_once(ctx));
    thread::sleep(ctx.time(Duration::from_millis(200)));
    let listening = need!(ctx.address(&mut target));
    let joined = need!(ctx.join(listening, "a Welcome"));
    ctx.note_fakes(&[&a]);
    let expected =
        format!("a Welcome at {listening} after the target joined (its table of 2 has room)");
    if joined.message.kind == Kind::Welcome {
        Verdict::pass(expected, joined.describe())
    } else {
        Verdict::fail(
            expected,
            joined.describe(),
            "the target did not welcome a join after its own",
        )
    }
}

pub const WELCOME_LINES: Rule = Rule {
    id: "6.2-welcome-lines",
    requirement: "A Welcome prints 'Connected to peer ID:PORT at timestamp: T', 'Received ack from ID:PORT' and the 'which is peered with' line",
    needs: Needs::Fresh,
    after: AFTER_CLIENT,
    limit: SHORT,
    run: welcome_lines,
};

fn welcome_lines(ctx: &Ctx) -> Verdict {
    let listed = vec![dead_address(), dead_address()];
    let a = need!(ctx.fake("fakeA", Answer::Welcome));
    a.set_list(listed.clone());
    let mut target = need!(joiner(ctx, &a));
    let port = a.addr.port();
    let connected = line::connected_to("fakeA", port);
    let ack = line::ack("fakeA", port);
    let peered = line::peered_with(&listed);
    let (verdict, _) = expect_sequence(
        &mut target,
        &[
            Expected::Numbered(&connected),
            Expected::Line(&ack),
            Expected::Line(&peered),
        ],
        ctx.strict,
        ctx.time(LINES_WITHIN),
    );
    ctx.note_fakes(&[&a]);
    verdict
}

pub const COUNTS_JOINED_PEER: Rule = Rule {
    id: "6.2-counts-joined-peer",
    requirement: "The peer it joined takes a slot of its table: in peer2-1, once joined, it redirects the next joiner and lists that peer",
    needs: Needs::Fresh,
    after: AFTER_BOTH,
    limit: SHORT,
    run: counts_joined_peer,
};

fn counts_joined_peer(ctx: &Ctx) -> Verdict {
    let a = need!(ctx.fake("fakeA", Answer::Welcome));
    a.set_list(vec![]);
    let mut target = need!(ctx.start(Spec::joining("peer2", 1, a.addr)));
    let took = target.wait_for_line(ctx.time(LINES_WITHIN), |l| took_welcome(l, &a));
    if took.is_none() {
        return Verdict::fail(
            "'Connected to peer fakeA:...' once joined",
            format!("stdout {}", target.shown()),
            "the target did not say it joined the peer given with -p",
        );
    }
    let listening = need!(ctx.address(&mut target));
    let expected = format!(
        "a Redirect listing {} (its table of 1 holds the peer it joined)",
        a.addr
    );
    let joined = need!(ctx.join(listening, &expected));
    ctx.note_fakes(&[&a]);
    let listed = joined.message.peers.contains(&a.addr);
    match (joined.message.kind, listed) {
        (Kind::Redirect, true) => Verdict::pass(expected, joined.describe()),
        (Kind::Redirect, false) => Verdict::fail(
            expected,
            joined.describe(),
            "the Redirect does not list the peer it joined",
        ),
        (Kind::Welcome, _) => Verdict::fail(
            expected,
            joined.describe(),
            "the peer it joined took no slot: with a table of 1 it welcomed another joiner (PROTOCOL 6.2: the accepting peer is added to the table)",
        ),
    }
}

pub const REDIRECT_LINES: Rule = Rule {
    id: "6.3-redirect-lines",
    requirement: "A Redirect prints the ack, the 'which is peered with' line, a blank line, 'The join has been declined; the auto-join process is performing ...' and a blank line",
    needs: Needs::Fresh,
    after: AFTER_CLIENT,
    limit: SHORT,
    run: redirect_lines,
};

fn redirect_lines(ctx: &Ctx) -> Verdict {
    let b = need!(ctx.fake("fakeB", Answer::Welcome));
    b.set_list(vec![]);
    let a = need!(ctx.fake("fakeA", Answer::Redirect));
    a.set_list(vec![b.addr]);
    let mut target = need!(joiner(ctx, &a));
    let ack = line::ack("fakeA", a.addr.port());
    let peered = line::peered_with(&[b.addr]);
    let (verdict, _) = expect_sequence(
        &mut target,
        &[
            Expected::Line(&ack),
            Expected::Line(&peered),
            Expected::Line(""),
            Expected::Line(line::DECLINED),
            Expected::Line(""),
        ],
        ctx.strict,
        ctx.time(LINES_WITHIN),
    );
    ctx.note_fakes(&[&a, &b]);
    verdict
}

/// Waits for the `Connected to peer ID:PORT` line of a join to `fake`.
fn connected_to(ctx: &Ctx, target: &mut Target, fake: &Fake) -> Verdict {
    let prefix = line::connected_to(&fake.id, fake.addr.port());
    let within = ctx.time(AUTO_JOIN_WITHIN);
    let found = wait_for(target, Expected::Numbered(&prefix), within);
    judge(&found, Expected::Numbered(&prefix), ctx.strict, within)
}

pub const FOLLOWS_REDIRECT: Rule = Rule {
    id: AUTO_JOIN_GATE,
    requirement: "After a Redirect the peer joins a peer the Redirect lists (the auto-join starts)",
    needs: Needs::Fresh,
    after: AFTER_CLIENT,
    limit: LONG,
    run: follows_redirect,
};

/// A redirects to [B], B welcomes: B must be joined. The gate of the auto-join's rules.
fn follows_redirect(ctx: &Ctx) -> Verdict {
    let b = need!(ctx.fake("fakeB", Answer::Welcome));
    b.set_list(vec![]);
    let a = need!(ctx.fake("fakeA", Answer::Redirect));
    a.set_list(vec![b.addr]);
    let mut target = need!(joiner(ctx, &a));
    let expected = format!(
        "after a Redirect from {} listing [{}], a join to {}",
        a.addr, b.addr, b.addr
    );
    let joined = b.wait_visit(ctx.time(AUTO_JOIN_WITHIN)).is_some();
    ctx.note_fakes(&[&a, &b]);
    if joined {
        return Verdict::pass(expected, b.report());
    }
    let stderr = target.stderr();
    let actual = match target.exit_status() {
        Some(status) => format!(
            "{}; it exited ({status}); stderr: {}",
            b.report(),
            first_lines(&stderr, 6)
        ),
        None => format!("{}; stdout {}", b.report(), target.shown()),
    };
    Verdict::fail(
        expected,
        actual,
        "the target did not join the peer the Redirect listed: no auto-join",
    )
    .hints(hints::stderr(&stderr))
}

pub const AUTO_JOIN_FIRST: Rule = Rule {
    id: "6.3-auto-join-first",
    requirement: "After a Redirect the peer joins the first listed peer first",
    needs: Needs::Fresh,
    after: AFTER_AUTO_JOIN,
    limit: LONG,
    run: auto_join_first,
};

/// A redirects to [B, C]; B must be tried first.
fn auto_join_first(ctx: &Ctx) -> Verdict {
    let b = need!(ctx.fake("fakeB", Answer::Welcome));
    let c = need!(ctx.fake("fakeC", Answer::Welcome));
    b.set_list(vec![]);
    c.set_list(vec![]);
    let a = need!(ctx.fake("fakeA", Answer::Redirect));
    a.set_list(vec![b.addr, c.addr]);
    let mut target = need!(joiner(ctx, &a));
    let mut verdict = connected_to(ctx, &mut target, &b);
    ctx.note_fakes(&[&a, &b, &c]);
    let (first_b, first_c) = (
        b.visits().first().map(|v| v.at),
        c.visits().first().map(|v| v.at),
    );
    let expected = format!(
        "after the Redirect listing {}, a join to {} first",
        list(&[b.addr, c.addr]),
        b.addr
    );
    let order_ok = match (first_b, first_c) {
        (Some(tb), Some(tc)) => tb < tc,
        (Some(_), None) => true,
        _ => false,
    };
    if !order_ok {
        return Verdict::fail(
            expected,
            format!("{}; {}", b.report(), c.report()),
            "the first listed peer was not tried first",
        );
    }
    verdict.expected = format!("{expected}, and {}", verdict.expected);
    verdict
}

pub const AUTO_JOIN_TWO_LEVELS: Rule = Rule {
    id: "6.3-auto-join-two-levels",
    requirement: "The auto-join follows a Redirect that leads to another Redirect",
    needs: Needs::Fresh,
    after: AFTER_AUTO_JOIN,
    limit: LONG,
    run: auto_join_two_levels,
};

/// A redirects to [B], B to [C], C welcomes.
fn auto_join_two_levels(ctx: &Ctx) -> Verdict {
    let c = need!(ctx.fake("fakeC", Answer::Welcome));
    c.set_list(vec![]);
    let b = need!(ctx.fake("fakeB", Answer::Redirect));
    b.set_list(vec![c.addr]);
    let a = need!(ctx.fake("fakeA", Answer::Redirect));
    a.set_list(vec![b.addr]);
    let mut target = need!(joiner(ctx, &a));
    let verdict = connected_to(ctx, &mut target, &c);
    ctx.note_fakes(&[&a, &b, &c]);
    if c.count() == 0 {
        return Verdict::fail(
            format!("a join to {} (listed by B, which A listed)", c.addr),
            format!("{}; {}; {}", a.report(), b.report(), c.report()),
            "the auto-join did not follow the second Redirect",
        );
    }
    verdict
}

/// Waits for the give-up line (up to `within`), then watches `quiet` more for attempts.
fn wait_give_up(target: &mut Target, within: Duration, quiet: Duration) -> Found {
    let found = wait_for(target, Expected::Line(line::GIVE_UP), within);
    thread::sleep(quiet);
    found
}

pub const REDIRECT_LOOP_ENDS: Rule = Rule {
    id: "6.3-redirect-loop-ends",
    requirement: "A Redirect loop (A lists B, B lists A) ends, each address tried at most once, and the peer keeps running",
    needs: Needs::Fresh,
    after: AFTER_AUTO_JOIN,
    limit: LONG,
    run: redirect_loop_ends,
};

fn redirect_loop_ends(ctx: &Ctx) -> Verdict {
    let a = need!(ctx.fake("fakeA", Answer::Redirect));
    let b = need!(ctx.fake("fakeB", Answer::Redirect));
    a.set_list(vec![b.addr]);
    b.set_list(vec![a.addr]);
    let mut target = need!(joiner(ctx, &a));
    wait_give_up(
        &mut target,
        ctx.time(Duration::from_secs(6)),
        ctx.time(Duration::from_secs(1)),
    );
    ctx.note_fakes(&[&a, &b]);
    let expected = format!(
        "one join to {} and one to {}, then no more, and still running",
        a.addr, b.addr
    );
    let actual = format!("{}; {}", a.report(), b.report());
    if let Some(status) = target.exit_status() {
        let stderr = target.stderr();
        return Verdict::fail(
            expected,
            format!("{actual}; then it exited ({status}); stderr: {}", first_lines(&stderr, 6)),
            "the loop ended because the target did: a peer that gives up keeps serving (PROTOCOL 6.4)",
        )
        .hints(hints::stderr(&stderr));
    }
    match (a.count(), b.count()) {
        (1, 1) => Verdict::pass(expected, actual),
        (_, 0) => Verdict::fail(expected, actual, "the target never followed the Redirect"),
        (na, nb) => Verdict::fail(
            expected,
            actual,
            format!("addresses tried more than once ({na} and {nb} joins)"),
        ),
    }
}

pub const NO_SELF_JOIN: Rule = Rule {
    id: "6.3-no-self-join",
    requirement: "A Redirect that lists the peer's own address does not make it join itself",
    needs: Needs::Fresh,
    after: AFTER_AUTO_JOIN,
    limit: LONG,
    run: no_self_join,
};

/// A redirects to [the target itself, B]. Joining itself shows as a line (a Welcome from
/// itself) or, for a joiner that connects from its listening port, as nothing printed at
/// all: a TCP connection from its own address to itself, which its sockets show.
fn no_self_join(ctx: &Ctx) -> Verdict {
    let b = need!(ctx.fake("fakeB", Answer::Welcome));
    b.set_list(vec![]);
    let a = need!(ctx.fake("fakeA", Answer::Redirect));
    let mut target = need!(joiner(ctx, &a));
    // A's reply waits for its list, which needs the target's address.
    let own = match ctx.address(&mut target) {
        Ok(own) => own,
        Err(e) => {
            a.set_list(vec![b.addr]);
            return e;
        }
    };
    let known_at = Instant::now();
    a.set_list(vec![own, b.addr]);
    if let Some(visit) = a.visits().first()
        && visit.at + ctx.time(crate::check::ctx::LIST_WITHIN) < known_at
    {
        ctx.note_fakes(&[&a, &b]);
        return Verdict::fail(
            format!(
                "a join to {} after a Redirect listing the target's own address",
                b.addr
            ),
            format!("stdout {}", target.shown()),
            "the target joined long before it listened (PROTOCOL 7.1: the address line comes first, as soon as it listens), so its own address could not be listed",
        );
    }
    let seer = target.sockets_seer();
    let watching = AtomicBool::new(true);
    let (verdict, self_connected) = thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            while watching.load(Ordering::Relaxed) {
                let found = seer
                    .sockets()
                    .into_iter()
                    .find(|s| s.local == own && s.remote == own);
                if found.is_some() {
                    return found;
                }
                thread::sleep(Duration::from_millis(20));
            }
            None
        });
        let verdict = connected_to(ctx, &mut target, &b);
        watching.store(false, Ordering::Relaxed);
        (verdict, watcher.join().ok().flatten())
    });
    ctx.note_fakes(&[&a, &b]);
    let expected = format!(
        "after a Redirect listing {}, a join to {} and none to itself",
        list(&[own, b.addr]),
        b.addr
    );
    if self_connected.is_some() {
        return Verdict::fail(
            expected,
            format!("a TCP connection from {own} to {own}, its own listening address"),
            "the target joined itself: connecting from its listening port to its own address made a TCP connection to itself (no Welcome, nothing printed)",
        );
    }
    let self_join = target.seen().iter().find(|l| {
        l.contains(&format!("Connected to peer {}", target.spec.id))
            || l.contains(&line::connected_from(own))
    });
    if let Some(l) = self_join {
        return Verdict::fail(expected, l.clone(), "the target joined itself");
    }
    if b.count() == 0 {
        return Verdict::fail(
            expected,
            format!("{}; stdout {}", b.report(), target.shown()),
            "the target never joined the other listed peer",
        );
    }
    verdict
}

pub const GIVES_UP: Rule = Rule {
    id: "6.4-gives-up",
    requirement: "When nobody accepts (peers close at once, one refuses the connection), the peer prints 'No peer accepted the join; running standalone', stops trying and keeps running",
    needs: Needs::Fresh,
    after: AFTER_AUTO_JOIN,
    limit: LONG,
    run: gives_up,
};

/// A redirects to [B, C]; both close at once. The target gives up, says so, and stops
/// trying: every address tried once at most.
fn gives_up(ctx: &Ctx) -> Verdict {
    let b = need!(ctx.fake("fakeB", Answer::Close));
    let c = need!(ctx.fake("fakeC", Answer::Close));
    let refusing = dead_address();
    let a = need!(ctx.fake("fakeA", Answer::Redirect));
    a.set_list(vec![b.addr, c.addr, refusing]);
    let mut target = need!(joiner(ctx, &a));
    let within = ctx.time(AUTO_JOIN_WITHIN);
    let found = wait_give_up(&mut target, within, ctx.time(Duration::from_millis(1500)));
    ctx.note_fakes(&[&a, &b, &c]);
    let counts = [a.count(), b.count(), c.count()];
    let total: usize = counts.iter().sum();
    let expected = format!(
        "'{}', at most one attempt per address, and still running",
        line::GIVE_UP
    );
    let attempts = format!("{}; {}; {}", a.report(), b.report(), c.report());
    if counts.iter().any(|n| *n > 1) {
        return Verdict::fail(
            expected,
            format!("{total} connection attempts: {attempts}"),
            "the target keeps retrying peers that refused it",
        );
    }
    if let Some(status) = target.exit_status() {
        let stderr = target.stderr();
        return Verdict::fail(
            expected,
            format!("{attempts}; then it exited ({status}); stderr: {}", first_lines(&stderr, 6)),
            format!("peers that closed at once, or refused the connection ({refusing}), stopped the target: PROTOCOL 6.4 reports each on stderr and goes on"),
        )
        .hints(hints::stderr(&stderr));
    }
    let mut verdict = judge(&found, Expected::Line(line::GIVE_UP), ctx.strict, within);
    verdict.expected = expected;
    verdict.actual = format!("{}; {total} attempts", verdict.actual);
    verdict
}
