//! PROTOCOL 4.2, 4.5 and 5: the target being joined. The rules join it with plain TCP
//! connections from `cptp`, each seen by the target as a peer at 127.0.0.1:PORT.

use super::{Ctx, Verdict};
use crate::check::lines::{Expected, judge, wait_for};
use crate::check::net::{self, Joined, harmless_padding, read_trailing, short_hex};
use crate::check::outcome::Outcome;
use crate::check::timing::{scaled, secs};
use peer::wire::{Kind, Message, hex};
use std::io::Write;
use std::net::{SocketAddrV4, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// How long the lines of PROTOCOL 5 may take to appear.
const LINE_WITHIN: Duration = Duration::from_secs(2);
/// PROTOCOL 5.4 as the issue bounds it: a departure is handled within 1 s.
const DEPARTURE_WITHIN: Duration = Duration::from_secs(1);

/// Lists addresses the way the report shows them.
fn list(peers: &[SocketAddrV4]) -> String {
    let items: Vec<String> = peers.iter().take(16).map(ToString::to_string).collect();
    let more = peers.len().saturating_sub(16);
    let tail = if more > 0 {
        format!(", ... and {more} more")
    } else {
        String::new()
    };
    format!("[{}{tail}]", items.join(", "))
}

/// The reply must be a Welcome.
fn must_welcome(joined: &Joined, what: &str) -> Result<(), Outcome> {
    if joined.message.kind() == Kind::Welcome {
        return Ok(());
    }
    Err(Outcome::fail(
        format!("a Welcome for {what}"),
        joined.describe(),
        format!("{what} was not welcomed"),
    ))
}

/// 5.1-welcome-bytes.
pub fn welcome_bytes(ctx: &Ctx) -> Verdict {
    let (_target, addr) = ctx.listening(crate::check::target::Spec::new("peer1", 2))?;
    let expected = Message::new(Kind::Welcome, "peer1", vec![])
        .map(|m| m.to_bytes())
        .unwrap_or_default();
    let want = format!(
        "Welcome from 'peer1' listing [] ({} bytes: {})",
        expected.len(),
        hex(&expected)
    );
    let joined = ctx.join(addr, &want)?;
    if joined.raw == expected {
        Ok(Outcome::pass(want, joined.describe()))
    } else {
        Err(Outcome::fail(want, joined.describe(), "the bytes differ"))
    }
}

/// 4.2-exact-length: nothing after the Welcome, nothing after the Redirect.
pub fn exact_length(ctx: &Ctx) -> Verdict {
    let server = ctx.server("peer1", 1)?;
    let first = ctx.join(server.addr, "a reply")?;
    let mut checked = vec![(
        first.describe(),
        read_trailing(&first.stream, scaled(Duration::from_millis(300))),
    )];
    let _keep = first;
    if server.fresh() {
        let second = ctx.join(server.addr, "a Redirect")?;
        checked.push((
            second.describe(),
            read_trailing(&second.stream, scaled(Duration::from_secs(1))),
        ));
    }
    let expected = "each reply exactly 4 + L + 6N bytes, then nothing";
    let mut worst = Outcome::pass(expected, "");
    let mut actual = Vec::new();
    for (reply, trailing) in &checked {
        if trailing.bytes.is_empty() {
            actual.push(format!("{reply}, then nothing"));
            continue;
        }
        let after = format!(
            "{reply}, then {} more byte(s): {}",
            trailing.bytes.len(),
            short_hex(&trailing.bytes)
        );
        actual.push(after.clone());
        let verdict = match harmless_padding(&trailing.bytes) {
            Some(what) => Outcome::tolerated(
                ctx.strict,
                expected,
                "",
                format!(
                    "{what} after the message (PROTOCOL 4.4: receivers tolerate it, senders never add it)"
                ),
            ),
            None => Outcome::fail(
                expected,
                "",
                "bytes after the message that are not part of it",
            ),
        };
        if verdict.status > worst.status {
            worst = verdict;
        }
    }
    worst.actual = actual.join("; ");
    Ok(worst)
}

/// 5.1-welcome-lists-table: three joins, three growing lists.
pub fn welcome_lists_table(ctx: &Ctx) -> Verdict {
    let server = ctx.server("peer1", 3)?;
    let mut joined: Vec<Joined> = Vec::new();
    for _ in 0..3 {
        let before: Vec<SocketAddrV4> = joined.iter().map(|j| j.local).collect();
        let want = format!("a Welcome listing {}", list(&before));
        let next = ctx.join(server.addr, &want)?;
        must_welcome(&next, "a join to a table with room")?;
        if next.message.peers() != before.as_slice() {
            return Err(Outcome::fail(
                want,
                next.describe(),
                "the list is not the table before this join, in join order",
            ));
        }
        joined.push(next);
    }
    let lists: Vec<String> = joined.iter().map(|j| list(j.message.peers())).collect();
    Ok(Outcome::pass(
        "Welcomes listing [], [A], [A, B]",
        lists.join(", "),
    ))
}

/// 5.1-link-stays-open: the Welcome's connection is not closed, and its joiner is listed.
pub fn link_stays_open(ctx: &Ctx) -> Verdict {
    let server = ctx.server("peer1", 2)?;
    let joined = ctx.join(server.addr, "a Welcome")?;
    if joined.message.kind() != Kind::Welcome {
        if !server.fresh() {
            return Err(Outcome::skip(
                "the running peer's table is full: it redirected",
            ));
        }
        must_welcome(&joined, "the first join")?;
    }
    let trailing = read_trailing(&joined.stream, scaled(Duration::from_secs(1)));
    let expected = format!(
        "the connection still open {} after the Welcome",
        secs(Duration::from_secs(1))
    );
    if let Some(after) = trailing.closed_after {
        return Err(Outcome::fail(
            expected,
            format!("closed {} ms after the Welcome", after.as_millis()),
            "the link was closed",
        ));
    }
    if server.fresh() {
        let second = ctx.join(server.addr, "a Welcome listing the first joiner")?;
        if !second.message.peers().contains(&joined.local) {
            return Err(Outcome::fail(
                format!("the next Welcome lists {}", joined.local),
                second.describe(),
                "the open link's peer is not listed",
            ));
        }
    }
    Ok(Outcome::pass(expected, "still open"))
}

/// 5.1-connected-line.
pub fn connected_line(ctx: &Ctx) -> Verdict {
    let mut server = ctx.server("peer1", 2)?;
    let joined = ctx.join(server.addr, "a Welcome")?;
    must_welcome(&joined, "the first join")?;
    let line = format!("Connected from peer {}", joined.local);
    expect_line(ctx, &mut server, &line)
}

/// 5.2-table-size: a table of 3 takes 3 joins and redirects the 4th.
pub fn table_size(ctx: &Ctx) -> Verdict {
    let server = ctx.server("peer1", 3)?;
    let mut kinds = Vec::new();
    let mut links = Vec::new();
    for _ in 0..4 {
        let joined = ctx.join(server.addr, "a reply")?;
        kinds.push(joined.message.kind().to_string());
        links.push(joined);
    }
    let expected = "Welcome, Welcome, Welcome, Redirect (folder peer1-3)";
    let actual = kinds.join(", ");
    if actual == "Welcome, Welcome, Welcome, Redirect" {
        Ok(Outcome::pass(expected, actual))
    } else {
        Err(Outcome::fail(
            expected,
            actual,
            "the table size from the folder name is not respected",
        ))
    }
}

/// Fills a table of `size` and joins once more: the links and the extra join.
fn fill_and_overflow(
    ctx: &Ctx,
    server: &super::Server,
    size: usize,
) -> Result<(Vec<Joined>, Joined), Outcome> {
    let mut links = Vec::new();
    for _ in 0..size {
        let joined = ctx.join(server.addr, "a Welcome")?;
        must_welcome(&joined, "a join to a table with room")?;
        links.push(joined);
    }
    let extra = ctx.join(server.addr, "a Redirect")?;
    if extra.message.kind() != Kind::Redirect {
        return Err(Outcome::fail(
            "a Redirect for a join to a full table",
            extra.describe(),
            "a full table did not redirect",
        ));
    }
    Ok((links, extra))
}

/// 5.2-redirect-lists-table.
pub fn redirect_lists_table(ctx: &Ctx) -> Verdict {
    let server = ctx.server("peer1", 2)?;
    let (links, extra) = fill_and_overflow(ctx, &server, 2)?;
    let table: Vec<SocketAddrV4> = links.iter().map(|j| j.local).collect();
    let want = format!("a Redirect listing {}", list(&table));
    let listed = extra.message.peers();
    let same = listed.len() == table.len() && table.iter().all(|p| listed.contains(p));
    if same {
        Ok(Outcome::pass(want, extra.describe()))
    } else {
        Err(Outcome::fail(
            want,
            extra.describe(),
            "the Redirect does not list the whole table",
        ))
    }
}

/// 5.2-full-line.
pub fn full_line(ctx: &Ctx) -> Verdict {
    let mut server = ctx.server("peer1", 1)?;
    let (_links, extra) = fill_and_overflow(ctx, &server, 1)?;
    let line = format!("Peer table full: {} redirected", extra.local);
    expect_line(ctx, &mut server, &line)
}

/// 5.2-redirect-closed.
pub fn redirect_closed(ctx: &Ctx) -> Verdict {
    let server = ctx.server("peer1", 1)?;
    let (_links, extra) = fill_and_overflow(ctx, &server, 1)?;
    let trailing = read_trailing(&extra.stream, scaled(Duration::from_secs(2)));
    let expected = "the connection closed by the target after the Redirect";
    match trailing.closed_after {
        Some(after) => Ok(Outcome::pass(
            expected,
            format!("closed {} ms after the Redirect", after.as_millis()),
        )),
        None => Err(Outcome::fail(
            expected,
            format!(
                "still open {} after the Redirect",
                secs(Duration::from_secs(2))
            ),
            "the Redirect's connection was never closed",
        )),
    }
}

/// Joins at once from this many connections in 5.3-concurrent-joins.
const CONCURRENT: usize = 24;

/// 5.3-concurrent-joins: 24 joins released together at a table of 3.
pub fn concurrent_joins(ctx: &Ctx) -> Verdict {
    let server = ctx.server("peer1", 3)?;
    let start = Arc::new(Barrier::new(CONCURRENT));
    let addr = server.addr;
    let handles: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                net::join(addr)
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
    let welcomed: Vec<SocketAddrV4> = links
        .iter()
        .filter(|j| j.message.kind() == Kind::Welcome)
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
        return Err(Outcome::fail(
            expected,
            actual,
            format!("the table of 3 took {} peers", welcomed.len()),
        ));
    }
    // Reading the table back shows an overfill that the replies hid.
    let probe = ctx.join(server.addr, "a Redirect")?;
    actual.push_str(&format!("; then {}", probe.describe()));
    let listed = probe.message.peers();
    if probe.message.kind() != Kind::Redirect
        || listed.len() != 3
        || !listed.iter().all(|p| welcomed.contains(p))
    {
        return Err(Outcome::fail(
            expected,
            actual,
            "after the burst the table is not exactly the 3 welcomed peers",
        ));
    }
    if welcomed.len() < 3 || !errors.is_empty() {
        return Err(Outcome::fail(
            expected,
            actual,
            "some joins of the burst were lost",
        ));
    }
    Ok(Outcome::pass(expected, actual))
}

