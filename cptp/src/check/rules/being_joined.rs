//! PROTOCOL 5, being joined: Welcomes and Redirects, the table and its size, joins at
//! once, and departures. The rules join the target with plain TCP connections from
//! `cptp`, each seen by the target as a peer at 127.0.0.1:PORT.

use super::support::{expect_line, list, must_welcome};
use crate::check::ctx::{Ctx, Server};
use crate::check::hints;
use crate::check::rule::{AFTER_SERVER, LONG, Needs, Rule, SHORT};
use crate::check::target::Spec;
use crate::check::verdict::{Verdict, need};
use crate::contract::{Kind, Message, line};
use crate::harness::client::{Joined, read_trailing};
use crate::text::hex;
use std::net::SocketAddrV4;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

pub static RULES: &[Rule] = &[
    WELCOME_BYTES,
    WELCOME_LISTS_TABLE,
    LINK_STAYS_OPEN,
    CONNECTED_LINE,
    TABLE_SIZE,
    REDIRECT_LISTS_TABLE,
    FULL_LINE,
    REDIRECT_CLOSED,
    CONCURRENT_JOINS,
    SLOT_FREED,
    DEPARTED_NOT_LISTED,
    LEFT_LINE,
];

/// PROTOCOL 5.4 as the checker bounds it: a departure is handled within 1 s.
const DEPARTURE_WITHIN: Duration = Duration::from_secs(1);

pub const WELCOME_BYTES: Rule = Rule {
    id: "5.1-welcome-bytes",
    requirement: "The first join gets a Welcome, byte for byte: V = 7, type 1, N = 0, the sender ID from the folder",
    needs: Needs::Fresh,
    after: AFTER_SERVER,
    limit: SHORT,
    run: welcome_bytes,
};

fn welcome_bytes(ctx: &Ctx) -> Verdict {
    let (_target, addr) = need!(ctx.listening(Spec::new("peer1", 2)));
    let expected = Message::new(Kind::Welcome, "peer1", vec![]).encode();
    let want = format!(
        "Welcome from 'peer1' listing [] ({} bytes: {})",
        expected.len(),
        hex(&expected)
    );
    let joined = need!(ctx.join(addr, &want));
    if joined.raw == expected {
        return Verdict::pass(want, joined.describe());
    }
    let sent = joined.message.sender_id();
    Verdict::fail(want, joined.describe(), "the bytes differ")
        .hints(hints::id(&sent, "peer1", "peer1-2"))
}

pub const WELCOME_LISTS_TABLE: Rule = Rule {
    id: "5.1-welcome-lists-table",
    requirement: "Each Welcome lists the table as it was before this join, in the order the entries joined",
    needs: Needs::Fresh,
    after: AFTER_SERVER,
    limit: SHORT,
    run: welcome_lists_table,
};

/// Three joins, three growing lists.
fn welcome_lists_table(ctx: &Ctx) -> Verdict {
    let server = need!(ctx.server("peer1", 3));
    let mut joined: Vec<Joined> = Vec::new();
    for _ in 0..3 {
        let before: Vec<SocketAddrV4> = joined.iter().map(|j| j.local).collect();
        let want = format!("a Welcome listing {}", list(&before));
        let next = need!(ctx.join(server.addr, &want));
        need!(must_welcome(&next, "a join to a table with room"));
        if next.message.peers != before {
            return Verdict::fail(
                want,
                next.describe(),
                "the list is not the table before this join, in join order",
            );
        }
        joined.push(next);
    }
    let lists: Vec<String> = joined.iter().map(|j| list(&j.message.peers)).collect();
    Verdict::pass("Welcomes listing [], [A], [A, B]", lists.join(", "))
}

pub const LINK_STAYS_OPEN: Rule = Rule {
    id: "5.1-link-stays-open",
    requirement: "After a Welcome the connection stays open (it is the link) and the joiner stays listed",
    needs: Needs::Address,
    after: AFTER_SERVER,
    limit: SHORT,
    run: link_stays_open,
};

/// The Welcome's connection is not closed, and its joiner is listed.
fn link_stays_open(ctx: &Ctx) -> Verdict {
    let server = need!(ctx.server("peer1", 2));
    let joined = need!(ctx.join(server.addr, "a Welcome"));
    if joined.message.kind != Kind::Welcome {
        if !server.fresh() {
            return Verdict::skip("the running peer's table is full: it redirected");
        }
        need!(must_welcome(&joined, "the first join"));
    }
    let trailing = read_trailing(&joined.stream, ctx.time(Duration::from_secs(1)));
    let expected = format!(
        "the connection still open {} after the Welcome",
        ctx.scale.secs(Duration::from_secs(1))
    );
    if let Some(after) = trailing.closed_after {
        return Verdict::fail(
            expected,
            format!("closed {} ms after the Welcome", after.as_millis()),
            "the link was closed",
        );
    }
    if server.fresh() {
        let second = need!(ctx.join(server.addr, "a Welcome listing the first joiner"));
        if !second.message.peers.contains(&joined.local) {
            return Verdict::fail(
                format!("the next Welcome lists {}", joined.local),
                second.describe(),
                "the open link's peer is not listed",
            );
        }
    }
    Verdict::pass(expected, "still open")
}

