//! The command line of `cptp check`.

use super::rule::{Needs, Rule};
use super::rules;
use super::scale::Scale;
use crate::harness::sandbox::{Choice, Limits};
use getopts::{Options, ParsingStyle};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddrV4;
use std::path::PathBuf;

pub const USAGE: &str = "\
Usage: cptp check [OPTIONS] -- COMMAND [ARGS...]
       cptp check [OPTIONS] --addr IP:PORT
       cptp check [OPTIONS] --submissions DIR [-j N] [--out DIR] -- COMMAND [ARGS...]
       cptp check --list

Checks a cPTP implementation against docs/PROTOCOL.md, rule by rule: PASS, FAIL, WARN,
BLOCKED (a gate it stands behind failed: not observed) or SKIP, each with the section it
checks, what was expected, what happened and, where the evidence shows one, the root
cause. The exit status is 0 when no rule (of weight above 0) fails or is blocked, 1
when one does, 2 for a usage error.

COMMAND starts the implementation under test. cptp runs it many times, each time in a
fresh temporary folder named the course's way (peer1-2: ID peer1, table size 2), and
appends '-p IP:PORT' when a rule needs it to join a fake peer. Where it listens is read
from the system; its first stdout line should be 'This peer address is IP:PORT located
at ID'.

Targets:
    -- COMMAND [ARGS...]   start the implementation with this command in its folder: a
                           program with a slash (./target/release/peer) is the one seen
                           from here; a script's path is read in the target folder, so
                           copy it there with --copy
        --copy DIR         copy DIR's contents into each target folder first (a Node
                           peer that reads its folder name from its script's location)
                           e.g. cptp check --copy ~/alice -- node peer.js
        --addr IP:PORT     check a peer that is already running, server side only;
                           rules that need a fresh peer or its stdout are SKIP
                           e.g. cptp check --addr 127.0.0.1:39670
        --submissions DIR  grade every subfolder of DIR as one student's submission
                           (as with --copy), one summary row each
                           e.g. cptp check --submissions class/ --out reports/ -- node peer.js
    -j, --jobs N           submissions checked at once (default 2), e.g. -j 4
        --out DIR          with --submissions: write DIR/NAME/{report.txt,report.json,
                           junit.xml,results.json} and DIR/summary.csv,
                           e.g. --out reports/

Rules:
        --strict           WARNs become FAILs: zero padding or a newline after a
                           message, lines that differ from the contract in spacing,
                           punctuation or case, and debug lines among the contract's,
                           e.g. cptp check --strict -- ./peer
        --rule ID          run only this rule, or every rule whose ID starts with ID
                           (repeatable), e.g. --rule 5.2 --rule 6.1-accepts-after-join
        --parallel N       rules run at once for one target (default 6), e.g.
                           --parallel 2 on a busy machine
        --time-scale X     multiply every deadline by X (1 to 20, default 1), for a
                           loaded grading machine; the report says when X is not 1,
                           e.g. --time-scale 2
        --list             print every rule with its ID and section, run nothing,
                           e.g. cptp check --list

Sandbox (every target of a class runs untrusted code on your machine):
        --sandbox MODE     auto (default): with bubblewrap installed (apt-get install
                           bubblewrap) every target runs in a sandbox: the system
                           read-only, only its own folder writable, your home, the
                           other submissions and the reports out of sight, as root a
                           network of its own; without bwrap it runs as is, and the
                           report's second line says so. bwrap: a sandbox or a usage
                           error. none: no sandbox. e.g. --sandbox bwrap
        --max-processes N  processes and threads of one target at once (default 64)
        --max-memory MB    memory of one target (default 512)
        --max-cpu SECONDS  CPU time of each process of a target (default 60)
        --max-file-size MB the largest file a target may write (default 64)
                           A target stopped by a limit FAILs the rule it was in, with
                           the limit named; the limits come with the sandbox.

