//! PROTOCOL 7, output: the address line, first and worded as the contract says, and an
//! address that accepts joins.

use crate::check::ctx::Ctx;
use crate::check::lines::{Match, compare};
use crate::check::rule::{Needs, Rule, SHORT};
use crate::check::target::{Spec, loose_address};
use crate::check::verdict::{Verdict, need};
use crate::contract::line;
use crate::harness::process::Next;
use std::time::Duration;

pub static RULES: &[Rule] = &[ADDRESS_LINE, ADDRESS_JOINABLE];

/// PROTOCOL 7.1: the address line comes as soon as the listener is bound; the rule allows
/// 3 s.
const ADDRESS_WITHIN: Duration = Duration::from_secs(3);

pub const ADDRESS_LINE: Rule = Rule {
    id: "7.1-address-line",
    requirement: "The first stdout line, within 3 s, is 'This peer address is IP:PORT located at ID'",
    needs: Needs::Fresh,
    after: &[],
    limit: SHORT,
    run: address_line,
};

/// The very first line, within 3 s, in the contract's words.
fn address_line(ctx: &Ctx) -> Verdict {
    let mut target = need!(ctx.start(Spec::new("peer1", 2)));
    let expected = "This peer address is 127.0.0.1:PORT located at peer1";
    let within = ctx.time(ADDRESS_WITHIN);
    let first = match target.next_line(within) {
        Next::Line(line) => line,
        Next::Quiet => {
            return Verdict::fail(
                expected,
                "nothing on stdout",
                format!("no line within {}", ctx.scale.secs(ADDRESS_WITHIN)),
            );
        }
        Next::Closed => {
            let status = target
                .exit_status()
                .unwrap_or_else(|| "still running".into());
            return Verdict::fail(
                expected,
                format!("stdout closed ({status})"),
                "the target printed nothing and closed stdout",
            );
        }
    };
    if let Some((addr, id)) = line::parse_address(&first) {
        let exact = line::address(addr, "peer1");
        return match id {
            "peer1" => Verdict::pass(exact, first),
            "peer1-2" => Verdict::tolerated(
                ctx.strict,
                exact,
                first,
                "prints the folder name 'peer1-2' where the contract has the ID 'peer1'",
            ),
            _ => Verdict::fail(exact, first, "the ID is not the one in the folder name"),
        };
    }
    let Some(addr) = loose_address(&first) else {
        return Verdict::fail(expected, first, "the first line is not the address line");
    };
    let exact = line::address(addr, "peer1");
    match compare(&exact, &first, "peer1", "peer1-2") {
        Match::Exact => Verdict::pass(exact, first),
        Match::Cosmetic(why) => Verdict::tolerated(ctx.strict, exact, first, why),
        Match::No => Verdict::fail(
            exact,
            first,
            "the address line is not worded as the contract says",
        ),
    }
}

pub const ADDRESS_JOINABLE: Rule = Rule {
    id: "7.1-address-joinable",
    requirement: "The address printed accepts joins",
    needs: Needs::Address,
    after: &[],
    limit: SHORT,
    run: address_joinable,
};

/// A join to the address the address line names gets a reply: where the peer says it
/// listens, it does.
fn address_joinable(ctx: &Ctx) -> Verdict {
    let mut server = need!(ctx.server("peer1", 2));
    let expected = "a Welcome or a Redirect at the address the address line names";
    let printed = match server.target.as_mut() {
        Some(target) => target.wait_claim(ctx.time(ADDRESS_WITHIN)),
        None => Some(server.addr),
    };
    let Some(printed) = printed else {
        let line = server
            .target
            .as_ref()
            .and_then(|t| t.address_line().map(str::to_string));
        return Verdict::fail(
            expected,
            match line {
                Some(line) => format!("{line:?}, which names no IP:PORT"),
                None => "no line that begins 'This peer address is'".to_string(),
            },
            "no address line names an address to join",
        );
    };
    match ctx.try_join(printed) {
        Ok(joined) => Verdict::pass(expected, format!("{printed}: {}", joined.describe())),
        Err(e) => {
            let listening = server.addr;
            let reason = match printed.port() == listening.port() {
                true => "the printed address does not answer a join".to_string(),
                false => {
                    format!("the printed address is not where the target listens ({listening})")
                }
            };
            Verdict::fail(expected, e.to_string(), reason)
        }
    }
}
