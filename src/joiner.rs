//! Joining (PROTOCOL 6): the connector thread.
//!
//! The joiner connects from this peer's own listening port and reads one reply. A Welcome
//! ends the join: the other peer enters the table and the link is held open. A Redirect
//! lists peers to try instead. The search goes depth first: after the first peer listed,
//! it tries the peers of the most recent Redirect (in random order) before older ones.
//! In a network that grows by joins, peers deeper in the overlay joined later and are the
//! likeliest to have free slots, and the random order keeps many joiners from queueing
//! on the same peer. No address is tried twice, this peer never tries itself, and the
//! whole search is bounded in attempts and time.

use crate::link;
use crate::output::peer_list;
use crate::reader::{Deadline, ReadError, read_message};
use crate::sockets::{connect_from, is_local};
use crate::state::Shared;
use crate::wire::{Kind, Message, describe};
use rand::seq::SliceRandom;
use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::{SocketAddrV4, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Limits of the join and auto-join (PROTOCOL 6.5).
#[derive(Debug, Clone)]
pub struct JoinLimits {
    /// How long one connect may take.
    pub connect_timeout: Duration,
    /// How long the whole reply may take to arrive.
    pub read_timeout: Duration,
    /// How many peers one auto-join tries at most.
    pub max_attempts: usize,
    /// How long the whole auto-join may take.
    pub budget: Duration,
}

impl Default for JoinLimits {
    fn default() -> Self {
        JoinLimits {
            connect_timeout: Duration::from_secs(3),
            read_timeout: Duration::from_secs(5),
            max_attempts: 1024,
            budget: Duration::from_secs(60),
        }
    }
}

/// The connector thread: join `first` (auto-joining elsewhere if redirected), then hold the
/// link that results until it closes.
pub fn run_connector(first: SocketAddrV4, shared: &Arc<Shared>, limits: &JoinLimits) {
    let Some(Joined {
        stream,
        peer,
        welcome,
    }) = join(first, shared, limits)
    else {
        if !shared.stopping() {
            shared
                .output
                .say("No peer accepted the join; running standalone\n");
        }
        return;
    };
    // The accepting peer enters the table before the join is printed.
    let Some(slot) = shared.table.insert(peer) else {
        log::warn!(
            "{} at {peer} accepted the join, but this peer's table filled up meanwhile ({} peers); closing that link",
            welcome.sender_id(),
            shared.table.capacity()
        );
        return;
    };
    shared
        .output
        .say(&welcome_lines(peer, &welcome, shared.clock.now()));
    link::hold(stream, peer, slot, shared);
}

/// A peer that sent a Welcome, and the open link to it.
pub struct Joined {
    pub stream: TcpStream,
    pub peer: SocketAddrV4,
    pub welcome: Message,
}

/// Why one attempt did not end in a Welcome.
#[derive(Debug)]
enum Failure {
    /// The connection failed; `hint` says what may be wrong, if there is a likely cause.
    Connect {
        error: io::Error,
        hint: Option<String>,
    },
    Reply(ReadError),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Connect { error, hint: None } => write!(f, "cannot connect: {error}"),
            Failure::Connect {
                error,
                hint: Some(hint),
            } => write!(f, "cannot connect: {error}; {hint}"),
            Failure::Reply(e) => write!(f, "{e}"),
        }
    }
}

/// A failed connect to `peer`, with the likely cause when `peer` refused it.
fn connect_failure(peer: SocketAddrV4, error: io::Error) -> Failure {
    let refused = error.kind() == io::ErrorKind::ConnectionRefused;
    Failure::Connect {
        hint: refused.then(|| refused_hint(peer)).flatten(),
        error,
    }
}

/// True the first time it is asked about `said`, false ever after.
fn first_time(said: &mut bool) -> bool {
    !std::mem::replace(said, true)
}

/// The likely cause when `peer` refused the connection: a peer there that listens on
/// loopback only (PROTOCOL 6.6).
fn refused_hint(peer: SocketAddrV4) -> Option<String> {
    let ip = *peer.ip();
    if ip.is_loopback() {
        return None;
    }
    Some(if is_local(ip) {
        format!(
            "{ip} is this machine; a peer here that listens on 127.0.0.1 only is joined with -p 127.0.0.1:{}",
            peer.port()
        )
    } else {
        format!(
            "if a peer runs there, it may listen on 127.0.0.1 only (start it with -b {ip} or -b 0.0.0.0), or a firewall refuses the port"
        )
    })
}

