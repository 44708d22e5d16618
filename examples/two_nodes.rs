//! Two peers in one process: the second joins the first, then both stop.
//!
//! A `peer::node::Node` is a whole peer: its listener (127.0.0.1, a port the kernel picks),
//! its table and its threads (PROTOCOL 8.1). Each runs here on a thread of this program and
//! writes its event lines into a buffer rather than to stdout, so that what each said can
//! be shown apart. Stopping the second closes its link: the first says it left (PROTOCOL 5.4).
//!
//! Run: `cargo run --example two_nodes`

use peer::joiner::JoinLimits;
use peer::node::{Config, Node, StartError};
use std::error::Error;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Where a peer's event lines go: a buffer this program reads while the peer runs.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Lines {
    /// What the peer has said so far.
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits until the peer has said `what`, for at most 5 seconds.
    fn wait_for(&self, what: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.text().contains(what) {
            if Instant::now() > deadline {
                return Err(format!("nothing said with {what:?} within 5 s"));
            }
            thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

/// A peer with a table of 2, ready to run, that joins `join` first if given.
fn peer(id: &str, join: Option<SocketAddrV4>, lines: &Lines) -> Result<Node, StartError> {
    let config = Config {
        join,
        id: id.to_string(),
        table_size: 2,
        bind: Ipv4Addr::LOCALHOST,
    };
    Ok(Node::bind(&config, JoinLimits::default())?.output_to(Box::new(lines.clone())))
}

fn main() -> Result<(), Box<dyn Error>> {
    let (first_lines, second_lines) = (Lines::default(), Lines::default());
    let first = peer("peer1", None, &first_lines)?;
    let second = peer("peer2", Some(first.addr()), &second_lines)?;
    // `run` serves until stopped, so each node gets a thread; a Stopper stops it from here.
    let (first_stopper, second_stopper) = (first.stopper(), second.stopper());
    let first = thread::spawn(move || first.run());
    let second = thread::spawn(move || second.run());

    // Each side prints its half of the join (PROTOCOL 5.1 and 6.2).
    first_lines.wait_for("Connected from peer")?;
    second_lines.wait_for("Received ack from peer1")?;

    // `run` returns once every thread of the peer has ended (each notices within a second).
    second_stopper.stop();
    second.join().map_err(|_| "peer2 panicked")??;
    first_lines.wait_for(" left")?;
    first_stopper.stop();
    first.join().map_err(|_| "peer1 panicked")??;
    println!("peer1 said:\n{}", first_lines.text());
    println!("peer2 said:\n{}", second_lines.text());
    Ok(())
}
