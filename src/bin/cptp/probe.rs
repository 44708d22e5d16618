//! `cptp probe HOST:PORT`: join a peer once, read its reply, print it decoded and in hex.
//!
//! A teaching assistant points this at a student's peer to see exactly what it sends. The
//! connection is the join request, so a peer with room lists the probe in its table until
//! the probe exits and the link closes.

use crate::USAGE_ERROR;
use peer::cli::parse_peer;
use peer::reader::{Deadline, read_message};
use peer::wire::hex;
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
Usage: cptp probe HOST:PORT

Joins the peer at HOST:PORT once, reads its reply (a Welcome or a Redirect) and prints it
decoded and in hex, then closes the connection. Waits 3 s to connect and 5 s for the reply.

Example: cptp probe 127.0.0.1:39670
";

pub fn run(args: &[String]) -> ExitCode {
    let target = match args {
        [flag] if flag == "-h" || flag == "--help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [target] => target,
        _ => {
            eprint!("cptp probe: wants one HOST:PORT\n\n{USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let addr = match parse_peer(target) {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("cptp probe: the target {e}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let stream = match TcpStream::connect_timeout(&addr.into(), Duration::from_secs(3)) {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!("cptp probe: cannot connect to {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match read_message(&mut Deadline::new(&stream, Duration::from_secs(5))) {
        Ok((message, raw)) => {
            println!(
                "{} from '{}' at {addr}",
                message.kind(),
                message.sender_id()
            );
            println!("peers listed: {}", message.peers().len());
            for peer in message.peers() {
                println!("  {peer}");
            }
            println!("bytes ({}): {}", raw.len(), hex(&raw));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cptp probe: {addr} {e}");
            ExitCode::FAILURE
        }
    }
}