Reports (the text report always goes to stdout; colour only on a terminal):
    -v, --verbose          show the evidence of every rule: bytes sent and received in
                           hex, fake peers' connections, the target's stdout and
                           stderr, e.g. cptp check -v --rule 5.1 -- ./peer
        --json FILE        write the JSON report (schema in docs/CHECK.md),
                           e.g. --json report.json
        --junit FILE       write JUnit XML: one testcase per rule, e.g. --junit junit.xml
        --gradescope FILE  write Gradescope's results.json,
                           e.g. --gradescope /autograder/results/results.json
        --points SPEC      weight rules for the score: a file of 'ID POINTS' lines, or
                           ID=POINTS,ID=POINTS; an ID prefix weights every rule it
                           starts (e.g. 5.3=4,6=2); unlisted rules weigh 1
    -h, --help             show this help

Examples:
    cptp check -- target/debug/peer
    cptp check --strict --junit junit.xml --copy submission/ -- node peer.js
    cptp check --submissions class/ -j 4 --out reports/ --points points.txt -- node index.js
";

/// A command line that cannot be run.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Start `command` (after copying `copy`) as often as the rules need.
    Launch {
        command: Vec<String>,
        copy: Option<PathBuf>,
    },
    Addr(SocketAddrV4),
    Submissions {
        dir: PathBuf,
        command: Vec<String>,
        jobs: usize,
        out: Option<PathBuf>,
    },
    List,
    Help,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub strict: bool,
    pub verbose: bool,
    pub parallel: usize,
    pub rules: Vec<&'static Rule>,
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub gradescope: Option<PathBuf>,
    pub points: HashMap<String, f64>,
    pub scale: Scale,
    /// `--sandbox`.
    pub sandbox: Choice,
    /// `--max-processes`, `--max-memory`, `--max-cpu`, `--max-file-size`.
    pub limits: Limits,
}

fn options() -> Options {
    let mut o = Options::new();
    o.parsing_style(ParsingStyle::StopAtFirstFree);
    o.optopt("", "addr", "check a running peer", "IP:PORT");
    o.optopt("", "copy", "copy DIR into each target folder", "DIR");
    o.optopt("", "submissions", "grade every subfolder of DIR", "DIR");
    o.optopt("j", "jobs", "submissions at once", "N");
    o.optopt("", "out", "reports folder for --submissions", "DIR");
    o.optflag("", "strict", "WARNs become FAILs");
    o.optmulti("", "rule", "run only these rules", "ID");
    o.optopt("", "parallel", "rules at once", "N");
    o.optflag("", "list", "list the rules");
    o.optopt("", "time-scale", "multiply deadlines", "X");
    o.optflag("v", "verbose", "show all evidence");
    o.optopt("", "json", "write JSON", "FILE");
    o.optopt("", "junit", "write JUnit XML", "FILE");
    o.optopt("", "gradescope", "write results.json", "FILE");
    o.optopt("", "points", "rule weights", "SPEC");
    o.optopt("", "sandbox", "auto, bwrap or none", "MODE");
    o.optopt("", "max-processes", "processes and threads", "N");
    o.optopt("", "max-memory", "memory in MB", "MB");
    o.optopt("", "max-cpu", "CPU seconds", "SECONDS");
    o.optopt("", "max-file-size", "file size in MB", "MB");
    o.optflag("h", "help", "help");
    o
}

/// A count of things at once (`-j`, `--parallel`): 1 to 64, or its default.
fn count(value: Option<String>, flag: &str, default: usize) -> Result<usize, UsageError> {
    limit(value, flag, default as u64, 1..=64).map(|n| n as usize)
}

/// A limit's value from the command line, within `range`, or its default.
fn limit(
    value: Option<String>,
    flag: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, UsageError> {
    let Some(text) = value else {
        return Ok(default);
    };
    match text.parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(UsageError(format!(
            "{flag} wants a whole number from {} to {}, not '{text}'",
            range.start(),
            range.end()
        ))),
    }
}

