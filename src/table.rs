//! The peer table of PROTOCOL 1.2 and 5.3: the peers this peer is linked with, up to a fixed capacity.
//!
//! Deciding whether a joiner fits and adding it are one step under one lock, so many joins
//! at once can never overfill the table. The table also keeps its own Welcome and Redirect
//! replies already encoded: they change only when the table changes, so answering a join
//! costs a lock and a reference count, not an encoding.
//!
//! One case needs other bytes (PROTOCOL 5.5): a joiner from another machine must not be
//! handed `127.x.y.z` entries (peers that joined this one over loopback), but this
//! machine's address on its connection instead. Those replies are encoded on the first
//! such join after a change and kept for the next ones, keyed by that local address;
//! a table without loopback entries never needs them.

use crate::wire::{BuildError, Kind, MAX_PEERS, Message};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex, MutexGuard};

/// Names one table entry, so that a closing link removes its own entry and no other,
/// even if the same address is listed twice for a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot(u64);

/// The answer to a join.
#[derive(Debug)]
pub enum Admission {
    /// There was room: the joiner holds `slot` now; send it `reply`, a Welcome listing
    /// the table as it was before.
    Welcome { slot: Slot, reply: Arc<[u8]> },
    /// The table is full: send `reply`, a Redirect listing the whole table.
    Redirect { reply: Arc<[u8]> },
}

pub struct PeerTable {
    /// This peer's ID, the sender ID of every reply.
    id: String,
    /// How many peers the table holds at most.
    capacity: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Entries in the order they joined.
    entries: Vec<(Slot, SocketAddrV4)>,
    /// The next slot number to hand out.
    next_slot: u64,
    /// The current table encoded as a Welcome.
    welcome: Arc<[u8]>,
    /// The current table encoded as a Redirect.
    redirect: Arc<[u8]>,
    /// Some entry has a loopback address.
    has_loopback: bool,
    /// For joiners from other machines: the local address they reached, and the Welcome
    /// and Redirect with loopback entries sent as that address. Cleared on every change.
    rewritten: Option<Rewritten>,
}

/// The replies for joiners that reached this machine at `local` from elsewhere.
struct Rewritten {
    local: Ipv4Addr,
    welcome: Arc<[u8]>,
    redirect: Arc<[u8]>,
}

impl PeerTable {
    /// An empty table for the peer `id`. Fails if `id` or `capacity` cannot be sent.
    pub fn new(id: &str, capacity: usize) -> Result<PeerTable, BuildError> {
        if capacity > MAX_PEERS {
            return Err(BuildError::TooManyPeers(capacity));
        }
        let encode = |kind| Message::new(kind, id, Vec::new()).map(|m| m.to_bytes().into());
        let inner = Inner {
            entries: Vec::with_capacity(capacity),
            next_slot: 0,
            welcome: encode(Kind::Welcome)?,
            redirect: encode(Kind::Redirect)?,
            has_loopback: false,
            rewritten: None,
        };
        Ok(PeerTable {
            id: id.to_string(),
            capacity,
            inner: Mutex::new(inner),
        })
    }

    /// This peer's ID, the sender ID of every reply.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Answers a join from `addr`: adds it and returns a Welcome if there is room,
    /// otherwise returns a Redirect. Both in one step. The entries are listed as recorded.
    pub fn admit(&self, addr: SocketAddrV4) -> Admission {
        self.admit_rewriting(addr, None)
    }

    /// The same for a join that reached this machine at its address `local`: a joiner
    /// from another machine gets loopback entries as `local`, with their own ports.
    pub fn admit_on(&self, addr: SocketAddrV4, local: Ipv4Addr) -> Admission {
        let remote = !addr.ip().is_loopback() && !local.is_loopback() && !local.is_unspecified();
        self.admit_rewriting(addr, remote.then_some(local))
    }

