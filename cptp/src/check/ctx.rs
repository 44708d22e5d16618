//! What one rule works with: the target (how to start it, or the running peer of
//! `--addr`), the options that shape every verdict (strictness, the time scale), and where
//! the evidence goes. The helpers here start targets, find where they listen, join them
//! and start fake peers; each returns the value a rule needs to go on, or the verdict that
//! ends the rule (see `verdict::need`).

use super::hints;
use super::scale::Scale;
use super::target::{Grounds, Launcher, Ledger, NoAddress, Spec, Target};
use super::verdict::Verdict;
use crate::harness::client::{JoinError, Joined, join_patiently};
use crate::harness::fake::{Answer, Fake};
use crate::sync::lock;
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Duration;

/// PROTOCOL 6.5: 3 s to connect.
pub const CONNECT_WITHIN: Duration = Duration::from_secs(3);
/// PROTOCOL 6.5 allows 5 s for a whole reply; a local target needs far less, so rules wait 3 s.
pub const REPLY_WITHIN: Duration = Duration::from_secs(3);
/// A join refused right after the target started to listen is tried again this long: the
/// listening socket may be a moment older than the accept loop.
pub const REFUSED_FOR: Duration = Duration::from_secs(1);
/// How long a rule waits for a fresh target to listen. Rule 7.1-address-line wants the
/// address line within 3 s; the others only need the address, so they wait longer: on a
/// loaded grading machine a slow start then fails 7.1 alone instead of every rule.
pub const LISTEN_PATIENCE: Duration = Duration::from_secs(10);
/// Once the target listens, how long the address line may take to name the port (or,
/// once it named one, how long that port may take to listen) before the kernel is believed.
pub const LINE_GRACE: Duration = Duration::from_secs(1);
/// How long a fake peer's reply waits for its list.
pub const LIST_WITHIN: Duration = Duration::from_secs(4);

/// What the rules run against.
#[derive(Clone)]
pub enum Subject {
    /// Start the implementation under test as often as needed.
    Launch(Arc<Launcher>),
    /// An already running peer, server side only.
    Running(SocketAddrV4),
}

/// What one rule works with.
pub struct Ctx {
    pub subject: Subject,
    /// `--strict`: WARNs become FAILs.
    pub strict: bool,
    /// `--time-scale`.
    pub scale: Scale,
    grounds: Arc<Grounds>,
    /// Evidence lines, the limits that stopped its targets, the process groups running.
    pub ledger: Ledger,
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
    pub fn new(subject: Subject, strict: bool, scale: Scale, grounds: Arc<Grounds>) -> Ctx {
        Ctx {
            subject,
            strict,
            scale,
            grounds,
            ledger: Ledger::default(),
        }
    }

    /// `d` times the time scale.
    pub fn time(&self, d: Duration) -> Duration {
        self.scale.of(d)
    }

    /// Adds a line of evidence.
    pub fn note(&self, line: impl Into<String>) {
        lock(&self.ledger.log).push(line.into());
    }

    /// Starts the target for `spec`.
    pub fn start(&self, spec: Spec) -> Result<Target, Verdict> {
        let Subject::Launch(launcher) = &self.subject else {
            return Err(Verdict::skip("needs a peer started by cptp"));
        };
        self.note(match spec.join {
            Some(peer) => format!("started the target in {} with -p {peer}", spec.folder()),
            None => format!("started the target in {}", spec.folder()),
        });
        let target = Target::start(launcher, spec, &self.grounds, &self.ledger).map_err(|e| {
            Verdict::fail(
                "the target starts",
                e.to_string(),
                "the target did not start",
            )
        })?;
        if let Some(group) = target.group() {
            lock(&self.ledger.groups).push(group);
        }
        Ok(target)
    }

    /// Where `target` listens, or the FAIL that says why it listens nowhere.
    pub fn address(&self, target: &mut Target) -> Result<SocketAddrV4, Verdict> {
        let found = target.address(self.time(LISTEN_PATIENCE), self.time(LINE_GRACE));
        found.map_err(|e| self.no_address(target, &e))
    }

    /// The FAIL of a target that does not listen, with what it printed and its stderr.
    pub fn no_address(&self, target: &Target, why: &NoAddress) -> Verdict {
        let stderr = target.stderr();
        let actual = match stderr.is_empty() {
            true => format!("stdout: {}", target.shown()),
            false => format!(
                "stdout: {}; stderr: {}",
                target.shown(),
                first_lines(&stderr, 6)
            ),
        };
        Verdict::fail(
            "a TCP port in LISTEN state, the peer's (PROTOCOL 1.1)",
            actual,
            format!("{why}; this rule needs to join it"),
        )
        .hints(hints::stderr(&stderr))
    }

    /// Starts the target for `spec` and waits until it listens.
    pub fn listening(&self, spec: Spec) -> Result<(Target, SocketAddrV4), Verdict> {
        let mut target = self.start(spec)?;
        let addr = self.address(&mut target)?;
        Ok((target, addr))
    }

    /// The peer to join: a fresh one in `ID-SIZE`, or the running one of `--addr`.
    pub fn server(&self, id: &str, size: usize) -> Result<Server, Verdict> {
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

    /// Joins `addr` and reads the reply, within the contract's limits (scaled).
    pub fn try_join(&self, addr: SocketAddrV4) -> Result<Joined, JoinError> {
        join_patiently(
            addr,
            self.time(CONNECT_WITHIN),
            self.time(REPLY_WITHIN),
            self.time(REFUSED_FOR),
        )
    }

    /// Joins `addr`, noting the reply; a failed join is the rule's FAIL (`expected` is
    /// what the rule wanted of it).
    pub fn join(&self, addr: SocketAddrV4, expected: &str) -> Result<Joined, Verdict> {
        match self.try_join(addr) {
            Ok(joined) => {
                self.note(format!(
                    "joined {addr} from {}: {}",
                    joined.local,
                    joined.describe()
                ));
                Ok(joined)
            }
            Err(e) => {
                self.note(format!("join to {addr} failed: {e}"));
                Err(Verdict::fail(expected, e.to_string(), "the join failed").hints(join_hints(&e)))
            }
        }
    }

    /// A fake peer with ID `id` answering every connection with `answer`; a fake that
    /// cannot start is cptp's problem, not the target's: the rule is skipped.
    pub fn fake(&self, id: &str, answer: Answer) -> Result<Fake, Verdict> {
        Fake::answering(id, answer, self.time(LIST_WITHIN))
            .map_err(|e| Verdict::skip(format!("cptp cannot start a fake peer: {e}")))
    }

    /// Notes each fake's connections in the evidence.
    pub fn note_fakes(&self, fakes: &[&Fake]) {
        for fake in fakes {
            self.note(fake.report());
        }
    }
}

/// The root causes a failed join shows: what the bytes of a bad reply say.
pub fn join_hints(e: &JoinError) -> Vec<String> {
    match e {
        JoinError::Reply(_, read) => hints::reply(read.bytes()),
        JoinError::Connect(..) => Vec::new(),
    }
}

/// The first few non-blank lines of `lines`, joined, for a reason that fits on a screen
/// (the whole output is in the evidence).
pub fn first_lines(lines: &[String], count: usize) -> String {
    let shown: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .take(count)
        .collect();
    shown.join(" | ")
}
