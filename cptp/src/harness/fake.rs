//! Fake peers: listeners on 127.0.0.1 that a peer under test joins. Each records where
//! every connection came from and when, and answers it as told: with a closure of the
//! test's own, or with one of the ready answers of [`Answer`] (a Welcome or a Redirect
//! encoded by [`crate::contract`], raw bytes, silence, a close).
//!
//! The peers a fake lists can be set after it starts ([`Fake::set_list`]), so two fakes
//! can list each other (a Redirect loop) and a fake can list the target itself once its
//! address is known; a reply waits for its list (up to the patience it was given).
//! A fake stops accepting when dropped, and answers at most [`MOST_ANSWERED`]
//! connections: later ones are counted and closed, so a joiner that retries forever
//! costs neither threads nor memory.

use super::sockets::ipv4;
use crate::contract::{Kind, Message};
use crate::sync::lock;
use crate::text::first;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Connections answered; later ones are counted and closed.
pub const MOST_ANSWERED: usize = 64;
/// A fake that is never dropped (a leaked one) still stops after this long.
const LIFETIME: Duration = Duration::from_secs(900);
/// Visits named in a report; the count says how many more there were.
const SHOWN_VISITS: usize = 8;

/// A connection a fake accepted.
#[derive(Debug, Clone, Copy)]
pub struct Visit {
    pub from: SocketAddrV4,
    pub at: Instant,
}

/// A ready answer for every connection.
#[derive(Clone, Debug)]
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

/// A stand-in peer, listening until it is dropped.
pub struct Fake {
    /// Its ID, the sender ID of its Welcomes and Redirects.
    pub id: String,
    pub addr: SocketAddrV4,
    visits: Arc<Mutex<Vec<Visit>>>,
    list: Arc<Mutex<Option<Vec<SocketAddrV4>>>>,
    stop: Arc<AtomicBool>,
}

impl Fake {
    /// A fake whose every connection is handled by `behave`, on a thread of its own.
    /// Panics if it cannot listen (for tests and tools; the checker uses
    /// [`Fake::answering`]).
    pub fn serve<F>(behave: F) -> Fake
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        Fake::serve_as("fake", Arc::default(), Arc::default(), behave)
            .unwrap_or_else(|e| panic!("a fake peer cannot listen on 127.0.0.1: {e}"))
    }

    /// A fake that sends `bytes` to each connection and then holds it open a while.
    pub fn replying(bytes: Vec<u8>) -> Fake {
        Fake::serve(move |mut stream| {
            let _ = stream.write_all(&bytes);
            super::sockets::hold_open(stream);
        })
    }

    /// A fake with ID `id` that answers every connection with `answer`; a Welcome or a
    /// Redirect waits up to `patience` for [`Fake::set_list`].
    pub fn answering(id: &str, answer: Answer, patience: Duration) -> io::Result<Fake> {
        let list: Arc<Mutex<Option<Vec<SocketAddrV4>>>> = Arc::default();
        let stop: Arc<AtomicBool> = Arc::default();
        let (id_, list_, stop_) = (id.to_string(), Arc::clone(&list), Arc::clone(&stop));
        Fake::serve_as(id, list, stop, move |stream| {
            serve_answer(stream, &id_, &answer, &list_, patience, &stop_)
        })
    }

    fn serve_as<F>(
        id: &str,
        list: Arc<Mutex<Option<Vec<SocketAddrV4>>>>,
        stop: Arc<AtomicBool>,
        behave: F,
    ) -> io::Result<Fake>
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = ipv4(listener.local_addr()?).ok_or_else(|| io::Error::other("not IPv4"))?;
        listener.set_nonblocking(true)?;
        let fake = Fake {
            id: id.to_string(),
            addr,
            visits: Arc::default(),
            list,
            stop,
        };
        let (visits, stop) = (Arc::clone(&fake.visits), Arc::clone(&fake.stop));
        let behave = Arc::new(behave);
        thread::Builder::new()
            .name(format!("fake-{id}"))
            .spawn(move || accept_loop(&listener, &visits, &stop, behave))?;
        Ok(fake)
    }

    /// Sets the peers this fake lists in its Welcomes and Redirects.
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
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// `fake fakeA at 127.0.0.1:4000: 2 connection(s) from [...]`.
    pub fn report(&self) -> String {
        let froms: Vec<SocketAddrV4> = self.visits().iter().map(|v| v.from).collect();
        format!(
            "fake {} at {}: {} connection(s) from [{}]",
            self.id,
            self.addr,
            froms.len(),
            first(&froms, SHOWN_VISITS)
        )
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn accept_loop<F>(
    listener: &TcpListener,
    visits: &Mutex<Vec<Visit>>,
    stop: &AtomicBool,
    behave: Arc<F>,
) where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let born = Instant::now();
    while !stop.load(Ordering::Relaxed) && born.elapsed() < LIFETIME {
        let (stream, from) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(_) => {
                thread::sleep(Duration::from_millis(2));
                continue;
            }
        };
        let SocketAddr::V4(from) = from else { continue };
        let answered = {
            let mut visits = lock(visits);
            visits.push(Visit {
                from,
                at: Instant::now(),
            });
            visits.len()
        };
        if answered > MOST_ANSWERED || stream.set_nonblocking(false).is_err() {
            continue;
        }
        let behave = Arc::clone(&behave);
        let _ = thread::Builder::new()
            .name("fake-conn".into())
            .spawn(move || behave(stream));
    }
}

/// Answers one connection with a ready answer.
fn serve_answer(
    mut stream: TcpStream,
    id: &str,
    answer: &Answer,
    list: &Mutex<Option<Vec<SocketAddrV4>>>,
    patience: Duration,
    stop: &AtomicBool,
) {
    let _ = stream.set_nodelay(true);
    match answer {
        Answer::Welcome | Answer::Redirect => {
            let kind = match answer {
                Answer::Welcome => Kind::Welcome,
                _ => Kind::Redirect,
            };
            let peers = wait_list(list, patience).unwrap_or_default();
            let bytes = Message::new(kind, id, peers).encode();
            if stream.write_all(&bytes).is_ok() && kind == Kind::Welcome {
                hold(stream, stop);
            }
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

fn wait_list(
    list: &Mutex<Option<Vec<SocketAddrV4>>>,
    patience: Duration,
) -> Option<Vec<SocketAddrV4>> {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if let Some(peers) = lock(list).clone() {
            return Some(peers);
        }
        thread::sleep(Duration::from_millis(5));
    }
    None
}

/// Keeps a link open until the joiner closes it or the fake is dropped.
fn hold(mut stream: TcpStream, stop: &AtomicBool) {
    let born = Instant::now();
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut sink = [0u8; 512];
    while !stop.load(Ordering::Relaxed) && born.elapsed() < LIFETIME {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if super::client::is_timeout(&e) => {}
            Err(_) => return,
        }
    }
}
