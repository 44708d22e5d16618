//! Fake peers that the target joins, for the rules of PROTOCOL 6 (joining).
//!
//! A fake listens on 127.0.0.1 at a port the kernel picks, records where every
//! connection came from and when, and answers it as told: a Welcome or a Redirect built
//! with the library's `wire` module, raw bytes, silence, or an immediate close. The peers a
//! fake lists are set after it starts, so two fakes can list each other (a Redirect loop)
//! and a fake can list the target itself once its address is known.

use super::target::lock;
use super::timing::scaled;
use peer::wire::{Kind, Message};
use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A fake peer never lives longer than this, whatever the rule does.
const LIFETIME: Duration = Duration::from_secs(40);
/// Connections answered; later ones are counted and closed (an endless retry loop).
const MAX_ANSWERED: usize = 64;
/// How long a reply waits for its list to be set.
pub const LIST_WITHIN: Duration = Duration::from_secs(4);

/// How a fake answers each connection.
#[derive(Clone)]
pub enum Answer {
    /// A Welcome listing the fake's list; the link is held open.
    Welcome,
    /// A Redirect listing the fake's list, then close.
    Redirect,
    /// These bytes, then hold the connection open.
    Raw(Vec<u8>),
    /// These bytes, then close.
    RawClose(Vec<u8>),
    /// Close at once without a word.
    Close,
    /// Hold the connection open and say nothing.
    Silent,
}

/// A connection the fake accepted.
#[derive(Debug, Clone, Copy)]
pub struct Visit {
    pub from: SocketAddrV4,
    pub at: Instant,
}

pub struct Fake {
    pub id: String,
    pub addr: SocketAddrV4,
    visits: Arc<Mutex<Vec<Visit>>>,
    list: Arc<Mutex<Option<Vec<SocketAddrV4>>>>,
    stop: Arc<AtomicBool>,
}

impl Fake {
    /// Starts a fake with ID `id` that answers every connection with `answer`.
    pub fn start(id: &str, answer: Answer) -> std::io::Result<Fake> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = peer::sockets::ipv4(listener.local_addr()?)
            .ok_or_else(|| std::io::Error::other("bound an IPv6 address"))?;
        listener.set_nonblocking(true)?;
        let fake = Fake {
            id: id.to_string(),
            addr,
            visits: Arc::default(),
            list: Arc::default(),
            stop: Arc::default(),
        };
        let (visits, list, stop) = (
            Arc::clone(&fake.visits),
            Arc::clone(&fake.list),
            Arc::clone(&fake.stop),
        );
        let id = id.to_string();
        thread::Builder::new()
            .name(format!("fake-{id}"))
            .spawn(move || accept_loop(listener, &id, answer, visits, list, stop))?;
        Ok(fake)
    }

    /// Sets the peers this fake lists in its replies.
    pub fn set_list(&self, peers: Vec<SocketAddrV4>) {
        *lock(&self.list) = Some(peers);
    }

    /// Every connection so far.
    pub fn visits(&self) -> Vec<Visit> {
        lock(&self.visits).clone()
    }

    pub fn count(&self) -> usize {
        lock(&self.visits).len()
    }

    /// Waits up to `within` for the first connection.
    pub fn wait_visit(&self, within: Duration) -> Option<Visit> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(first) = lock(&self.visits).first() {
                return Some(*first);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// `fake fakeA at 127.0.0.1:4000: 2 connection(s) from [...]`, naming at most 8.
    pub fn report(&self) -> String {
        let visits = self.visits();
        let mut froms: Vec<String> = visits.iter().take(8).map(|v| v.from.to_string()).collect();
        if visits.len() > 8 {
            froms.push(format!("... and {} more", visits.len() - 8));
        }
        format!(
            "fake {} at {}: {} connection(s) from [{}]",
            self.id,
            self.addr,
            visits.len(),
            froms.join(", ")
        )
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn accept_loop(
    listener: TcpListener,
    id: &str,
    answer: Answer,
    visits: Arc<Mutex<Vec<Visit>>>,
    list: Arc<Mutex<Option<Vec<SocketAddrV4>>>>,
    stop: Arc<AtomicBool>,
) {
    let born = Instant::now();
    while !stop.load(Ordering::Relaxed) && born.elapsed() < scaled(LIFETIME) {
        let (stream, from) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(_) => {
                thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        let SocketAddr::V4(from) = from else { continue };
        let answered = {
            let mut visits = lock(&visits);
            visits.push(Visit {
                from,
                at: Instant::now(),
            });
            visits.len()
        };
        if answered > MAX_ANSWERED || stream.set_nonblocking(false).is_err() {
            continue;
        }
        let (id, answer, list, stop) = (
            id.to_string(),
            answer.clone(),
            Arc::clone(&list),
            Arc::clone(&stop),
        );
        let _ = thread::Builder::new()
            .name("fake-conn".into())
            .spawn(move || serve(stream, &id, &answer, &list, &stop));
    }
}

/// Answers one connection.
fn serve(
    mut stream: TcpStream,
    id: &str,
    answer: &Answer,
    list: &Mutex<Option<Vec<SocketAddrV4>>>,
    stop: &AtomicBool,
) {
    let _ = stream.set_nodelay(true);
    match answer {
        Answer::Welcome | Answer::Redirect => {
            let kind = if matches!(answer, Answer::Welcome) {
                Kind::Welcome
            } else {
                Kind::Redirect
            };
            let peers = wait_list(list).unwrap_or_default();
            let Ok(message) = Message::new(kind, id, peers) else {
                return;
            };
            if stream.write_all(&message.to_bytes()).is_err() || kind == Kind::Redirect {
                return;
            }
            hold(stream, stop);
        }
        Answer::Raw(bytes) => {
            if stream.write_all(bytes).is_ok() {
                hold(stream, stop);
            }
        }
        Answer::RawClose(bytes) => {
            let _ = stream.write_all(bytes);
        }
        Answer::Close => {}
        Answer::Silent => hold(stream, stop),
    }
}

fn wait_list(list: &Mutex<Option<Vec<SocketAddrV4>>>) -> Option<Vec<SocketAddrV4>> {
    let deadline = Instant::now() + scaled(LIST_WITHIN);
    while Instant::now() < deadline {
        if let Some(peers) = lock(list).clone() {
            return Some(peers);
        }
        thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Keeps a link open until the target closes it, the fake is dropped, or its lifetime ends.
fn hold(mut stream: TcpStream, stop: &AtomicBool) {
    let born = Instant::now();
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut sink = [0u8; 512];
    while !stop.load(Ordering::Relaxed) && born.elapsed() < scaled(LIFETIME) {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if peer::reader::is_timeout(&e) => {}
            Err(_) => return,
        }
    }
}
