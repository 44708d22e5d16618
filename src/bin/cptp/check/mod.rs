//! `cptp check`: not written yet.

use std::process::ExitCode;

pub fn run(_args: &[String]) -> ExitCode {
    eprintln!("cptp check: not available yet");
    ExitCode::FAILURE
}
