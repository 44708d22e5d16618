//! What a crawl found, and the one rule that turns it into a graph.
//!
//! A crawl joins each address once and keeps what the reply said: the sender's ID, whether
//! its table was full (it sent a Redirect) and the peers it listed. Addresses that could
//! not be joined, answered wrongly or were never tried are kept apart, with the reason.
//!
//! **The link rule.** Peers X and Y are linked if X lists Y or Y lists X, counting only
//! peers that answered, after every address the crawler itself connected from has been
//! removed from every list (`Map::drop_own`). Either side is enough because the two
//! replies are read at different moments: a link that was made or closed in between is
//! listed by one side only, and it was real at the moment that side answered.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddrV4;
use std::time::Duration;

/// A peer that answered the crawler's join with a valid message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The sender ID of its reply.
    pub id: String,
    /// It answered with a Redirect: its table was full.
    pub full: bool,
    /// The peers its reply listed (its whole table, PROTOCOL 5.1 and 5.2).
    pub listed: Vec<SocketAddrV4>,
}

/// Why an address listed by some peer is not on the map as a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// Connecting failed (refused, timed out, unreachable).
    Unreachable(String),
    /// It accepted the connection but sent no valid reply.
    Misbehaving(String),
    /// It was never tried: a limit of the crawl came first.
    NotVisited(String),
}

impl Trouble {
    /// The word that heads the problem's line.
    pub fn word(&self) -> &'static str {
        match self {
            Trouble::Unreachable(_) => "unreachable",
            Trouble::Misbehaving(_) => "misbehaving",
            Trouble::NotVisited(_) => "not visited",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Trouble::Unreachable(r) | Trouble::Misbehaving(r) | Trouble::NotVisited(r) => r,
        }
    }
}

/// Everything a crawl learned, keyed by address.
#[derive(Debug, Clone, Default)]
pub struct Map {
    /// Peers that answered.
    pub peers: BTreeMap<SocketAddrV4, Peer>,
    /// Addresses that were listed (or given) but are not peers on the map.
    pub problems: BTreeMap<SocketAddrV4, Trouble>,
    /// Joins the crawler made (connections attempted).
    pub joins: usize,
    /// How long the crawl took.
    pub elapsed: Duration,
}

impl Map {
    /// Removes the crawler's own connections from every list and from the map itself.
    ///
    /// A peer that welcomed one of the crawler's connections lists it until the crawler
    /// closes it; if such an address turned up in a reply it is not a peer.
    pub fn drop_own(&mut self, own: &HashSet<SocketAddrV4>) {
        self.peers.retain(|addr, _| !own.contains(addr));
        self.problems.retain(|addr, _| !own.contains(addr));
        for peer in self.peers.values_mut() {
            peer.listed.retain(|addr| !own.contains(addr));
        }
    }

    /// Every link between two peers, once, as (smaller address, larger address).
    pub fn links(&self) -> BTreeSet<(SocketAddrV4, SocketAddrV4)> {
        let mut links = BTreeSet::new();
        for (&from, peer) in &self.peers {
            for &to in &peer.listed {
                if to != from && self.peers.contains_key(&to) {
                    links.insert((from.min(to), from.max(to)));
                }
            }
        }
        links
    }

    /// Each peer with the peers it is linked with, in address order.
    pub fn neighbours(&self) -> BTreeMap<SocketAddrV4, BTreeSet<SocketAddrV4>> {
        let mut neighbours: BTreeMap<_, BTreeSet<_>> = BTreeMap::new();
        for (a, b) in self.links() {
            neighbours.entry(a).or_default().insert(b);
            neighbours.entry(b).or_default().insert(a);
        }
        neighbours
    }

    /// The peers that list the problem address `addr`.
    pub fn listed_by(&self, addr: SocketAddrV4) -> Vec<SocketAddrV4> {
        self.peers
            .iter()
            .filter(|(_, peer)| peer.listed.contains(&addr))
            .map(|(&from, _)| from)
            .collect()
    }

