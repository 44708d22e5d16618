//! `cptp probe HOST:PORT`: join a peer once, read its reply, print it decoded and in hex.
//!
//! A teaching assistant points this at a student's peer to see exactly what it sends. The
//! connection is the join request, so a peer with room lists the probe in its table until
//! the probe exits and the link closes.

use crate::exit::{FAILURE, SUCCESS, USAGE};
use crate::harness::client::join_within;
use crate::text::hex;
use std::time::Duration;

const HELP: &str = "\
Usage: cptp probe HOST:PORT

Joins the peer at HOST:PORT once, reads its reply (a Welcome or a Redirect) and prints it
decoded and in hex, then closes the connection. Waits 3 s to connect and 5 s for the reply.

Example: cptp probe 127.0.0.1:39670
";

/// Runs `cptp probe` with `args`; returns the exit status.
pub fn run(args: &[String]) -> u8 {
    let target = match args {
        [flag] if flag == "-h" || flag == "--help" => {
            print!("{HELP}");
            return SUCCESS;
        }
        [target] => target,
        _ => {
            eprint!("cptp probe: wants one HOST:PORT\n\n{HELP}");
            return USAGE;
        }
    };
    let addr = match crate::hostport::parse(target) {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("cptp probe: the target {e}");
            return USAGE;
        }
    };
    match join_within(addr, Duration::from_secs(3), Duration::from_secs(5)) {
        Ok(joined) => {
            let message = &joined.message;
            println!("{} from '{}' at {addr}", message.kind, message.sender_id());
            println!("peers listed: {}", message.peers.len());
            for peer in &message.peers {
                println!("  {peer}");
            }
            println!("bytes ({}): {}", joined.raw.len(), hex(&joined.raw));
            SUCCESS
        }
        Err(e) => {
            eprintln!("cptp probe: {e}");
            FAILURE
        }
    }
}
