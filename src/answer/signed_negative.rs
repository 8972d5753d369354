//! Signed negative answers for the fast path (DO=1 to a signed zone, a name
//! or type the negative index calls NXDOMAIN or NODATA). Their compact
//! denial NSEC is the query name's own (RFC 9824), so they cannot be
//! prebuilt: the first query for a (name, type) has the general path build
//! the answer, which signs (or finds the signatures in the signer's cache);
//! its sections are kept here and replayed, with the asker's header,
//! question and OPT, as the prebuilt positive answers are.
//!
//! An entry is the general path's answer while the signer's cache still
//! holds the signatures it copies: until the first of them is renewed
//! (`Signer::renewed_at`) and while that cache has not started over
//! (`Signer::generation`). Past either, it is built again.
//!
//! One cache per worker (no lock on the query path), emptied when the zones
//! change. Attackers choose the names: keys are hashed with a random key
//! (std's `RandomState`), and the cache starts over once its entries pass `MAX_BYTES`,
//! so a flood of random names costs what it costs the general path and no
//! memory beyond that bound.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use hashbrown::hash_table::HashTable;

use super::{Snapshot, Transport};
use crate::metrics::QueryObservation;
use crate::wire::EDNS_PAYLOAD;
use crate::zone::Zones;

/// Bytes of entries (keys, sections, bookkeeping) one worker keeps: some
/// 10,000 answers of a P-256 zone.
const MAX_BYTES: usize = 4 << 20;
/// Bookkeeping counted per entry besides its key and sections.
const ENTRY_OVERHEAD: usize = 64;
/// The RRSIG type.
const RRSIG: u16 = 46;

/// A kept answer: header bits and the sections after the question (no OPT).
#[derive(Debug)]
pub(super) struct SignedNegative {
    /// The lowercase wire name.
    name: Box<[u8]>,
    qtype: u16,
    pub aa: bool,
    pub rcode: u8,
    /// Answer, authority, additional record counts (no OPT).
    pub counts: [u16; 3],
    pub body: Box<[u8]>,
    /// Unix seconds: replayed while `now < fresh_until`.
    fresh_until: u32,
    /// `Signer::generation` when built.
    generation: u64,
}

impl SignedNegative {
    fn cost(&self) -> usize {
        self.name.len() + self.body.len() + ENTRY_OVERHEAD
    }
}

/// One worker's signed negative answers for one snapshot's zones.
pub(super) struct SignedNegatives {
    zones: Weak<Zones>,
    hasher: RandomState,
    table: HashTable<SignedNegative>,
    bytes: usize,
    max_bytes: usize,
}

impl Default for SignedNegatives {
    fn default() -> Self {
        SignedNegatives::with_max_bytes(MAX_BYTES)
    }
}

impl SignedNegatives {
    /// A cache that starts over past `max_bytes` (tests use small ones).
    pub fn with_max_bytes(max_bytes: usize) -> SignedNegatives {
        SignedNegatives { zones: Weak::new(), hasher: RandomState::new(), table: HashTable::new(), bytes: 0, max_bytes }
    }

    /// The DO=1 answer to `qname` (lowercase wire) and `qtype` in zone
    /// `zone` (its index, a signed zone), at Unix time `now`: kept, or built
    /// now by the general path. `None`: the general path answers this query.
    pub fn get(
        &mut self,
        state: &Snapshot,
        zone: usize,
        qname: &[u8],
        qtype: u16,
        now: u32,
    ) -> Option<&SignedNegative> {
        let signer = state.zones.zones.get(zone)?.signer.as_deref()?;
        if !std::ptr::eq(self.zones.as_ptr(), Arc::as_ptr(&state.zones)) {
            self.clear();
            self.zones = Arc::downgrade(&state.zones);
        }
        let generation = signer.generation();
        let hash = key_hash(&self.hasher, qname, qtype);
        let is_key = |e: &SignedNegative| e.qtype == qtype && *e.name == *qname;
        let fresh = |e: &SignedNegative| now < e.fresh_until && e.generation == generation;
        // Found twice: returning the first borrow would hold `table` for the insert below.
        if self.table.find(hash, is_key).is_some_and(fresh) {
            return self.table.find(hash, is_key);
        }
        let built = build(state, qname, qtype, generation, signer)?;
        if let Ok(stale) = self.table.find_entry(hash, is_key) {
            self.bytes -= stale.remove().0.cost();
        }
        if !fresh(&built) {
            return None; // renewed already: the general path signs anew
        }
        if self.bytes + built.cost() > self.max_bytes {
            self.clear();
        }
        self.bytes += built.cost();
        let hasher = &self.hasher;
        Some(self.table.insert_unique(hash, built, |e| key_hash(hasher, &e.name, e.qtype)).into_mut())
    }