    /// Every address on the map (peers, then problems) in breadth-first order from `start`,
    /// following links and listings, neighbours in address order; anything unreached
    /// after, in address order. Deterministic for a given map, so output can be compared.
    pub fn breadth_first(&self, start: SocketAddrV4) -> Vec<SocketAddrV4> {
        self.spanning_tree(start)
            .into_iter()
            .map(|(addr, _)| addr)
            .collect()
    }

    /// The walk of [`Map::breadth_first`] as a tree: each address in that order with the
    /// position (in this list) of the address it was first reached from; `None` for the
    /// start and for each address that begins a part no earlier address reaches.
    pub fn spanning_tree(&self, start: SocketAddrV4) -> Vec<(SocketAddrV4, Option<usize>)> {
        let adjacency = self.adjacency();
        let mut tree = Vec::new();
        let mut seen = HashSet::new();
        let all: Vec<SocketAddrV4> = std::iter::once(start)
            .chain(self.peers.keys().copied())
            .chain(self.problems.keys().copied())
            .collect();
        for root in all {
            if !self.contains(root) || !seen.insert(root) {
                continue;
            }
            tree.push((root, None));
            // Everything from `next` on is queued: the list itself is the queue.
            let mut next = tree.len() - 1;
            while next < tree.len() {
                let addr = tree[next].0;
                for &to in adjacency.get(&addr).into_iter().flatten() {
                    if seen.insert(to) {
                        tree.push((to, Some(next)));
                    }
                }
                next += 1;
            }
        }
        tree
    }

    /// For drawing: each address with the addresses it is drawn connected to (links
    /// between peers both ways, a problem address with the peers that list it), sorted.
    pub fn adjacency(&self) -> BTreeMap<SocketAddrV4, BTreeSet<SocketAddrV4>> {
        let mut adjacency = self.neighbours();
        for (&from, peer) in &self.peers {
            for &to in &peer.listed {
                if self.problems.contains_key(&to) {
                    adjacency.entry(from).or_default().insert(to);
                    adjacency.entry(to).or_default().insert(from);
                }
            }
        }
        adjacency
    }

    pub fn contains(&self, addr: SocketAddrV4) -> bool {
        self.peers.contains_key(&addr) || self.problems.contains_key(&addr)
    }

    /// The map as text: a summary line, one line per peer, one line per problem.
    ///
    /// ```text
    /// # 3 peers (1 full), 2 links; 1 unreachable, 0 misbehaving, 0 not visited; 4 joins in 0.004 s
    /// peer1 127.0.0.1:37361 -> 127.0.0.1:36259, 127.0.0.1:37421
    /// peer2 127.0.0.1:37421 (full) -> 127.0.0.1:37361
    /// peer3 127.0.0.1:36259 -> 127.0.0.1:37361
    /// ! 127.0.0.1:5555 unreachable: connection refused (listed by 127.0.0.1:37421)
    /// ```
    pub fn to_text(&self, start: SocketAddrV4) -> String {
        let mut out = format!("# {}\n", self.summary());
        let order = self.breadth_first(start);
        let all_neighbours = self.neighbours();
        for &addr in &order {
            let Some(peer) = self.peers.get(&addr) else {
                continue;
            };
            let full = if peer.full { " (full)" } else { "" };
            let neighbours: Vec<String> = all_neighbours
                .get(&addr)
                .into_iter()
                .flatten()
                .map(ToString::to_string)
                .collect();
            let arrow = if neighbours.is_empty() { "->" } else { "-> " };
            out.push_str(&format!(
                "{} {addr}{full} {arrow}{}\n",
                show_id(&peer.id),
                neighbours.join(", ")
            ));
        }
        for &addr in &order {
            let Some(trouble) = self.problems.get(&addr) else {
                continue;
            };
            let by: Vec<String> = self
                .listed_by(addr)
                .iter()
                .map(ToString::to_string)
                .collect();
            let by = match by.len() {
                0 => String::new(),
                _ => format!(" (listed by {})", by.join(", ")),
            };
            out.push_str(&format!(
                "! {addr} {}: {}{by}\n",
                trouble.word(),
                trouble.reason()
            ));
        }
        out
    }

