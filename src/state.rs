//! What the threads of one running peer share, behind one `Arc`.
//!
//! The accept loop (`server.rs`), the link threads (`link.rs`) and the
//! connector (`joiner.rs`) all read and change the same table, print through the
//! same output and watch the same stop flag. They get it here rather than from the node
//! that starts them, so that every module below the node depends only on this one.

use crate::clock::Clock;
use crate::output::Output;
use crate::table::PeerTable;
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct Shared {
    /// The address this peer listens on (the bind address and the kernel's port).
    pub addr: SocketAddrV4,
    /// The address the first line shows: `addr`, or with a listener on all interfaces
    /// (0.0.0.0) this machine's address that other machines can use (PROTOCOL 7.1).
    pub shown: SocketAddrV4,
    /// The peers this peer is linked with; it also knows this peer's ID.
    pub table: PeerTable,
    /// The timer whose value a successful join prints.
    pub clock: Arc<Clock>,
    /// Where the event lines go.
    pub output: Output,
    /// Set once to ask every thread to finish.
    pub stop: Arc<AtomicBool>,
}

impl Shared {
    /// True once the peer has been asked to stop.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
