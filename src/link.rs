//! A peering link (PROTOCOL 1.3, 5.4): the TCP connection that stays open after a Welcome, on either side.
//!
//! The link's thread waits for the other peer to close it (or crash: the kernel closes
//! its sockets), then frees the table entry at once and says so. cPTP sends nothing on an
//! open link, so anything that does arrive is read and dropped. A peer whose machine
//! vanished never closes anything: TCP keepalive finds it (PROTOCOL 5.4), and the read
//! fails like any other broken link.

use crate::reader::is_timeout;
use crate::sockets::keep_alive;
use crate::state::Shared;
use crate::table::Slot;
use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{SocketAddrV4, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How often an idle link looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_secs(1);

/// How long to wait for a finishing link thread before starting one more anyway.
const REAP_WAIT: Duration = Duration::from_secs(1);

/// Stack for a link thread: it only reads into a small buffer and prints.
const LINK_STACK: usize = 128 * 1024;

/// The threads holding the links this peer accepted. Each thread says when it ends and is
/// then joined, so at most `cap` (the table size) are alive at once, even for the moment
/// between a link freeing its table slot and its thread finishing.
pub struct LinkThreads {
    /// The threads not yet joined, by the table slot of their link.
    running: HashMap<Slot, JoinHandle<()>>,
    /// Where a thread sends its slot as its last act.
    done_tx: Sender<Slot>,
    done_rx: Receiver<Slot>,
    /// How many may be alive at once.
    cap: usize,
}

impl LinkThreads {
    pub fn new(cap: usize) -> LinkThreads {
        let (done_tx, done_rx) = channel();
        LinkThreads {
            running: HashMap::new(),
            done_tx,
            done_rx,
            cap,
        }
    }

    /// Starts the thread that holds a link. On failure the entry is freed and the link
    /// closed.
    pub fn spawn(
        &mut self,
        stream: TcpStream,
        peer: SocketAddrV4,
        slot: Slot,
        shared: &Arc<Shared>,
    ) {
        self.reap();
        while self.running.len() >= self.cap {
            // A thread whose slot is free already is finishing: wait for it.
            match self.done_rx.recv_timeout(REAP_WAIT) {
                Ok(ended) => self.join(ended),
                Err(_) => {
                    log::warn!(
                        "link threads are slow to finish; {} alive",
                        self.running.len()
                    );
                    break;
                }
            }
        }
        let (thread_shared, done) = (Arc::clone(shared), self.done_tx.clone());
        let started = thread::Builder::new()
            .name(format!("link {peer}"))
            .stack_size(LINK_STACK)
            .spawn(move || {
                hold(stream, peer, slot, &thread_shared);
                let _ = done.send(slot);
            });
        match started {
            Ok(handle) => {
                self.running.insert(slot, handle);
            }
            Err(e) => {
                // "Connected from peer" was printed: say that it is gone again.
                shared.table.remove(slot);
                log::error!("dropping the link with {peer}: cannot start its thread: {e}");
                shared.output.say_line(format_args!("Peer {peer} left"));
            }
        }
    }

    /// Joins every thread that has said it is done.
    fn reap(&mut self) {
        while let Ok(ended) = self.done_rx.try_recv() {
            self.join(ended);
        }
    }

    fn join(&mut self, slot: Slot) {
        if let Some(handle) = self.running.remove(&slot) {
            // A panic in a link thread was already reported by the panic hook.
            let _ = handle.join();
        }
    }

    /// Waits for every link thread to end (they notice the stop flag within a second).
    pub fn join_all(mut self) {
        for (_, handle) in self.running.drain() {
            let _ = handle.join();
        }
    }
}

/// Holds the link until it closes, then removes `slot` and prints `Peer IP:PORT left`.
/// Both sides of a link come here, so both probe it with keepalive.
pub fn hold(mut stream: TcpStream, peer: SocketAddrV4, slot: Slot, shared: &Shared) {
    if let Err(e) = keep_alive(&stream) {
        log::warn!("link with {peer}: no keepalive ({e}); a vanished machine will not be noticed");
    }
    let why = wait_for_close(&mut stream, peer, shared);
    if shared.table.remove(slot) && !shared.stopping() {
        match why {
            Ok(()) => log::debug!("link with {peer} closed"),
            Err(e) => log::info!("link with {peer} failed: {e}"),
        }
        shared.output.say_line(format_args!("Peer {peer} left"));
    }
}

/// Returns when the other side closes the link, it fails, or the peer is stopping.
fn wait_for_close(stream: &mut TcpStream, peer: SocketAddrV4, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(STOP_CHECK))?;
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => log::debug!("{peer} sent {n} bytes on an open link; ignored"),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e),
        }
        if shared.stopping() {
            return Ok(());
        }
    }
}
