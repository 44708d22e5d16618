//! The command line of PROTOCOL 2.
//!
//! The course runs one copy of the peer per folder, named `ID-SIZE` (`peer1-2`), so the ID
//! and the table size come from the current folder's name unless `-i` or `-n` says
//! otherwise.
//!
//! A `-p` host name is resolved here, once, by a function the caller passes in: the
//! binary passes [`resolve_host`], the tests a table of their own.

use crate::node::Config;
use crate::wire::{MAX_ID_LEN, MAX_PEERS, check_id};
use getopts::Options;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};

/// Turns a host name into its first IPv4 address, or `None` if it has none.
pub type Resolve<'a> = &'a dyn Fn(&str) -> Option<Ipv4Addr>;

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
        "join this peer first (an IPv4 address or a host name)",
        "HOST:PORT",
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
/// A `-p` host name is looked up with the system's resolver.
pub fn parse<S: AsRef<str>>(args: &[S], folder: &str) -> Result<Command, UsageError> {
    parse_with(args, folder, &resolve_host)
}

/// [`parse`], looking up a `-p` host name with `resolve`.
pub fn parse_with<S: AsRef<str>>(
    args: &[S],
    folder: &str,
    resolve: Resolve<'_>,
) -> Result<Command, UsageError> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let matches = options()
        .parse(&args)
        .map_err(|e| UsageError(getopts_message(&e)))?;
    if matches.opt_present("h") {
        return Ok(Command::Help);
    }
    if let Some(extra) = matches.free.first() {
        return Err(UsageError(format!("unexpected argument '{extra}'")));
    }

    let join = matches
        .opt_str("p")
        .map(|s| parse_peer_with(&s, resolve).map_err(|e| UsageError(format!("-p {e}"))))
        .transpose()?;
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

