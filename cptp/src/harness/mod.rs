//! The harness: everything that runs a peer under test and talks to it from outside. The
//! checker, `cptp map`, `cptp probe`, the peer's integration tests and the tools behind
//! `make bench` and `make soak` all use these, and nothing else, to do so.
//!
//! - [`process`]: a program run as a child in a folder named the course's way (`peer1-2`),
//!   in a process group of its own, its output read into capped line queues, every wait
//!   with a deadline, the whole group killed when it is dropped;
//! - [`procfs`]: what Linux says about a running process: the TCP ports its process group
//!   listens on, its threads, memory and CPU time;
//! - [`client`]: one join, the way a peer joins (the connection is the request), and the
//!   reply read with a deadline by `cptp`'s own decoder;
//! - [`fake`]: stand-in peers on loopback that answer every connection as told and record
//!   who came and when;
//! - [`sockets`]: small socket helpers (a dead address, a reset, a jammed listener);
//! - [`netns`]: test hosts on one switch, made of Linux network namespaces (needs root);
//! - [`cgroup`] and [`sandbox`]: untrusted code confined: bubblewrap, a network of its own,
//!   limits on processes, memory, CPU time and file size;
//! - [`cleanup`]: the one registry of process groups and scratch folders that a signal
//!   must not leave behind;
//! - [`programs`]: a short-lived program run to its end with a deadline, and the policy
//!   for a test whose program or permission is missing.

pub mod programs;
pub mod cleanup;
pub mod procfs;
pub mod cgroup;
pub mod sandbox;
pub mod process;
pub mod client;
pub mod sockets;
pub mod fake;
pub mod netns;

pub use client::{Joined, join, listed};
pub use fake::Fake;
pub use process::{Capture, Next, Process, Scratch, Start};
pub use programs::{PATIENCE, has_tool, need_tool, run_bounded, skip_or_fail, workspace_binary};
pub use sockets::{dead_address, hold_open, jammed_listener, local_addr, reset};
