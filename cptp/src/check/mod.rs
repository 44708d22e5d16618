//! `cptp check`: a conformance checker and autograder for any cPTP peer.
//!
//! Modelled on h2spec and the Autobahn testsuite: rules, each tied to a numbered section
//! of docs/PROTOCOL.md and declared beside its code (`rules/`, one file per section), run
//! against the implementation under test (`target`, started in course-style folders) with
//! fake peers where the target must join, several at once with a time limit each and gates
//! first (`runner`), and reported for people, scripts, CI and Gradescope (`report`).
//! `submissions` grades a whole class. Read docs/CHECK.md for how teaching assistants
//! use it.
//!
//! Reading order: `verdict`, `hints`, `scale`, `target`, `lines`, `ctx`, `rule`, `rules`, `runner`,
//! `report`, `options`, `submissions`; each uses only those before it.

pub mod verdict;
pub mod hints;
pub mod scale;
pub mod target;
pub mod lines;
pub mod ctx;
pub mod rule;
pub mod rules;
pub mod runner;
pub mod report;
pub mod options;
pub mod submissions;

use crate::exit::{FAILURE, SUCCESS, USAGE};
use crate::harness::cleanup;
use crate::harness::sandbox::Sandbox;
use ctx::Subject;
use options::{Config, Mode};
use report::Files;
use runner::Check;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use target::{Grounds, Launcher, Scratches};

/// Runs `cptp check` with `args`; returns the exit status.
pub fn run(args: &[String]) -> u8 {
    let config = match options::parse(args) {
        Ok(config) => config,
        Err(e) => {
            eprint!("cptp check: {e}\n\n{}", options::USAGE);
            return USAGE;
        }
    };
    match &config.mode {
        Mode::Help => {
            print!("{}", options::USAGE);
            return SUCCESS;
        }
        Mode::List => {
            print!("{}", options::list());
            return SUCCESS;
        }
        _ => {}
    }
    cleanup::install();
    let sandbox = match Sandbox::choose(config.sandbox, config.limits, hidden(&config)) {
        Ok(sandbox) => sandbox,
        Err(e) => {
            eprint!("cptp check: {e}\n\n{}", options::USAGE);
            return USAGE;
        }
    };
    let grounds = Arc::new(Grounds {
        scratches: Scratches::new(),
        sandbox,
    });
    let outcome = match &config.mode {
        Mode::Launch { command, copy } => {
            let launcher = Launcher::Command {
                command: command.clone(),
                copy: copy.clone(),
            };
            let name = launcher.name();
            check_one(&config, Subject::Launch(Arc::new(launcher)), name, &grounds)
        }
        Mode::Addr(addr) => check_one(
            &config,
            Subject::Running(*addr),
            format!("the peer at {addr}"),
            &grounds,
        ),
        Mode::Submissions {
            dir,
            command,
            jobs,
            out,
        } => submissions::run(&config, dir, command, *jobs, out.as_deref(), &grounds),
        Mode::Help | Mode::List => Ok(true),
    };
    cleanup::end_everything();
    if let Some(signal) = cleanup::signalled() {
        return 128u8.saturating_add(signal as u8);
    }
    match outcome {
        Ok(true) => SUCCESS,
        Ok(false) => FAILURE,
        Err(e) => {
            eprintln!("cptp check: {e}");
            USAGE
        }
    }
}

/// Checks one target, prints the text report and writes the files asked for. Returns
/// whether the target conforms.
pub fn check_one(
    config: &Config,
    subject: Subject,
    name: String,
    grounds: &Arc<Grounds>,
) -> Result<bool, String> {
    let check = Check {
        subject,
        strict: config.strict,
        scale: config.scale,
        parallel: config.parallel,
        points: config.points.clone(),
        grounds: Arc::clone(grounds),
    };
    let report = runner::run(&check, &config.rules, name);
    if cleanup::signalled().is_some() {
        return Ok(false);
    }
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!("{}", report::text::render(&report, config.verbose, colour));
    Files {
        text: None,
        json: config.json.as_deref(),
        junit: config.junit.as_deref(),
        gradescope: config.gradescope.as_deref(),
    }
    .write(&report)?;
    Ok(report.conforms())
}

/// The folders no target may see: the homes (the grader's, also behind sudo, and every
/// user's), the submissions (and the folder copied), the reports written.
fn hidden(config: &Config) -> Vec<PathBuf> {
    let mut hidden: Vec<PathBuf> = ["/home", "/root"].iter().map(PathBuf::from).collect();
    hidden.extend(std::env::var_os("HOME").map(PathBuf::from));
    match &config.mode {
        Mode::Launch {
            copy: Some(dir), ..
        } => hidden.push(dir.clone()),
        Mode::Submissions { dir, out, .. } => {
            hidden.push(dir.clone());
            hidden.extend(out.clone());
        }
        _ => {}
    }
    hidden.extend(
        [&config.json, &config.junit, &config.gradescope]
            .into_iter()
            .flatten()
            .filter_map(|f| f.parent().map(PathBuf::from))
            .filter(|p| !p.as_os_str().is_empty()),
    );
    hidden
}
