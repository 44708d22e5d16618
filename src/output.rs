//! The event lines of PROTOCOL 7: one event at a time, in order, written at once (within a
//! few milliseconds while the peer is busy).
//!
//! The threads that serve never write themselves: they append the line to an [`Output`]
//! queue, and one output thread writes the queue out. Writing to a terminal or a pipe can
//! be slow or stop altogether (nobody reads the pipe), and the accept loop must not slow
//! down or stop with it. The output thread writes a line as soon as it comes; while more
//! keep coming it writes what gathered every 5 ms, so a burst of joins goes out in a few
//! writes (and wakes whoever reads the pipe a few times) instead of one per join.
//! If the output stops being read, the queue stops growing at [`MAX_PENDING`] bytes: later
//! lines are dropped and counted, and a warning on stderr says how many.
//!
//! An event of several lines is queued in one piece, so lines from different threads
//! never interleave. A closed stdout (the reader of a pipe went away) is ignored: the
//! peer's job is to serve, not to print.

use std::fmt;
use std::io::{self, Cursor, Write};
use std::net::SocketAddrV4;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// While lines keep coming, how long the output thread gathers them between writes.
const GATHER: Duration = Duration::from_millis(5);

/// The most bytes waiting to be written; lines beyond are dropped and counted.
pub const MAX_PENDING: usize = 1 << 20;

/// Where the event lines go: stdout for the peer, anything else for a test.
pub type Sink = Box<dyn Write + Send>;

/// The queue of event lines, shared by every thread that says one. Cloning it gives
/// another handle to the same queue.
#[derive(Clone, Default)]
pub struct Output {
    shared: Arc<Queue>,
}

#[derive(Default)]
struct Queue {
    pending: Mutex<Pending>,
    /// Signalled when lines arrive for an idle writer, or the output is closed.
    ready: Condvar,
}

/// Lines waiting for the output thread.
#[derive(Default)]
struct Pending {
    /// Whole lines, in the order they were said.
    bytes: Vec<u8>,
    /// Lines dropped since the last write because `bytes` was full.
    dropped: u64,
    /// The output thread is waiting for lines and must be woken.
    idle: bool,
    /// No more lines will come: the writer writes what is left and ends.
    closed: bool,
}

impl Output {
    pub fn new() -> Output {
        Output::default()
    }

    /// Queues `text`, which holds one or more whole lines.
    pub fn say(&self, text: &str) {
        self.queue(text.as_bytes());
    }

    /// Queues one line, formatted from `args`, with its newline.
    ///
    /// The accept loop says a line per join, so the line is formatted into a buffer on the
    /// stack rather than a new `String`.
    pub fn say_line(&self, args: fmt::Arguments<'_>) {
        let mut buf = [0u8; 256];
        let mut cursor = Cursor::new(&mut buf[..]);
        if cursor.write_fmt(args).is_ok() && cursor.write_all(b"\n").is_ok() {
            let len = cursor.position() as usize;
            self.queue(&buf[..len]);
        } else {
            // Longer than any line the peer prints (an ID is at most 255 bytes).
            self.say(&format!("{args}\n"));
        }
    }

    /// Starts the thread that writes the queued lines to `sink` until [`Output::close`].
    pub fn spawn_writer(&self, sink: Sink) -> io::Result<JoinHandle<()>> {
        let output = self.clone();
        thread::Builder::new()
            .name("output".into())
            .spawn(move || output.run_writer(sink))
    }

    /// Says that no more lines will come: the writer writes what is queued, then ends.
    pub fn close(&self) {
        let mut pending = self.lock();
        pending.closed = true;
        self.shared.ready.notify_one();
    }

