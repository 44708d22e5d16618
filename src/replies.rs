//! A cache of encoded replies: the bytes of the Welcomes and Redirects the accept loop sends.
//!
//! The plain way to answer a join is to encode its reply there and then, on every join:
//! `Message::new(kind, id, listed.peers().to_vec())?.emit(&mut out)`. [`ReplyCache::reply`]
//! does exactly that the first time a reply is asked for, and keeps the bytes. While the
//! table stays as it was, every later join gets those same bytes back (a full table
//! redirects join after join with one unchanging Redirect), so answering a join costs a
//! lock (the table's, to admit it) and a reference count (the listing it hands back)
//! instead of an encoding. The cost of a join is what `make bench` measures, against a
//! server that sends one fixed reply (docs/PERFORMANCE.md).
//!
//! When the kept replies are dropped: every change to the table makes a listing with a new
//! version ([`crate::table::Listing`]). The first reply asked for with another version
//! drops everything kept, so a reply never lists a table that no longer is.
//!
//! One case needs other bytes (PROTOCOL 5.5): a joiner from another machine must not be
//! handed `127.x.y.z` entries (peers that joined this one over loopback), but this
//! machine's address on its connection instead, with the same port. Those replies are kept
//! beside the others, under that local address; a table without loopback entries never
//! needs them.
//!
//! Only the accept loop answers joins, so it owns the cache, which needs no lock of its own.

use crate::table::{Listing, PeerTable};
use crate::wire::{Kind, Message};
use std::net::{Ipv4Addr, SocketAddrV4};

/// The encoded replies for one state of the table at a time.
pub struct ReplyCache {
    /// This peer's ID, the sender ID of every reply.
    id: String,
    /// The version of the listing the kept replies list; None before the first reply.
    version: Option<u64>,
    /// That listing has a loopback entry: only then do joiners from elsewhere get other bytes.
    has_loopback: bool,
    /// The replies encoded for that listing, each under what was asked for: at most a
    /// Welcome and a Redirect, and the same again per address of this machine.
    kept: Vec<(Key, Vec<u8>)>,
}

/// What a reply is, besides the listing: its kind, and the address its loopback entries
/// are sent as (None: as recorded).
type Key = (Kind, Option<Ipv4Addr>);

impl ReplyCache {
    /// An empty cache for the replies of `table`'s peer. Their sender ID is the table's,
    /// which [`PeerTable::new`] checked can be sent.
    pub fn for_table(table: &PeerTable) -> ReplyCache {
        ReplyCache {
            id: table.id().to_string(),
            version: None,
            has_loopback: false,
            kept: Vec::new(),
        }
    }

    /// The `kind` reply listing `listed`, for the joiner at `joiner`, which reached this
    /// machine at its address `local` (None if not asked: a joiner on loopback).
    pub fn reply(
        &mut self,
        kind: Kind,
        listed: &Listing,
        joiner: SocketAddrV4,
        local: Option<Ipv4Addr>,
    ) -> &[u8] {
        if self.version != Some(listed.version()) {
            // The table has changed: what is kept lists the table as it was.
            self.version = Some(listed.version());
            self.has_loopback = listed.peers().iter().any(|peer| peer.ip().is_loopback());
            self.kept.clear();
        }
        let key = (kind, self.loopback_as(joiner, local));
        let index = match self.kept.iter().position(|(kept, _)| *kept == key) {
            Some(index) => index,
            None => {
                let bytes = self.encode(key, listed);
                self.kept.push((key, bytes));
                self.kept.len() - 1
            }
        };
        &self.kept[index].1
    }

    /// The address to send loopback entries as (PROTOCOL 5.5): `local`, for a joiner from
    /// another machine that reached a real address of this one, if there are any to send.
    fn loopback_as(&self, joiner: SocketAddrV4, local: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
        let local = local?;
        let from_elsewhere =
            !joiner.ip().is_loopback() && !local.is_loopback() && !local.is_unspecified();
        (from_elsewhere && self.has_loopback).then_some(local)
    }