/// Joins until `accept` likes the reply or `within` passes; replies it does not like are
/// closed. Returns the accepted join and how long it took, or the last reply seen.
fn poll_join(
    ctx: &Ctx,
    addr: SocketAddrV4,
    within: Duration,
    accept: impl Fn(&Joined) -> bool,
) -> Result<(Joined, Duration), String> {
    let started = Instant::now();
    let mut last = String::from("no reply");
    for _ in 0..200 {
        match net::join(addr) {
            Ok(joined) if accept(&joined) => return Ok((joined, started.elapsed())),
            Ok(joined) => last = joined.describe(),
            Err(e) => last = e.to_string(),
        }
        if started.elapsed() >= within {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    ctx.note(format!("last reply while polling: {last}"));
    Err(last)
}

/// 5.4-slot-freed: a table of 1; its peer leaves; the next join is welcomed within 1 s.
pub fn slot_freed(ctx: &Ctx) -> Verdict {
    let server = ctx.server("peer1", 1)?;
    let first = ctx.join(server.addr, "a Welcome")?;
    must_welcome(&first, "the first join")?;
    drop(first);
    let expected = format!(
        "a Welcome within {} of the only linked peer closing",
        secs(DEPARTURE_WITHIN)
    );
    match poll_join(ctx, server.addr, scaled(DEPARTURE_WITHIN), |j| {
        j.message.kind() == Kind::Welcome
    }) {
        Ok((joined, took)) => Ok(Outcome::pass(
            expected,
            format!("{} after {} ms", joined.describe(), took.as_millis()),
        )),
        Err(last) => Err(Outcome::fail(
            expected,
            format!("still, after {}: {last}", secs(DEPARTURE_WITHIN)),
            "the slot was not freed",
        )),
    }
}

/// 5.4-departed-not-listed: A and B join, A leaves, a new join must list B and not A.
pub fn departed_not_listed(ctx: &Ctx) -> Verdict {
    let server = ctx.server("peer1", 3)?;
    let a = ctx.join(server.addr, "a Welcome")?;
    let b = ctx.join(server.addr, "a Welcome")?;
    must_welcome(&b, "the second join")?;
    let (gone, stays) = (a.local, b.local);
    drop(a);
    let expected = format!(
        "within {}, a Welcome listing {stays} and not {gone}",
        secs(DEPARTURE_WITHIN)
    );
    match poll_join(ctx, server.addr, scaled(DEPARTURE_WITHIN), |j| {
        j.message.kind() == Kind::Welcome
            && j.message.peers().contains(&stays)
            && !j.message.peers().contains(&gone)
    }) {
        Ok((joined, took)) => Ok(Outcome::pass(
            expected,
            format!("{} after {} ms", joined.describe(), took.as_millis()),
        )),
        Err(last) => Err(Outcome::fail(
            expected,
            format!("after {}: {last}", secs(DEPARTURE_WITHIN)),
            "the departed peer is still listed",
        )),
    }
}

/// 5.4-left-line.
pub fn left_line(ctx: &Ctx) -> Verdict {
    let mut server = ctx.server("peer1", 2)?;
    let a = ctx.join(server.addr, "a Welcome")?;
    must_welcome(&a, "the first join")?;
    let line = format!("Peer {} left", a.local);
    drop(a);
    expect_line(ctx, &mut server, &line)
}

/// Judges the target's stdout by whether `line` comes within the line deadline.
fn expect_line(ctx: &Ctx, server: &mut super::Server, line: &str) -> Verdict {
    let Some(target) = server.target.as_mut() else {
        return Err(Outcome::skip("needs the target's stdout"));
    };
    let found = wait_for(target, Expected::Line(line), scaled(LINE_WITHIN));
    Ok(judge(
        &found,
        Expected::Line(line),
        ctx.strict,
        scaled(LINE_WITHIN),
    ))
}

/// Checks that the target (if we started it) runs and that a join still gets a reply.
fn still_serving(ctx: &Ctx, server: &mut super::Server, after: &str) -> Verdict {
    let expected = format!("after {after}: still running, and a join gets a reply");
    if let Some(target) = server.target.as_mut()
        && let Some(status) = target.exit_status()
    {
        return Err(Outcome::fail(
            expected,
            format!("the target exited ({status})"),
            format!("{after} stopped the target"),
        ));
    }
    match net::join(server.addr) {
        Ok(joined) => {
            ctx.note(format!("join after {after}: {}", joined.describe()));
            Ok(Outcome::pass(expected, joined.describe()))
        }
        Err(e) => Err(Outcome::fail(
            expected,
            e.to_string(),
            format!("the target stopped answering after {after}"),
        )),
    }
}

/// 4.5-survives-reset: five connections reset at once, then a join.
pub fn survives_reset(ctx: &Ctx) -> Verdict {
    let mut server = ctx.server("peer1", 2)?;
    for _ in 0..5 {
        if let Ok(stream) = TcpStream::connect_timeout(&server.addr.into(), net::CONNECT_WITHIN) {
            // SO_LINGER 0: closing sends a RST instead of a FIN.
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        }
    }
    ctx.note("opened 5 connections and reset each at once (SO_LINGER 0)");
    thread::sleep(scaled(Duration::from_millis(300)));
    still_serving(ctx, &mut server, "5 connections reset at once")
}

/// 4.5-survives-junk: junk on one connection, 49,405 bytes of it on another.
pub fn survives_junk(ctx: &Ctx) -> Verdict {
    let mut server = ctx.server("peer1", 3)?;
    let mut held = Vec::new();
    let junk: [&[u8]; 2] = [b"GET / HTTP/1.0\r\n\r\n\xff\xff\xff\xff", &[0xA5; 49_405]];
    for bytes in junk {
        if let Ok(mut stream) = TcpStream::connect_timeout(&server.addr.into(), net::CONNECT_WITHIN)
        {
            let _ = stream.set_write_timeout(Some(scaled(Duration::from_secs(1))));
            let _ = stream.write_all(bytes);
            held.push(stream);
        }
    }
    ctx.note("sent an HTTP request and 49,405 junk bytes on two connections");
    thread::sleep(scaled(Duration::from_millis(300)));
    still_serving(ctx, &mut server, "junk on a connection")
}