/// The parser's complaint in the words of the other errors: the option as it is typed.
fn getopts_message(error: &getopts::Fail) -> String {
    let typed = |name: &str| match name.len() {
        1 => format!("-{name}"),
        _ => format!("--{name}"),
    };
    match error {
        getopts::Fail::ArgumentMissing(name) => format!("{} wants a value", typed(name)),
        getopts::Fail::UnrecognizedOption(name) => format!("unknown option {}", typed(name)),
        getopts::Fail::OptionDuplicated(name) => format!("{} given more than once", typed(name)),
        other => other.to_string(),
    }
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

/// Looks `host` up with the system's resolver (the hosts file, then DNS); the first IPv4
/// address it gives, if any.
pub fn resolve_host(host: &str) -> Option<Ipv4Addr> {
    (host, 0)
        .to_socket_addrs()
        .ok()?
        .find_map(|addr| match addr {
            SocketAddr::V4(v4) => Some(*v4.ip()),
            SocketAddr::V6(_) => None,
        })
}

/// Parses the `-p` target, `HOST:PORT`, resolving a host name with the system's resolver.
pub fn parse_peer(s: &str) -> Result<SocketAddrV4, UsageError> {
    parse_peer_with(s, &resolve_host)
}

/// Parses a target (of `-p`, `cptp probe` or `cptp map`): an IPv4 address or a host name (looked up with `resolve`), and
/// a port. The result must be an address a peer can be joined at: not 0.0.0.0, not port 0.
pub fn parse_peer_with(s: &str, resolve: Resolve<'_>) -> Result<SocketAddrV4, UsageError> {
    let bad = |why: &str| UsageError(format!("wants HOST:PORT, but '{s}' {why}"));
    if let Ok(SocketAddr::V6(_)) = s.parse::<SocketAddr>() {
        return Err(bad("is IPv6; cPTP carries IPv4 addresses only"));
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("has no ':PORT'"))?;
    let port = match port.parse::<u16>() {
        Ok(0) | Err(_) => return Err(bad("has no port from 1 to 65535")),
        Ok(port) => port,
    };
    let looks_numeric = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let ip = if let Ok(ip) = host.parse::<Ipv4Addr>() {
        ip
    } else if host.is_empty() || looks_numeric || host.contains(':') {
        return Err(bad("does not start with an IPv4 address or a host name"));
    } else {
        resolve(host).ok_or_else(|| {
            UsageError(format!(
                "wants HOST:PORT, but the host name '{host}' does not resolve to an IPv4 address"
            ))
        })?
    };
    if ip.is_unspecified() {
        return Err(bad(
            "is 0.0.0.0, where no peer can be joined; use the address the peer's first line shows",
        ));
    }
    Ok(SocketAddrV4::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resolver that knows two names, so the tests need no hosts file or DNS.
    fn lab(host: &str) -> Option<Ipv4Addr> {
        match host {
            "localhost" => Some(Ipv4Addr::LOCALHOST),
            "lab-07" => Some(Ipv4Addr::new(198, 18, 0, 7)),
            "nowhere-zero" => Some(Ipv4Addr::UNSPECIFIED),
            _ => None,
        }
    }

    fn run(args: &[&str], folder: &str) -> (Config, Vec<String>) {
        match parse_with(args, folder, &lab) {
            Ok(Command::Run { config, warnings }) => (config, warnings),
            other => panic!("{args:?} in {folder}: {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match parse_with(args, "peer1-2", &lab) {
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
    fn a_host_name_is_resolved_once_to_its_ipv4_address() {
        let (config, _) = run(&["-p", "lab-07:39217"], "peer1-2");
        assert_eq!(config.join, Some("198.18.0.7:39217".parse().unwrap()));
        let asked = std::cell::Cell::new(0);
        let counting = |host: &str| {
            asked.set(asked.get() + 1);
            lab(host)
        };
        let target = parse_peer_with("198.18.1.3:5", &counting).unwrap();
        assert_eq!(target, "198.18.1.3:5".parse().unwrap());
        assert_eq!(asked.get(), 0, "an address is not looked up");
        assert_eq!(
            parse_peer("127.0.0.1:5"),
            Ok("127.0.0.1:5".parse().unwrap())
        );
    }

    #[test]
    fn help_is_a_command() {
        assert_eq!(parse(&["-h"], "x"), Ok(Command::Help));
        assert_eq!(parse(&["--help"], "x"), Ok(Command::Help));
        assert!(usage().contains("--max-peers"));
    }

    #[test]
    fn the_system_resolver_knows_localhost() {
        assert_eq!(resolve_host("localhost"), Some(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        assert!(error(&["-p", "127.0.0.1"]).contains("no ':PORT'"));
        assert!(error(&["-p", "[::1]:4000"]).contains("IPv6"));
        // Not an address, and not a name either: refused without asking the resolver.
        for target in ["::1:4000", "1.2.3:80", ":80", "999.1.1.1:80"] {
            let message = error(&["-p", target]);
            assert!(
                message.ends_with("does not start with an IPv4 address or a host name"),
                "{target}: {message}"
            );
        }
        assert!(error(&["-p", ":80"]).contains("IPv4"));
        assert!(error(&["-p", "0.0.0.0:4000"]).contains("0.0.0.0"));
        assert!(error(&["-p", "nowhere-zero:4000"]).contains("0.0.0.0"));
        assert!(error(&["-p", "nowhere:4000"]).contains("'nowhere' does not resolve"));
        assert!(error(&["-p", "lab-07:0"]).contains("port"));
        assert!(error(&["-p", "127.0.0.1:0"]).contains("port"));
        assert!(error(&["-p", "127.0.0.1:70000"]).contains("port"));
        assert!(error(&["-n", "0"]).contains("1 to 8191"));
        assert!(error(&["-n", "8192"]).contains("1 to 8191"));
        assert!(error(&["-n", "two"]).contains("1 to 8191"));
        assert!(error(&["-i", ""]).contains("1 to 255"));
        assert!(error(&["-i", &"x".repeat(256)]).contains("1 to 255"));
        assert!(error(&["-b", "::"]).contains("IPv4"));
        assert_eq!(error(&["-x"]), "unknown option -x");
        assert_eq!(error(&["--frobnicate"]), "unknown option --frobnicate");
        assert_eq!(error(&["-i"]), "-i wants a value");
        assert_eq!(
            error(&["-n", "3", "-n", "4"]),
            "--max-peers given more than once"
        );
        assert!(error(&["stray"]).contains("stray"));
    }
}