pub const CONNECTED_LINE: Rule = Rule {
    id: "5.1-connected-line",
    requirement: "A Welcome is followed by the line 'Connected from peer IP:PORT' naming the joiner",
    needs: Needs::Fresh,
    after: AFTER_SERVER,
    limit: SHORT,
    run: connected_line,
};

fn connected_line(ctx: &Ctx) -> Verdict {
    let mut server = need!(ctx.server("peer1", 2));
    let joined = need!(ctx.join(server.addr, "a Welcome"));
    need!(must_welcome(&joined, "the first join"));
    expect_line(ctx, &mut server, &line::connected_from(joined.local))
}

pub const TABLE_SIZE: Rule = Rule {
    id: "5.2-table-size",
    requirement: "The table holds exactly SIZE peers (from the folder ID-SIZE): SIZE Welcomes, then a Redirect",
    needs: Needs::Fresh,
    after: AFTER_SERVER,
    limit: SHORT,
    run: table_size,
};

/// A table of 3 takes 3 joins and redirects the 4th.
fn table_size(ctx: &Ctx) -> Verdict {
    let server = need!(ctx.server("peer1", 3));
    let mut kinds = Vec::new();
    let mut links = Vec::new();
    for _ in 0..4 {
        let joined = need!(ctx.join(server.addr, "a reply"));
        kinds.push(joined.message.kind.to_string());
        links.push(joined);
    }
    let expected = "Welcome, Welcome, Welcome, Redirect (folder peer1-3)";
    let actual = kinds.join(", ");
    if actual == "Welcome, Welcome, Welcome, Redirect" {
        Verdict::pass(expected, actual)
    } else {
        Verdict::fail(
            expected,
            actual,
            "the table size from the folder name is not respected",
        )
    }
}

/// Fills a table of `size` and joins once more: the links and the extra join.
fn fill_and_overflow(
    ctx: &Ctx,
    server: &Server,
    size: usize,
) -> Result<(Vec<Joined>, Joined), Verdict> {
    let mut links = Vec::new();
    for _ in 0..size {
        let joined = ctx.join(server.addr, "a Welcome")?;
        must_welcome(&joined, "a join to a table with room")?;
        links.push(joined);
    }
    let extra = ctx.join(server.addr, "a Redirect")?;
    if extra.message.kind != Kind::Redirect {
        return Err(Verdict::fail(
            "a Redirect for a join to a full table",
            extra.describe(),
            "a full table did not redirect",
        ));
    }
    Ok((links, extra))
}

pub const REDIRECT_LISTS_TABLE: Rule = Rule {
    id: "5.2-redirect-lists-table",
    requirement: "When the table is full the Redirect lists the whole table",
    needs: Needs::Fresh,
    after: AFTER_SERVER,
    limit: SHORT,
    run: redirect_lists_table,
};

fn redirect_lists_table(ctx: &Ctx) -> Verdict {
    let server = need!(ctx.server("peer1", 2));
    let (links, extra) = need!(fill_and_overflow(ctx, &server, 2));
    let table: Vec<SocketAddrV4> = links.iter().map(|j| j.local).collect();
    let want = format!("a Redirect listing {}", list(&table));
    let listed = &extra.message.peers;
    let same = listed.len() == table.len() && table.iter().all(|p| listed.contains(p));
    if same {
        Verdict::pass(want, extra.describe())
    } else {
        Verdict::fail(
            want,
            extra.describe(),
            "the Redirect does not list the whole table",
        )
    }
}

pub const FULL_LINE: Rule = Rule {
    id: "5.2-full-line",
    requirement: "A Redirect comes with the line 'Peer table full: IP:PORT redirected' naming the joiner",
    needs: Needs::Fresh,
    after: AFTER_SERVER,
    limit: SHORT,
    run: full_line,
};

fn full_line(ctx: &Ctx) -> Verdict {
    let mut server = need!(ctx.server("peer1", 1));
    let (_links, extra) = need!(fill_and_overflow(ctx, &server, 1));
    expect_line(ctx, &mut server, &line::table_full(extra.local))
}