    /// One line: what was found and what the crawl cost.
    pub fn summary(&self) -> String {
        let full = self.peers.values().filter(|p| p.full).count();
        let count = |word: &str| self.problems.values().filter(|t| t.word() == word).count();
        format!(
            "{} ({full} full), {}; {} unreachable, {} misbehaving, {} not visited; {} in {:.3} s",
            plural(self.peers.len(), "peer"),
            plural(self.links().len(), "link"),
            count("unreachable"),
            count("misbehaving"),
            count("not visited"),
            plural(self.joins, "join"),
            self.elapsed.as_secs_f64()
        )
    }
}

/// `1 peer`, `2 peers`.
fn plural(n: usize, word: &str) -> String {
    match n {
        1 => format!("1 {word}"),
        n => format!("{n} {word}s"),
    }
}

/// A peer ID as printed: as sent, unless it is empty or holds spaces or control
/// characters, which would make the line ambiguous; then quoted with escapes.
pub fn show_id(id: &str) -> String {
    if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        format!("{id:?}")
    } else {
        id.to_string()
    }
}

/// Fixtures for the tests of the map's outputs (here, and the text, DOT, JSON and SVG).
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// 127.0.0.1:`port`.
    pub(crate) fn a(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, port)
    }

    /// A peer that answered as `id`, listing the peers at `listed` (ports).
    pub(crate) fn peer(id: &str, full: bool, listed: &[u16]) -> Peer {
        Peer {
            id: id.into(),
            full,
            listed: listed.iter().map(|&p| a(p)).collect(),
        }
    }

    /// A small map: p1 (full) lists p2 and 3, p2 lists p1, 3 was unreachable.
    pub(crate) fn sample() -> Map {
        let mut map = Map::default();
        map.peers.insert(a(1), peer("p1", true, &[2, 3]));
        map.peers.insert(a(2), peer("p2", false, &[1]));
        map.problems
            .insert(a(3), Trouble::Unreachable("connection refused".into()));
        map
    }

    /// 1 - 2 - 3 with 2 full, 1 listing a dead address 9, and 3 listing the crawler's 7.
    fn chain() -> Map {
        let mut map = Map::default();
        map.peers.insert(a(1), peer("p1", false, &[2, 9]));
        map.peers.insert(a(2), peer("p2", true, &[1, 3]));
        map.peers.insert(a(3), peer("p3", false, &[7]));
        map.problems
            .insert(a(9), Trouble::Unreachable("connection refused".into()));
        map.problems
            .insert(a(7), Trouble::Unreachable("connection refused".into()));
        map
    }

    #[test]
    fn a_link_listed_by_one_side_counts_once() {
        let map = chain();
        assert_eq!(
            map.links().into_iter().collect::<Vec<_>>(),
            vec![(a(1), a(2)), (a(2), a(3))]
        );
        assert_eq!(map.neighbours()[&a(3)], BTreeSet::from([a(2)]));
    }

    #[test]
    fn the_crawlers_own_addresses_disappear() {
        let mut map = chain();
        map.drop_own(&HashSet::from([a(7)]));
        assert!(!map.contains(a(7)));
        assert!(map.peers[&a(3)].listed.is_empty());
        assert_eq!(map.listed_by(a(9)), vec![a(1)]);
    }

    #[test]
    fn text_lists_peers_breadth_first_then_problems() {
        let mut map = chain();
        map.drop_own(&HashSet::from([a(7)]));
        map.joins = 4;
        let text = map.to_text(a(3));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "# 3 peers (1 full), 2 links; 1 unreachable, 0 misbehaving, 0 not visited; 4 joins in 0.000 s",
                "p3 127.0.0.1:3 -> 127.0.0.1:2",
                "p2 127.0.0.1:2 (full) -> 127.0.0.1:1, 127.0.0.1:3",
                "p1 127.0.0.1:1 -> 127.0.0.1:2",
                "! 127.0.0.1:9 unreachable: connection refused (listed by 127.0.0.1:1)",
            ]
        );
    }

    #[test]
    fn odd_ids_are_quoted() {
        assert_eq!(show_id("peer1"), "peer1");
        assert_eq!(show_id(""), "\"\"");
        assert_eq!(show_id("a b"), "\"a b\"");
    }
}
