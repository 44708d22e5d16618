//! `cptp map`: not written yet.

use std::process::ExitCode;

pub fn run(_args: &[String]) -> ExitCode {
    eprintln!("cptp map: not available yet");
    ExitCode::FAILURE
}
