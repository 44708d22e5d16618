//! `cptp`: the toolbox around cPTP peers, and the harness that runs and joins them.
//!
//! Read the modules in this order; each uses only modules listed before it:
//! - [`sync`] and [`text`]: a lock that survives a panic; hex, long lists and XML for reports;
//! - [`contract`]: PROTOCOL 4's bit layout and PROTOCOL 5-7's lines, written down by the
//!   judge itself (it shares no code with the peer it judges);
//! - [`hostport`] and [`exit`]: `HOST:PORT` on the command line, and the exit statuses;
//! - [`harness`]: a program under test as a child process, fake peers, a join that reads
//!   the reply, /proc, test hosts: what the checker, `map`, `probe`, the peer's tests and
//!   the tools all run peers with;
//! - [`probe`], [`map`] and [`check`]: the three commands;
//! - [`cli`]: the command line of `cptp`, which says which command runs.
//!
//! The contract is `docs/PROTOCOL.md` of this repository; comments cite its sections.

pub mod sync;
pub mod text;
pub mod contract;
pub mod hostport;
pub mod exit;
pub mod harness;
pub mod probe;
pub mod map;
pub mod check;
pub mod cli;
