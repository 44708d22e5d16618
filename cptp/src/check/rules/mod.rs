//! The rules, one file per section of docs/PROTOCOL.md, each rule declared beside the
//! function that checks it. This module only lists them, in the contract's order.

mod support;

pub mod what_a_peer_is;
pub mod command_line;
pub mod timer;
pub mod wire_format;
pub mod being_joined;
pub mod joining;
pub mod output;

use super::rule::Rule;

/// Every section's rules, in the order of the contract.
pub static SECTIONS: &[&[Rule]] = &[
    what_a_peer_is::RULES,
    command_line::RULES,
    timer::RULES,
    wire_format::RULES,
    being_joined::RULES,
    joining::RULES,
    output::RULES,
];

/// Every rule, in the order of the contract.
pub fn all() -> impl Iterator<Item = &'static Rule> {
    SECTIONS.iter().flat_map(|section| section.iter())
}

/// The rule with this ID.
pub fn find(id: &str) -> Option<&'static Rule> {
    all().find(|rule| rule.id == id)
}
