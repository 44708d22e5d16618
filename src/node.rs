//! A running peer: the state its threads share, and how they start and stop.
//!
//! The main thread binds the listener and runs the accept loop ([`crate::server`]); one
//! thread runs the timer ([`crate::clock`]); one connector thread performs the join
//! ([`crate::joiner`]); every Welcome link has a thread of its own ([`crate::link`]); one
//! thread writes the event lines to stdout ([`crate::output`]).

use crate::cli::Config;
use crate::clock::Clock;
use crate::output::say_first;
use crate::sockets::bind_listener;
use crate::table::PeerTable;
use crate::wire::BuildError;
use crate::{joiner, server};
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

/// Limits of the join and auto-join (SPEC section 6).
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

/// What every thread of the peer shares, behind one `Arc`.
pub struct Shared {
    /// This peer's ID, the sender ID of every reply.
    pub id: String,
    /// The address this peer listens on (the bind address and the kernel's port).
    pub addr: SocketAddrV4,
    /// The peers this peer is linked with.
    pub table: PeerTable,
    /// The timer whose value a successful join prints.
    pub clock: Arc<Clock>,
    /// Set once to ask every thread to finish.
    pub stop: Arc<AtomicBool>,
    /// Timeouts and bounds of the join.
    pub limits: JoinLimits,
}

impl Shared {
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
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
        let shared = Shared {
            id: config.id.clone(),
            addr: SocketAddrV4::new(config.bind, port),
            table,
            clock: Arc::new(Clock::new()),
            stop: Arc::new(AtomicBool::new(false)),
            limits,
        };
        Ok(Node {
            listener,
            shared: Arc::new(shared),
            join: config.join,
        })
    }

    pub fn addr(&self) -> SocketAddrV4 {
        self.shared.addr
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

    /// Prints the address line, starts the timer and the join, and serves on the calling
    /// thread until stopped. Then waits for the timer and connector threads to finish.
    pub fn run(self) -> Result<(), StartError> {
        let shared = &self.shared;
        say_first(&crate::output::address_line(shared.addr, &shared.id));
        let ticker = shared
            .clock
            .spawn_ticker(Arc::clone(&shared.stop))
            .map_err(StartError::Thread)?;
        let connector = match self.join {
            Some(target) => {
                let shared = Arc::clone(shared);
                let handle = thread::Builder::new()
                    .name("connector".into())
                    .spawn(move || joiner::run_connector(target, &shared))
                    .map_err(StartError::Thread)?;
                Some(handle)
            }
            None => None,
        };
        server::serve(&self.listener, shared);
        // The clock stops with `stop`; the connector has ended or ends within a second
        // (its link notices). A panic in either was already reported.
        let _ = ticker.join();
        if let Some(connector) = connector {
            let _ = connector.join();
        }
        crate::output::flush();
        Ok(())
    }
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
