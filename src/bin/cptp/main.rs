//! `cptp`: the toolbox around the peer. Each subcommand is a module of its own:
//!
//! - `probe IP:PORT`: join a peer once and show its reply, decoded and in hex;
//! - `check`: grade any cPTP implementation against docs/PROTOCOL.md;
//! - `map IP:PORT`: crawl a running overlay and draw it.
//!
//! They speak cPTP through the library's `wire` and `reader` modules, the same code the peer
//! itself uses.

mod check;
mod map;
mod probe;
mod xml;

use std::process::ExitCode;

/// Exit status for a command line that cannot be run.
pub const USAGE_ERROR: u8 = 2;

const USAGE: &str = "\
Usage: cptp COMMAND [OPTIONS]

The toolbox around the cPTP peer.

Commands:
    probe HOST:PORT join a peer once and show its reply, decoded and in hex
    check ...       check any cPTP implementation against docs/PROTOCOL.md
    map HOST:PORT   crawl a running overlay and print (or draw) its links

Run 'cptp COMMAND --help' for the options of each command.
Example: cptp probe 127.0.0.1:39670
";

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("cptp: no command given\n\n{USAGE}");
        return ExitCode::from(USAGE_ERROR);
    };
    match command.as_str() {
        "probe" => probe::run(rest),
        "check" => check::run(rest),
        "map" => map::run(rest),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => {
            eprint!("cptp: unknown command '{other}'\n\n{USAGE}");
            ExitCode::from(USAGE_ERROR)
        }
    }
}
