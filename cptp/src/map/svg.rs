//! The map as an SVG picture, laid out here rather than by a graph-layout crate.
//!
//! A cPTP overlay is almost a tree: every link is one successful join, and a peer joins
//! once, so n peers have at most n - 1 links unless joins raced each other. So the picture
//! is a tidy tree: a breadth-first spanning tree from the first peer, one row per hop,
//! leaves side by side in depth-first order, each parent centred over its children. All
//! boxes are as wide as the widest, so no two boxes of a row can overlap, tree links never
//! cross, and the same map always gives the same picture. A link outside the tree (a
//! cycle) is drawn as a curve. Addresses that are not peers hang below the first peer
//! that lists them, dashed.
//!
//! (The `layout-rs` crate draws Graphviz-style layered graphs; for a tree this does the
//! same job in a page of code, with no dependency and no iteration.)

use super::dot::{FULL_FILL, OPEN_FILL};
use super::graph::{Map, show_id};
use crate::text::xml_escape as escape;
use std::collections::HashMap;
use std::net::SocketAddrV4;

/// Font size and the advance of one monospace character at that size (0.6 em).
const FONT: f64 = 13.0;
const CHAR: f64 = 7.8;
/// From one text line's baseline to the next.
const LINE: f64 = 17.0;
const PAD_X: f64 = 10.0;
const PAD_Y: f64 = 7.0;
/// Between two boxes of a row, and between two rows.
const GAP_X: f64 = 20.0;
const GAP_Y: f64 = 48.0;
const MARGIN: f64 = 20.0;
/// How far a link outside the tree bows, in box heights.
const BOW: f64 = 1.6;
/// Above the tree: the title and the legend.
const HEADER: f64 = 76.0;
/// Longest text line in a box; longer IDs and reasons are cut (the tooltip has them whole).
const MAX_CHARS: usize = 34;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    Open,
    Full,
    Problem,
}

/// One box of the picture.
struct Node {
    addr: SocketAddrV4,
    look: Look,
    /// Text lines, the first in bold.
    lines: Vec<String>,
    /// Hover text: everything, uncut.
    title: String,
    /// Centre.
    x: f64,
    y: f64,
}

/// Draws `map` as a standalone SVG document.
pub fn to_svg(map: &Map, start: SocketAddrV4) -> String {
    let walk = map.spanning_tree(start);
    let mut nodes = boxes(map, &walk);
    let index: HashMap<SocketAddrV4, usize> =
        nodes.iter().enumerate().map(|(i, n)| (n.addr, i)).collect();
    let longest = nodes
        .iter()
        .flat_map(|n| n.lines.iter())
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    let box_w = longest as f64 * CHAR + 2.0 * PAD_X;
    let most_lines = nodes.iter().map(|n| n.lines.len()).max().unwrap_or(0);
    let box_h = (most_lines as f64 - 1.0) * LINE + FONT + 2.0 * PAD_Y;
    let tree = Tree::new(&walk, &index);
    let slots = tree.place();
    for (i, node) in nodes.iter_mut().enumerate() {
        node.x = MARGIN + box_w / 2.0 + slots[i] * (box_w + GAP_X);
        node.y = MARGIN + HEADER + box_h / 2.0 + tree.depth[i] as f64 * (box_h + GAP_Y);
    }
    let title = format!("cPTP overlay mapped from {start}");
    let summary = map.summary();
    let text_w = title.len().max(summary.len()) as f64 * CHAR;
    let width = nodes
        .iter()
        .map(|n| n.x + box_w / 2.0 + MARGIN)
        .fold(2.0 * MARGIN + text_w.max(LEGEND_W), f64::max);
    let height = nodes
        .iter()
        .map(|n| n.y + box_h / 2.0 + MARGIN)
        .fold(MARGIN + HEADER, f64::max);

    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"DejaVu Sans Mono, monospace\" font-size=\"{FONT}\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{MARGIN}\" y=\"{}\" font-size=\"16\" font-weight=\"bold\">{}</text>\n\
         <text x=\"{MARGIN}\" y=\"{}\" fill=\"#444\">{}</text>\n",
        MARGIN + 14.0,
        escape(&title),
        MARGIN + 34.0,
        escape(&summary),
    );
    out.push_str(&legend(MARGIN, MARGIN + 44.0));
    // Lines first, boxes over them.
    for (a, b) in map.links() {
        if let (Some(&i), Some(&j)) = (index.get(&a), index.get(&b)) {
            let bow = if tree.is_tree_edge(i, j) {
                0.0
            } else {
                BOW * box_h
            };
            out.push_str(&edge(&nodes[i], &nodes[j], bow, "link"));
        }
    }
    for node in nodes.iter().filter(|n| n.look == Look::Problem) {
        for by in map.listed_by(node.addr) {
            if let (Some(&i), Some(&j)) = (index.get(&by), index.get(&node.addr)) {
                let bow = if tree.is_tree_edge(i, j) {
                    0.0
                } else {
                    BOW * box_h
                };
                out.push_str(&edge(&nodes[i], &nodes[j], bow, "listing"));
            }
        }
    }
    for node in &nodes {
        out.push_str(&draw_box(node, box_w, box_h));
    }
    out.push_str("</svg>\n");
    out
}

