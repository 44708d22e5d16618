//! `peer`: a node of cPTP, the Peer-to-Peer Transport Protocol of the course "A Peer Node".
//!
//! A peer is a server and a client at once. It listens on a port the kernel picks and
//! answers each join with a Welcome (there is room in its table) or a Redirect (there is
//! not, try these peers instead); started with `-p`, it also joins another peer itself.
//!
//! Read the modules in this order; each uses only modules listed before it:
//! - [`wire`]: the message format, bit by bit, with no I/O;
//! - [`reader`]: reading one message off a socket, with a deadline;
//! - [`table`]: the peer table, where a join is admitted or refused in one step;
//! - [`replies`]: a cache of encoded replies, re-encoded only when the table changes;
//! - [`clock`]: the 10 ms timer;
//! - [`sockets`]: listening, connecting from the listening port, keepalive on links, and
//!   this machine's addresses;
//! - [`output`]: the queue of event lines and the thread that writes them;
//! - [`state`]: what the threads of a running peer share;
//! - [`link`]: the thread that holds a peering link until it closes;
//! - [`server`]: the accept loop, which welcomes or redirects each join;
//! - [`joiner`]: the join and the auto-join;
//! - [`node`]: a running peer, which starts and stops every thread;
//! - [`cli`]: the command line, which says what node to run.
//!
//! The contract they implement is `docs/PROTOCOL.md`; comments cite its sections.

pub mod wire;
pub mod reader;
pub mod table;
pub mod replies;
pub mod clock;
pub mod sockets;
pub mod output;
pub mod state;
pub mod link;
pub mod server;
pub mod joiner;
pub mod node;
pub mod cli;
