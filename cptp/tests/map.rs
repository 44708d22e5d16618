//! `cptp map` against real overlays: 30 `peer` processes joined into one, whose true links
//! are read from what the peers print, and fake peers that misbehave.

use cptp::contract::{Kind, Message};
use cptp::harness::{Fake, PATIENCE, Process, Scratch, dead_address, hold_open, workspace_binary};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Link = (SocketAddrV4, SocketAddrV4);

fn link(a: SocketAddrV4, b: SocketAddrV4) -> Link {
    (a.min(b), a.max(b))
}

fn local(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
}

/// What one run of `cptp map` gave.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `cptp map ARGS` in `dir`, killing it if it is still running after a deadline.
fn cptp_map(dir: &Path, args: &[&str]) -> Run {
    let out = cptp::harness::run_bounded(
        Command::new(env!("CARGO_BIN_EXE_cptp"))
            .arg("map")
            .args(args)
            .current_dir(dir)
            .env_remove("RUST_LOG"),
        PATIENCE * 3,
    )
    .unwrap_or_else(|e| panic!("cptp map {args:?}: {e}"));
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A mapped peer: its ID, whether it was full, its neighbours.
#[derive(Debug)]
struct MappedPeer {
    id: String,
    full: bool,
    neighbours: BTreeSet<SocketAddrV4>,
}

/// The text output read back: peers, and each problem address with its line.
#[derive(Debug, Default)]
struct Mapped {
    peers: BTreeMap<SocketAddrV4, MappedPeer>,
    problems: BTreeMap<SocketAddrV4, String>,
}

impl Mapped {
    fn parse(text: &str) -> Mapped {
        let mut mapped = Mapped::default();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix("! ") {
                let (addr, what) = rest.split_once(' ').expect("problem line");
                mapped
                    .problems
                    .insert(addr.parse().expect("problem address"), what.to_string());
                continue;
            }
            let (node, list) = line.split_once(" ->").expect("peer line");
            let (node, full) = match node.strip_suffix(" (full)") {
                Some(node) => (node, true),
                None => (node, false),
            };
            let (id, addr) = node.rsplit_once(' ').expect("ID and address");
            let neighbours = list
                .split(", ")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().expect("neighbour address"))
                .collect();
            let peer = MappedPeer {
                id: id.to_string(),
                full,
                neighbours,
            };
            mapped.peers.insert(addr.parse().expect("address"), peer);
        }
        mapped
    }

    fn links(&self) -> BTreeSet<Link> {
        let mut links = BTreeSet::new();
        for (&a, peer) in &self.peers {
            for &b in &peer.neighbours {
                links.insert(link(a, b));
            }
        }
        links
    }
}

/// Each peer's table as its own stdout tells it (PROTOCOL 5.1, 5.4, 6.2).
fn tables_from_output(peers: &[Process]) -> BTreeMap<SocketAddrV4, BTreeSet<SocketAddrV4>> {
    let mut tables = BTreeMap::new();
    for peer in peers {
        let mut table = BTreeSet::new();
        for line in &peer.seen {
            if let Some(from) = line.strip_prefix("Connected from peer ") {
                table.insert(from.parse().expect("joiner address"));
            } else if let Some(rest) = line.strip_prefix("Connected to peer ") {
                let (who, _) = rest.split_once(" at timestamp:").expect("timestamp");
                let (_, port) = who.rsplit_once(':').expect("ID:PORT");
                table.insert(local(port.parse().expect("port")));
            } else if let Some(rest) = line.strip_prefix("Peer ")
                && let Some(gone) = rest.strip_suffix(" left")
            {
                table.remove(&gone.parse().expect("address that left"));
            }
        }
        tables.insert(peer.addr, table);
    }
    tables
}