/// A box for every address of `walk` (the map's breadth-first walk).
fn boxes(map: &Map, walk: &[(SocketAddrV4, Option<usize>)]) -> Vec<Node> {
    walk.iter()
        .filter_map(|&(addr, _)| {
            let (look, lines, title) = if let Some(peer) = map.peers.get(&addr) {
                let id = show_id(&peer.id);
                if peer.full {
                    let title = format!("{id} {addr}: full (answered with a Redirect)");
                    let lines = vec![cut(&format!("{id} (full)")), addr.to_string()];
                    (Look::Full, lines, title)
                } else {
                    let title = format!("{id} {addr}: answered with a Welcome");
                    (Look::Open, vec![cut(&id), addr.to_string()], title)
                }
            } else {
                let trouble = map.problems.get(&addr)?;
                let title = format!("{addr} {}: {}", trouble.word(), trouble.reason());
                let mut lines = vec![trouble.word().to_string(), addr.to_string()];
                lines.extend(wrap(trouble.reason(), 2));
                (Look::Problem, lines, title)
            };
            Some(Node {
                addr,
                look,
                lines,
                title,
                x: 0.0,
                y: 0.0,
            })
        })
        .collect()
}

/// The breadth-first spanning tree the picture is laid out by, over node indices.
struct Tree {
    /// Children of each node, in the order they were reached.
    children: Vec<Vec<usize>>,
    parent: Vec<Option<usize>>,
    /// Hops from the node's root.
    depth: Vec<usize>,
    /// Nodes no other node reached: the first peer, then any that hang apart.
    roots: Vec<usize>,
}

impl Tree {
    /// The map's breadth-first spanning tree ([`Map::spanning_tree`]) over the boxes,
    /// `index` giving each address's box.
    fn new(walk: &[(SocketAddrV4, Option<usize>)], index: &HashMap<SocketAddrV4, usize>) -> Tree {
        let n = index.len();
        let mut tree = Tree {
            children: vec![Vec::new(); n],
            parent: vec![None; n],
            depth: vec![0; n],
            roots: Vec::new(),
        };
        // In walk order every parent comes before its children, in the order reached.
        for &(addr, from) in walk {
            let Some(&j) = index.get(&addr) else { continue };
            match from.and_then(|f| index.get(&walk[f].0)) {
                Some(&i) => {
                    tree.children[i].push(j);
                    tree.parent[j] = Some(i);
                    tree.depth[j] = tree.depth[i] + 1;
                }
                None => tree.roots.push(j),
            }
        }
        tree
    }

    fn is_tree_edge(&self, i: usize, j: usize) -> bool {
        self.parent[i] == Some(j) || self.parent[j] == Some(i)
    }

