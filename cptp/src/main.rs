//! `cptp`: probe, check and map cPTP peers. Everything is in the library; this only hands
//! it the command line and exits with the status it says.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    cptp::cli::run(&args)
}
