//! The map as JSON, for scripts: the same facts as the text, with nothing to split.
//!
//! ```json
//! {"start": "127.0.0.1:4000", "joins": 3, "seconds": 0.002,
//!  "peers": [{"addr": "127.0.0.1:4000", "id": "peer1", "full": true,
//!             "listed": ["127.0.0.1:4001"], "linked": ["127.0.0.1:4001"]}],
//!  "links": [["127.0.0.1:4000", "127.0.0.1:4001"]],
//!  "problems": [{"addr": "127.0.0.1:5000", "kind": "unreachable",
//!                "reason": "connection refused (nothing listens there)",
//!                "listed_by": ["127.0.0.1:4000"]}]}
//! ```
//!
//! Peers and problems come in the text's order (breadth first from the start); `listed`
//! is what the peer's reply said (without the crawler's own addresses), `linked` its
//! links under the link rule. Written by hand: a few strings and lists need no serializer.

use super::graph::Map;
use std::fmt::Write;
use std::net::SocketAddrV4;

pub fn to_json(map: &Map, start: SocketAddrV4) -> String {
    let order = map.breadth_first(start);
    let neighbours = map.neighbours();
    let mut out = format!(
        "{{\n  \"start\": \"{start}\",\n  \"joins\": {},\n  \"seconds\": {:.3},\n  \"peers\": [",
        map.joins,
        map.elapsed.as_secs_f64()
    );
    let mut first = true;
    for addr in &order {
        let Some(peer) = map.peers.get(addr) else {
            continue;
        };
        let linked: Vec<SocketAddrV4> = neighbours
            .get(addr)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        let _ = write!(
            out,
            "{}\n    {{\"addr\": \"{addr}\", \"id\": {}, \"full\": {}, \"listed\": {}, \"linked\": {}}}",
            if first { "" } else { "," },
            string(&peer.id),
            peer.full,
            addresses(&peer.listed),
            addresses(&linked)
        );
        first = false;
    }
    out.push_str("\n  ],\n  \"links\": [");
    for (i, (a, b)) in map.links().into_iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        let _ = write!(out, "{comma}\n    [\"{a}\", \"{b}\"]");
    }
    out.push_str("\n  ],\n  \"problems\": [");
    let mut first = true;
    for addr in &order {
        let Some(trouble) = map.problems.get(addr) else {
            continue;
        };
        let _ = write!(
            out,
            "{}\n    {{\"addr\": \"{addr}\", \"kind\": \"{}\", \"reason\": {}, \"listed_by\": {}}}",
            if first { "" } else { "," },
            trouble.word(),
            string(trouble.reason()),
            addresses(&map.listed_by(*addr))
        );
        first = false;
    }
    out.push_str("\n  ]\n}\n");
    out
}

/// A JSON array of address strings.
fn addresses(list: &[SocketAddrV4]) -> String {
    let items: Vec<String> = list.iter().map(|a| format!("\"{a}\"")).collect();
    format!("[{}]", items.join(", "))
}

/// A JSON string literal: quotes, backslashes and control characters escaped.
fn string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::graph::tests::{a, sample};

    #[test]
    fn strings_are_escaped() {
        assert_eq!(string("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }

    #[test]
    fn a_small_map_reads_as_expected() {
        let mut map = sample();
        map.joins = 3;
        assert_eq!(
            to_json(&map, a(1)),
            r#"{
  "start": "127.0.0.1:1",
  "joins": 3,
  "seconds": 0.000,
  "peers": [
    {"addr": "127.0.0.1:1", "id": "p1", "full": true, "listed": ["127.0.0.1:2", "127.0.0.1:3"], "linked": ["127.0.0.1:2"]},
    {"addr": "127.0.0.1:2", "id": "p2", "full": false, "listed": ["127.0.0.1:1"], "linked": ["127.0.0.1:1"]}
  ],
  "links": [
    ["127.0.0.1:1", "127.0.0.1:2"]
  ],
  "problems": [
    {"addr": "127.0.0.1:3", "kind": "unreachable", "reason": "connection refused", "listed_by": ["127.0.0.1:1"]}
  ]
}
"#
        );
    }
}