    /// The column of each node, in box widths: leaves take the next column in depth-first
    /// order, a parent sits midway between its first and last child.
    fn place(&self) -> Vec<f64> {
        let n = self.children.len();
        // Depth-first preorder without recursion (a chain of 1000 peers is 1000 deep).
        let mut preorder = Vec::with_capacity(n);
        let mut stack: Vec<usize> = self.roots.iter().rev().copied().collect();
        while let Some(i) = stack.pop() {
            preorder.push(i);
            stack.extend(self.children[i].iter().rev());
        }
        let mut column = vec![0.0; n];
        let mut next_leaf = 0.0;
        for &i in &preorder {
            if self.children[i].is_empty() {
                column[i] = next_leaf;
                next_leaf += 1.0;
            }
        }
        // In reverse preorder every child comes before its parent.
        for &i in preorder.iter().rev() {
            if let (Some(&first), Some(&last)) = (self.children[i].first(), self.children[i].last())
            {
                column[i] = (column[first] + column[last]) / 2.0;
            }
        }
        column
    }
}

/// A line between two box centres (the boxes cover its ends). Along the tree it is
/// straight (`bow` 0); a link outside the tree bows `bow` pixels to the side, left to
/// right so that between two boxes of a row it dips below them, not through them.
fn edge(a: &Node, b: &Node, bow: f64, class: &str) -> String {
    let style = match class {
        "link" => "stroke=\"#555\" stroke-width=\"1.6\"",
        _ => "stroke=\"#999\" stroke-width=\"1.2\" stroke-dasharray=\"5 4\"",
    };
    let (from, to) = if a.x <= b.x { (a, b) } else { (b, a) };
    let (dx, dy) = (to.x - from.x, to.y - from.y);
    let length = dx.hypot(dy);
    let path = if bow == 0.0 || length == 0.0 {
        format!("M{:.1},{:.1} L{:.1},{:.1}", from.x, from.y, to.x, to.y)
    } else {
        // Both control points pushed along the normal (-dy, dx): a cubic curve that
        // leaves and reaches the boxes sideways.
        let (nx, ny) = (-dy / length * bow, dx / length * bow);
        format!(
            "M{:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
            from.x,
            from.y,
            from.x + nx,
            from.y + ny,
            to.x + nx,
            to.y + ny,
            to.x,
            to.y
        )
    };
    format!(
        "<path class=\"{class}\" data-from=\"{}\" data-to=\"{}\" d=\"{path}\" fill=\"none\" {style}/>\n",
        a.addr, b.addr
    )
}

fn draw_box(node: &Node, w: f64, h: f64) -> String {
    let (class, fill, stroke) = match node.look {
        Look::Open => ("peer", OPEN_FILL, "stroke=\"#3a6ea5\" stroke-width=\"1.5\""),
        Look::Full => (
            "peer full",
            FULL_FILL,
            "stroke=\"#c0601a\" stroke-width=\"3.5\"",
        ),
        Look::Problem => (
            "problem",
            "#f6f6f6",
            "stroke=\"#888\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"",
        ),
    };
    let (left, top) = (node.x - w / 2.0, node.y - h / 2.0);
    let text_h = (node.lines.len() as f64 - 1.0) * LINE + FONT;
    let first_baseline = node.y - text_h / 2.0 + FONT - 2.0;
    let colour = if node.look == Look::Problem {
        "#555"
    } else {
        "#111"
    };
    let mut out = format!(
        "<g class=\"{class}\" data-addr=\"{}\">\n<title>{}</title>\n\
         <rect x=\"{left:.1}\" y=\"{top:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" rx=\"6\" fill=\"{fill}\" {stroke}/>\n",
        node.addr,
        escape(&node.title)
    );
    for (k, line) in node.lines.iter().enumerate() {
        let weight = if k == 0 { " font-weight=\"bold\"" } else { "" };
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{colour}\"{weight}>{}</text>\n",
            node.x,
            first_baseline + k as f64 * LINE,
            escape(line)
        ));
    }
    out.push_str("</g>\n");
    out
}

const LEGEND_W: f64 = 640.0;

