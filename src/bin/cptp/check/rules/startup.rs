//! PROTOCOL 2.2 and 7.1: what a peer says when it starts.

use super::{Ctx, Verdict};
use crate::check::lines::{Match, compare};
use crate::check::outcome::Outcome;
use crate::check::target::{ADDRESS_WITHIN, Next, Spec, loose_address};
use crate::check::timing::{scaled, secs};
use peer::output::parse_address_line;
use peer::wire::Kind;

/// 7.1-address-line: the very first line, within 3 s, in the contract's words.
pub fn address_line(ctx: &Ctx) -> Verdict {
    let mut target = ctx.start(Spec::new("peer1", 2))?;
    let expected = "This peer address is 127.0.0.1:PORT located at peer1";
    let first = match target.next_line(scaled(ADDRESS_WITHIN)) {
        Next::Line(line) => line,
        Next::Quiet => {
            return Err(Outcome::fail(
                expected,
                "nothing on stdout",
                format!("no line within {}", secs(ADDRESS_WITHIN)),
            ));
        }
        Next::Closed => {
            let status = target
                .exit_status()
                .unwrap_or_else(|| "still running".into());
            return Err(Outcome::fail(
                expected,
                format!("stdout closed ({status})"),
                "the target printed nothing and closed stdout",
            ));
        }
    };
    if let Some((addr, id)) = parse_address_line(&first) {
        let exact = peer::output::address_line(addr, "peer1")
            .trim_end()
            .to_string();
        return Ok(match id {
            "peer1" => Outcome::pass(exact, first),
            "peer1-2" => Outcome::tolerated(
                ctx.strict,
                exact,
                first,
                "prints the folder name 'peer1-2' where the contract has the ID 'peer1'",
            ),
            _ => Outcome::fail(exact, first, "the ID is not the one in the folder name"),
        });
    }
    let Some(addr) = loose_address(&first) else {
        let later = target.address().ok();
        return Err(Outcome::fail(
            expected,
            first,
            match later {
                Some(addr) => format!("the first line is not the address line ({addr} came later)"),
                None => "the first line is not the address line".to_string(),
            },
        ));
    };
    let exact = peer::output::address_line(addr, "peer1")
        .trim_end()
        .to_string();
    Ok(match compare(&exact, &first, "peer1", "peer1-2") {
        Match::Exact => Outcome::pass(exact, first),
        Match::Cosmetic(why) => Outcome::tolerated(ctx.strict, exact, first, why),
        Match::No => Outcome::fail(
            exact,
            first,
            "the address line is not worded as the contract says",
        ),
    })
}

/// 7.1-address-joinable: a join to the printed address gets a reply.
pub fn address_joinable(ctx: &Ctx) -> Verdict {
    let server = ctx.server("peer1", 2)?;
    let joined = ctx.join(server.addr, "a Welcome or a Redirect")?;
    Ok(Outcome::pass("a Welcome or a Redirect", joined.describe()))
}

/// 2.2-id-from-folder: the ID in the address line and in the Welcome is the folder's.
pub fn id_from_folder(ctx: &Ctx) -> Verdict {
    let (target, addr) = ctx.listening(Spec::new("peer7", 3))?;
    let line = target.address_line().unwrap_or_default().to_string();
    let printed = match parse_address_line(&line) {
        Some((_, id)) => id.to_string(),
        None => line.rsplit(' ').next().unwrap_or_default().to_string(),
    };
    let joined = ctx.join(addr, "a Welcome from 'peer7'")?;
    let sent = joined.message.sender_id();
    let expected = "'peer7' in the address line and as the Welcome's sender ID (folder peer7-3)";
    let actual = format!("address line {line:?}; {}", joined.describe());
    if joined.message.kind() != Kind::Welcome || sent != "peer7" {
        return Err(Outcome::fail(
            expected,
            actual,
            format!("the Welcome's sender ID is '{sent}'"),
        ));
    }
    match printed.as_str() {
        "peer7" => Ok(Outcome::pass(expected, actual)),
        "peer7-3" => Ok(Outcome::tolerated(
            ctx.strict,
            expected,
            actual,
            "the address line shows the folder name 'peer7-3' where the contract has the ID",
        )),
        other => Err(Outcome::fail(
            expected,
            actual,
            format!("the address line shows the ID '{other}'"),
        )),
    }
}