pub fn parse(args: &[String]) -> Result<Config, UsageError> {
    let m = options()
        .parse(args)
        .map_err(|e| UsageError(e.to_string()))?;
    let command = m.free.clone();
    let mut config = Config {
        mode: Mode::Help,
        strict: m.opt_present("strict"),
        verbose: m.opt_present("verbose"),
        parallel: count(m.opt_str("parallel"), "--parallel", 6)?,
        rules: select(&m.opt_strs("rule"))?,
        json: m.opt_str("json").map(PathBuf::from),
        junit: m.opt_str("junit").map(PathBuf::from),
        gradescope: m.opt_str("gradescope").map(PathBuf::from),
        points: match m.opt_str("points") {
            Some(spec) => parse_points(&spec)?,
            None => HashMap::new(),
        },
        sandbox: match m.opt_str("sandbox").as_deref() {
            None | Some("auto") => Choice::Auto,
            Some("bwrap") => Choice::Bwrap,
            Some("none") => Choice::None,
            Some(other) => {
                return Err(UsageError(format!(
                    "--sandbox wants auto, bwrap or none, not '{other}'"
                )));
            }
        },
        limits: Limits {
            processes: limit(
                m.opt_str("max-processes"),
                "--max-processes",
                64,
                4..=100_000,
            )?,
            memory_mb: limit(m.opt_str("max-memory"), "--max-memory", 512, 16..=1_000_000)?,
            cpu_secs: limit(m.opt_str("max-cpu"), "--max-cpu", 60, 1..=86_400)?,
            file_mb: limit(
                m.opt_str("max-file-size"),
                "--max-file-size",
                64,
                1..=1_000_000,
            )?,
        },
        scale: match m.opt_str("time-scale") {
            None => Scale(1.0),
            Some(text) => text
                .parse::<f64>()
                .ok()
                .filter(|x| (1.0..=20.0).contains(x))
                .map(Scale)
                .ok_or_else(|| {
                    UsageError(format!(
                        "--time-scale wants a number from 1 to 20, not '{text}'"
                    ))
                })?,
        },
    };
    let addr = m.opt_str("addr");
    let submissions = m.opt_str("submissions");
    config.mode = if m.opt_present("help") {
        Mode::Help
    } else if m.opt_present("list") {
        Mode::List
    } else if let Some(dir) = submissions {
        if addr.is_some() || m.opt_present("copy") {
            return Err(UsageError(
                "--submissions cannot be combined with --addr or --copy".into(),
            ));
        }
        if command.is_empty() {
            return Err(UsageError(
                "--submissions needs the COMMAND that starts a submission, after --".into(),
            ));
        }
        Mode::Submissions {
            dir: PathBuf::from(dir),
            command,
            jobs: count(m.opt_str("jobs"), "-j", 2)?,
            out: m.opt_str("out").map(PathBuf::from),
        }
    } else if let Some(addr) = addr {
        if !command.is_empty() || m.opt_present("copy") {
            return Err(UsageError(
                "--addr checks a running peer: give no COMMAND and no --copy".into(),
            ));
        }
        Mode::Addr(crate::hostport::parse(&addr).map_err(|e| UsageError(format!("--addr: {e}")))?)
    } else if command.is_empty() {
        return Err(UsageError(
            "nothing to check: give -- COMMAND, --addr IP:PORT or --submissions DIR".into(),
        ));
    } else {
        let copy = m.opt_str("copy").map(PathBuf::from);
        if let Some(dir) = &copy
            && !dir.is_dir()
        {
            return Err(UsageError(format!(
                "--copy: '{}' is not a folder",
                dir.display()
            )));
        }
        Mode::Launch { command, copy }
    };
    if m.opt_present("out") && !matches!(config.mode, Mode::Submissions { .. }) {
        return Err(UsageError(
            "--out is for --submissions; use --json, --junit, --gradescope".into(),
        ));
    }
    Ok(config)
}

/// The rules chosen with `--rule` (all when none is given), with the gates they depend
/// on: a rule is only judged once its gates are known.
fn select(wanted: &[String]) -> Result<Vec<&'static Rule>, UsageError> {
    if wanted.is_empty() {
        return Ok(rules::all().collect());
    }
    for w in wanted {
        if !rules::all().any(|r| r.id.starts_with(w.as_str())) {
            return Err(UsageError(format!(
                "--rule: no rule ID starts with '{w}' (see --list)"
            )));
        }
    }
    let chosen: Vec<&'static Rule> = rules::all()
        .filter(|r| wanted.iter().any(|w| r.id.starts_with(w.as_str())))
        .collect();
    Ok(rules::all()
        .filter(|r| {
            chosen
                .iter()
                .any(|c| c.id == r.id || c.after.contains(&r.id))
        })
        .collect())
}

