//! The rules: one function per rule, each tied to a numbered section of docs/PROTOCOL.md.
//!
//! Every rule starts the target afresh (so rules are independent and run concurrently),
//! does one thing to it, and says PASS, WARN, FAIL or SKIP with what was expected and
//! what happened. A rule returns `Err(outcome)` to stop early; both arms are its verdict.
//! The IDs are stable: `SECTION-what`, e.g. `5.1-welcome-bytes`. Never rename one; add a
//! new ID when a rule's meaning changes.

mod client;
mod server;
mod startup;

use super::net::{self, Joined};
use super::outcome::Outcome;
use super::target::{Launcher, Spec, Target, lock};
use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a rule needs of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Fresh starts in folders of its choosing, and the target's stdout.
    Fresh,
    /// Only an address to join: also runs against `--addr`.
    Address,
}

pub type Verdict = Result<Outcome, Outcome>;

/// One rule of the contract.
#[derive(Debug)]
pub struct Rule {
    /// Stable ID, `SECTION-what`.
    pub id: &'static str,
    /// The section of docs/PROTOCOL.md it checks.
    pub section: &'static str,
    /// What the contract requires, in one line.
    pub requirement: &'static str,
    pub needs: Needs,
    /// The rule's own time limit; past it the rule FAILs and its targets are killed.
    pub timeout: Duration,
    pub check: fn(&Ctx) -> Verdict,
}

/// Time limits of rules: each waits at most 10 s for the address line, then does its work
/// with deadlines of its own; these only catch a rule that would still hang.
const SHORT: Duration = Duration::from_secs(20);
const LONG: Duration = Duration::from_secs(30);
/// No rule starts later than this after the check began, so a target that hangs every
/// rule is done with in under 2 minutes (this plus the longest rule).
pub const CHECK_LIMIT: Duration = Duration::from_secs(85);

