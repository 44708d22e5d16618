//! The crawl: join each peer once, read the table its reply lists, close at once, and go
//! on to every address listed, breadth first.
//!
//! A small pool of threads ([`Limits::jobs`]) takes addresses from one queue. Shared state
//! is one [`State`] behind a mutex, held only to take or record an address, never across
//! a connect or a read; a condition variable wakes the threads waiting for work. Every
//! wait is bounded by the crawl's deadline, every connect and read by its own timeout
//! clipped to that deadline, and the number of joins by [`Limits::max_peers`].
//!
//! The crawler's own connections are peers of nobody: each local address a connection
//! used is recorded the moment it connects, listed addresses are checked against that
//! record before they are queued, and the finished map is cleaned of them once more
//! ([`Map::drop_own`]). A peer only lists a connection it welcomed, and the crawler joins
//! each address once, so in practice they show up only when some other tool's join (a
//! second `cptp map`, a `cptp probe`) was under way at the same moment; those are not
//! ours to recognise, and are reported as the unreachable addresses they are.

use super::graph::{Map, Peer, Trouble};
use crate::contract::Kind;
use crate::harness::client::{drain, read_message};
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::io;
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// How far a crawl may go.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The most addresses joined, the first one included.
    pub max_peers: usize,
    /// The whole crawl ends by then; addresses still queued are reported as not visited.
    pub timeout: Duration,
    /// For one TCP connect.
    pub connect_timeout: Duration,
    /// For one whole reply after connecting.
    pub reply_timeout: Duration,
    /// Joins under way at once (threads).
    pub jobs: usize,
    /// The least time between the starts of two joins, over all threads.
    pub delay: Duration,
}

/// What the crawl threads share.
struct State {
    /// Addresses waiting to be joined, in the order they were first listed.
    queue: VecDeque<SocketAddrV4>,
    /// Every address ever queued: each is joined at most once.
    queued: HashSet<SocketAddrV4>,
    /// Joins under way; the crawl is over when this is 0 and the queue is empty.
    busy: usize,
    /// The earliest moment the next join may start (`--delay`).
    next_start: Instant,
    /// Local addresses of the crawler's own connections.
    own: HashSet<SocketAddrV4>,
    /// Listed addresses left out because `max_peers` were already queued.
    over_limit: BTreeSet<SocketAddrV4>,
    /// What has been learned so far.
    map: Map,
}

struct Crawl {
    limits: Limits,
    deadline: Instant,
    state: Mutex<State>,
    /// Signalled whenever the queue grows or a join ends.
    changed: Condvar,
}

/// Crawls the overlay from `start` and returns what it found.
pub fn crawl(start: SocketAddrV4, limits: &Limits) -> Map {
    let started = Instant::now();
    let crawl = Crawl {
        limits: limits.clone(),
        deadline: started + limits.timeout,
        state: Mutex::new(State {
            queue: VecDeque::from([start]),
            queued: HashSet::from([start]),
            busy: 0,
            next_start: started,
            own: HashSet::new(),
            over_limit: BTreeSet::new(),
            map: Map::default(),
        }),
        changed: Condvar::new(),
    };
    thread::scope(|scope| {
        let mut spawned = 0;
        for i in 0..limits.jobs.max(1) {
            let job = thread::Builder::new()
                .name(format!("map-{i}"))
                .spawn_scoped(scope, || run_job(&crawl));
            match job {
                Ok(_) => spawned += 1,
                Err(e) => log::warn!("could not start crawl thread {i}: {e}"),
            }
        }
        if spawned == 0 {
            run_job(&crawl);
        }
    });
    let state = crawl
        .state
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut map = state.map;
    for addr in state.queue {
        let why = format!(
            "the crawl's --timeout of {:.1} s ran out first",
            limits.timeout.as_secs_f64()
        );
        map.problems.insert(addr, Trouble::NotVisited(why));
    }
    for addr in state.over_limit {
        let why = format!("--max-peers {} were joined already", limits.max_peers);
        map.problems.insert(addr, Trouble::NotVisited(why));
    }
    map.drop_own(&state.own);
    map.elapsed = started.elapsed();
    map
}

