//! The floor server of the benchmark: the cheapest possible cPTP responder.
//!
//! One thread: accept, write one fixed valid Redirect, close. No table, no output per
//! join, no clock. `make bench` runs it side by side with `peer`, so every figure of
//! `peer` can be given as a ratio to this floor on the same machine at the same moment.
//!
//! It prints the same first line as `peer` (`This peer address is IP:PORT located at
//! floor`) so the benchmark starts both the same way.

use cptp::contract::{Kind, Message, line};
use cptp::harness::sockets::ipv4;
use std::io::Write;
use std::net::{SocketAddrV4, TcpListener};

fn main() {
    // The same reply `peer1-2` sends when full: two entries, ID "peer1".
    let listed: Vec<SocketAddrV4> = vec![
        "127.0.0.1:40000".parse().unwrap(),
        "127.0.0.1:40001".parse().unwrap(),
    ];
    let redirect = Message::new(Kind::Redirect, "peer1", listed).encode();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().ok().and_then(ipv4).expect("IPv4");
    println!("{}", line::address(addr, "floor"));
    let _ = std::io::stdout().flush();
    loop {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.write_all(&redirect);
        }
    }
}
