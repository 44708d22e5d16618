//! `cptp map IP:PORT`: crawl a running overlay through the protocol itself and print (and
//! draw) its links.
//!
//! - [`crawl`]: joining each peer once, breadth first, within limits;
//! - [`graph`]: what was found, the link rule, and the text output;
//! - [`dot`], [`svg`] and [`json`]: the same graph for Graphviz, as a picture, for scripts.

mod crawl;
mod dot;
mod graph;
mod json;
mod svg;

use crate::exit::{FAILURE, SUCCESS, USAGE};
use crawl::Limits;
use getopts::{Matches, Options};
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::Duration;

const BRIEF: &str = "\
Usage: cptp map HOST:PORT [OPTIONS]

Maps the cPTP overlay that the peer at HOST:PORT (an IPv4 address or a host name)
belongs to, through the protocol itself: joins each peer once, reads the table its
reply lists (a Welcome lists the table, a Redirect the whole table), closes the
connection at once, and goes on to every peer listed, breadth first, each address once.

Prints a summary line (#), then one line per peer, 'ID IP:PORT -> linked peers', with
'(full)' after a peer that answered with a Redirect, then one line (!) per address that
was listed but could not be mapped, with the reason. Two peers are linked if either
lists the other. The crawler's own connections are never taken for peers.

The peers see every join: one with room prints 'Connected from peer ...' and, a moment
later, 'Peer ... left'; a full one prints 'Peer table full: ... redirected'. On a
network others use, slow the crawl down with -j 1 and --delay.";

const EXAMPLES: &str = "
Examples:
    cptp map 127.0.0.1:39670
    cptp map 127.0.0.1:39670 --svg overlay.svg --dot overlay.dot --json overlay.json
    cptp map 127.0.0.1:39670 -j 1 --delay 200     # gently: at most 5 joins a second

Exit status: 0 when the first peer answered, 1 when it did not (or a file could not be
written), 2 for a bad command line.
";

fn options() -> Options {
    let mut opts = Options::new();
    opts.optopt(
        "n",
        "max-peers",
        "join at most N addresses, the first included (default 1000; e.g. -n 50)",
        "N",
    );
    opts.optopt(
        "t",
        "timeout",
        "end the whole crawl after SECS seconds; what was not joined by then is listed as not visited (default 30; e.g. -t 5)",
        "SECS",
    );
    opts.optopt(
        "",
        "connect-timeout",
        "give up connecting to one address after SECS seconds (default 3; e.g. --connect-timeout 0.5)",
        "SECS",
    );
    opts.optopt(
        "",
        "reply-timeout",
        "give up on one peer's reply after SECS seconds (default 5; e.g. --reply-timeout 1)",
        "SECS",
    );
    opts.optopt(
        "j",
        "jobs",
        "joins under way at once, 1 to 64 (default 64; -j 1 with --delay to be gentle)",
        "N",
    );
    opts.optopt(
        "d",
        "delay",
        "wait MS milliseconds between the starts of two joins, over all jobs (default 0; e.g. --delay 200)",
        "MS",
    );
    opts.optopt(
        "",
        "dot",
        "also write the graph in Graphviz DOT to FILE (e.g. --dot overlay.dot)",
        "FILE",
    );
    opts.optopt(
        "",
        "svg",
        "also draw the graph as an SVG picture in FILE (e.g. --svg overlay.svg)",
        "FILE",
    );
    opts.optopt(
        "",
        "json",
        "also write the map as JSON to FILE, for scripts (e.g. --json overlay.json)",
        "FILE",
    );
    opts.optflag("h", "help", "print this help");
    opts
}

/// Draws a map in one file format; only the formats asked for are drawn.
type Draw = fn(&graph::Map, SocketAddrV4) -> String;

/// What the command line asks for.
struct Request {
    start: SocketAddrV4,
    limits: Limits,
    dot: Option<PathBuf>,
    svg: Option<PathBuf>,
    json: Option<PathBuf>,
}

/// Runs `cptp map` with `args`; returns the exit status.
pub fn run(args: &[String]) -> u8 {
    let opts = options();
    let usage = || format!("{}{EXAMPLES}", opts.usage(BRIEF));
    let request = match opts.parse(args) {
        Ok(m) if m.opt_present("h") => {
            print!("{}", usage());
            return SUCCESS;
        }
        Ok(m) => parse(&m),
        Err(e) => Err(e.to_string()),
    };
    let request = match request {
        Ok(request) => request,
        Err(e) => {
            eprint!("cptp map: {e}\n\n{}", usage());
            return USAGE;
        }
    };
    let map = crawl::crawl(request.start, &request.limits);
    print!("{}", map.to_text(request.start));
    let mut status = if map.peers.contains_key(&request.start) {
        SUCCESS
    } else {
        eprintln!(
            "cptp map: the first peer, {}, did not answer",
            request.start
        );
        FAILURE
    };
    let drawings: [(Option<PathBuf>, Draw); 3] = [
        (request.dot, dot::to_dot),
        (request.svg, svg::to_svg),
        (request.json, json::to_json),
    ];
    for (path, draw) in drawings {
        if let Some(path) = path
            && let Err(e) = std::fs::write(&path, draw(&map, request.start))
        {
            eprintln!("cptp map: cannot write {}: {e}", path.display());
            status = FAILURE;
        }
    }
    status
}

fn parse(m: &Matches) -> Result<Request, String> {
    let start = match m.free.as_slice() {
        [target] => crate::hostport::parse(target).map_err(|e| format!("the target {e}"))?,
        [] => return Err("wants the HOST:PORT of a peer to start from".into()),
        more => return Err(format!("wants one HOST:PORT, not {}", more.join(" "))),
    };
    let limits = Limits {
        max_peers: number(m, "max-peers", 1000, 1..=1_000_000)?,
        timeout: seconds(m, "timeout", 30.0)?,
        connect_timeout: seconds(m, "connect-timeout", 3.0)?,
        reply_timeout: seconds(m, "reply-timeout", 5.0)?,
        jobs: number(m, "jobs", 64, 1..=64)?,
        delay: Duration::from_millis(number(m, "delay", 0, 0..=60_000)? as u64),
    };
    Ok(Request {
        start,
        limits,
        dot: m.opt_str("dot").map(PathBuf::from),
        svg: m.opt_str("svg").map(PathBuf::from),
        json: m.opt_str("json").map(PathBuf::from),
    })
}

/// A whole-number option within `range`, or its default.
fn number(
    m: &Matches,
    name: &str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, String> {
    let Some(text) = m.opt_str(name) else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "--{name} wants a whole number from {} to {}, not '{text}'",
            range.start(),
            range.end()
        )),
    }
}

/// A duration in seconds (decimals allowed), more than 0 and at most a day, or its default.
fn seconds(m: &Matches, name: &str, default: f64) -> Result<Duration, String> {
    let text = m.opt_str(name);
    let value = match &text {
        None => default,
        Some(text) => text.parse::<f64>().unwrap_or(f64::NAN),
    };
    if value > 0.0 && value <= 86_400.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!(
            "--{name} wants seconds, more than 0 and at most 86400, not '{}'",
            text.unwrap_or_default()
        ))
    }
}
