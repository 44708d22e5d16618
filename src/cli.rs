//! The command line of PROTOCOL 2.
//!
//! The course runs one copy of the peer per folder, named `ID-SIZE` (`peer1-2`), so the ID
//! and the table size come from the current folder's name unless `-i` or `-n` says
//! otherwise.

use crate::node::Config;
use crate::wire::{MAX_ID_LEN, MAX_PEERS, check_id};
use getopts::Options;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// The table size when the folder name does not give one.
pub const DEFAULT_TABLE_SIZE: usize = 2;

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Run a peer. `warnings` are to be shown once logging is up.
    Run {
        config: Config,
        warnings: Vec<String>,
    },
    /// Print the usage and exit.
    Help,
}

/// A command line that cannot be run, with the reason in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn options() -> Options {
    let mut opts = Options::new();
    opts.optopt(
        "p",
        "peer",
        "join the peer at this address first",
        "IP:PORT",
    );
    opts.optopt(
        "n",
        "max-peers",
        "table size, 1 to 8191 (default: from the folder)",
        "SIZE",
    );
    opts.optopt(
        "i",
        "id",
        "peer ID, 1 to 255 bytes (default: from the folder)",
        "ID",
    );
    opts.optopt(
        "b",
        "bind",
        "IPv4 address to listen on (default 127.0.0.1)",
        "IP",
    );
    opts.optflag("h", "help", "print this help");
    opts
}

/// The usage text, for `-h` and after an error.
pub fn usage() -> String {
    let brief = "Usage: peer [-p <peerIP>:<port>] [-n <table size>] [-i <peer id>] [-b <bind IP>] [-h]\n\n\
        A cPTP peer: listens on a port the kernel picks and, with -p, joins another peer.\n\
        Run it in a folder named ID-SIZE (e.g. peer1-2) to take the ID and table size from it.";
    options().usage(brief)
}

/// Parses the arguments after the program name. `folder` is the name of the current
/// directory, used for the ID and the table size when the flags do not give them.
pub fn parse<S: AsRef<str>>(args: &[S], folder: &str) -> Result<Command, UsageError> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let matches = options()
        .parse(&args)
        .map_err(|e| UsageError(e.to_string()))?;
    if matches.opt_present("h") {
        return Ok(Command::Help);
    }
    if let Some(extra) = matches.free.first() {
        return Err(UsageError(format!("unexpected argument '{extra}'")));
    }

    let join = matches.opt_str("p").map(|s| parse_peer(&s)).transpose()?;
    let bind = match matches.opt_str("b") {
        Some(s) => s
            .parse::<Ipv4Addr>()
            .map_err(|_| UsageError(format!("-b wants an IPv4 address, not '{s}'")))?,
        None => Ipv4Addr::LOCALHOST,
    };
    let table_size = matches.opt_str("n").map(|s| parse_size(&s)).transpose()?;
    let id = matches.opt_str("i");
    if let Some(id) = &id {
        check_id(id).map_err(|_| {
            UsageError(format!(
                "-i wants an ID of 1 to {MAX_ID_LEN} bytes, not {} bytes",
                id.len()
            ))
        })?;
    }

    let mut warnings = Vec::new();
    let (id, table_size) = match (id, table_size) {
        (Some(id), Some(size)) => (id, size),
        (id, size) => {
            let from_folder = split_folder_name(folder);
            if from_folder.is_none() {
                warnings.push(format!(
                    "folder name '{folder}' is not ID-SIZE (like peer1-2); using ID '{}' and table size {}",
                    id.as_deref().unwrap_or(folder),
                    size.unwrap_or(DEFAULT_TABLE_SIZE)
                ));
            }
            let (folder_id, folder_size) =
                from_folder.unwrap_or((folder.to_string(), DEFAULT_TABLE_SIZE));
            (id.unwrap_or(folder_id), size.unwrap_or(folder_size))
        }
    };
    if check_id(&id).is_err() {
        return Err(UsageError(format!(
            "the folder name gives no usable peer ID ({} bytes); give one with -i",
            id.len()
        )));
    }

    Ok(Command::Run {
        config: Config {
            join,
            id,
            table_size,
            bind,
        },
        warnings,
    })
}

/// Splits `peer1-2` at the last dash into ID `peer1` and size 2; `None` if it does not fit.
pub fn split_folder_name(folder: &str) -> Option<(String, usize)> {
    let (id, size) = folder.rsplit_once('-')?;
    let size: usize = size.parse().ok()?;
    if check_id(id).is_err() || !(1..=MAX_PEERS).contains(&size) {
        return None;
    }
    Some((id.to_string(), size))
}