pub const REDIRECT_CLOSED: Rule = Rule {
    id: "5.2-redirect-closed",
    requirement: "After a Redirect the peer closes the connection",
    needs: Needs::Fresh,
    after: AFTER_SERVER,
    limit: SHORT,
    run: redirect_closed,
};

fn redirect_closed(ctx: &Ctx) -> Verdict {
    let server = need!(ctx.server("peer1", 1));
    let (_links, extra) = need!(fill_and_overflow(ctx, &server, 1));
    let trailing = read_trailing(&extra.stream, ctx.time(Duration::from_secs(2)));
    let expected = "the connection closed by the target after the Redirect";
    match trailing.closed_after {
        Some(after) => Verdict::pass(
            expected,
            format!("closed {} ms after the Redirect", after.as_millis()),
        ),
        None => Verdict::fail(
            expected,
            format!(
                "still open {} after the Redirect",
                ctx.scale.secs(Duration::from_secs(2))
            ),
            "the Redirect's connection was never closed",
        ),
    }
}

pub const CONCURRENT_JOINS: Rule = Rule {
    id: "5.3-concurrent-joins",
    requirement: "Many joins at once never overfill the table: exactly SIZE Welcomes, Redirects for the rest",
    needs: Needs::Fresh,
    after: AFTER_SERVER,
    limit: LONG,
    run: concurrent_joins,
};

/// Joins at once in 5.3-concurrent-joins.
const CONCURRENT: usize = 24;

/// 24 joins released together at a table of 3.
fn concurrent_joins(ctx: &Ctx) -> Verdict {
    let server = need!(ctx.server("peer1", 3));
    let start = Arc::new(Barrier::new(CONCURRENT));
    let addr = server.addr;
    let (links, errors) = thread::scope(|scope| {
        let handles: Vec<_> = (0..CONCURRENT)
            .map(|_| {
                let start = Arc::clone(&start);
                scope.spawn(move || {
                    start.wait();
                    ctx.try_join(addr)
                })
            })
            .collect();
        let mut links = Vec::new();
        let mut errors = Vec::new();
        for handle in handles {
            match handle.join() {
                Ok(Ok(joined)) => links.push(joined),
                Ok(Err(e)) => errors.push(e.to_string()),
                Err(_) => errors.push("a joining thread panicked".into()),
            }
        }
        (links, errors)
    });
    let welcomed: Vec<SocketAddrV4> = links
        .iter()
        .filter(|j| j.message.kind == Kind::Welcome)
        .map(|j| j.local)
        .collect();
    let redirected = links.len() - welcomed.len();
    let expected = format!(
        "3 Welcomes and {} Redirects; then a Redirect listing exactly the 3 welcomed",
        CONCURRENT - 3
    );
    let mut actual = format!(
        "{} Welcomes, {redirected} Redirects, {} failed joins",
        welcomed.len(),
        errors.len()
    );
    if let Some(first) = errors.first() {
        actual.push_str(&format!(" ({first})"));
    }
    if welcomed.len() > 3 {
        return Verdict::fail(
            expected,
            actual,
            format!("the table of 3 took {} peers", welcomed.len()),
        );
    }
    // Reading the table back shows an overfill that the replies hid.
    let probe = need!(ctx.join(server.addr, "a Redirect"));
    actual.push_str(&format!("; then {}", probe.describe()));
    let listed = &probe.message.peers;
    if probe.message.kind != Kind::Redirect
        || listed.len() != 3
        || !listed.iter().all(|p| welcomed.contains(p))
    {
        return Verdict::fail(
            expected,
            actual,
            "after the burst the table is not exactly the 3 welcomed peers",
        );
    }
    if welcomed.len() < 3 || !errors.is_empty() {
        return Verdict::fail(expected, actual, "some joins of the burst were lost");
    }
    Verdict::pass(expected, actual)
}

/// What polling a target with joins ended with, when no reply was the one awaited.
enum Polled {
    /// The last join got this reply.
    Reply(String),
    /// The last join failed: this is why.
    Failed(String),
}

impl Polled {
    /// The reason of the FAIL: `still` when replies kept coming, or what the last join met.
    fn reason(&self, still: &str) -> String {
        match self {
            Polled::Reply(_) => still.to_string(),
            Polled::Failed(e) => {
                format!("the last join after the departure failed ({e}), so it could not be seen")
            }
        }
    }

    fn text(&self) -> &str {
        match self {
            Polled::Reply(text) | Polled::Failed(text) => text,
        }
    }
}

