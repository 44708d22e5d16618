//! The command line of `cptp`: the first word names the command, the rest is its own.

use crate::exit::USAGE;
use std::process::ExitCode;

const HELP: &str = "\
Usage: cptp COMMAND [OPTIONS]

The toolbox around cPTP peers.

Commands:
    probe HOST:PORT join a peer once and show its reply, decoded and in hex
    check ...       check any cPTP implementation against docs/PROTOCOL.md
    map HOST:PORT   crawl a running overlay and print (or draw) its links

Run 'cptp COMMAND --help' for the options of each command.
Example: cptp probe 127.0.0.1:39670
";

/// Runs the command `args` names (the program's name left out).
pub fn run(args: &[String]) -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let Some((command, rest)) = args.split_first() else {
        eprint!("cptp: no command given\n\n{HELP}");
        return ExitCode::from(USAGE);
    };
    match command.as_str() {
        "probe" => ExitCode::from(crate::probe::run(rest)),
        "check" => ExitCode::from(crate::check::run(rest)),
        "map" => ExitCode::from(crate::map::run(rest)),
        "-h" | "--help" | "help" => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        other => {
            eprint!("cptp: unknown command '{other}'\n\n{HELP}");
            ExitCode::from(USAGE)
        }
    }
}
