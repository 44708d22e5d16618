//! The map as a Graphviz DOT graph, for `dot -Tpng` or any tool that reads DOT.
//!
//! Undirected (`graph`, `--`), so each link is one edge. A node is named by its address
//! and labelled with the peer's ID and address; a full peer is filled and drawn with a
//! double border; an address that is not a peer is dashed and grey, with the reason, and
//! joined by dashed edges to the peers that list it.

use super::graph::{Map, show_id};
use std::net::SocketAddrV4;

/// Fill of a peer with room in its table, and of a full one (the same in the SVG).
pub const OPEN_FILL: &str = "#e8f1fb";
pub const FULL_FILL: &str = "#fbe3c8";

pub fn to_dot(map: &Map, start: SocketAddrV4) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "// cptp map {start}: {}\ngraph cptp {{\n",
        map.summary()
    ));
    out.push_str("  node [shape=box, style=\"rounded,filled\", fontname=\"monospace\"];\n");
    let order = map.breadth_first(start);
    for &addr in &order {
        if let Some(peer) = map.peers.get(&addr) {
            let (attributes, tag) = if peer.full {
                (
                    format!("fillcolor=\"{FULL_FILL}\", peripheries=2"),
                    " (full)",
                )
            } else {
                (format!("fillcolor=\"{OPEN_FILL}\""), "")
            };
            let label = format!("{}{tag}\n{addr}", show_id(&peer.id));
            out.push_str(&format!(
                "  \"{addr}\" [label={}, {attributes}];\n",
                quote(&label)
            ));
        } else if let Some(trouble) = map.problems.get(&addr) {
            let label = format!("{}\n{addr}\n{}", trouble.word(), trouble.reason());
            out.push_str(&format!(
                "  \"{addr}\" [label={}, style=\"rounded,dashed\", color=gray40, fontcolor=gray30];\n",
                quote(&label)
            ));
        }
    }
    for (a, b) in map.links() {
        out.push_str(&format!("  \"{a}\" -- \"{b}\";\n"));
    }
    for &addr in &order {
        if map.problems.contains_key(&addr) {
            for by in map.listed_by(addr) {
                out.push_str(&format!(
                    "  \"{by}\" -- \"{addr}\" [style=dashed, color=gray40];\n"
                ));
            }
        }
    }
    out.push_str("}\n");
    out
}

/// A DOT string literal: quotes and backslashes escaped, line breaks as `\n`.
fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
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
    fn one_node_per_address_and_one_edge_per_link() {
        let mut map = sample();
        if let Some(p1) = map.peers.get_mut(&a(1)) {
            p1.id = "say \"hi\"".into();
        }
        let dot = to_dot(&map, a(1));
        assert!(dot.contains(
            r##""127.0.0.1:1" [label="\"say \\\"hi\\\"\" (full)\n127.0.0.1:1", fillcolor="#fbe3c8", peripheries=2];"##
        ));
        assert_eq!(dot.matches(" -- ").count(), 2);
        assert!(dot.contains("\"127.0.0.1:1\" -- \"127.0.0.1:2\";"));
        assert!(dot.contains("\"127.0.0.1:1\" -- \"127.0.0.1:3\" [style=dashed"));
    }
}
