//! PROTOCOL 1, what a peer is: a join is a connection on which the joiner sends nothing,
//! and the answer is one message. This is the gate of every rule that joins the target.

use crate::check::ctx::{Ctx, REPLY_WITHIN, join_hints};
use crate::check::hints;
use crate::check::rule::{Needs, Rule, SERVER_GATE, SHORT};
use crate::check::verdict::{Verdict, need};
use crate::harness::client::{JoinError, ReadError, read_message};
use std::io::Write;
use std::net::{SocketAddrV4, TcpStream};
use std::time::Duration;

pub static RULES: &[Rule] = &[SILENT_JOIN_ANSWERED];

pub const SILENT_JOIN_ANSWERED: Rule = Rule {
    id: SERVER_GATE,
    requirement: "A join, a connection on which the joiner sends nothing, is answered with one cPTP message (a Welcome or a Redirect)",
    needs: Needs::Address,
    after: &[],
    limit: SHORT,
    run: silent_join_answered,
};

fn silent_join_answered(ctx: &Ctx) -> Verdict {
    let mut server = need!(ctx.server("peer1", 2));
    let expected = "a Welcome or a Redirect, unasked, on a new connection";
    let e = match ctx.try_join(server.addr) {
        Ok(joined) => return Verdict::pass(expected, joined.describe()),
        Err(e) => e,
    };
    ctx.note(format!("join to {} failed: {e}", server.addr));
    let mut verdict = Verdict::fail(expected, e.to_string(), "a silent join got no cPTP reply")
        .hints(join_hints(&e));
    if let JoinError::Reply(_, ReadError::TimedOut { bytes, .. }) = &e
        && bytes.is_empty()
        && let Some(reply) = answers_when_spoken_to(ctx, server.addr)
    {
        verdict = verdict.hint(format!(
            "it answers only once the joiner sends something (it replied to a connection that sent a line: {reply}): PROTOCOL 1.3, the connection itself is the join, and the joiner sends nothing"
        ));
    }
    if let Some(target) = server.target.as_mut()
        && let Some(status) = target.exit_status()
    {
        let stderr = target.stderr();
        verdict.actual = format!("{}; then the target exited ({status})", verdict.actual);
        verdict = verdict.hints(hints::stderr(&stderr));
    }
    verdict
}

/// Whether the peer replies to a connection that sends a line first; the reply if so.
fn answers_when_spoken_to(ctx: &Ctx, addr: SocketAddrV4) -> Option<String> {
    let mut stream =
        TcpStream::connect_timeout(&addr.into(), ctx.time(Duration::from_secs(3))).ok()?;
    stream.write_all(b"join\n").ok()?;
    match read_message(&stream, ctx.time(REPLY_WITHIN)) {
        Ok((message, _)) => Some(format!("{} from '{}'", message.kind, message.sender_id())),
        Err(ReadError::Malformed { bytes, .. }) => {
            Some(format!("{} bytes that are no cPTP message", bytes.len()))
        }
        Err(_) => None,
    }
}
