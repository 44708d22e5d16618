//! Probe any cPTP peer once: connect, read its reply, print it decoded and in hex.
//!
//! A teaching assistant can point this at a student's peer to see exactly what it sends:
//!
//! ```text
//! cargo run --example probe -- 127.0.0.1:39670
//! ```
//!
//! The connection is the join request, so a peer with room will list the probe in its
//! table until the probe exits and the link closes.

use peer::cli::parse_peer;
use peer::reader::{Deadline, read_message};
use peer::wire::hex;
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let Some(target) = std::env::args().nth(1) else {
        eprintln!("usage: probe IP:PORT");
        return ExitCode::from(2);
    };
    let addr = match parse_peer(&target) {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("probe: {e}");
            return ExitCode::from(2);
        }
    };
    let stream = match TcpStream::connect_timeout(&addr.into(), Duration::from_secs(3)) {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!("probe: cannot connect to {addr}: {e}");
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
            eprintln!("probe: {addr} {e}");
            ExitCode::FAILURE
        }
    }
}