/// One crawl thread: take an address, join it, record the answer, until there is no work.
fn run_job(crawl: &Crawl) {
    while let Some((addr, at)) = crawl.take() {
        let wait = at
            .min(crawl.deadline)
            .saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            thread::sleep(wait);
        }
        if Instant::now() >= crawl.deadline {
            crawl.give_back(addr);
            break;
        }
        let clock = Instant::now();
        let outcome = crawl.visit(addr);
        log::debug!("{addr}: joined in {} us", clock.elapsed().as_micros());
        crawl.record(addr, outcome);
    }
}

impl Crawl {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change to the state is made whole under the lock, so a poisoned one is usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The time left before the deadline.
    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Waits for an address to join; returns it with the moment its join may start, or
    /// `None` when the crawl is over (nothing queued, nothing under way) or out of time.
    fn take(&self) -> Option<(SocketAddrV4, Instant)> {
        let mut state = self.lock();
        loop {
            let left = self.left();
            if left.is_zero() {
                self.changed.notify_all();
                return None;
            }
            if let Some(addr) = state.queue.pop_front() {
                state.busy += 1;
                let at = state.next_start.max(Instant::now());
                state.next_start = at + self.limits.delay;
                return Some((addr, at));
            }
            if state.busy == 0 {
                self.changed.notify_all();
                return None;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Puts back an address whose join never started, for the not-visited list.
    fn give_back(&self, addr: SocketAddrV4) {
        let mut state = self.lock();
        state.busy -= 1;
        state.queue.push_front(addr);
        self.changed.notify_all();
    }

    /// Joins `addr` once: connect, note our own local address, read one reply, close.
    fn visit(&self, addr: SocketAddrV4) -> Result<Peer, Trouble> {
        if addr.ip().is_unspecified() || addr.port() == 0 || addr.ip().is_broadcast() {
            return Err(Trouble::Misbehaving(
                "listed, but no peer can be joined at this address".into(),
            ));
        }
        self.lock().map.joins += 1;
        let limit = self.limits.connect_timeout.min(self.left());
        let stream = TcpStream::connect_timeout(&addr.into(), limit.max(Duration::from_millis(1)))
            .map_err(|e| Trouble::Unreachable(connect_error(&e, limit)))?;
        if let Ok(SocketAddr::V4(local)) = stream.local_addr() {
            self.lock().own.insert(local);
        }
        let limit = self.limits.reply_timeout.min(self.left());
        let reply = read_message(&stream, limit.max(Duration::from_millis(1)));
        // Close at once (a peer that welcomed us frees the slot as soon as it sees this),
        // having read what it sent after the reply, so that the close is not a reset.
        drain(&stream);
        drop(stream);
        match reply {
            Ok((message, _)) => {
                log::debug!(
                    "{addr}: {} from '{}' listing {} peers",
                    message.kind,
                    message.sender_id(),
                    message.peers.len()
                );
                Ok(Peer {
                    id: message.sender_id(),
                    full: message.kind == Kind::Redirect,
                    listed: message.peers,
                })
            }
            Err(e) => Err(Trouble::Misbehaving(e.to_string())),
        }
    }

    /// Records the outcome of a join and queues the new addresses its reply listed.
    fn record(&self, addr: SocketAddrV4, outcome: Result<Peer, Trouble>) {
        let mut state = self.lock();
        state.busy -= 1;
        let mut queued = 0;
        match outcome {
            Ok(peer) => {
                for &listed in &peer.listed {
                    if state.own.contains(&listed) || state.queued.contains(&listed) {
                        continue;
                    }
                    if state.queued.len() >= self.limits.max_peers {
                        state.over_limit.insert(listed);
                        continue;
                    }
                    state.queued.insert(listed);
                    state.queue.push_back(listed);
                    queued += 1;
                }
                state.map.peers.insert(addr, peer);
            }
            Err(trouble) => {
                log::debug!("{addr}: {} ({})", trouble.word(), trouble.reason());
                state.map.problems.insert(addr, trouble);
            }
        }
        if state.queue.is_empty() && state.busy == 0 {
            // The crawl is over: every waiting thread may go.
            self.changed.notify_all();
        } else {
            // One waiting thread per new address (this one takes another itself): waking
            // them all for each reply would cost a crowd of context switches per join.
            for _ in 0..queued {
                self.changed.notify_one();
            }
        }
    }
}

/// A failed connect in words a person can act on.
fn connect_error(e: &io::Error, limit: Duration) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused (nothing listens there)".into(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            format!("no answer to connect within {:.1} s", limit.as_secs_f64())
        }
        _ => format!("cannot connect: {e}"),
    }
}