/// Reads `--points`: a file of `ID POINTS` lines, or `ID=POINTS,...`. A prefix weights
/// every rule whose ID starts with it; the longest prefix wins.
pub fn parse_points(spec: &str) -> Result<HashMap<String, f64>, UsageError> {
    let text = if spec.contains('=') {
        spec.replace(',', "\n").replace('=', " ")
    } else {
        std::fs::read_to_string(spec)
            .map_err(|e| UsageError(format!("--points: cannot read '{spec}': {e}")))?
    };
    let mut given: Vec<(String, f64)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(id), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(UsageError(format!("--points: '{line}' is not 'ID POINTS'")));
        };
        let value: f64 = value
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| UsageError(format!("--points: '{value}' is not a number of points")))?;
        if !rules::all().any(|r| r.id.starts_with(id)) {
            return Err(UsageError(format!(
                "--points: no rule ID starts with '{id}'"
            )));
        }
        given.push((id.to_string(), value));
    }
    let mut weights = HashMap::new();
    for rule in rules::all() {
        let best = given
            .iter()
            .filter(|(id, _)| rule.id.starts_with(id.as_str()))
            .max_by_key(|(id, _)| id.len());
        if let Some((_, value)) = best {
            weights.insert(rule.id.to_string(), *value);
        }
    }
    Ok(weights)
}

/// `--list`: every rule, its section and its requirement.
pub fn list() -> String {
    let mut out = String::new();
    for rule in rules::all() {
        let needs = match rule.needs {
            Needs::Fresh => "",
            Needs::Address => " [also --addr]",
        };
        let after = match rule.after {
            [] => String::new(),
            gates => format!(" [after {}]", gates.join(", ")),
        };
        out.push_str(&format!(
            "{:<30} PROTOCOL {:<4} {}{needs}{after}\n",
            rule.id,
            rule.section(),
            rule.requirement
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn points_take_the_longest_prefix() {
        let points = parse_points("5=2,5.2=3,5.2-full-line=0.5").unwrap();
        assert_eq!(points["5.1-welcome-bytes"], 2.0);
        assert_eq!(points["5.2-table-size"], 3.0);
        assert_eq!(points["5.2-full-line"], 0.5);
        assert!(!points.contains_key("6.4-gives-up"));
        assert!(parse_points("9.9=1").is_err());
        assert!(parse_points("5.1-welcome-bytes=-1").is_err());
    }

    #[test]
    fn the_command_after_the_options_is_kept_whole() {
        let config = parse(&args(&["--strict", "--", "node", "peer.js", "-x"])).unwrap();
        match config.mode {
            Mode::Launch {
                command,
                copy: None,
            } => assert_eq!(command, ["node", "peer.js", "-x"]),
            other => panic!("{other:?}"),
        }
        assert!(config.strict);
        // Without `--`, the command starts at the first word that is not an option.
        let config = parse(&args(&["node", "peer.js", "--strict"])).unwrap();
        assert!(!config.strict);
    }

    #[test]
    fn targets_exclude_each_other() {
        for bad in [
            &["--addr", "127.0.0.1:1", "--", "x"][..],
            &["--submissions", "d"],
            &["--submissions", "d", "--addr", "127.0.0.1:1", "--", "x"],
            &["--out", "o", "--", "x"],
            &["-j", "0", "--submissions", "d", "--", "x"],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rules_are_chosen_by_prefix() {
        let config = parse(&args(&["--rule", "5.2", "--", "x"])).unwrap();
        let ids: Vec<&str> = config.rules.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), 5, "{ids:?}");
        assert_eq!(
            ids[0], "1.3-silent-join-answered",
            "the gate they stand behind"
        );
        assert!(config.rules[1..].iter().all(|r| r.section() == "5.2"));
    }
}