    /// Encodes one reply the plain way: what every join would cost without the cache.
    fn encode(&self, (kind, loopback_as): Key, listed: &Listing) -> Vec<u8> {
        let peers = listed
            .peers()
            .iter()
            .map(|peer| match loopback_as {
                Some(local) if peer.ip().is_loopback() => SocketAddrV4::new(local, peer.port()),
                _ => *peer,
            })
            .collect();
        match Message::new(kind, &self.id, peers) {
            Ok(message) => message.to_bytes(),
            Err(e) => {
                // The table checked the ID and never holds more than MAX_PEERS entries, so
                // this cannot happen; were it to, the joiner would see the connection close
                // without a reply, and this says why.
                log::error!("cannot encode a {kind}: {e}");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Admission;

    fn addr(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
    }

    /// An address on another machine of the test network 198.18.0.0/15.
    fn far(last: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, last), port)
    }

    /// The peers a reply of `kind` lists.
    fn listed(kind: Kind, reply: &[u8]) -> Vec<SocketAddrV4> {
        let message = Message::parse(reply).unwrap();
        assert_eq!(message.kind(), kind);
        message.peers().to_vec()
    }

    #[test]
    fn admitted_joins_get_the_worked_examples_of_protocol_4_3() {
        let table = PeerTable::new("peer1", 2).unwrap();
        let mut cache = ReplyCache::for_table(&table);
        let Admission::Welcome { listed, .. } = table.admit(addr(39670)) else {
            panic!("first join refused");
        };
        let reply = cache.reply(Kind::Welcome, &listed, addr(39670), None);
        assert_eq!(
            reply,
            [0xE0, 0x20, 0x00, 0x05, b'p', b'e', b'e', b'r', b'1']
        );
        let Admission::Welcome { listed, .. } = table.admit(addr(2)) else {
            panic!("second join refused");
        };
        let reply = cache.reply(Kind::Welcome, &listed, addr(2), None);
        let expected = [
            0xE0, 0x20, 0x01, 0x05, b'p', b'e', b'e', b'r', b'1', 0x7F, 0, 0, 1, 0x9A, 0xF6,
        ];
        assert_eq!(reply, expected);

        let table = PeerTable::new("p1", 2).unwrap();
        let mut cache = ReplyCache::for_table(&table);
        table.admit(addr(40000));
        table.admit(addr(40001));
        let Admission::Redirect { listed } = table.admit(addr(3)) else {
            panic!("third join admitted");
        };
        let expected = [
            0xE0, 0x40, 0x02, 0x02, b'p', b'1', 0x7F, 0, 0, 1, 0x9C, 0x40, 0x7F, 0, 0, 1, 0x9C,
            0x41,
        ];
        let reply = cache.reply(Kind::Redirect, &listed, addr(3), None);
        assert_eq!(reply, expected);
    }

    #[test]
    fn a_reply_is_encoded_once_per_state_of_the_table() {
        let table = PeerTable::new("p", 1).unwrap();
        let mut cache = ReplyCache::for_table(&table);
        let slot = table.insert(addr(1)).unwrap();
        let full = table.listing();
        let first = cache.reply(Kind::Redirect, &full, addr(2), None).as_ptr();
        let again = cache.reply(Kind::Redirect, &full, addr(3), None).as_ptr();
        assert_eq!(first, again, "encoded twice");
        let reply = cache.reply(Kind::Welcome, &full, addr(2), None);
        assert_eq!(listed(Kind::Welcome, reply), [addr(1)]);
        assert_eq!(cache.kept.len(), 2, "one Redirect, one Welcome");
        // After a change, what was kept for the old table is dropped.
        table.remove(slot);
        table.insert(addr(4)).unwrap();
        let changed = table.listing();
        let reply = cache.reply(Kind::Redirect, &changed, addr(2), None);
        assert_eq!(listed(Kind::Redirect, reply), [addr(4)]);
        assert_eq!(cache.kept.len(), 1, "replies of the old table kept");
    }

    #[test]
    fn a_joiner_from_another_machine_gets_loopback_entries_as_our_address() {
        let table = PeerTable::new("p", 3).unwrap();
        let mut cache = ReplyCache::for_table(&table);
        let ours = Ipv4Addr::new(198, 18, 0, 1);
        table.insert(addr(1)).unwrap();
        table.insert(far(5, 7000)).unwrap();
        let now = table.listing();
        // A joiner on this machine gets the table as recorded.
        let reply = cache.reply(Kind::Welcome, &now, addr(2), None);
        assert_eq!(listed(Kind::Welcome, reply), [addr(1), far(5, 7000)]);
        // One from elsewhere gets our address on its connection, with the same port; the
        // Welcome and the Redirect alike, and the same when asked again.
        let moved = SocketAddrV4::new(ours, 1);
        for kind in [Kind::Welcome, Kind::Redirect, Kind::Welcome, Kind::Redirect] {
            let reply = cache.reply(kind, &now, far(9, 9000), Some(ours));
            assert_eq!(listed(kind, reply), [moved, far(5, 7000)]);
        }
        assert_eq!(cache.kept.len(), 3, "encoded more than once");
        let reply = cache.reply(Kind::Redirect, &now, addr(3), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(listed(Kind::Redirect, reply), [addr(1), far(5, 7000)]);
        assert_eq!(table.peers(), [addr(1), far(5, 7000)], "recorded as seen");
    }

    #[test]
    fn only_a_joiner_from_elsewhere_at_a_real_address_gets_rewritten_entries() {
        let table = PeerTable::new("p", 2).unwrap();
        let mut cache = ReplyCache::for_table(&table);
        table.insert(addr(1)).unwrap();
        let now = table.listing();
        let ours = Ipv4Addr::new(198, 18, 0, 1);
        // A joiner on this machine (loopback), or a join that reached no real address of
        // ours (loopback, unspecified, not asked), gets the entries as recorded.
        for (joiner, local) in [
            (addr(2), Some(ours)),
            (far(9, 9000), Some(Ipv4Addr::LOCALHOST)),
            (far(9, 9000), Some(Ipv4Addr::UNSPECIFIED)),
            (far(9, 9000), None),
        ] {
            let reply = cache.reply(Kind::Welcome, &now, joiner, local);
            assert_eq!(
                listed(Kind::Welcome, reply),
                [addr(1)],
                "{joiner} at {local:?}"
            );
        }
        assert_eq!(cache.kept.len(), 1, "a rewritten copy was encoded");
    }

    #[test]
    fn without_loopback_entries_every_joiner_gets_the_same_bytes() {
        // The common case costs no copy for a joiner from elsewhere.
        let table = PeerTable::new("p", 1).unwrap();
        let mut cache = ReplyCache::for_table(&table);
        table.insert(far(5, 7000)).unwrap();
        let now = table.listing();
        let ours = Ipv4Addr::new(198, 18, 0, 1);
        let here = cache.reply(Kind::Redirect, &now, addr(1), None).as_ptr();
        let there = cache.reply(Kind::Redirect, &now, far(9, 9000), Some(ours));
        assert_eq!(listed(Kind::Redirect, there), [far(5, 7000)]);
        assert_eq!(there.as_ptr(), here, "a copy was encoded");
    }

    #[test]
    fn the_rewritten_replies_follow_the_local_address_and_the_table() {
        let table = PeerTable::new("p", 1).unwrap();
        let mut cache = ReplyCache::for_table(&table);
        let slot = table.insert(addr(1)).unwrap();
        let now = table.listing();
        for last in [1, 2, 1] {
            let ours = Ipv4Addr::new(198, 18, 0, last);
            let reply = cache.reply(Kind::Redirect, &now, far(9, 9000), Some(ours));
            assert_eq!(listed(Kind::Redirect, reply), [SocketAddrV4::new(ours, 1)]);
        }
        // After a change the old rewritten replies are gone.
        table.remove(slot);
        table.insert(far(5, 7000)).unwrap();
        let ours = Ipv4Addr::new(198, 18, 0, 1);
        let reply = cache.reply(Kind::Redirect, &table.listing(), far(9, 9000), Some(ours));
        assert_eq!(listed(Kind::Redirect, reply), [far(5, 7000)]);
    }

    #[test]
    fn a_reply_that_cannot_be_built_is_empty_not_a_panic() {
        let table = PeerTable::new("p", 1).unwrap();
        let mut cache = ReplyCache {
            id: String::new(),
            ..ReplyCache::for_table(&table)
        };
        let reply = cache.reply(Kind::Welcome, &table.listing(), addr(1), None);
        assert!(reply.is_empty());
    }
}
