//! `cptp check`: a conformance checker and autograder for any cPTP peer.
//!
//! Modelled on h2spec and the Autobahn testsuite: a list of rules, each tied to a numbered
//! section of docs/PROTOCOL.md (`rules`), run against the implementation under test
//! (`target`, started in course-style folders) with fake peers where the target must join
//! (`fake`), several at once with a time limit each (`runner`), and reported for people,
//! scripts, CI and Gradescope (`report`). `submissions` grades a whole class. Read
//! docs/CHECK.md for how teaching assistants use it.

mod cleanup;
mod fake;
mod lines;
mod net;
mod options;
mod outcome;
mod report;
mod rules;
mod runner;
mod submissions;
mod target;
mod timing;

use crate::USAGE_ERROR;
use options::{Config, Mode};
use rules::Subject;
use runner::Report;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use target::Launcher;

pub fn run(args: &[String]) -> ExitCode {
    let config = match options::parse(args) {
        Ok(config) => config,
        Err(e) => {
            eprint!("cptp check: {e}\n\n{}", options::USAGE);
            return ExitCode::from(USAGE_ERROR);
        }
    };
    match &config.mode {
        Mode::Help => {
            print!("{}", options::USAGE);
            return ExitCode::SUCCESS;
        }
        Mode::List => {
            print!("{}", options::list());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    cleanup::install();
    timing::set_scale(config.time_scale);
    let code = match &config.mode {
        Mode::Launch { command, copy } => {
            let launcher = Launcher {
                command: command.clone(),
                copy: copy.clone(),
            };
            let name = match copy {
                Some(dir) => format!("{} (in a copy of {})", command.join(" "), dir.display()),
                None => command.join(" "),
            };
            check_one(&config, Subject::Launch(Arc::new(launcher)), name)
        }
        Mode::Addr(addr) => check_one(
            &config,
            Subject::Running(*addr),
            format!("the peer at {addr}"),
        ),
        Mode::Submissions {
            dir,
            command,
            jobs,
            out,
        } => submissions::run(&config, dir, command, *jobs, out.as_deref()),
        Mode::Help | Mode::List => Ok(true),
    };
    cleanup::end_everything();
    if let Some(signal) = cleanup::signalled() {
        return ExitCode::from(128u8.saturating_add(signal as u8));
    }
    match code {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cptp check: {e}");
            ExitCode::from(USAGE_ERROR)
        }
    }
}

/// Checks one target, prints the text report and writes the files asked for. Returns
/// whether the target conforms.
fn check_one(config: &Config, subject: Subject, name: String) -> Result<bool, String> {
    let report = runner::run(
        &config.rules,
        &subject,
        config.strict,
        config.parallel,
        &config.points,
        name,
    );
    if cleanup::signalled().is_some() {
        return Ok(false);
    }
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!("{}", report::text::render(&report, config.verbose, colour));
    write_reports(config, &report)?;
    Ok(report.conforms())
}

/// Writes the `--json`, `--junit` and `--gradescope` files that were asked for.
fn write_reports(config: &Config, report: &Report) -> Result<(), String> {
    if let Some(path) = &config.json {
        write(path, &pretty(&report::json::render(report)))?;
    }
    if let Some(path) = &config.junit {
        write(path, &report::junit::render(report))?;
    }
    if let Some(path) = &config.gradescope {
        write(path, &pretty(&report::gradescope::render(report)))?;
    }
    Ok(())
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()) + "\n"
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