/// Joins until `accept` likes the reply or `within` passes; replies it does not like are
/// closed. Returns the accepted join and how long it took, or the last thing seen.
fn poll_join(
    ctx: &Ctx,
    addr: SocketAddrV4,
    within: Duration,
    accept: impl Fn(&Joined) -> bool,
) -> Result<(Joined, Duration), Polled> {
    let started = Instant::now();
    let mut last = Polled::Failed("no join was tried".into());
    for _ in 0..200 {
        match ctx.try_join(addr) {
            Ok(joined) if accept(&joined) => return Ok((joined, started.elapsed())),
            Ok(joined) => last = Polled::Reply(joined.describe()),
            Err(e) => last = Polled::Failed(e.to_string()),
        }
        if started.elapsed() >= within {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    ctx.note(format!("last while polling: {}", last.text()));
    Err(last)
}

pub const SLOT_FREED: Rule = Rule {
    id: "5.4-slot-freed",
    requirement: "When a linked peer closes, its slot is free again within 1 s",
    needs: Needs::Fresh,
    after: AFTER_SERVER,
    limit: SHORT,
    run: slot_freed,
};

/// A table of 1; its peer leaves; the next join is welcomed within 1 s.
fn slot_freed(ctx: &Ctx) -> Verdict {
    let server = need!(ctx.server("peer1", 1));
    let first = need!(ctx.join(server.addr, "a Welcome"));
    need!(must_welcome(&first, "the first join"));
    drop(first);
    let expected = format!(
        "a Welcome within {} of the only linked peer closing",
        ctx.scale.secs(DEPARTURE_WITHIN)
    );
    let welcome = |j: &Joined| j.message.kind == Kind::Welcome;
    match poll_join(ctx, server.addr, ctx.time(DEPARTURE_WITHIN), welcome) {
        Ok((joined, took)) => Verdict::pass(
            expected,
            format!("{} after {} ms", joined.describe(), took.as_millis()),
        ),
        Err(last) => Verdict::fail(
            expected,
            format!(
                "after {}: {}",
                ctx.scale.secs(DEPARTURE_WITHIN),
                last.text()
            ),
            last.reason("the slot was not freed"),
        ),
    }
}

pub const DEPARTED_NOT_LISTED: Rule = Rule {
    id: "5.4-departed-not-listed",
    requirement: "A peer that left is no longer listed in replies, Welcomes and Redirects (within 1 s)",
    needs: Needs::Fresh,
    after: AFTER_SERVER,
    limit: SHORT,
    run: departed_not_listed,
};

/// A table of 2: A and B join, A leaves; the next join (C) must be welcomed listing B and
/// not A, and once the table is full again, the Redirect must not list A either.
fn departed_not_listed(ctx: &Ctx) -> Verdict {
    let server = need!(ctx.server("peer1", 2));
    let a = need!(ctx.join(server.addr, "a Welcome"));
    let b = need!(ctx.join(server.addr, "a Welcome"));
    need!(must_welcome(&b, "the second join"));
    let (gone, stays) = (a.local, b.local);
    drop(a);
    let expected = format!(
        "within {}, a Welcome listing {stays} and not {gone}; then a Redirect without {gone}",
        ctx.scale.secs(DEPARTURE_WITHIN)
    );
    let fine = |j: &Joined| {
        j.message.kind == Kind::Welcome
            && j.message.peers.contains(&stays)
            && !j.message.peers.contains(&gone)
    };
    let (c, took) = match poll_join(ctx, server.addr, ctx.time(DEPARTURE_WITHIN), fine) {
        Ok(welcomed) => welcomed,
        Err(last) => {
            return Verdict::fail(
                expected,
                format!(
                    "after {}: {}",
                    ctx.scale.secs(DEPARTURE_WITHIN),
                    last.text()
                ),
                last.reason("the departed peer is still listed"),
            );
        }
    };
    let redirect = need!(ctx.join(server.addr, "a Redirect"));
    let actual = format!(
        "{} after {} ms; then {}",
        c.describe(),
        took.as_millis(),
        redirect.describe()
    );
    if redirect.message.kind != Kind::Redirect {
        return Verdict::fail(
            expected,
            actual,
            "the table of 2, full again, did not redirect",
        );
    }
    if redirect.message.peers.contains(&gone) {
        return Verdict::fail(
            expected,
            actual,
            "the departed peer is still listed in the Redirect",
        );
    }
    Verdict::pass(expected, actual)
}

pub const LEFT_LINE: Rule = Rule {
    id: "5.4-left-line",
    requirement: "A departure prints 'Peer IP:PORT left'",
    needs: Needs::Fresh,
    after: AFTER_SERVER,
    limit: SHORT,
    run: left_line,
};

fn left_line(ctx: &Ctx) -> Verdict {
    let mut server = need!(ctx.server("peer1", 2));
    let a = need!(ctx.join(server.addr, "a Welcome"));
    need!(must_welcome(&a, "the first join"));
    let gone = line::left(a.local);
    drop(a);
    expect_line(ctx, &mut server, &gone)
}