/// A small fixed pseudo-random sequence, so that a failing overlay can be built again.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Starts `count` peers in folders `p1-S`, `p2-S`, ... with table sizes 2 or 3, each
/// joining a random earlier one, and waits until each join is seen on both sides.
/// Returns the peers and each one's table size.
fn start_overlay(
    scratch: &Scratch,
    count: usize,
    seed: u64,
) -> (Vec<Process>, BTreeMap<SocketAddrV4, usize>) {
    let mut random = Lcg(seed);
    let mut peers: Vec<Process> = Vec::new();
    let mut sizes = BTreeMap::new();
    for k in 1..=count {
        let size = 2 + random.below(2);
        let name = format!("p{k}-{size}");
        if peers.is_empty() {
            let first = scratch.start(&name, &[]);
            sizes.insert(first.addr, size);
            peers.push(first);
            continue;
        }
        let target = peers[random.below(peers.len())].addr.to_string();
        let mut joiner = scratch.start(&name, &["-p", &target]);
        let result = joiner.wait_for("the end of its join", |l| {
            l.starts_with("Connected to peer ") || l.starts_with("No peer accepted")
        });
        if let Some(rest) = result.strip_prefix("Connected to peer ") {
            let (who, _) = rest.split_once(" at timestamp:").expect("timestamp");
            let port: u16 = who.rsplit_once(':').expect("ID:PORT").1.parse().unwrap();
            let accepted = format!("Connected from peer {}", joiner.addr);
            let acceptor = peers
                .iter_mut()
                .find(|p| p.addr.port() == port)
                .expect("the peer that accepted");
            acceptor.wait_for(&accepted, |l| l == accepted);
        }
        sizes.insert(joiner.addr, size);
        peers.push(joiner);
    }
    (peers, sizes)
}

/// The peers reachable from `start` over `links`.
fn component(start: SocketAddrV4, links: &BTreeSet<Link>) -> BTreeSet<SocketAddrV4> {
    let mut reached = BTreeSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        for &(a, b) in links {
            let other = if a == at {
                b
            } else if b == at {
                a
            } else {
                continue;
            };
            if reached.insert(other) {
                queue.push_back(other);
            }
        }
    }
    reached
}