/// Every rule, in the order of the contract.
pub static RULES: &[Rule] = &[
    Rule {
        id: "2.2-id-from-folder",
        section: "2.2",
        requirement: "The peer ID comes from the folder name ID-SIZE: the address line and the Welcome's sender ID carry it",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: startup::id_from_folder,
    },
    Rule {
        id: "3.1-timestamp",
        section: "3.1",
        requirement: "The timestamp printed for a Welcome is the 10 ms timer: from 1 to 999 plus the ticks since start",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: client::timestamp,
    },
    Rule {
        id: "4.2-exact-length",
        section: "4.2",
        requirement: "A reply is exactly 4 + L + 6N bytes: no zero padding, no trailing newline, nothing else",
        needs: Needs::Address,
        timeout: SHORT,
        check: server::exact_length,
    },
    Rule {
        id: "4.5-survives-reset",
        section: "4.5",
        requirement: "A connection that resets at once does not stop the peer: it still answers joins",
        needs: Needs::Address,
        timeout: SHORT,
        check: server::survives_reset,
    },
    Rule {
        id: "4.5-survives-junk",
        section: "4.5",
        requirement: "Junk sent on a connection (a link carries no data) does not stop the peer",
        needs: Needs::Address,
        timeout: SHORT,
        check: server::survives_junk,
    },
    Rule {
        id: "4.5-reply-bad-version",
        section: "4.5",
        requirement: "A reply with version 6 is an error: the joiner keeps running and accepts joins",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: client::reply_bad_version,
    },
    Rule {
        id: "4.5-reply-unknown-type",
        section: "4.5",
        requirement: "A reply of message type 3 is an error: the joiner keeps running and accepts joins",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: client::reply_unknown_type,
    },
    Rule {
        id: "4.5-reply-truncated",
        section: "4.5",
        requirement: "A reply cut short by a close is an error: the joiner keeps running and accepts joins",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: client::reply_truncated,
    },
    Rule {
        id: "4.5-reply-silent",
        section: "4.5",
        requirement: "A peer that never replies does not block the joiner: it keeps accepting joins",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: client::reply_silent,
    },
    Rule {
        id: "5.1-welcome-bytes",
        section: "5.1",
        requirement: "The first join gets a Welcome, byte for byte: V = 7, type 1, N = 0, the sender ID from the folder",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: server::welcome_bytes,
    },
    Rule {
        id: "5.1-welcome-lists-table",
        section: "5.1",
        requirement: "Each Welcome lists the table as it was before this join, in the order the entries joined",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: server::welcome_lists_table,
    },
    Rule {
        id: "5.1-link-stays-open",
        section: "5.1",
        requirement: "After a Welcome the connection stays open (it is the link) and the joiner stays listed",
        needs: Needs::Address,
        timeout: SHORT,
        check: server::link_stays_open,
    },
    Rule {
        id: "5.1-connected-line",
        section: "5.1",
        requirement: "A Welcome is followed by the line 'Connected from peer IP:PORT' naming the joiner",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: server::connected_line,
    },
    Rule {
        id: "5.2-table-size",
        section: "5.2",
        requirement: "The table holds exactly SIZE peers (from the folder ID-SIZE): SIZE Welcomes, then a Redirect",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: server::table_size,
    },
    Rule {
        id: "5.2-redirect-lists-table",
        section: "5.2",
        requirement: "When the table is full the Redirect lists the whole table",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: server::redirect_lists_table,
    },
    Rule {
        id: "5.2-full-line",
        section: "5.2",
        requirement: "A Redirect comes with the line 'Peer table full: IP:PORT redirected' naming the joiner",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: server::full_line,
    },
    Rule {
        id: "5.2-redirect-closed",
        section: "5.2",
        requirement: "After a Redirect the peer closes the connection",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: server::redirect_closed,
    },
    Rule {
        id: "5.3-concurrent-joins",
        section: "5.3",
        requirement: "Many joins at once never overfill the table: exactly SIZE Welcomes, Redirects for the rest",
        needs: Needs::Fresh,
        timeout: LONG,
        check: server::concurrent_joins,
    },
    Rule {
        id: "5.4-slot-freed",
        section: "5.4",
        requirement: "When a linked peer closes, its slot is free again within 1 s",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: server::slot_freed,
    },
    Rule {
        id: "5.4-departed-not-listed",
        section: "5.4",
        requirement: "A peer that left is no longer listed in replies (within 1 s)",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: server::departed_not_listed,
    },
    Rule {
        id: "5.4-left-line",
        section: "5.4",
        requirement: "A departure prints 'Peer IP:PORT left'",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: server::left_line,
    },
    Rule {
        id: "6.1-join-from-listening-port",
        section: "6.1",
        requirement: "The join comes from the joiner's listening port, so the address others record accepts joins",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: client::join_from_listening_port,
    },
    Rule {
        id: "6.1-accepts-after-join",
        section: "6.1",
        requirement: "After joining, the peer still accepts joins at its address",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: client::accepts_after_join,
    },
    Rule {
        id: "6.2-welcome-lines",
        section: "6.2",
        requirement: "A Welcome prints 'Connected to peer ID:PORT at timestamp: T', 'Received ack from ID:PORT' and the 'which is peered with' line",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: client::welcome_lines,
    },
    Rule {
        id: "6.3-redirect-lines",
        section: "6.3",
        requirement: "A Redirect prints the ack, the 'which is peered with' line, a blank line, 'The join has been declined; the auto-join process is performing ...' and a blank line",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: client::redirect_lines,
    },
    Rule {
        id: "6.3-auto-join-first",
        section: "6.3",
        requirement: "After a Redirect the peer joins the first listed peer first",
        needs: Needs::Fresh,
        timeout: LONG,
        check: client::auto_join_first,
    },
    Rule {
        id: "6.3-auto-join-two-levels",
        section: "6.3",
        requirement: "The auto-join follows a Redirect that leads to another Redirect",
        needs: Needs::Fresh,
        timeout: LONG,
        check: client::auto_join_two_levels,
    },
    Rule {
        id: "6.3-redirect-loop-ends",
        section: "6.3",
        requirement: "A Redirect loop (A lists B, B lists A) ends, each address tried at most once",
        needs: Needs::Fresh,
        timeout: LONG,
        check: client::redirect_loop_ends,
    },
    Rule {
        id: "6.3-no-self-join",
        section: "6.3",
        requirement: "A Redirect that lists the peer's own address does not make it join itself",
        needs: Needs::Fresh,
        timeout: LONG,
        check: client::no_self_join,
    },
    Rule {
        id: "6.4-gives-up",
        section: "6.4",
        requirement: "When nobody accepts, the peer prints 'No peer accepted the join; running standalone' and stops trying",
        needs: Needs::Fresh,
        timeout: LONG,
        check: client::gives_up,
    },
    Rule {
        id: "7.1-address-line",
        section: "7.1",
        requirement: "The first stdout line, within 3 s, is 'This peer address is IP:PORT located at ID'",
        needs: Needs::Fresh,
        timeout: SHORT,
        check: startup::address_line,
    },
    Rule {
        id: "7.1-address-joinable",
        section: "7.1",
        requirement: "The address printed accepts joins",
        needs: Needs::Address,
        timeout: SHORT,
        check: startup::address_joinable,
    },
];