/// Joins `first`, following Redirects, until a peer sends a Welcome or the search ends.
pub fn join(first: SocketAddrV4, shared: &Shared, limits: &JoinLimits) -> Option<Joined> {
    let deadline = Instant::now() + limits.budget;
    let mut search = Search::new(shared.addr);
    search.offer(&[first], false);
    let mut first_redirect = true;
    let mut attempts = 0;
    let mut said_other_port = false;
    while let Some(peer) = search.next() {
        if shared.stopping() {
            return None;
        }
        if attempts == limits.max_attempts {
            log::warn!("auto-join gave up after {attempts} attempts");
            return None;
        }
        if Instant::now() >= deadline {
            log::warn!(
                "auto-join gave up after {:.0} s and {attempts} attempts",
                limits.budget.as_secs_f64()
            );
            return None;
        }
        if shared.table.contains(peer) {
            log::debug!("skipping {peer}: already linked with this peer");
            continue;
        }
        attempts += 1;
        match attempt(peer, shared, limits, deadline, &mut said_other_port) {
            Err(failure) => log::warn!("join {peer}: {failure}"),
            Ok((stream, message)) => match message.kind() {
                Kind::Welcome => {
                    return Some(Joined {
                        stream,
                        peer,
                        welcome: message,
                    });
                }
                Kind::Redirect => {
                    shared.output.say(&redirect_lines(peer, &message));
                    search.offer(message.peers(), !first_redirect);
                    first_redirect = false;
                }
            },
        }
    }
    None
}

/// One attempt: connect from our port and read one whole reply, by `deadline` at the latest.
fn attempt(
    peer: SocketAddrV4,
    shared: &Shared,
    limits: &JoinLimits,
    deadline: Instant,
    said_other_port: &mut bool,
) -> Result<(TcpStream, Message), Failure> {
    let left = || deadline.saturating_duration_since(Instant::now());
    let outbound = connect_from(shared.addr, peer, limits.connect_timeout.min(left()))
        .map_err(|error| connect_failure(peer, error))?;
    if let Some(why) = &outbound.other_port
        && first_time(said_other_port)
    {
        // Joining still beats not joining, but the other side records a port that
        // accepts no joins: say so, once per auto-join.
        log::warn!(
            "cannot connect from the listening port {} ({why}); connecting from another port, so peers will hand out an address that does not accept joins",
            shared.addr.port()
        );
    }
    let stream = outbound.stream;
    let mut reader = Deadline::new(&stream, limits.read_timeout.min(left()));
    let (message, raw) = read_message(&mut reader).map_err(Failure::Reply)?;
    log::debug!("received from {peer}: {}", describe(&raw));
    Ok((stream, message))
}

/// The lines printed for a Welcome from `peer`, at timer value `timestamp`.
fn welcome_lines(peer: SocketAddrV4, message: &Message, timestamp: u32) -> String {
    let connected = format!(
        "Connected to peer {}:{} at timestamp: {timestamp}\n",
        message.sender_id(),
        peer.port()
    );
    connected + &ack_lines(peer, message)
}

/// The lines printed for a Redirect from `peer`.
fn redirect_lines(peer: SocketAddrV4, message: &Message) -> String {
    let mut text = ack_lines(peer, message);
    text.push_str("\nThe join has been declined; the auto-join process is performing ...\n\n");
    text
}

/// `Received ack from ID:PORT` and, if the list is not empty, `which is peered with`.
fn ack_lines(peer: SocketAddrV4, message: &Message) -> String {
    let mut text = format!(
        "Received ack from {}:{}\n",
        message.sender_id(),
        peer.port()
    );
    if !message.peers().is_empty() {
        text.push_str(&format!(
            "  which is peered with: {}\n",
            peer_list(message.peers())
        ));
    }
    text
}

/// The candidates of an auto-join: a stack, so the newest Redirect's peers come first.
struct Search {
    /// This peer's listening address, never to be tried.
    own: SocketAddrV4,
    /// Addresses tried or waiting, so none is tried twice.
    seen: HashSet<SocketAddrV4>,
    /// Addresses waiting; the last one is tried next.
    stack: Vec<SocketAddrV4>,
}

impl Search {
    fn new(own: SocketAddrV4) -> Search {
        Search {
            own,
            seen: HashSet::new(),
            stack: Vec::new(),
        }
    }

    /// Adds the peers not seen before, to be tried before the older ones, in list order or
    /// shuffled.
    fn offer(&mut self, peers: &[SocketAddrV4], shuffle: bool) {
        let mut fresh: Vec<SocketAddrV4> = Vec::new();
        for &peer in peers {
            if !self.seen.insert(peer) {
                continue;
            }
            if peer.port() == 0 || peer.ip().is_unspecified() {
                log::warn!("skipping {peer}: not an address a peer can be joined at");
            } else if is_self(peer, self.own) {
                log::debug!("skipping {peer}: that is this peer");
            } else {
                fresh.push(peer);
            }
        }
        if shuffle {
            fresh.shuffle(&mut rand::rng());
        }
        self.stack.extend(fresh.into_iter().rev());
    }

    fn next(&mut self) -> Option<SocketAddrV4> {
        self.stack.pop()
    }
}