    fn queue(&self, bytes: &[u8]) {
        let mut pending = self.lock();
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
            self.shared.ready.notify_one();
        }
    }

    /// The output thread, which writes the lines the serving threads queue.
    ///
    /// The plain way is to write each line as it comes: wait for a line, write it, wait for
    /// the next. A quiet peer does exactly that, since the first line after a pause goes out
    /// at once. A busy one would then make a system call per line, and with stdout piped,
    /// wake the reader of the pipe per line, tens of thousands of times a second in a
    /// flood of joins (docs/PERFORMANCE.md, "What profiling found"). So after each write
    /// the thread pauses [`GATHER`] and writes whatever gathered meanwhile in one piece:
    /// at most about 200 writes a second however busy the peer is, and each line still out
    /// within a few milliseconds (PROTOCOL 7.2). The pause holds up nobody else: the
    /// serving threads only queue their lines, and this thread is the output's own
    /// (PROTOCOL 8.1), so a slow terminal never slows the accept loop down.
    fn run_writer(&self, mut sink: Sink) {
        let mut batch = Vec::new();
        loop {
            let (dropped, closed) = {
                let mut pending = self.lock();
                while pending.bytes.is_empty() && pending.dropped == 0 && !pending.closed {
                    pending.idle = true;
                    pending = self
                        .shared
                        .ready
                        .wait(pending)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                pending.idle = false;
                std::mem::swap(&mut pending.bytes, &mut batch);
                (std::mem::take(&mut pending.dropped), pending.closed)
            };
            if !batch.is_empty() {
                let _ = sink.write_all(&batch).and_then(|()| sink.flush());
                batch.clear();
            }
            if dropped > 0 {
                log::warn!(
                    "{dropped} event lines dropped: stdout was not being read fast enough (more than {} KiB waiting)",
                    MAX_PENDING / 1024
                );
            }
            if closed && self.lock().bytes.is_empty() {
                return;
            }
            // The batching starts here: rather than write the next line the moment it
            // comes, let the lines of the next 5 ms gather and write them together. If none
            // come, the loop goes back to waiting, and the next line is written at once.
            thread::sleep(GATHER);
        }
    }

    /// Queueing a line cannot leave the queue half-changed, so a poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The first line a peer prints (PROTOCOL 7.1), which scripts and tools read.
pub fn address_line(addr: SocketAddrV4, id: &str) -> String {
    format!("{ADDRESS_LINE_START}{addr}{ADDRESS_LINE_MIDDLE}{id}\n")
}

const ADDRESS_LINE_START: &str = "This peer address is ";
const ADDRESS_LINE_MIDDLE: &str = " located at ";

/// Reads the address and the ID back out of an address line (without its newline).
pub fn parse_address_line(line: &str) -> Option<(SocketAddrV4, &str)> {
    let rest = line.strip_prefix(ADDRESS_LINE_START)?;
    let (addr, id) = rest.split_once(ADDRESS_LINE_MIDDLE)?;
    Some((addr.parse().ok()?, id))
}

/// Formats a list of peers as the `which is peered with` line shows them.
pub fn peer_list(peers: &[SocketAddrV4]) -> String {
    let items: Vec<String> = peers.iter().map(|p| format!("[{p}]")).collect();
    items.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read after the writer has ended.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// Says `lines` through an output whose writer runs, closes it, and returns what it wrote.
    fn written(say: impl FnOnce(&Output)) -> String {
        let output = Output::new();
        let sink = Captured::default();
        let writer = output.spawn_writer(Box::new(sink.clone())).unwrap();
        say(&output);
        output.close();
        writer.join().unwrap();
        sink.text()
    }

    #[test]
    fn lines_are_written_in_order_and_whole_before_the_writer_ends() {
        let text = written(|out| {
            out.say_line(format_args!("Connected from peer {}", "127.0.0.1:1"));
            out.say("two\nlines\n");
            out.say_line(format_args!("{}", "x".repeat(300)));
        });
        let long = "x".repeat(300);
        assert_eq!(
            text,
            format!("Connected from peer 127.0.0.1:1\ntwo\nlines\n{long}\n")
        );
    }

    #[test]
    fn lines_said_before_the_writer_starts_are_kept() {
        let output = Output::new();
        output.say("early\n");
        let sink = Captured::default();
        let writer = output.spawn_writer(Box::new(sink.clone())).unwrap();
        output.close();
        writer.join().unwrap();
        assert_eq!(sink.text(), "early\n");
    }

    #[test]
    fn two_outputs_are_separate() {
        let (a, b) = (Output::new(), Output::new());
        let (sink_a, sink_b) = (Captured::default(), Captured::default());
        let wa = a.spawn_writer(Box::new(sink_a.clone())).unwrap();
        let wb = b.spawn_writer(Box::new(sink_b.clone())).unwrap();
        a.say("to a\n");
        b.say("to b\n");
        a.close();
        b.close();
        wa.join().unwrap();
        wb.join().unwrap();
        assert_eq!(
            (sink_a.text(), sink_b.text()),
            ("to a\n".into(), "to b\n".into())
        );
    }

    #[test]
    fn a_full_queue_drops_lines_and_counts_them() {
        let output = Output::new();
        let line = "y".repeat(1023) + "\n";
        for _ in 0..(MAX_PENDING / 1024) + 3 {
            output.say(&line);
        }
        let pending = output.lock();
        assert_eq!(pending.bytes.len(), MAX_PENDING);
        assert_eq!(pending.dropped, 3);
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
            "198.18.0.2:7".parse().unwrap(),
        ];
        assert_eq!(peer_list(&peers), "[127.0.0.1:40000], [198.18.0.2:7]");
        assert_eq!(peer_list(&[]), "");
    }
}
