//! A rule of the contract, as the checker runs it: a stable ID that starts with the
//! section of docs/PROTOCOL.md it checks, the requirement in one line, and the function
//! that checks it. Each section's rules are declared in its own file under `rules/`, beside
//! their functions, as h2spec keeps each test case's description beside its run function.

use super::ctx::Ctx;
use super::verdict::Verdict;
use std::time::Duration;

/// What a rule needs of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Fresh starts in folders of its choosing, and the target's stdout.
    Fresh,
    /// Only an address to join: also runs against `--addr`.
    Address,
}

/// Time limits of rules: each waits at most 10 s for the target to listen, then does its
/// work with deadlines of its own; these only catch a rule that would still hang.
pub const SHORT: Duration = Duration::from_secs(20);
pub const LONG: Duration = Duration::from_secs(30);

/// The gate of the rules that join the target: a silent join is answered with cPTP. When
/// it fails, nothing a join would show can be observed.
pub const SERVER_GATE: &str = "1.3-silent-join-answered";
/// The gate of the rules where the target joins: it takes a conforming Welcome and keeps
/// running. When it fails, nothing of its joining can be observed.
pub const CLIENT_GATE: &str = "6.2-takes-welcome";
/// The gate of the rules of the auto-join: after a Redirect, the target joins a peer it
/// lists. When it fails (a peer with no auto-join at all), its order, its loops and its
/// end cannot be observed.
pub const AUTO_JOIN_GATE: &str = "6.3-follows-redirect";
/// `Rule::after` of a rule that joins the target, of one where the target joins, of one
/// that needs both, and of one that needs the auto-join.
pub const AFTER_SERVER: &[&str] = &[SERVER_GATE];
pub const AFTER_CLIENT: &[&str] = &[CLIENT_GATE];
pub const AFTER_BOTH: &[&str] = &[CLIENT_GATE, SERVER_GATE];
pub const AFTER_AUTO_JOIN: &[&str] = &[CLIENT_GATE, AUTO_JOIN_GATE];

/// One rule of the contract.
#[derive(Debug)]
pub struct Rule {
    /// Stable, `SECTION-what` (e.g. `5.1-welcome-bytes`). Never renamed: a rule whose
    /// meaning changes gets a new ID.
    pub id: &'static str,
    /// What the contract requires, in one line.
    pub requirement: &'static str,
    pub needs: Needs,
    /// The gates this rule depends on: rules that must not fail for this one to observe
    /// anything. When one fails, this rule is BLOCKED by it and not run.
    pub after: &'static [&'static str],
    /// The rule's own time limit; past it the rule FAILs and its targets are killed.
    pub limit: Duration,
    pub run: fn(&Ctx) -> Verdict,
}

impl Rule {
    /// The section of docs/PROTOCOL.md the rule checks: its ID up to the first dash.
    pub fn section(&self) -> &'static str {
        self.id.split('-').next().unwrap_or(self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_is_the_id_up_to_its_first_dash() {
        let rule = Rule {
            id: "5.2-redirect-closed",
            requirement: "",
            needs: Needs::Fresh,
            after: &[],
            limit: SHORT,
            run: |_| Verdict::skip(""),
        };
        assert_eq!(rule.section(), "5.2");
    }
}
