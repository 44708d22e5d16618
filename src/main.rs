//! The `peer` binary: parse the command line, run the peer, map failures to an exit status.

use peer::cli::{self, Command};
use peer::joiner::JoinLimits;
use peer::node::Node;
use peer::sockets;
use std::process::ExitCode;

/// Exit status for a command line that cannot be run.
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args, &current_folder_name()) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("peer: {e}\n\n{}", cli::usage());
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let (config, warnings) = match command {
        Command::Help => {
            print!("{}", cli::usage());
            return ExitCode::SUCCESS;
        }
        Command::Run { config, warnings } => (config, warnings),
    };
    for warning in warnings {
        log::warn!("{warning}");
    }
    // A loopback listener cannot join another machine: say so now rather than run alone.
    if let Some(advice) = config
        .join
        .and_then(|target| sockets::bind_advice(config.bind, *target.ip()))
    {
        eprintln!("peer: {advice}");
        return ExitCode::from(USAGE_ERROR);
    }
    match Node::bind(&config, JoinLimits::default()).and_then(Node::run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The name of the current directory, where the course keeps the ID and table size.
fn current_folder_name() -> String {
    std::env::current_dir()
        .ok()
        .and_then(|dir| {
            dir.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_default()
}
