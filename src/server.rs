//! Being joined (PROTOCOL 5): the accept loop on the main thread.
//!
//! A join is the TCP connection itself, and answering it takes three steps: the table
//! admits the joiner or refuses it, in one step ([`crate::table`], PROTOCOL 5.3); the reply
//! comes from a cache of encoded replies ([`crate::replies`]), which also knows what to hand
//! a joiner from another machine (PROTOCOL 5.5); then it is sent. After a Welcome the link
//! gets a thread ([`crate::link`]); after a Redirect the connection is closed right here,
//! so a flood of joins against a full table never costs a thread.

use crate::link::LinkThreads;
use crate::replies::ReplyCache;
use crate::sockets::{ipv4, send_reply};
use crate::state::Shared;
use crate::table::Admission;
use crate::wire::{Kind, describe};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// The first pause after `accept` fails for want of resources; it doubles up to the most.
const BACKOFF_FIRST: Duration = Duration::from_millis(5);
const BACKOFF_MOST: Duration = Duration::from_millis(100);

/// Accepts joins until the peer is stopped.
pub fn serve(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut trouble = AcceptTrouble::default();
    let mut cache = ReplyCache::for_table(&shared.table);
    let mut links = LinkThreads::new(shared.table.capacity());
    while !shared.stopping() {
        match listener.accept() {
            Ok((stream, from)) => {
                trouble.recovered();
                if shared.stopping() {
                    break;
                }
                answer(stream, from, shared, &mut cache, &mut links);
            }
            Err(e) => trouble.failed(&e),
        }
    }
    links.join_all();
}

/// Answers one join: admit, reply from the cache, send.
fn answer(
    stream: TcpStream,
    from: SocketAddr,
    shared: &Arc<Shared>,
    cache: &mut ReplyCache,
    links: &mut LinkThreads,
) {
    let Some(peer) = ipv4(from) else {
        log::warn!("refusing {from}: cPTP carries IPv4 addresses only");
        return;
    };
    // A joiner from elsewhere is handed loopback entries as the address it reached us at
    // (PROTOCOL 5.5). One on loopback needs no rewriting, nor the extra system call.
    let local = match peer.ip().is_loopback() {
        true => None,
        false => stream
            .local_addr()
            .ok()
            .and_then(ipv4)
            .map(|ours| *ours.ip()),
    };
    match shared.table.admit(peer) {
        Admission::Redirect { listed } => {
            shared
                .output
                .say_line(format_args!("Peer table full: {peer} redirected"));
            let reply = cache.reply(Kind::Redirect, &listed, peer, local);
            if let Err(e) = send_reply(&stream, reply) {
                log::info!("Redirect to {peer} not delivered: {e}");
            }
            log::debug!("sent to {peer}: {}", describe(reply));
        }
        Admission::Welcome { slot, listed } => {
            let reply = cache.reply(Kind::Welcome, &listed, peer, local);
            if let Err(e) = send_reply(&stream, reply) {
                shared.table.remove(slot);
                log::warn!("Welcome to {peer} not delivered, entry dropped: {e}");
                return;
            }
            log::debug!("sent to {peer}: {}", describe(reply));
            shared
                .output
                .say_line(format_args!("Connected from peer {peer}"));
            links.spawn(stream, peer, slot, shared);
        }
    }
}

/// Tracks a run of failed accepts, so a burst is logged once rather than per failure.
#[derive(Default)]
struct AcceptTrouble {
    /// Failures since the last successful accept.
    failures: u64,
    /// The pause before the next try, while out of resources.
    backoff: Option<Duration>,
}

impl AcceptTrouble {
    fn failed(&mut self, e: &io::Error) {
        self.failures += 1;
        if !is_resource_shortage(e) {
            // The connection died before we took it (reset, aborted): nothing to wait for.
            log::debug!("accept failed: {e}");
            return;
        }
        if self.backoff.is_none() {
            log::warn!("cannot accept joins: {e}; retrying until resources are free");
        }
        let pause = self
            .backoff
            .map_or(BACKOFF_FIRST, |b| (b * 2).min(BACKOFF_MOST));
        self.backoff = Some(pause);
        thread::sleep(pause);
    }

    fn recovered(&mut self) {
        if self.backoff.take().is_some() {
            log::warn!("accepting joins again after {} failed tries", self.failures);
        }
        self.failures = 0;
    }
}

/// Errors that mean the process or the system is out of something (descriptors: EMFILE,
/// ENFILE; memory: ENOBUFS, ENOMEM), rather than one connection having gone bad. Those
/// have no portable `ErrorKind`, so this names the per-connection ones instead and treats
/// anything else as a shortage worth pausing for.
fn is_resource_shortage(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    !matches!(
        e.kind(),
        ConnectionAborted
            | ConnectionReset
            | Interrupted
            | WouldBlock
            | TimedOut
            | PermissionDenied
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_descriptors_is_a_shortage() {
        #[cfg(unix)]
        assert!(is_resource_shortage(&io::Error::from_raw_os_error(24))); // EMFILE
        assert!(!is_resource_shortage(
            &io::ErrorKind::ConnectionAborted.into()
        ));
    }

    #[test]
    fn a_burst_backs_off_and_recovers() {
        let mut trouble = AcceptTrouble::default();
        let emfile = io::Error::other("Too many open files");
        trouble.failed(&emfile);
        trouble.failed(&emfile);
        assert_eq!(trouble.backoff, Some(BACKOFF_FIRST * 2));
        trouble.recovered();
        assert_eq!((trouble.failures, trouble.backoff), (0, None));
    }
}