#[test]
fn a_30_peer_overlay_is_mapped_exactly_as_its_peers_tell_it() {
    let scratch = Scratch::new(workspace_binary("peer"));
    let (mut peers, sizes) = start_overlay(&scratch, 30, 7);

    // Take out one peer with several links, so that its neighbours print "left" and
    // the overlay falls apart: the map must show exactly the part the first peer is in.
    let tables = tables_from_output(&peers);
    let victim = (1..peers.len())
        .max_by_key(|&i| tables[&peers[i].addr].len())
        .unwrap();
    let gone = peers[victim].addr;
    peers[victim].kill();
    for neighbour in &tables[&gone] {
        let left = format!("Peer {gone} left");
        let peer = peers.iter_mut().find(|p| p.addr == *neighbour).unwrap();
        peer.wait_for(&left, |l| l == left);
    }
    let mut tables = tables_from_output(&peers);
    tables.remove(&gone);
    // Both sides of every link say so, or the overlay is not settled.
    let mut links = BTreeSet::new();
    for (&a, table) in &tables {
        for &b in table {
            assert!(tables[&b].contains(&a), "{a} lists {b} but not the reverse");
            links.insert(link(a, b));
        }
    }
    let first = peers[0].addr;
    let expected = component(first, &links);
    let expected_links: BTreeSet<Link> = links
        .iter()
        .filter(|(a, _)| expected.contains(a))
        .copied()
        .collect();
    assert!(expected.len() > 3, "too little left to map: {expected:?}");

    let dir = scratch.folder("map");
    let target = first.to_string();
    let run = cptp_map(
        &dir,
        &[
            &target, "--dot", "map.dot", "--svg", "map.svg", "--json", "map.json", "-j", "4",
        ],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let mapped = Mapped::parse(&run.stdout);
    assert!(mapped.problems.is_empty(), "{}", run.stdout);
    assert_eq!(
        mapped.peers.keys().copied().collect::<BTreeSet<_>>(),
        expected,
        "{}",
        run.stdout
    );
    assert_eq!(mapped.links(), expected_links, "{}", run.stdout);
    for (addr, peer) in &mapped.peers {
        let process = peers.iter().find(|p| p.addr == *addr).unwrap();
        assert_eq!(peer.id, process.id);
        let size = sizes[addr];
        assert_eq!(
            peer.full,
            tables[addr].len() == size,
            "{addr} ({}) has {} of {size} slots used",
            peer.id,
            tables[addr].len()
        );
    }
    let summary = run.stdout.lines().next().unwrap();
    assert!(
        summary.starts_with(&format!(
            "# {} peers ({} full), {} links; 0 unreachable, 0 misbehaving, 0 not visited; {} joins in ",
            expected.len(),
            mapped.peers.values().filter(|p| p.full).count(),
            expected_links.len(),
            expected.len()
        )),
        "{summary}"
    );

    check_json(&dir.join("map.json"), &mapped);
    check_dot(&dir.join("map.dot"), &mapped);
    check_svg(&dir.join("map.svg"), &mapped);
    // Kept for a person to look at (`rsvg-convert target/tmp/map-30-peers.svg > x.png`).
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("map-30-peers.svg");
    let _ = std::fs::copy(dir.join("map.svg"), keep);
    println!("{}", run.stdout);
    for peer in &mut peers[..victim] {
        assert!(peer.is_running(), "{} stopped", peer.id);
    }
}

/// The JSON says what the text says: the same peers, IDs, full flags, links, problems.
fn check_json(path: &Path, mapped: &Mapped) {
    let text = std::fs::read_to_string(path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let addr = |v: &serde_json::Value| -> SocketAddrV4 { v.as_str().unwrap().parse().unwrap() };
    let peers = json["peers"].as_array().unwrap();
    assert_eq!(peers.len(), mapped.peers.len());
    for peer in peers {
        let at = addr(&peer["addr"]);
        let expected = &mapped.peers[&at];
        assert_eq!(peer["id"].as_str(), Some(expected.id.as_str()));
        assert_eq!(peer["full"].as_bool(), Some(expected.full));
        let linked: BTreeSet<SocketAddrV4> = peer["linked"]
            .as_array()
            .unwrap()
            .iter()
            .map(addr)
            .collect();
        assert_eq!(linked, expected.neighbours);
    }
    let links: BTreeSet<Link> = json["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| link(addr(&pair[0]), addr(&pair[1])))
        .collect();
    assert_eq!(links, mapped.links());
    let problems: BTreeMap<SocketAddrV4, String> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let line = format!(
                "{}: {}",
                p["kind"].as_str().unwrap(),
                p["reason"].as_str().unwrap()
            );
            (addr(&p["addr"]), line)
        })
        .collect();
    for (at, line) in &mapped.problems {
        assert!(
            line.starts_with(&problems[at]),
            "{line} vs {}",
            problems[at]
        );
    }
    assert_eq!(problems.len(), mapped.problems.len());
}

/// One node statement per peer, one edge statement per link.
fn check_dot(path: &Path, mapped: &Mapped) {
    let dot = std::fs::read_to_string(path).unwrap();
    assert!(dot.contains("graph cptp {") && dot.trim_end().ends_with('}'));
    let nodes: BTreeSet<SocketAddrV4> = dot
        .lines()
        .filter(|l| l.contains(" [label="))
        .map(|l| l.trim().trim_start_matches('"').split('"').next().unwrap())
        .map(|addr| addr.parse().expect("node name is an address"))
        .collect();
    assert_eq!(nodes, mapped.peers.keys().copied().collect::<BTreeSet<_>>());
    let edges: Vec<Link> = dot
        .lines()
        .filter_map(|l| l.trim().split_once(" -- "))
        .map(|(a, b)| {
            let a = a.trim_matches('"').parse().unwrap();
            let b = b.split('"').nth(1).unwrap().parse().unwrap();
            link(a, b)
        })
        .collect();
    assert_eq!(edges.len(), mapped.links().len(), "a link drawn twice");
    assert_eq!(edges.into_iter().collect::<BTreeSet<_>>(), mapped.links());
    let full = dot.matches("peripheries=2").count();
    assert_eq!(full, mapped.peers.values().filter(|p| p.full).count());
}

/// Well-formed XML; one box per peer, full ones marked; one line per link.
fn check_svg(path: &Path, mapped: &Mapped) {
    let text = std::fs::read_to_string(path).unwrap();
    let svg = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    assert_eq!(svg.root_element().tag_name().name(), "svg");
    let class = |node: &roxmltree::Node, name: &str| {
        node.attribute("class")
            .is_some_and(|c| c.split(' ').any(|word| word == name))
    };
    let boxes: BTreeMap<SocketAddrV4, bool> = svg
        .descendants()
        .filter(|n| n.tag_name().name() == "g" && class(n, "peer"))
        .map(|n| {
            let addr = n.attribute("data-addr").unwrap().parse().unwrap();
            (addr, class(&n, "full"))
        })
        .collect();
    let count = svg
        .descendants()
        .filter(|n| n.tag_name().name() == "g" && class(n, "peer"))
        .count();
    assert_eq!(count, mapped.peers.len(), "one box per peer");
    let expected: BTreeMap<SocketAddrV4, bool> =
        mapped.peers.iter().map(|(a, p)| (*a, p.full)).collect();
    assert_eq!(boxes, expected);
    for (addr, peer) in &mapped.peers {
        let label = svg
            .descendants()
            .any(|n| n.tag_name().name() == "text" && n.text() == Some(&addr.to_string()));
        assert!(label, "no label for {} {addr}", peer.id);
    }
    let lines: Vec<Link> = svg
        .descendants()
        .filter(|n| n.tag_name().name() == "path" && class(n, "link"))
        .map(|n| {
            let a = n.attribute("data-from").unwrap().parse().unwrap();
            let b = n.attribute("data-to").unwrap().parse().unwrap();
            link(a, b)
        })
        .collect();
    assert_eq!(lines.len(), mapped.links().len(), "a link drawn twice");
    assert_eq!(lines.into_iter().collect::<BTreeSet<_>>(), mapped.links());
}

/// A fake full peer whose Redirect lists `listed`, for every connection.
fn redirecting(id: &str, listed: Vec<SocketAddrV4>) -> Fake {
    let reply = Message::new(Kind::Redirect, id, listed).encode();
    Fake::replying(reply)
}

#[test]
fn unreachable_and_misbehaving_peers_are_reported_with_the_reason() {
    let scratch = Scratch::new(workspace_binary("peer"));
    let real = scratch.start("real-2", &[]);
    let garbage = Fake::replying(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec());
    let silent = Fake::serve(hold_open);
    let hangs_up = Fake::serve(drop);
    let nobody = dead_address();
    let fake = redirecting(
        "liar",
        vec![real.addr, garbage.addr, nobody, silent.addr, hangs_up.addr],
    );
    let dir = scratch.folder("map");
    let target = fake.addr.to_string();
    let run = cptp_map(
        &dir,
        &[
            &target,
            "--reply-timeout",
            "0.5",
            "--svg",
            "m.svg",
            "--json",
            "m.json",
        ],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let mapped = Mapped::parse(&run.stdout);
    assert_eq!(mapped.peers.len(), 2, "{}", run.stdout);
    assert!(mapped.peers[&fake.addr].full);
    assert_eq!(mapped.peers[&fake.addr].id, "liar");
    assert_eq!(mapped.peers[&real.addr].id, "real");
    assert_eq!(mapped.links(), BTreeSet::from([link(fake.addr, real.addr)]));
    let by = format!("(listed by {})", fake.addr);
    let problem = |addr: SocketAddrV4, starts: &str, has: &str| {
        let line = mapped.problems.get(&addr).unwrap_or_else(|| {
            panic!("{addr} not reported: {}", run.stdout);
        });
        assert!(
            line.starts_with(starts) && line.contains(has) && line.ends_with(&by),
            "{addr}: {line}"
        );
    };
    problem(nobody, "unreachable: ", "connection refused");
    problem(
        garbage.addr,
        "misbehaving: ",
        "version 2 where the contract has 7",
    );
    problem(silent.addr, "misbehaving: ", "no reply within 0.5 s");
    problem(
        hangs_up.addr,
        "misbehaving: ",
        "closed the connection without replying",
    );
    assert_eq!(mapped.problems.len(), 4);
    check_json(&dir.join("m.json"), &mapped);

    let text = std::fs::read_to_string(dir.join("m.svg")).unwrap();
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("map-problems.svg");
    let _ = std::fs::write(keep, &text);
    println!("{}", run.stdout);
    let svg = roxmltree::Document::parse(&text).expect("well-formed");
    let dashed = svg
        .descendants()
        .filter(|n| n.attribute("class") == Some("problem"))
        .count();
    assert_eq!(dashed, 4);
}

#[test]
fn the_crawlers_own_connections_are_never_peers() {
    // The first fake notes the address the crawler connects from and redirects it to the
    // second, which lists that address (as if the crawler were linked to it) and the first.
    let crawler: Arc<Mutex<Option<SocketAddrV4>>> = Arc::default();
    let noted = Arc::clone(&crawler);
    let second = Arc::new(Mutex::new(None::<SocketAddrV4>));
    let second_addr = Arc::clone(&second);
    let first = Fake::serve(move |mut stream| {
        if let Ok(SocketAddr::V4(from)) = stream.peer_addr() {
            *noted.lock().unwrap() = Some(from);
        }
        let to = second_addr.lock().unwrap().expect("second fake started");
        let reply = Message::new(Kind::Redirect, "first", vec![to]);
        let _ = stream.write_all(&reply.encode());
        hold_open(stream);
    });
    let first_addr = first.addr;
    let lister = Fake::serve(move |mut stream| {
        let seen = crawler
            .lock()
            .unwrap()
            .expect("the crawler joined the first fake");
        let reply = Message::new(Kind::Welcome, "second", vec![seen, first_addr]);
        let _ = stream.write_all(&reply.encode());
        hold_open(stream);
    });
    *second.lock().unwrap() = Some(lister.addr);

    let scratch = Scratch::new(workspace_binary("peer"));
    let target = first.addr.to_string();
    let run = cptp_map(&scratch.folder("map"), &[&target]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let mapped = Mapped::parse(&run.stdout);
    assert!(mapped.problems.is_empty(), "{}", run.stdout);
    assert_eq!(
        mapped.links(),
        BTreeSet::from([link(first.addr, lister.addr)]),
        "{}",
        run.stdout
    );
}

#[test]
fn limits_leave_addresses_not_visited() {
    let listed: Vec<SocketAddrV4> = (0..3).map(|_| dead_address()).collect();
    let fake = redirecting("wide", listed.clone());
    let scratch = Scratch::new(workspace_binary("peer"));
    let target = fake.addr.to_string();
    let run = cptp_map(&scratch.folder("map"), &[&target, "--max-peers", "2"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mapped = Mapped::parse(&run.stdout);
    assert!(mapped.problems[&listed[0]].starts_with("unreachable"));
    for addr in &listed[1..] {
        assert!(
            mapped.problems[addr].starts_with("not visited: --max-peers 2"),
            "{}",
            run.stdout
        );
    }
    assert!(run.stdout.lines().next().unwrap().contains("2 joins"));
}

#[test]
fn a_start_that_does_not_answer_fails_and_help_explains() {
    let scratch = Scratch::new(workspace_binary("peer"));
    let dir = scratch.folder("map");
    let nobody = dead_address().to_string();
    let run = cptp_map(&dir, &[&nobody]);
    assert_eq!(run.code, Some(1));
    assert!(run.stdout.contains(&format!("! {nobody} unreachable")));
    assert!(run.stderr.contains("did not answer"), "{}", run.stderr);

    let help = cptp_map(&dir, &["--help"]);
    assert_eq!(help.code, Some(0));
    for option in [
        "--max-peers",
        "--timeout",
        "--connect-timeout",
        "--reply-timeout",
        "--jobs",
        "--delay",
        "--dot",
        "--svg",
        "--json",
        "Examples:",
    ] {
        assert!(help.stdout.contains(option), "help lacks {option}");
    }
    for bad in [&["-j", "0", "127.0.0.1:1"][..], &[], &["127.0.0.1:0"]] {
        let run = cptp_map(&dir, bad);
        assert_eq!(run.code, Some(2), "{bad:?}");
    }
}

#[test]
fn delay_spaces_the_joins_and_timeout_ends_the_crawl() {
    let listed: Vec<SocketAddrV4> = (0..4).map(|_| dead_address()).collect();
    let fake = redirecting("slow", listed.clone());
    let scratch = Scratch::new(workspace_binary("peer"));
    let target = fake.addr.to_string();
    let clock = Instant::now();
    let run = cptp_map(
        &scratch.folder("map"),
        &[&target, "-j", "4", "--delay", "400", "--timeout", "0.6"],
    );
    let took = clock.elapsed();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // Joins start at 0 and 0.4 s; the next would start at 0.8 s, after the deadline.
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let mapped = Mapped::parse(&run.stdout);
    assert!(mapped.problems[&listed[0]].starts_with("unreachable"));
    for addr in &listed[1..] {
        assert_eq!(
            mapped.problems[addr],
            format!(
                "not visited: the crawl's --timeout of 0.6 s ran out first (listed by {})",
                fake.addr
            ),
            "{}",
            run.stdout
        );
    }
    let summary = run.stdout.lines().next().unwrap();
    let (_, seconds) = summary.split_once("; 2 joins in ").expect(summary);
    let seconds: f64 = seconds.trim_end_matches(" s").parse().unwrap();
    // The crawl lasts until its deadline: the third join was waiting for its turn.
    assert!((0.6..3.0).contains(&seconds), "{summary}");
}
