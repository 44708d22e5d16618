//! A peering link: the TCP connection that stays open after a Welcome, on either side.
//!
//! The link's thread waits for the other peer to close it (or crash: the kernel closes
//! its sockets), then frees the table entry at once and says so. cPTP sends nothing on an
//! open link, so anything that does arrive is read and dropped.

use crate::node::Shared;
use crate::output::say;
use crate::reader::is_timeout;
use crate::table::Slot;
use std::io::{self, Read};
use std::net::{SocketAddrV4, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// How often an idle link looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_secs(1);

/// Stack for a link thread: it only reads into a small buffer and prints.
const LINK_STACK: usize = 128 * 1024;

/// Starts the thread that holds a link. On failure the entry is freed and the link closed.
pub fn spawn(stream: TcpStream, peer: SocketAddrV4, slot: Slot, shared: &Arc<Shared>) {
    let thread_shared = Arc::clone(shared);
    let started = thread::Builder::new()
        .name(format!("link {peer}"))
        .stack_size(LINK_STACK)
        .spawn(move || hold(stream, peer, slot, &thread_shared));
    if let Err(e) = started {
        shared.table.remove(slot);
        log::error!("dropping the link with {peer}: cannot start its thread: {e}");
    }
}

/// Holds the link until it closes, then removes `slot` and prints `Peer IP:PORT left`.
pub fn hold(mut stream: TcpStream, peer: SocketAddrV4, slot: Slot, shared: &Shared) {
    let why = wait_for_close(&mut stream, peer, shared);
    if shared.table.remove(slot) && !shared.stopping() {
        match why {
            Ok(()) => log::debug!("link with {peer} closed"),
            Err(e) => log::info!("link with {peer} failed: {e}"),
        }
        say(&format!("Peer {peer} left\n"));
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