    fn admit_rewriting(&self, addr: SocketAddrV4, loopback_as: Option<Ipv4Addr>) -> Admission {
        let mut inner = self.lock();
        let full = inner.entries.len() >= self.capacity;
        let (welcome, redirect) = match loopback_as {
            Some(local) if inner.has_loopback => self.rewritten(&mut inner, local),
            _ => (&inner.welcome, &inner.redirect),
        };
        if full {
            return Admission::Redirect {
                reply: Arc::clone(redirect),
            };
        }
        let reply = Arc::clone(welcome);
        let slot = self.push(&mut inner, addr);
        Admission::Welcome { slot, reply }
    }

    /// The Welcome and Redirect with loopback entries sent as `local`, encoded on the
    /// first call after a change and kept for the next.
    fn rewritten<'a>(
        &self,
        inner: &'a mut Inner,
        local: Ipv4Addr,
    ) -> (&'a Arc<[u8]>, &'a Arc<[u8]>) {
        if inner.rewritten.as_ref().is_none_or(|r| r.local != local) {
            let peers: Vec<_> = inner
                .entries
                .iter()
                .map(|(_, addr)| match addr.ip().is_loopback() {
                    true => SocketAddrV4::new(local, addr.port()),
                    false => *addr,
                })
                .collect();
            // Same ID, same number of entries as the cached replies: building cannot
            // fail, but if it did, the replies as recorded would still be valid ones.
            let encode = |kind, recorded: &Arc<[u8]>| {
                Message::new(kind, &self.id, peers.clone())
                    .map_or_else(|_| Arc::clone(recorded), |m| m.to_bytes().into())
            };
            inner.rewritten = Some(Rewritten {
                local,
                welcome: encode(Kind::Welcome, &inner.welcome),
                redirect: encode(Kind::Redirect, &inner.redirect),
            });
        }
        match &inner.rewritten {
            Some(r) => (&r.welcome, &r.redirect),
            None => (&inner.welcome, &inner.redirect),
        }
    }

    /// Adds `addr` if there is room (the joining side, after a Welcome).
    pub fn insert(&self, addr: SocketAddrV4) -> Option<Slot> {
        let mut inner = self.lock();
        (inner.entries.len() < self.capacity).then(|| self.push(&mut inner, addr))
    }

    /// Removes the entry held by `slot`; returns false if it was already gone.
    pub fn remove(&self, slot: Slot) -> bool {
        let mut inner = self.lock();
        let Some(index) = inner.entries.iter().position(|(s, _)| *s == slot) else {
            return false;
        };
        inner.entries.remove(index);
        self.encode(&mut inner);
        true
    }

    /// The addresses in the table now, in the order they joined.
    pub fn peers(&self) -> Vec<SocketAddrV4> {
        self.lock().entries.iter().map(|(_, addr)| *addr).collect()
    }

    pub fn contains(&self, addr: SocketAddrV4) -> bool {
        self.lock().entries.iter().any(|(_, a)| *a == addr)
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&self, inner: &mut Inner, addr: SocketAddrV4) -> Slot {
        let slot = Slot(inner.next_slot);
        inner.next_slot += 1;
        inner.entries.push((slot, addr));
        self.encode(inner);
        slot
    }

    /// Re-encodes both replies after a change. The table never holds more than
    /// MAX_PEERS entries and the ID was checked in `new`, so building cannot fail.
    fn encode(&self, inner: &mut Inner) {
        let peers: Vec<_> = inner.entries.iter().map(|(_, addr)| *addr).collect();
        inner.has_loopback = peers.iter().any(|addr| addr.ip().is_loopback());
        inner.rewritten = None;
        for (kind, cache) in [
            (Kind::Welcome, &mut inner.welcome),
            (Kind::Redirect, &mut inner.redirect),
        ] {
            if let Ok(message) = Message::new(kind, &self.id, peers.clone()) {
                *cache = message.to_bytes().into();
            }
        }
    }

    /// A panic elsewhere while holding the lock cannot leave the table half-changed
    /// (every change is one push or remove plus a re-encode), so a poisoned lock is
    /// still safe to use.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::thread;

    fn addr(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
    }

    fn decode(reply: &[u8]) -> Message {
        Message::parse(reply).unwrap()
    }

    #[test]
    fn welcome_lists_the_table_before_the_joiner() {
        let table = PeerTable::new("peer1", 2).unwrap();
        let Admission::Welcome { reply, .. } = table.admit(addr(1)) else {
            panic!("first join refused");
        };
        assert_eq!(
            reply.as_ref(),
            [0xE0, 0x20, 0x00, 0x05, b'p', b'e', b'e', b'r', b'1']
        );
        let Admission::Welcome { reply, .. } = table.admit(addr(2)) else {
            panic!("second join refused");
        };
        assert_eq!(decode(&reply).peers(), &[addr(1)]);
        assert_eq!(table.peers(), vec![addr(1), addr(2)]);
    }

    #[test]
    fn a_full_table_redirects_with_every_entry() {
        let table = PeerTable::new("p1", 2).unwrap();
        table.admit(addr(40000));
        table.admit(addr(40001));
        let Admission::Redirect { reply } = table.admit(addr(3)) else {
            panic!("third join admitted");
        };
        let expected = [
            0xE0, 0x40, 0x02, 0x02, b'p', b'1', 0x7F, 0, 0, 1, 0x9C, 0x40, 0x7F, 0, 0, 1, 0x9C,
            0x41,
        ];
        assert_eq!(reply.as_ref(), expected);
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn removing_frees_the_slot_and_updates_the_replies() {
        let table = PeerTable::new("p", 1).unwrap();
        let Admission::Welcome { slot, .. } = table.admit(addr(1)) else {
            panic!("join refused");
        };
        assert!(table.remove(slot));
        assert!(!table.remove(slot), "a slot is removed once");
        assert!(table.is_empty());
        let Admission::Welcome { reply, .. } = table.admit(addr(2)) else {
            panic!("freed slot not reused");
        };
        assert!(decode(&reply).peers().is_empty());
    }

    #[test]
    fn a_slot_removes_only_its_own_entry() {
        let table = PeerTable::new("p", 3).unwrap();
        let first = table.insert(addr(7)).unwrap();
        let middle = table.insert(addr(8)).unwrap();
        let last = table.insert(addr(7)).unwrap();
        // The same address twice: the later entry's slot removes the later entry.
        assert!(table.remove(last));
        assert_eq!(table.peers(), vec![addr(7), addr(8)]);
        assert!(table.remove(first));
        assert_eq!(table.peers(), vec![addr(8)]);
        assert!(table.remove(middle));
        assert!(table.is_empty());
    }

    #[test]
    fn contains_says_whether_an_address_is_listed() {
        let table = PeerTable::new("p", 2).unwrap();
        assert!(!table.contains(addr(1)));
        assert!(table.is_empty());
        let slot = table.insert(addr(1)).unwrap();
        assert!(table.contains(addr(1)));
        assert!(!table.is_empty());
        assert!(!table.contains(addr(2)));
        table.remove(slot);
        assert!(!table.contains(addr(1)));
    }

    #[test]
    fn insert_refuses_when_full() {
        let table = PeerTable::new("p", 1).unwrap();
        assert!(table.insert(addr(1)).is_some());
        assert!(table.insert(addr(2)).is_none());
        assert_eq!(table.peers(), vec![addr(1)]);
        assert_eq!((table.len(), table.capacity(), table.id()), (1, 1, "p"));
    }

    #[test]
    fn concurrent_joins_never_overfill() {
        let table = Arc::new(PeerTable::new("p", 5).unwrap());
        let handles: Vec<_> = (0..64u16)
            .map(|port| {
                let table = Arc::clone(&table);
                thread::spawn(move || matches!(table.admit(addr(port)), Admission::Welcome { .. }))
            })
            .collect();
        let welcomed = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|w| *w)
            .count();
        assert_eq!(welcomed, 5);
        assert_eq!(table.len(), 5);
    }

    #[test]
    fn a_joiner_from_another_machine_gets_loopback_entries_as_our_address() {
        let table = PeerTable::new("p", 3).unwrap();
        let far = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 5), 7000);
        let ours = Ipv4Addr::new(198, 18, 0, 1);
        table.admit(addr(1));
        table.admit(far);
        // A joiner on this machine gets the table as recorded, from the cache.
        let Admission::Welcome { slot, reply } = table.admit_on(addr(2), Ipv4Addr::LOCALHOST)
        else {
            panic!("join refused");
        };
        assert_eq!(decode(&reply).peers(), &[addr(1), far]);
        table.remove(slot);
        // One from elsewhere gets our address on its connection, with the same port.
        let other = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 9), 9000);
        let Admission::Welcome { reply, .. } = table.admit_on(other, ours) else {
            panic!("join refused");
        };
        let moved = SocketAddrV4::new(ours, 1);
        assert_eq!(decode(&reply).peers(), &[moved, far]);
        // The table is full now; the Redirect is rewritten the same way, twice alike.
        for _ in 0..2 {
            let Admission::Redirect { reply } = table.admit_on(other, ours) else {
                panic!("full table admitted");
            };
            assert_eq!(decode(&reply).peers(), &[moved, far, other]);
        }
        let Admission::Redirect { reply } = table.admit_on(addr(3), Ipv4Addr::LOCALHOST) else {
            panic!("full table admitted");
        };
        assert_eq!(decode(&reply).peers(), &[addr(1), far, other]);
        assert_eq!(table.peers(), vec![addr(1), far, other], "recorded as seen");
    }

    #[test]
    fn only_a_joiner_from_elsewhere_at_a_real_address_gets_rewritten_entries() {
        let table = PeerTable::new("p", 2).unwrap();
        table.admit(addr(1));
        let ours = Ipv4Addr::new(198, 18, 0, 1);
        let far = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 9), 9000);
        // A joiner on this machine (loopback), or a join that reached no real address of
        // ours (loopback, unspecified), gets the entries as recorded.
        for (joiner, local) in [
            (addr(2), ours),
            (far, Ipv4Addr::LOCALHOST),
            (far, Ipv4Addr::UNSPECIFIED),
        ] {
            let Admission::Welcome { slot, reply } = table.admit_on(joiner, local) else {
                panic!("join refused");
            };
            assert_eq!(decode(&reply).peers(), &[addr(1)], "{joiner} at {local}");
            table.remove(slot);
        }
    }

    #[test]
    fn without_loopback_entries_every_joiner_gets_the_cached_reply() {
        // The common path stays ready-encoded: no copy is made for a joiner from elsewhere.
        // (A full table, so that asking does not change it.)
        let table = PeerTable::new("p", 1).unwrap();
        table.admit(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 5), 7000));
        let Admission::Redirect { reply: cached } = table.admit(addr(1)) else {
            panic!("full table admitted");
        };
        let joiner = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 9), 9000);
        let Admission::Redirect { reply } = table.admit_on(joiner, Ipv4Addr::new(198, 18, 0, 1))
        else {
            panic!("full table admitted");
        };
        assert!(Arc::ptr_eq(&reply, &cached), "a copy was encoded");
    }

    #[test]
    fn the_rewritten_replies_follow_the_local_address_and_the_table() {
        let table = PeerTable::new("p", 1).unwrap();
        let Admission::Welcome { slot, .. } = table.admit(addr(1)) else {
            panic!("join refused");
        };
        let other = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 9), 9000);
        for last in [1, 2, 1] {
            let ours = Ipv4Addr::new(198, 18, 0, last);
            let Admission::Redirect { reply } = table.admit_on(other, ours) else {
                panic!("full table admitted");
            };
            assert_eq!(decode(&reply).peers(), &[SocketAddrV4::new(ours, 1)]);
        }
        // After a change the old rewritten replies are gone.
        table.remove(slot);
        let far = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 5), 7000);
        table.admit(far);
        let Admission::Redirect { reply } = table.admit_on(other, Ipv4Addr::new(198, 18, 0, 1))
        else {
            panic!("full table admitted");
        };
        assert_eq!(decode(&reply).peers(), &[far]);
    }

    #[test]
    fn refuses_what_cannot_be_sent() {
        assert!(PeerTable::new("", 2).is_err());
        assert!(PeerTable::new(&"x".repeat(256), 2).is_err());
        assert!(PeerTable::new("p", MAX_PEERS + 1).is_err());
    }
}