fn parse_size(s: &str) -> Result<usize, UsageError> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_PEERS).contains(&n) => Ok(n),
        _ => Err(UsageError(format!(
            "-n wants a table size from 1 to {MAX_PEERS}, not '{s}'"
        ))),
    }
}

/// Parses the `-p` target: an IPv4 address (or `localhost`) and a port, not 0.
pub fn parse_peer(s: &str) -> Result<SocketAddrV4, UsageError> {
    let bad = |why: &str| UsageError(format!("-p wants IP:PORT, but '{s}' {why}"));
    if let Ok(SocketAddr::V6(_)) = s.parse::<SocketAddr>() {
        return Err(bad("is IPv6; cPTP carries IPv4 addresses only"));
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("has no ':PORT'"))?;
    let ip = match host {
        "localhost" => Ipv4Addr::LOCALHOST,
        _ => host
            .parse::<Ipv4Addr>()
            .map_err(|_| bad("does not start with an IPv4 address"))?,
    };
    let port = match port.parse::<u16>() {
        Ok(0) | Err(_) => return Err(bad("has no port from 1 to 65535")),
        Ok(port) => port,
    };
    Ok(SocketAddrV4::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], folder: &str) -> (Config, Vec<String>) {
        match parse(args, folder) {
            Ok(Command::Run { config, warnings }) => (config, warnings),
            other => panic!("{args:?} in {folder}: {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match parse(args, "peer1-2") {
            Err(UsageError(message)) => message,
            other => panic!("{args:?} accepted: {other:?}"),
        }
    }

    #[test]
    fn id_and_size_come_from_the_folder() {
        let (config, warnings) = run(&[], "peer1-2");
        assert_eq!((config.id.as_str(), config.table_size), ("peer1", 2));
        assert!(warnings.is_empty());
        assert_eq!(config.bind, Ipv4Addr::LOCALHOST);
        assert_eq!(config.join, None);
    }

    #[test]
    fn the_folder_splits_at_the_last_dash() {
        let (config, _) = run(&[], "my-peer-5");
        assert_eq!((config.id.as_str(), config.table_size), ("my-peer", 5));
    }

    #[test]
    fn a_folder_that_does_not_fit_warns_and_uses_defaults() {
        for folder in ["work", "peer1-", "peer1-0", "peer1-x", "-3", "peer-9000"] {
            let (config, warnings) = run(&[], folder);
            assert_eq!(config.id, folder);
            assert_eq!(config.table_size, DEFAULT_TABLE_SIZE);
            assert_eq!(warnings.len(), 1, "{folder}");
        }
    }

    #[test]
    fn flags_override_the_folder() {
        let args = [
            "-i",
            "alice",
            "-n",
            "7",
            "-p",
            "127.0.0.1:4000",
            "-b",
            "0.0.0.0",
        ];
        let (config, warnings) = run(&args, "work");
        assert_eq!(config.id, "alice");
        assert_eq!(config.table_size, 7);
        assert_eq!(config.join, Some("127.0.0.1:4000".parse().unwrap()));
        assert_eq!(config.bind, Ipv4Addr::UNSPECIFIED);
        assert!(warnings.is_empty(), "both given: the folder is not used");
        let long = ["--id", "bob", "--max-peers", "3", "--peer", "localhost:9"];
        let (config, _) = run(&long, "peer1-2");
        assert_eq!((config.id.as_str(), config.table_size), ("bob", 3));
        assert_eq!(config.join, Some("127.0.0.1:9".parse().unwrap()));
    }

    #[test]
    fn help_is_a_command() {
        assert_eq!(parse(&["-h"], "x"), Ok(Command::Help));
        assert_eq!(parse(&["--help"], "x"), Ok(Command::Help));
        assert!(usage().contains("--max-peers"));
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        assert!(error(&["-p", "127.0.0.1"]).contains("no ':PORT'"));
        assert!(error(&["-p", "[::1]:4000"]).contains("IPv6"));
        assert!(error(&["-p", "::1:4000"]).contains("IPv4"));
        assert!(error(&["-p", "1.2.3:80"]).contains("IPv4"));
        assert!(error(&["-p", "127.0.0.1:0"]).contains("port"));
        assert!(error(&["-p", "127.0.0.1:70000"]).contains("port"));
        assert!(error(&["-n", "0"]).contains("1 to 8191"));
        assert!(error(&["-n", "8192"]).contains("1 to 8191"));
        assert!(error(&["-n", "two"]).contains("1 to 8191"));
        assert!(error(&["-i", ""]).contains("1 to 255"));
        assert!(error(&["-i", &"x".repeat(256)]).contains("1 to 255"));
        assert!(error(&["-b", "::"]).contains("IPv4"));
        assert!(error(&["-x"]).contains("x"));
        assert!(error(&["stray"]).contains("stray"));
    }
}
