//! PROTOCOL 2, the command line: the ID and the table size come from the folder's name.

use crate::check::ctx::Ctx;
use crate::check::hints;
use crate::check::rule::{AFTER_SERVER, Needs, Rule, SHORT};
use crate::check::target::Spec;
use crate::check::verdict::{Verdict, need};
use crate::contract::{Kind, line};

pub static RULES: &[Rule] = &[ID_FROM_FOLDER];

pub const ID_FROM_FOLDER: Rule = Rule {
    id: "2.2-id-from-folder",
    requirement: "The peer ID comes from the folder name ID-SIZE: the address line and the Welcome's sender ID carry it",
    needs: Needs::Fresh,
    after: AFTER_SERVER,
    limit: SHORT,
    run: id_from_folder,
};

/// The ID in the address line and in the Welcome is the folder's (`peer7-3`: `peer7`).
fn id_from_folder(ctx: &Ctx) -> Verdict {
    let (target, addr) = need!(ctx.listening(Spec::new("peer7", 3)));
    let printed_line = target.address_line().unwrap_or_default().to_string();
    let printed = match line::parse_address(&printed_line) {
        Some((_, id)) => id.to_string(),
        None => printed_line
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    let joined = need!(ctx.join(addr, "a Welcome from 'peer7'"));
    let sent = joined.message.sender_id();
    let expected = "'peer7' in the address line and as the Welcome's sender ID (folder peer7-3)";
    let actual = format!("address line {printed_line:?}; {}", joined.describe());
    if joined.message.kind != Kind::Welcome || sent != "peer7" {
        return Verdict::fail(
            expected,
            actual,
            format!("the Welcome's sender ID is '{sent}'"),
        )
        .hints(hints::id(&sent, "peer7", "peer7-3"));
    }
    match printed.as_str() {
        "peer7" => Verdict::pass(expected, actual),
        "peer7-3" => Verdict::tolerated(
            ctx.strict,
            expected,
            actual,
            "the address line shows the folder name 'peer7-3' where the contract has the ID",
        ),
        _ if target.address_line().is_none() => Verdict::fail(
            expected,
            actual,
            "no line begins 'This peer address is', so no ID was printed",
        ),
        other => Verdict::fail(
            expected,
            actual,
            format!("the address line shows the ID '{other}'"),
        )
        .hints(hints::id(other, "peer7", "peer7-3")),
    }
}