/// True if `candidate` is this peer: same port, and an address of this machine that
/// reaches our listener.
fn is_self(candidate: SocketAddrV4, own: SocketAddrV4) -> bool {
    if candidate.port() != own.port() {
        return false;
    }
    if candidate.ip() == own.ip() {
        return true;
    }
    if own.ip().is_loopback() {
        // Listening on one loopback address: only that one reaches us.
        return false;
    }
    // Listening on all interfaces: any address of this machine is us, including the one
    // the first line shows.
    own.ip().is_unspecified() && is_local(*candidate.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Kind;
    use std::net::Ipv4Addr;

    fn addr(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
    }

    #[test]
    fn welcome_and_redirect_print_the_spec_lines() {
        let lonely = Message::new(Kind::Welcome, "peer1", vec![]).unwrap();
        assert_eq!(
            welcome_lines(addr(5000), &lonely, 42),
            "Connected to peer peer1:5000 at timestamp: 42\nReceived ack from peer1:5000\n"
        );
        let two = vec![addr(40000), addr(40001)];
        let redirect = Message::new(Kind::Redirect, "p1", two).unwrap();
        assert_eq!(
            redirect_lines(addr(6000), &redirect),
            "Received ack from p1:6000\n  which is peered with: [127.0.0.1:40000], [127.0.0.1:40001]\n\nThe join has been declined; the auto-join process is performing ...\n\n"
        );
    }

    #[test]
    fn only_a_refused_connect_gets_a_hint() {
        let elsewhere = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 9), 4000);
        let refused = connect_failure(elsewhere, io::ErrorKind::ConnectionRefused.into());
        assert!(
            refused.to_string().contains("may listen on 127.0.0.1 only"),
            "{refused}"
        );
        let timed_out = connect_failure(elsewhere, io::ErrorKind::TimedOut.into());
        assert!(
            matches!(timed_out, Failure::Connect { hint: None, .. }),
            "{timed_out}"
        );
    }

    #[test]
    fn first_time_is_true_once() {
        let mut said = false;
        assert!(first_time(&mut said));
        assert!(!first_time(&mut said));
        assert!(!first_time(&mut said));
    }

    #[test]
    fn the_first_listed_peer_is_tried_first_and_nothing_twice() {
        let mut search = Search::new(addr(9));
        search.offer(&[addr(1), addr(2), addr(3)], false);
        assert_eq!(search.next(), Some(addr(1)));
        search.offer(&[addr(1), addr(4)], true);
        assert_eq!(
            search.next(),
            Some(addr(4)),
            "the newest Redirect goes first"
        );
        assert_eq!(search.next(), Some(addr(2)));
        assert_eq!(search.next(), Some(addr(3)));
        assert_eq!(search.next(), None);
    }

    #[test]
    fn never_tries_itself_or_unusable_addresses() {
        let own = addr(9);
        let mut search = Search::new(own);
        let zero_port = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        let unspecified = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5);
        search.offer(&[own, zero_port, unspecified, addr(10)], false);
        assert_eq!(search.next(), Some(addr(10)));
        assert_eq!(search.next(), None);
    }

    #[test]
    fn recognises_itself_under_a_non_loopback_address_of_this_machine() {
        // The address this machine would send from toward a benchmarking-range host.
        let Some(local) = crate::sockets::route_source(Ipv4Addr::new(198, 18, 0, 1)) else {
            eprintln!("no route off this machine: non-loopback self-recognition not tested");
            return;
        };
        let own = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 9);
        assert!(is_self(SocketAddrV4::new(local, 9), own), "{local}");
        assert!(!is_self(SocketAddrV4::new(local, 10), own));
    }

    #[test]
    fn recognises_itself_when_listening_on_all_interfaces() {
        let own = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 9);
        assert!(is_self(addr(9), own));
        assert!(!is_self(addr(10), own));
        assert!(!is_self(
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 9),
            own
        ));
        assert!(!is_self(
            SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 9),
            addr(9)
        ));
        let shown = SocketAddrV4::new(crate::sockets::machine_address(), 9);
        assert!(
            is_self(shown, own),
            "the address the first line shows is us"
        );
    }

    #[test]
    fn a_refused_connection_names_the_likely_cause() {
        assert_eq!(refused_hint(addr(5)), None);
        let elsewhere = SocketAddrV4::new(Ipv4Addr::new(198, 19, 255, 1), 5);
        let hint = refused_hint(elsewhere).unwrap();
        assert!(hint.contains("127.0.0.1 only"), "{hint}");
        assert!(hint.contains("-b 198.19.255.1"), "{hint}");
        let ours = SocketAddrV4::new(crate::sockets::machine_address(), 5);
        if !ours.ip().is_loopback() {
            let hint = refused_hint(ours).unwrap();
            assert!(hint.contains("-p 127.0.0.1:5"), "{hint}");
        }
    }
}
