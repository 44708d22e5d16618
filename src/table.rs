//! The peer table of PROTOCOL 1.2 and 5.3: the peers this peer is linked with, up to a fixed capacity.
//!
//! Deciding whether a joiner fits and adding it are one step under one lock, so many joins
//! at once can never overfill the table. That step also hands back the table as it was
//! when the join was decided (a [`Listing`]): what the reply to that joiner lists. The
//! reply itself is encoded outside the lock, by the next module in the reading order
//! (`replies.rs`, a cache of encoded replies).

use crate::wire::{BuildError, MAX_PEERS, check_id};
use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex, MutexGuard};

/// Names one table entry, so that a closing link removes its own entry and no other,
/// even if the same address is listed twice for a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot(u64);

/// The answer to a join.
#[derive(Debug)]
pub enum Admission {
    /// There was room: the joiner holds `slot` now; send it a Welcome listing `listed`,
    /// the table as it was before.
    Welcome { slot: Slot, listed: Listing },
    /// The table is full: send a Redirect listing `listed`, the whole table.
    Redirect { listed: Listing },
}

/// The table's addresses at one moment, in the order they joined. A listing never changes:
/// every change to the table makes a new one, with the next version number, so two
/// listings with the same version list the same peers.
#[derive(Debug, Clone)]
pub struct Listing {
    version: u64,
    peers: Arc<[SocketAddrV4]>,
}

impl Listing {
    /// Counts the changes to the table: 0 for the empty table it started as.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn peers(&self) -> &[SocketAddrV4] {
        &self.peers
    }
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
    /// The addresses of `entries`, shared with the admissions that list them.
    listing: Listing,
    /// The next slot number to hand out.
    next_slot: u64,
}

impl PeerTable {
    /// An empty table for the peer `id`. Fails if `id` or `capacity` cannot be sent.
    pub fn new(id: &str, capacity: usize) -> Result<PeerTable, BuildError> {
        check_id(id)?;
        if capacity > MAX_PEERS {
            return Err(BuildError::TooManyPeers(capacity));
        }
        let inner = Inner {
            entries: Vec::with_capacity(capacity),
            listing: Listing {
                version: 0,
                peers: Arc::new([]),
            },
            next_slot: 0,
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

    /// Answers a join from `addr`, recorded as seen: adds it and says Welcome if there is
    /// room, otherwise says Redirect. Both in one step.
    pub fn admit(&self, addr: SocketAddrV4) -> Admission {
        let mut inner = self.lock();
        // A reference count, not a copy: the listing is shared until the table changes.
        let listed = inner.listing.clone();
        if inner.entries.len() >= self.capacity {
            return Admission::Redirect { listed };
        }
        let slot = self.push(&mut inner, addr);
        Admission::Welcome { slot, listed }
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
        relist(&mut inner);
        true
    }

    /// The table as it is now.
    pub fn listing(&self) -> Listing {
        self.lock().listing.clone()
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
        relist(inner);
        slot
    }

    /// A panic elsewhere while holding the lock cannot leave the table half-changed
    /// (every change is one push or remove plus a new listing), so a poisoned lock is
    /// still safe to use.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Makes the listing of the changed table, with the next version. The old listing stays
/// as it was for whoever still holds it.
fn relist(inner: &mut Inner) {
    inner.listing = Listing {
        version: inner.listing.version + 1,
        peers: inner.entries.iter().map(|(_, addr)| *addr).collect(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::thread;

    fn addr(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
    }

    #[test]
    fn a_welcome_lists_the_table_before_the_joiner() {
        let table = PeerTable::new("peer1", 2).unwrap();
        let Admission::Welcome { listed, .. } = table.admit(addr(1)) else {
            panic!("first join refused");
        };
        assert!(listed.peers().is_empty());
        let Admission::Welcome { listed, .. } = table.admit(addr(2)) else {
            panic!("second join refused");
        };
        assert_eq!(listed.peers(), &[addr(1)]);
        assert_eq!(table.peers(), vec![addr(1), addr(2)]);
    }

    #[test]
    fn a_full_table_redirects_with_every_entry() {
        let table = PeerTable::new("p1", 2).unwrap();
        table.admit(addr(40000));
        table.admit(addr(40001));
        let Admission::Redirect { listed } = table.admit(addr(3)) else {
            panic!("third join admitted");
        };
        assert_eq!(listed.peers(), &[addr(40000), addr(40001)]);
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn every_change_and_only_a_change_makes_a_new_listing() {
        let table = PeerTable::new("p", 1).unwrap();
        let empty = table.listing();
        assert_eq!(empty.version(), 0);
        let Admission::Welcome { slot, listed } = table.admit(addr(1)) else {
            panic!("join refused");
        };
        assert_eq!(listed.version(), empty.version());
        let full = table.listing();
        assert!(full.version() > empty.version());
        // A Redirect changes nothing: the same listing, shared rather than copied.
        let Admission::Redirect { listed } = table.admit(addr(2)) else {
            panic!("full table admitted");
        };
        assert_eq!(listed.version(), full.version());
        assert!(
            Arc::ptr_eq(&listed.peers, &full.peers),
            "the listing was copied"
        );
        table.remove(slot);
        let emptied = table.listing();
        assert!(emptied.version() > full.version());
        assert!(emptied.peers().is_empty());
        // A listing handed out before keeps what it listed.
        assert_eq!(full.peers(), &[addr(1)]);
    }

    #[test]
    fn removing_frees_the_slot() {
        let table = PeerTable::new("p", 1).unwrap();
        let Admission::Welcome { slot, .. } = table.admit(addr(1)) else {
            panic!("join refused");
        };
        assert!(table.remove(slot));
        assert!(!table.remove(slot), "a slot is removed once");
        assert!(table.is_empty());
        let Admission::Welcome { listed, .. } = table.admit(addr(2)) else {
            panic!("freed slot not reused");
        };
        assert!(listed.peers().is_empty());
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
        assert_eq!(table.listing().peers(), &[addr(8)]);
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
        assert_eq!(table.listing().peers(), &[addr(1)]);
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
    fn concurrent_welcomes_each_list_the_table_before_their_own_joiner() {
        // Each Welcome's listing is taken in the same step as the admission, so it never
        // lists the joiner itself, and the listings grow one entry at a time.
        let table = Arc::new(PeerTable::new("p", 32).unwrap());
        let handles: Vec<_> = (1..=32u16)
            .map(|port| {
                let table = Arc::clone(&table);
                thread::spawn(move || match table.admit(addr(port)) {
                    Admission::Welcome { listed, .. } => (port, listed),
                    Admission::Redirect { .. } => panic!("room was left"),
                })
            })
            .collect();
        let mut sizes = Vec::new();
        for handle in handles {
            let (port, listed) = handle.join().unwrap();
            assert!(
                !listed.peers().contains(&addr(port)),
                "lists its own joiner"
            );
            sizes.push(listed.peers().len());
        }
        sizes.sort_unstable();
        assert_eq!(sizes, (0..32).collect::<Vec<_>>());
    }

    #[test]
    fn refuses_what_cannot_be_sent() {
        assert!(PeerTable::new("", 2).is_err());
        assert!(PeerTable::new(&"x".repeat(256), 2).is_err());
        assert!(PeerTable::new("p", MAX_PEERS + 1).is_err());
        assert!(PeerTable::new(&"x".repeat(255), MAX_PEERS).is_ok());
    }
}