/// What the rules run against.
#[derive(Debug, Clone)]
pub enum Subject {
    /// Start the implementation under test as often as needed.
    Launch(Arc<Launcher>),
    /// An already running peer, server side only.
    Running(SocketAddrV4),
}

/// What one rule works with: the subject, the options, and where evidence goes.
pub struct Ctx {
    pub subject: Subject,
    pub strict: bool,
    /// Evidence lines, in order; the targets add their output when they end.
    pub log: Arc<Mutex<Vec<String>>>,
    /// Process groups this rule started, killed if the rule runs out of time.
    pub groups: Arc<Mutex<Vec<i32>>>,
}

/// The peer a server-side rule joins: one started fresh, or the `--addr` one.
pub struct Server {
    pub addr: SocketAddrV4,
    /// The target, when it was started for this rule.
    pub target: Option<Target>,
}

impl Server {
    pub fn fresh(&self) -> bool {
        self.target.is_some()
    }
}

impl Ctx {
    pub fn new(subject: Subject, strict: bool) -> Ctx {
        Ctx {
            subject,
            strict,
            log: Arc::default(),
            groups: Arc::default(),
        }
    }

    /// Adds a line of evidence.
    pub fn note(&self, line: impl Into<String>) {
        lock(&self.log).push(line.into());
    }

    /// Starts the target for `spec`.
    pub fn start(&self, spec: Spec) -> Result<Target, Outcome> {
        let Subject::Launch(launcher) = &self.subject else {
            return Err(Outcome::skip("needs a peer started by cptp"));
        };
        self.note(match spec.join {
            Some(peer) => format!("started the target in {} with -p {peer}", spec.folder()),
            None => format!("started the target in {}", spec.folder()),
        });
        Target::start(launcher, spec, Arc::clone(&self.log), &self.groups).map_err(|e| {
            Outcome::fail(
                "the target starts",
                e.to_string(),
                "the target did not start",
            )
        })
    }

    /// Starts the target for `spec` and waits for its address.
    pub fn listening(&self, spec: Spec) -> Result<(Target, SocketAddrV4), Outcome> {
        let mut target = self.start(spec)?;
        let addr = address(&mut target)?;
        Ok((target, addr))
    }

    /// The peer to join: a fresh one in `ID-SIZE`, or the running one of `--addr`.
    pub fn server(&self, id: &str, size: usize) -> Result<Server, Outcome> {
        match &self.subject {
            Subject::Running(addr) => Ok(Server {
                addr: *addr,
                target: None,
            }),
            Subject::Launch(_) => {
                let (target, addr) = self.listening(Spec::new(id, size))?;
                Ok(Server {
                    addr,
                    target: Some(target),
                })
            }
        }
    }

    /// Joins `addr`, noting the reply; a failed join is the rule's FAIL.
    pub fn join(&self, addr: SocketAddrV4, expected: &str) -> Result<Joined, Outcome> {
        match net::join(addr) {
            Ok(joined) => {
                self.note(format!(
                    "joined {addr} from {}: {}",
                    joined.local,
                    joined.describe()
                ));
                Ok(joined)
            }
            Err(e) => Err(Outcome::fail(expected, e.to_string(), "the join failed")),
        }
    }
}

/// The target's address, or the FAIL that explains why there is none.
pub fn address(target: &mut Target) -> Result<SocketAddrV4, Outcome> {
    target.address().map_err(|e| {
        Outcome::fail(
            "'This peer address is IP:PORT located at ID' on stdout",
            format!("stdout: {:?}", target.seen()),
            format!("{e}; this rule needs the address"),
        )
    })
}
