//! PROTOCOL 4, the wire format: replies of exactly the announced length, and a peer that
//! survives what is not a message, on either side of a join.

use super::support::{VISIT_WITHIN, joiner, still_serving};
use crate::check::ctx::{CONNECT_WITHIN, Ctx, Server, first_lines};
use crate::check::hints;
use crate::check::rule::{AFTER_BOTH, AFTER_SERVER, Needs, Rule, SHORT};
use crate::check::verdict::{Verdict, need};
use crate::contract::{Header, Kind, Message, REDIRECT, VERSION, WELCOME};
use crate::harness::client::{join_within, read_trailing};
use crate::harness::fake::Answer;
use crate::harness::sockets::{ipv4, reset};
use crate::text::short_hex;
use std::io::Write;
use std::net::{SocketAddrV4, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// PROTOCOL 6.5: a joiner waits 5 s for a whole reply.
const JOINER_WAITS: Duration = Duration::from_secs(5);

pub static RULES: &[Rule] = &[
    EXACT_LENGTH,
    SURVIVES_RESET,
    SURVIVES_JUNK,
    REPLY_BAD_VERSION,
    REPLY_UNKNOWN_TYPE,
    REPLY_TRUNCATED,
    REPLY_SILENT,
];

pub const EXACT_LENGTH: Rule = Rule {
    id: "4.2-exact-length",
    requirement: "A reply is exactly 4 + L + 6N bytes: no zero padding, no trailing newline, nothing else",
    needs: Needs::Address,
    after: AFTER_SERVER,
    limit: SHORT,
    run: exact_length,
};

/// Nothing after the Welcome, nothing after the Redirect.
fn exact_length(ctx: &Ctx) -> Verdict {
    let server = need!(ctx.server("peer1", 1));
    let first = need!(ctx.join(server.addr, "a reply"));
    let mut checked = vec![(
        first.describe(),
        read_trailing(&first.stream, ctx.time(Duration::from_millis(300))),
    )];
    let _keep = first;
    if server.fresh() {
        let second = need!(ctx.join(server.addr, "a Redirect"));
        checked.push((
            second.describe(),
            read_trailing(&second.stream, ctx.time(Duration::from_secs(1))),
        ));
    }
    let expected = "each reply exactly 4 + L + 6N bytes, then nothing";
    let mut worst = Verdict::pass(expected, "");
    let mut actual = Vec::new();
    for (reply, trailing) in &checked {
        if trailing.bytes.is_empty() {
            actual.push(format!("{reply}, then nothing"));
            continue;
        }
        actual.push(format!(
            "{reply}, then {} more byte(s): {}",
            trailing.bytes.len(),
            short_hex(&trailing.bytes, 64)
        ));
        let verdict = match harmless_padding(&trailing.bytes) {
            Some(what) => Verdict::tolerated(
                ctx.strict,
                expected,
                "",
                format!(
                    "{what} after the message (PROTOCOL 4.4: receivers tolerate it, senders never add it)"
                ),
            ),
            None => Verdict::fail(
                expected,
                "",
                "bytes after the message that are not part of it",
            ),
        };
        worst = worst.worse(verdict);
    }
    worst.actual = actual.join("; ");
    worst
}

/// Names harmless trailing bytes: zero padding or a line ending.
pub fn harmless_padding(bytes: &[u8]) -> Option<&'static str> {
    if bytes.iter().all(|b| *b == 0) {
        Some("zero padding")
    } else if bytes == b"\n" || bytes == b"\r\n" {
        Some("a trailing newline")
    } else {
        None
    }
}

pub const SURVIVES_RESET: Rule = Rule {
    id: "4.5-survives-reset",
    requirement: "A connection that resets at once does not stop the peer: it still answers joins",
    needs: Needs::Address,
    after: AFTER_SERVER,
    limit: SHORT,
    run: survives_reset,
};