    fn clear(&mut self) {
        self.table.clear();
        self.bytes = 0;
    }

    /// Entries kept and the bytes they count for (tests).
    #[cfg(test)]
    pub fn size(&self) -> (usize, usize) {
        (self.table.len(), self.bytes)
    }
}

/// Keyed SipHash (`RandomState`): names chosen to collide cannot be found
/// without the key.
fn key_hash(hasher: &RandomState, name: &[u8], qtype: u16) -> u64 {
    let mut h = hasher.build_hasher();
    h.write(name);
    h.write_u16(qtype);
    h.finish()
}

/// The general path's answer to a plain DO=1 query for `name` and `qtype`
/// over TCP (never truncated), its OPT taken off: the fast path writes
/// the asker's own. `None` if it is not a signed answer of that shape.
fn build(
    state: &Snapshot,
    name: &[u8],
    qtype: u16,
    generation: u64,
    signer: &crate::dnssec::Signer,
) -> Option<SignedNegative> {
    let [p0, p1] = EDNS_PAYLOAD.to_be_bytes();
    let opt = [0, 0, 41, p0, p1, 0, 0, 0x80, 0, 0, 0];
    let mut query = Vec::with_capacity(12 + name.len() + 4 + opt.len());
    query.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    query.extend_from_slice(name);
    query.extend_from_slice(&qtype.to_be_bytes());
    query.extend_from_slice(&[0, 1]); // IN
    query.extend_from_slice(&opt);
    let src = SocketAddr::from(([127, 0, 0, 1], 53)); // negative answers do not depend on it
    let resp = super::general(state, None, &query, src, Transport::Tcp, &mut QueryObservation::default())?;
    let body_at = 12 + name.len() + 4;
    if resp.len() < body_at + opt.len() || !resp.ends_with(&opt) || resp[2] & 0x02 != 0 {
        return None;
    }
    let c = |at: usize| u16::from_be_bytes([resp[at], resp[at + 1]]);
    let counts = [c(6), c(8), c(10).checked_sub(1)?];
    let body: Box<[u8]> = resp[body_at..resp.len() - opt.len()].into();
    let records = counts.iter().map(|&n| usize::from(n)).sum();
    let expiry = first_rrsig_expiry(&resp, body_at, records)?;
    Some(SignedNegative {
        name: name.into(),
        qtype,
        aa: resp[2] & 0x04 != 0,
        rcode: resp[3] & 0x0f,
        counts,
        body,
        fresh_until: signer.renewed_at(expiry),
        generation,
    })
}

/// The earliest expiration of the RRSIGs among the `records` records from
/// `at` in `msg`; `None` without any, or if they do not parse.
fn first_rrsig_expiry(msg: &[u8], mut at: usize, records: usize) -> Option<u32> {
    let mut first: Option<u32> = None;
    for _ in 0..records {
        // The owner: labels, ended by the root or a pointer.
        loop {
            let len = *msg.get(at)?;
            match len {
                0 => {
                    at += 1;
                    break;
                }
                0xc0..=0xff => {
                    at += 2;
                    break;
                }
                1..=63 => at += 1 + usize::from(len),
                _ => return None,
            }
        }
        let fixed = msg.get(at..at + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let rdata = msg.get(at + 10..at + 10 + rdlen)?;
        if rtype == RRSIG {
            // Type covered, algorithm, labels, original TTL, then expiration.
            let expiration = u32::from_be_bytes(rdata.get(8..12)?.try_into().ok()?);
            first = Some(first.map_or(expiration, |f| f.min(expiration)));
        }
        at += 10 + rdlen;
    }
    first
}
