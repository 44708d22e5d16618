//! PROTOCOL 7, output: the address line, first and worded as the contract says, and an
//! address that accepts joins.

use crate::check::ctx::{Ctx, first_lines};
use crate::check::hints;
use crate::check::lines::{Match, compare, is_contract_line};
use crate::check::rule::{AFTER_CLIENT, AFTER_SERVER, Needs, Rule, SHORT};
use crate::check::target::{Spec, Target, begins_like_address_line, loose_address};
use crate::check::verdict::{Verdict, need};
use crate::contract::line;
use crate::harness::sockets::dead_address;
use std::time::Duration;

pub static RULES: &[Rule] = &[ADDRESS_LINE, ADDRESS_LINE_JOINING, ADDRESS_JOINABLE];

/// PROTOCOL 7.1: the address line comes as soon as the listener is bound; the rules allow
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

fn address_line(ctx: &Ctx) -> Verdict {
    let mut target = need!(ctx.start(Spec::new("peer1", 2)));
    first_line_is_the_address(ctx, &mut target, "peer1", "peer1-2", Judge::Wording)
}

pub const ADDRESS_LINE_JOINING: Rule = Rule {
    id: "7.1-address-line-joining",
    requirement: "Started with -p, the peer prints its address line first too, with its ID, before any line of its join (here one that is refused); the wording is 7.1-address-line's to judge",
    needs: Needs::Fresh,
    after: AFTER_CLIENT,
    limit: SHORT,
    run: address_line_joining,
};

fn address_line_joining(ctx: &Ctx) -> Verdict {
    let mut target = need!(ctx.start(Spec::joining("peer2", 2, dead_address())));
    first_line_is_the_address(ctx, &mut target, "peer2", "peer2-2", Judge::PlaceAndId)
}

/// What of the address line a rule judges.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Judge {
    /// Its place, its ID and its wording (7.1-address-line: the only rule that judges the
    /// wording).
    Wording,
    /// Its place and its ID.
    PlaceAndId,
}

/// The address line, first and within 3 s, with the ID `id` (the folder is `folder`), and
/// with `judge`, worded as the contract says. Debug lines before it are tolerated (a WARN;
/// `--strict` fails them), as elsewhere; lines of the contract before it (its join's) are a
/// FAIL. Wording that differs only in spacing, punctuation or case is a WARN.
fn first_line_is_the_address(
    ctx: &Ctx,
    target: &mut Target,
    id: &str,
    folder: &str,
    judge: Judge,
) -> Verdict {
    let expected = format!("This peer address is IP:PORT located at {id}");
    let within = ctx.time(ADDRESS_WITHIN);
    let found = target.wait_for_line(within, begins_like_address_line);
    let before: Vec<String> = target
        .seen()
        .iter()
        .take_while(|l| !begins_like_address_line(l))
        .cloned()
        .collect();
    let Some(first) = found else {
        if let Some(status) = target.exit_status() {
            let stderr = target.stderr();
            return Verdict::fail(
                expected,
                format!(
                    "stdout {}; it exited after {:.1} s ({status}); stderr: {}",
                    target.shown(),
                    target.age().as_secs_f64(),
                    first_lines(&stderr, 6)
                ),
                "the target ended without printing its address line",
            )
            .hints(hints::stderr(&stderr));
        }
        let why = match before.is_empty() {
            true => format!("no line at all within {}", ctx.scale.secs(ADDRESS_WITHIN)),
            false => format!(
                "no line beginning 'This peer address is' within {}",
                ctx.scale.secs(ADDRESS_WITHIN)
            ),
        };
        return Verdict::fail(expected, format!("stdout {}", target.shown()), why);
    };
    let Some(addr) = loose_address(&first) else {
        return Verdict::fail(expected, first, "the address line names no IP:PORT");
    };
    let exact = line::address(addr, id);
    let printed_id = match line::parse_address(&first) {
        Some((_, printed)) => printed.to_string(),
        None => first.rsplit(' ').next().unwrap_or_default().to_string(),
    };
    let carries_id = match printed_id.as_str() {
        printed if printed == id => Verdict::pass(exact.clone(), first.clone()),
        printed if printed == folder => Verdict::tolerated(
            ctx.strict,
            exact.clone(),
            first.clone(),
            format!("prints the folder name '{folder}' where the contract has the ID '{id}'"),
        ),
        printed => Verdict::fail(
            exact.clone(),
            first.clone(),
            format!("the ID is '{printed}', not '{id}' of the folder {folder}"),
        )
        .hints(hints::id(printed, id, folder)),
    };
    let wording = match (judge, compare(&exact, &first, id, folder)) {
        (Judge::PlaceAndId, _) | (_, Match::Exact) => Verdict::pass(exact.clone(), first.clone()),
        (Judge::Wording, Match::Cosmetic(why)) => {
            Verdict::tolerated(ctx.strict, exact.clone(), first.clone(), why)
        }
        (Judge::Wording, Match::No) => Verdict::fail(
            exact.clone(),
            first.clone(),
            "the address line is not worded as the contract says",
        ),
    };
    let contract_before: Vec<&String> = before
        .iter()
        .filter(|l| !l.trim().is_empty() && is_contract_line(l))
        .collect();
    let place = match (before.as_slice(), contract_before.first()) {
        ([], _) => Verdict::pass(exact, first),
        (_, Some(contract)) => Verdict::fail(
            exact,
            first,
            format!(
                "a line of the join came before it ({contract:?}): PROTOCOL 7.1 has the address line first, as soon as the peer listens"
            ),
        ),
        (lines, None) => Verdict::tolerated(
            ctx.strict,
            exact,
            first,
            format!(
                "{} line(s) came before it ({:?}...): PROTOCOL 7.1 has the address line first",
                lines.len(),
                lines[0]
            ),
        ),
    };
    carries_id.worse(wording).worse(place)
}

pub const ADDRESS_JOINABLE: Rule = Rule {
    id: "7.1-address-joinable",
    requirement: "The address printed accepts joins",
    needs: Needs::Address,
    after: AFTER_SERVER,
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