/// Five connections, each reset once the target has accepted it, then a join.
fn survives_reset(ctx: &Ctx) -> Verdict {
    let mut server = need!(ctx.server("peer1", 2));
    let opened = connections(ctx, server.addr, &[&[], &[], &[], &[], &[]]);
    let accepted = need!(landed(ctx, &server, &opened, "reset"));
    for stream in opened {
        reset(stream);
    }
    ctx.note(format!(
        "opened 5 connections; the target accepted {accepted}; each was reset (SO_LINGER 0)"
    ));
    thread::sleep(ctx.time(Duration::from_millis(300)));
    still_serving(
        ctx,
        &mut server,
        "5 connections reset after they were accepted",
    )
}

/// Connects once per entry of `sends` and writes it; the connections that opened.
fn connections(ctx: &Ctx, addr: SocketAddrV4, sends: &[&[u8]]) -> Vec<TcpStream> {
    let mut opened = Vec::new();
    for bytes in sends {
        if let Ok(mut stream) =
            TcpStream::connect_timeout(&addr.into(), ctx.time(Duration::from_secs(3)))
        {
            let _ = stream.set_write_timeout(Some(ctx.time(Duration::from_secs(1))));
            let _ = stream.write_all(bytes);
            opened.push(stream);
        }
    }
    opened
}

/// How many of `opened` the target has accepted (its sockets show their other end),
/// waiting up to 1 s for all of them. None at all is the target's FAIL: what the rule
/// would do to them (a reset, junk) could not reach it. A running peer of `--addr` shows
/// no sockets; its connections are given a moment instead.
fn landed(ctx: &Ctx, server: &Server, opened: &[TcpStream], what: &str) -> Result<usize, Verdict> {
    let Some(target) = &server.target else {
        thread::sleep(ctx.time(Duration::from_millis(300)));
        return Ok(opened.len());
    };
    let ours: Vec<SocketAddrV4> = opened
        .iter()
        .filter_map(|s| s.local_addr().ok())
        .filter_map(ipv4)
        .collect();
    let count = || {
        let sockets = target.sockets();
        ours.iter()
            .filter(|o| {
                sockets
                    .iter()
                    .any(|s| s.remote == **o && s.local.port() == server.addr.port())
            })
            .count()
    };
    let deadline = Instant::now() + ctx.time(Duration::from_secs(1));
    let mut accepted = count();
    while accepted < ours.len() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
        accepted = count();
    }
    if accepted == 0 {
        return Err(Verdict::fail(
            format!(
                "the target accepts the {} connections opened, then they are {what}",
                ours.len()
            ),
            format!(
                "none of the {} connections was accepted within {}",
                ours.len(),
                ctx.scale.secs(Duration::from_secs(1))
            ),
            "the target did not accept connections, so the rule could not test it (PROTOCOL 5: a join is answered at once)",
        ));
    }
    Ok(accepted)
}

pub const SURVIVES_JUNK: Rule = Rule {
    id: "4.5-survives-junk",
    requirement: "Junk sent on a connection (a link carries no data) does not stop the peer",
    needs: Needs::Address,
    after: AFTER_SERVER,
    limit: SHORT,
    run: survives_junk,
};

/// Junk on one connection, 49,405 bytes of it on another.
fn survives_junk(ctx: &Ctx) -> Verdict {
    let mut server = need!(ctx.server("peer1", 3));
    let junk: [&[u8]; 2] = [b"GET / HTTP/1.0\r\n\r\n\xff\xff\xff\xff", &[0xA5; 49_405]];
    let held = connections(ctx, server.addr, &junk);
    let accepted = need!(landed(ctx, &server, &held, "sent junk"));
    ctx.note(format!("sent an HTTP request and 49,405 junk bytes on two connections; the target accepted {accepted}"));
    thread::sleep(ctx.time(Duration::from_millis(300)));
    still_serving(ctx, &mut server, "junk on a connection")
}

pub const REPLY_BAD_VERSION: Rule = Rule {
    id: "4.5-reply-bad-version",
    requirement: "A reply with version 6 is an error: the joiner keeps running and accepts joins",
    needs: Needs::Fresh,
    after: AFTER_BOTH,
    limit: SHORT,
    run: reply_bad_version,
};

fn reply_bad_version(ctx: &Ctx) -> Verdict {
    let mut bytes = Message::new(Kind::Welcome, "fakeA", vec![]).encode();
    let header = Header {
        version: 6,
        kind: WELCOME,
        count: 0,
        id_len: 5,
    };
    bytes[..4].copy_from_slice(&header.bytes());
    survives_reply(ctx, Answer::Raw(bytes), "a reply with version 6")
}