/// A row of sample boxes saying what the colours mean.
fn legend(x: f64, y: f64) -> String {
    let items = [
        (
            OPEN_FILL,
            "stroke=\"#3a6ea5\" stroke-width=\"1.5\"",
            "peer with room (Welcome)",
        ),
        (
            FULL_FILL,
            "stroke=\"#c0601a\" stroke-width=\"3.5\"",
            "full peer (Redirect)",
        ),
        (
            "#f6f6f6",
            "stroke=\"#888\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"",
            "listed, not a peer",
        ),
    ];
    let mut out = String::from("<g class=\"legend\">\n");
    let mut at = x;
    for (fill, stroke, label) in items {
        out.push_str(&format!(
            "<rect x=\"{at:.1}\" y=\"{:.1}\" width=\"22\" height=\"14\" rx=\"3\" fill=\"{fill}\" {stroke}/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\">{label}</text>\n",
            y,
            at + 30.0,
            y + 12.0
        ));
        at += 30.0 + label.len() as f64 * CHAR + 24.0;
    }
    out.push_str("</g>\n");
    out
}

/// At most [`MAX_CHARS`] characters, with an ellipsis when cut.
fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_CHARS {
        text.to_string()
    } else {
        let kept: String = text.chars().take(MAX_CHARS - 1).collect();
        format!("{kept}…")
    }
}

/// `text` in at most `most` lines of at most [`MAX_CHARS`] characters, broken at spaces;
/// the last line is cut if the text does not fit.
fn wrap(text: &str, most: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= MAX_CHARS => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    if lines.len() > most {
        let rest = lines.split_off(most - 1).join(" ");
        lines.push(rest);
    }
    lines.iter().map(|line| cut(line)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::graph::tests::{a, peer};

    #[test]
    fn parents_sit_over_their_children_and_leaves_do_not_share_columns() {
        // 1 - 2, 1 - 3, 2 - 4, 2 - 5: columns 4:0 5:1 3:2, 2 over 4 and 5, 1 over 2 and 3.
        let mut map = Map::default();
        let listing = [
            (1, vec![2, 3]),
            (2, vec![4, 5]),
            (3, vec![]),
            (4, vec![]),
            (5, vec![]),
        ];
        for (port, listed) in listing {
            map.peers
                .insert(a(port), peer(&format!("p{port}"), false, &listed));
        }
        let walk = map.spanning_tree(a(1));
        let nodes = boxes(&map, &walk);
        let index = nodes.iter().enumerate().map(|(i, n)| (n.addr, i)).collect();
        let tree = Tree::new(&walk, &index);
        let column = tree.place();
        let at = |port| column[index[&a(port)]];
        assert_eq!((at(4), at(5), at(3)), (0.0, 1.0, 2.0));
        assert_eq!(at(2), 0.5);
        assert_eq!(at(1), 1.25);
        assert_eq!(tree.depth[index[&a(5)]], 2);
    }

    #[test]
    fn a_link_outside_the_tree_is_a_curve_and_every_link_is_drawn_once() {
        // A triangle 1-2-3 (joins that raced) with 4 hanging off 3.
        let mut map = Map::default();
        for (port, listed) in [
            (1, vec![2, 3]),
            (2, vec![1, 3]),
            (3, vec![1, 2, 4]),
            (4, vec![3]),
        ] {
            map.peers
                .insert(a(port), peer(&format!("p{port}"), port == 3, &listed));
        }
        let svg = to_svg(&map, a(1));
        if let Ok(dir) = std::env::var("CPTP_MAP_SVG_DIR") {
            let _ = std::fs::write(format!("{dir}/cycle.svg"), &svg);
        }
        assert_eq!(svg.matches("class=\"link\"").count(), 4);
        assert_eq!(svg.matches(" C").count(), 1, "only 2-3 is outside the tree");
        assert_eq!(svg.matches("<g class=\"peer full\"").count(), 1);
    }

    #[test]
    fn text_is_escaped_and_cut() {
        assert_eq!(escape("<a & 'b'>"), "&lt;a &amp; &apos;b&apos;&gt;");
        assert_eq!(cut(&"x".repeat(50)).chars().count(), MAX_CHARS);
        let reason = "sent a bad message: wrong protocol version 2 (expected 7)";
        assert_eq!(
            wrap(reason, 2),
            [
                "sent a bad message: wrong protocol",
                "version 2 (expected 7)"
            ]
        );
        assert_eq!(wrap("a b", 2), ["a b"]);
        let long = wrap(&"word ".repeat(30), 2);
        assert_eq!(long.len(), 2);
        assert!(long[1].ends_with('…'));
    }
}
