//! `peer`: a node of cPTP, the Peer-to-Peer Transport Protocol of the course "A Peer Node".
//!
//! A peer is a server and a client at once. It listens on a port the kernel picks and
//! answers each join with a Welcome (there is room in its table) or a Redirect (there is
//! not, try these peers instead); started with `-p`, it also joins another peer itself.
//!
//! Read the modules in this order:
//! - [`wire`]: the message format, bit by bit, with no I/O;
//! - [`reader`]: reading one message off a socket, with a deadline;
//! - [`table`]: the peer table, where a join is admitted or refused in one step;
//! - [`clock`]: the 10 ms timer;
//! - [`sockets`]: listening and connecting from the same port;
//! - [`server`]: the accept loop, and [`link`]: the thread that holds a peering link;
//! - [`joiner`]: the join and the auto-join;
//! - [`node`]: how the threads are started and share state;
//! - [`cli`] and [`output`]: the command line and the lines the peer prints.

pub mod cli;
pub mod clock;
pub mod joiner;
pub mod link;
pub mod node;
pub mod output;
pub mod reader;
pub mod server;
pub mod sockets;
pub mod table;
pub mod wire;