pub const REPLY_UNKNOWN_TYPE: Rule = Rule {
    id: "4.5-reply-unknown-type",
    requirement: "A reply of message type 3 is an error: the joiner keeps running and accepts joins",
    needs: Needs::Fresh,
    after: AFTER_BOTH,
    limit: SHORT,
    run: reply_unknown_type,
};

fn reply_unknown_type(ctx: &Ctx) -> Verdict {
    let header = Header {
        version: VERSION,
        kind: REDIRECT + 1,
        count: 0,
        id_len: 5,
    };
    let bytes = [&header.bytes()[..], b"fakeA"].concat();
    survives_reply(ctx, Answer::Raw(bytes), "a reply of type 3")
}

pub const REPLY_TRUNCATED: Rule = Rule {
    id: "4.5-reply-truncated",
    requirement: "A reply cut short by a close is an error: the joiner keeps running and accepts joins",
    needs: Needs::Fresh,
    after: AFTER_BOTH,
    limit: SHORT,
    run: reply_truncated,
};

fn reply_truncated(ctx: &Ctx) -> Verdict {
    // A Welcome that announces a 5-byte ID and 2 peers but stops after 3 bytes of the ID.
    let header = Header {
        version: VERSION,
        kind: WELCOME,
        count: 2,
        id_len: 5,
    };
    let bytes = [&header.bytes()[..], b"fak"].concat();
    survives_reply(ctx, Answer::RawClose(bytes), "a reply cut short")
}

pub const REPLY_SILENT: Rule = Rule {
    id: "4.5-reply-silent",
    requirement: "A peer that never replies does not block the joiner: it keeps accepting joins",
    needs: Needs::Fresh,
    after: AFTER_BOTH,
    limit: SHORT,
    run: reply_silent,
};

fn reply_silent(ctx: &Ctx) -> Verdict {
    survives_reply(ctx, Answer::Silent, "a peer that never replies")
}

/// Points the target at a fake answering `answer`, then checks that it still runs and
/// accepts a join.
fn survives_reply(ctx: &Ctx, answer: Answer, what: &str) -> Verdict {
    let a = need!(ctx.fake("fakeA", answer));
    let mut target = need!(joiner(ctx, &a));
    let expected = format!("after {what}: still running, and a join to it gets a reply");
    if a.wait_visit(ctx.time(VISIT_WITHIN)).is_none() {
        return Verdict::fail(
            expected,
            format!("stdout {}", target.shown()),
            "the target never joined the fake peer",
        );
    }
    let Some(visit) = a.visits().first().copied() else {
        return Verdict::skip("the fake peer lost its visit");
    };
    thread::sleep(ctx.time(Duration::from_millis(500)));
    ctx.note_fakes(&[&a]);
    if let Some(status) = target.exit_status() {
        let stderr = target.stderr();
        return Verdict::fail(
            expected,
            format!("exited ({status}); stderr: {}", first_lines(&stderr, 6)),
            format!("{what} stopped the target"),
        )
        .hints(hints::stderr(&stderr));
    }
    let listening = need!(ctx.address(&mut target));
    // The joiner gives a reply 5 s (PROTOCOL 6.5): a server that waits out its joiner's
    // wait would answer only after it, so this join must be answered before.
    let reply_by = visit.at + JOINER_WAITS - Duration::from_millis(500);
    let reply = reply_by
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(500));
    match join_within(listening, ctx.time(CONNECT_WITHIN), reply) {
        Ok(joined) => Verdict::pass(expected, joined.describe()),
        Err(e) => Verdict::fail(
            expected,
            e.to_string(),
            format!("after {what} the target no longer accepts joins"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_named_and_junk_is_not() {
        assert_eq!(harmless_padding(&[0, 0, 0]), Some("zero padding"));
        assert_eq!(harmless_padding(b"\n"), Some("a trailing newline"));
        assert_eq!(harmless_padding(b"\r\n"), Some("a trailing newline"));
        assert_eq!(harmless_padding(b"xyz"), None);
        assert_eq!(harmless_padding(b"\n\n"), None);
    }
}
