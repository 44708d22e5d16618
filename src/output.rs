//! The event lines of SPEC section 7: stdout, one event at a time, in order, at once (within
//! a few milliseconds while the peer is busy).
//!
//! The threads that serve never write to stdout themselves: they append the line to a
//! queue, and one output thread writes the queue out. Writing to a terminal or a pipe can
//! be slow or stop altogether (nobody reads the pipe), and the accept loop must not slow
//! down or stop with it. The output thread writes a line as soon as it comes; while more
//! keep coming it writes what gathered every 5 ms, so a burst of joins goes out in a few
//! writes (and wakes whoever reads the pipe a few times) instead of one per join.
//! If stdout stops being read, the queue stops growing at [`MAX_PENDING`] bytes: later
//! lines are dropped and counted, and a warning on stderr says how many.
//!
//! An event of several lines is queued in one piece, so lines from different threads
//! never interleave. A closed stdout (the reader of a pipe went away) is ignored: the
//! peer's job is to serve, not to print.

use std::fmt;
use std::io::{Cursor, Write};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// While lines keep coming, how long the output thread gathers them between writes.
const GATHER: Duration = Duration::from_millis(5);

/// The most bytes waiting to be written; lines beyond are dropped and counted.
pub const MAX_PENDING: usize = 1 << 20;

/// Lines waiting for the output thread.
struct Pending {
    /// Whole lines, in the order they were said.
    bytes: Vec<u8>,
    /// Lines dropped since the last write because `bytes` was full.
    dropped: u64,
    /// The output thread is waiting for lines and must be woken.
    idle: bool,
    /// The output thread holds a batch it has not finished writing.
    writing: bool,
}

static PENDING: Mutex<Pending> = Mutex::new(Pending {
    bytes: Vec::new(),
    dropped: 0,
    idle: false,
    writing: false,
});
static READY: Condvar = Condvar::new();
/// Whether the output thread could be started (it starts with the first line).
static WRITER: OnceLock<bool> = OnceLock::new();

/// Writes `line` to stdout now, before anything queued: for the address line, which
/// scripts wait for and which must come first. Call it before any other line is said.
pub fn say_first(line: &str) {
    write_out(line.as_bytes());
}

/// Queues `text`, which holds one or more whole lines, for stdout.
pub fn say(text: &str) {
    queue(text.as_bytes());
}

/// Queues one line, formatted from `args`, with its newline.
///
/// The accept loop says a line per join, so the line is formatted into a buffer on the
/// stack rather than a new `String`.
pub fn say_line(args: fmt::Arguments<'_>) {
    let mut buf = [0u8; 256];
    let mut cursor = Cursor::new(&mut buf[..]);
    if cursor.write_fmt(args).is_ok() && cursor.write_all(b"\n").is_ok() {
        let len = cursor.position() as usize;
        queue(&buf[..len]);
    } else {
        // Longer than any line the peer prints (an ID is at most 255 bytes).
        say(&format!("{args}\n"));
    }
}

/// Waits (a second at most) until every line said so far has been written.
pub fn flush() {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        let pending = lock();
        if pending.bytes.is_empty() && !pending.writing {
            return;
        }
        drop(pending);
        thread::sleep(GATHER);
    }
}

/// The first line a peer prints (PROTOCOL 7.1), which scripts and tools read.
pub fn address_line(addr: std::net::SocketAddrV4, id: &str) -> String {
    format!("{ADDRESS_LINE_START}{addr}{ADDRESS_LINE_MIDDLE}{id}\n")
}

const ADDRESS_LINE_START: &str = "This peer address is ";
const ADDRESS_LINE_MIDDLE: &str = " located at ";

/// Reads the address and the ID back out of an address line (without its newline).
pub fn parse_address_line(line: &str) -> Option<(std::net::SocketAddrV4, &str)> {
    let rest = line.strip_prefix(ADDRESS_LINE_START)?;
    let (addr, id) = rest.split_once(ADDRESS_LINE_MIDDLE)?;
    Some((addr.parse().ok()?, id))
}

/// Formats a list of peers as the `which is peered with` line shows them.
pub fn peer_list(peers: &[std::net::SocketAddrV4]) -> String {
    let items: Vec<String> = peers.iter().map(|p| format!("[{p}]")).collect();
    items.join(", ")
}

fn queue(bytes: &[u8]) {
    let writer_running = *WRITER.get_or_init(|| {
        thread::Builder::new()
            .name("output".into())
            .spawn(run_writer)
            .is_ok()
    });
    if !writer_running {
        write_out(bytes);
        return;
    }
    let mut pending = lock();
    if pending.bytes.len() + bytes.len() > MAX_PENDING {
        pending.dropped += 1;
        if pending.dropped == 1 {
            // Said here, once per burst: the writer may be stuck on a pipe nobody reads.
            log::warn!("stdout is not being read: event lines are being dropped");
        }
        return;
    }
    pending.bytes.extend_from_slice(bytes);
    if pending.idle {
        // Only an idle writer needs the (system-call) wake-up; a busy one will look again.
        pending.idle = false;
        READY.notify_one();
    }
}

/// The output thread: wait for a line and write it at once; then, while lines keep
/// coming, write what gathered every [`GATHER`], so a busy peer writes (and wakes the
/// reader of its pipe) a few hundred times a second rather than once per line.
fn run_writer() {
    let mut batch = Vec::new();
    loop {
        {
            let mut pending = lock();
            while pending.bytes.is_empty() && pending.dropped == 0 {
                pending.idle = true;
                pending = READY
                    .wait(pending)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            pending.idle = false;
        }
        loop {
            let dropped = {
                let mut pending = lock();
                if pending.bytes.is_empty() && pending.dropped == 0 {
                    break;
                }
                std::mem::swap(&mut pending.bytes, &mut batch);
                pending.writing = true;
                std::mem::take(&mut pending.dropped)
            };
            write_out(&batch);
            batch.clear();
            lock().writing = false;
            if dropped > 0 {
                log::warn!(
                    "{dropped} event lines dropped: stdout was not being read fast enough (more than {} KiB waiting)",
                    MAX_PENDING / 1024
                );
            }
            thread::sleep(GATHER);
        }
    }
}

fn write_out(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(bytes);
    let _ = stdout.flush();
}

/// Queueing a line cannot leave the queue half-changed, so a poisoned lock is still usable.
fn lock() -> MutexGuard<'static, Pending> {
    PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_longer_than_the_stack_buffer_is_still_said() {
        say_line(format_args!("{}", "x".repeat(300)));
        flush();
        assert!(lock().bytes.is_empty(), "flush waits for the writer");
    }

    #[test]
    fn the_address_line_reads_back() {
        let addr = "127.0.0.1:4000".parse().unwrap();
        let line = address_line(addr, "peer1");
        assert_eq!(
            line,
            "This peer address is 127.0.0.1:4000 located at peer1\n"
        );
        assert_eq!(parse_address_line(line.trim_end()), Some((addr, "peer1")));
        assert_eq!(
            parse_address_line("This peer address is x located at p"),
            None
        );
        assert_eq!(
            parse_address_line("Connected from peer 127.0.0.1:4000"),
            None
        );
    }

    #[test]
    fn peers_are_listed_in_brackets() {
        let peers = [
            "127.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:7".parse().unwrap(),
        ];
        assert_eq!(peer_list(&peers), "[127.0.0.1:40000], [10.0.0.2:7]");
        assert_eq!(peer_list(&[]), "");
    }
}
