//! A running peer: how its threads start, share state and stop.
//!
//! The main thread binds the listener and runs the accept loop ([`crate::server`]); one
//! thread runs the timer ([`crate::clock`]); one connector thread performs the join
//! ([`crate::joiner`]); every Welcome link has a thread of its own ([`crate::link`]); one
//! thread writes the event lines ([`crate::output`]). [`Node::run`] starts every one of them
//! and joins every one before it returns.

use crate::clock::Clock;
use crate::joiner::{self, JoinLimits};
use crate::output::{Output, Sink, address_line};
use crate::server;
use crate::sockets::{bind_listener, machine_address};
use crate::state::Shared;
use crate::table::PeerTable;
use crate::wire::BuildError;
use std::fmt;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

/// What a peer is asked to be: the command line (`cli.rs`) produces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The peer to join first, if any.
    pub join: Option<SocketAddrV4>,
    /// This peer's ID, sent in every reply.
    pub id: String,
    /// How many peers the table holds.
    pub table_size: usize,
    /// The address to listen on.
    pub bind: Ipv4Addr,
}

/// Why a peer could not start.
#[derive(Debug)]
pub enum StartError {
    /// The listening socket could not be set up.
    Bind(SocketAddrV4, io::Error),
    /// The ID or the table size cannot be sent in a cPTP message.
    Config(BuildError),
    /// A thread could not be started.
    Thread(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            StartError::Config(e) => write!(f, "{e}"),
            StartError::Thread(e) => write!(f, "cannot start a thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A peer whose listener is bound, ready to run.
pub struct Node {
    listener: TcpListener,
    shared: Arc<Shared>,
    join: Option<SocketAddrV4>,
    limits: JoinLimits,
    /// Where the event lines go; stdout unless [`Node::output_to`] says otherwise.
    sink: Sink,
}

impl Node {
    /// Binds the listener on the configured address and a port the kernel picks.
    pub fn bind(config: &Config, limits: JoinLimits) -> Result<Node, StartError> {
        let table = PeerTable::new(&config.id, config.table_size).map_err(StartError::Config)?;
        let wanted = SocketAddrV4::new(config.bind, 0);
        let listener = bind_listener(wanted).map_err(|e| StartError::Bind(wanted, e))?;
        let port = listener
            .local_addr()
            .map_err(|e| StartError::Bind(wanted, e))?
            .port();
        let shown_ip = match config.bind {
            ip if ip.is_unspecified() => machine_address(),
            ip => ip,
        };
        let shared = Shared {
            addr: SocketAddrV4::new(config.bind, port),
            shown: SocketAddrV4::new(shown_ip, port),
            table,
            clock: Arc::new(Clock::new()),
            output: Output::new(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        Ok(Node {
            listener,
            shared: Arc::new(shared),
            join: config.join,
            limits,
            sink: Box::new(io::stdout()),
        })
    }

    /// Sends the event lines to `sink` instead of stdout.
    pub fn output_to(mut self, sink: Sink) -> Node {
        self.sink = sink;
        self
    }

    /// The address the listener is bound to (0.0.0.0:PORT when on every interface).
    pub fn addr(&self) -> SocketAddrV4 {
        self.shared.addr
    }

    /// The address the first line shows, one that other peers can join.
    pub fn shown_addr(&self) -> SocketAddrV4 {
        self.shared.shown
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A handle that stops the peer from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            stop: Arc::clone(&self.shared.stop),
            addr: self.shared.addr,
        }
    }

    /// Prints the address line, starts the output, the timer and the join, and serves on
    /// the calling thread until stopped. Then waits for every thread it started, the
    /// output thread last: it writes what is queued first, so a sink that blocks for
    /// good (a pipe nobody reads) keeps `run` from returning.
    pub fn run(self) -> Result<(), StartError> {
        let Node {
            listener,
            shared,
            join,
            limits,
            mut sink,
        } = self;
        // Written here, before any other line can be, because scripts wait for it.
        let first = address_line(shared.shown, shared.table.id());
        let _ = sink.write_all(first.as_bytes()).and_then(|()| sink.flush());
        let writer = shared
            .output
            .spawn_writer(sink)
            .map_err(StartError::Thread)?;
        let result = serve_with_helpers(&listener, &shared, join, limits);
        shared.output.close();
        let _ = writer.join();
        result
    }
}

/// Starts the timer and the connector, serves until stopped, then joins both.
fn serve_with_helpers(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    join: Option<SocketAddrV4>,
    limits: JoinLimits,
) -> Result<(), StartError> {
    let ticker = shared
        .clock
        .spawn_ticker(Arc::clone(&shared.stop))
        .map_err(StartError::Thread)?;
    let connector = join.map(|target| {
        let shared = Arc::clone(shared);
        thread::Builder::new()
            .name("connector".into())
            .spawn(move || joiner::run_connector(target, &shared, &limits))
    });
    let result = match connector {
        Some(Err(e)) => {
            shared.stop.store(true, Ordering::Relaxed);
            Err(StartError::Thread(e))
        }
        Some(Ok(connector)) => {
            server::serve(listener, shared);
            // The connector has ended or ends within a second (its link notices the stop).
            let _ = connector.join();
            Ok(())
        }
        None => {
            server::serve(listener, shared);
            Ok(())
        }
    };
    // The clock stops with `stop`. A panic in a joined thread was already reported.
    let _ = ticker.join();
    result
}

/// Stops a running peer: sets the flag, then wakes the blocked `accept` by connecting.
#[derive(Clone)]
pub struct Stopper {
    stop: Arc<AtomicBool>,
    addr: SocketAddrV4,
}

impl Stopper {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let ip = match *self.addr.ip() {
            ip if ip.is_unspecified() => Ipv4Addr::LOCALHOST,
            ip => ip,
        };
        let _ = TcpStream::connect_timeout(
            &SocketAddrV4::new(ip, self.addr.port()).into(),
            Duration::from_secs(1),
        );
    }
}
