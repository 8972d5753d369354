//! Prebuilt answers: for every owner name and the types people ask of it,
//! the answer the general path gives, stored as wire bytes after the
//! question. The fast path replays them with the asker's ID, flags and OPT.
//! Built with the general path itself, so the two cannot disagree.

use hashbrown::hash_table::{Entry, HashTable};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use rustc_hash::FxHasher;
use std::hash::Hasher;
use std::sync::Arc;

use super::negative::{NegativeAnswer, NegativeIndex};
use super::Snapshot;
use crate::policy::Service;
use crate::zone::{self, wire_name};

/// A stored answer: header bits and the sections after the question.
#[derive(Debug, Clone)]
pub struct Prebuilt {
    pub aa: bool,
    pub rcode: u8,
    /// Answer, authority, additional record counts (no OPT).
    pub counts: [u16; 3],
    pub body: Vec<u8>,
    /// The name's zone is signed: a DO=1 query takes the general path, which signs.
    pub signed: bool,
}

/// What the fast path knows about one (name, type).
#[derive(Debug, Clone)]
pub enum FastEntry {
    Static(Prebuilt),
    /// A GSLB service's A/AAAA: decided per query.
    Service {
        zone: usize,
        service: Arc<Service>,
    },
}

/// Keyed by the lowercase wire name and the type, hashed and compared in
/// place (a query's name is not copied into a key first).
#[derive(Default)]
pub struct FastIndex {
    /// Fx hashing: keys are our own zone names, and SipHash's DoS resistance
    /// is not needed for a map that queries only read.
    map: HashTable<Indexed>,
    /// NXDOMAIN and NODATA for the names and types `map` does not hold.
    negative: NegativeIndex,
}

impl std::fmt::Debug for FastIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastIndex").field("entries", &self.map.len()).finish_non_exhaustive()
    }
}

/// One (name, type) of the index.
struct Indexed {
    name: Box<[u8]>,
    qtype: u16,
    entry: FastEntry,
}

/// `a == b` for wire names, inline: eight bytes at a time, the last eight
/// overlapping. (The slice comparison calls libc's `bcmp`, which cost 5-8 %
/// of the user time of an answer, for names of 20-odd bytes.)
#[inline]
fn same_name(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a == b;
    }
    let word = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let mut at = 0;
    while at + 8 < n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

fn key_hash(name: &[u8], qtype: u16) -> u64 {
    let mut h = FxHasher::default();
    h.write(name);
    h.write_u16(qtype);
    h.finish()
}

impl FastIndex {
    /// The entry for a wire name and type. Keys are lowercase, so a name
    /// with an uppercase letter is never found.
    pub fn get(&self, qname: &[u8], qtype: u16) -> Option<&FastEntry> {
        let found = self.map.find(key_hash(qname, qtype), |e| e.qtype == qtype && same_name(&e.name, qname));
        found.map(|e| &e.entry)
    }

    /// Add or replace (the same name in two zones: the later zone's entry).
    fn insert(&mut self, name: &[u8], qtype: u16, entry: FastEntry) {
        let hash = key_hash(name, qtype);
        match self.map.entry(hash, |e| e.qtype == qtype && *e.name == *name, |e| key_hash(&e.name, e.qtype)) {
            Entry::Occupied(mut o) => o.get_mut().entry = entry,
            Entry::Vacant(v) => {
                v.insert(Indexed { name: name.into(), qtype, entry });
            }
        }
    }

    /// The NXDOMAIN or NODATA answer for a lowercase wire name and type
    /// missing from the index, when it is sure to be one.
    pub fn negative(&self, qname: &[u8], qtype: u16) -> Option<NegativeAnswer<'_>> {
        self.negative.lookup(qname, qtype)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Index every owner name: the types it holds plus A and AAAA.
    /// `state` is the snapshot being built (its own index still empty).
    pub fn build(state: &Snapshot) -> FastIndex {
        let zones = &state.zones;
        let mut index = FastIndex { map: HashTable::new(), negative: NegativeIndex::build(zones) };
        for (zi, z) in zones.zones.iter().enumerate() {
            for (name, node) in &z.nodes {
                let mut types: Vec<RecordType> = node.rrsets.iter().map(|s| s.rtype).collect();
                for t in [RecordType::A, RecordType::AAAA] {
                    if !types.contains(&t) {
                        types.push(t);
                    }
                }
                let wire = wire_name(name);
                for t in types {
                    if let (Some(svc), RecordType::A | RecordType::AAAA) = (&node.service, t) {
                        if decides_with(state, name, t, svc) {
                            index.insert(&wire, t.into(), FastEntry::Service { zone: zi, service: Arc::clone(svc) });
                            continue;
                        }
                    }
                    if let Some(pb) = prebuild(state, name, t) {
                        index.insert(&wire, t.into(), FastEntry::Static(pb));
                    }
                }
            }
        }
        index
    }
}

/// Whether the general path answers `name`/`qtype` with `svc`'s decision:
/// not so for a service the lookup never reaches (below a delegation, or
/// inside a child zone served here), which the index must then not know.
fn decides_with(state: &Snapshot, name: &Name, qtype: RecordType, svc: &Service) -> bool {
    let mut reached = false;
    let mut probe = |_: &zone::Zone, s: &Service, _: RecordType| {
        reached |= std::ptr::eq(s, svc);
        zone::ServiceAnswer { addrs: Vec::new(), ttl: 0, servfail: false }
    };
    zone::lookup(&state.zones, name, qtype, &mut probe);
    reached
}

/// The general path's answer to a plain query, unless it depends on the
/// client (a CNAME chain into a service).
fn prebuild(state: &Snapshot, name: &Name, qtype: RecordType) -> Option<Prebuilt> {
    let mut dynamic = false;
    let mut probe = |_: &zone::Zone, _: &Service, _: RecordType| {
        dynamic = true;
        zone::ServiceAnswer { addrs: Vec::new(), ttl: 0, servfail: false }
    };
    zone::lookup(&state.zones, name, qtype, &mut probe)?;
    if dynamic {
        return None;
    }
    let mut q = Message::new(0, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(name.clone(), qtype));
    let bytes = q.to_vec().ok()?;
    let resp = super::respond_general(state, &bytes, "127.0.0.1:53".parse().ok()?, super::Transport::Tcp)?;
    let qlen = wire_name(name).len() + 4;
    let body_at = 12 + qlen;
    if resp.len() < body_at {
        return None;
    }
    let c = |at: usize| u16::from_be_bytes([resp[at], resp[at + 1]]);
    Some(Prebuilt {
        aa: resp[2] & 0x04 != 0,
        rcode: resp[3] & 0x0f,
        counts: [c(6), c(8), c(10)],
        body: resp[body_at..].to_vec(),
        signed: state.zones.find(name).is_some_and(|z| z.signer.is_some()),
    })
}

#[cfg(test)]
mod tests {
    use super::same_name;
    use crate::answer::Snapshot;
    use crate::answer::{respond_general, Transport, Worker};
    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};
    use std::sync::Arc;

    fn zone(text: &str, labels: &mut crate::zone::Labels) -> crate::zone::Zone {
        let source = crate::config::Source { path: "t.toml".into(), text: text.to_string() };
        crate::zone::build_zone(&crate::config::parse_zone_source(source).unwrap(), labels).unwrap()
    }

    /// Issue 18 item 2: a service inside a child zone served here (which
    /// `check` refuses, see `zone::build`) is not what the general path
    /// answers, so the fast index must not hold it: lowercase and mixed-case
    /// queries get the same answer, the child zone's.
    #[test]
    fn the_fast_index_holds_no_service_the_general_path_does_not_reach() {
        let soa = "[soa]\nmname = \"ns1.p.test.\"\nrname = \"h.p.test.\"\nserial = 1\n";
        let parent = format!(
            "origin = \"p.test.\"\nns = [\"ns1.p.test.\"]\n{soa}[[regions]]\nname = \"r1\"\n\
             addresses = [\"198.51.100.1\"]\n[[services]]\nname = \"x.c\"\nchain = [\"weighted\"]\n\
             [[services]]\nname = \"y\"\nchain = [\"weighted\"]\n"
        );
        let child = format!("origin = \"c.p.test.\"\nns = [\"ns1.p.test.\"]\n{soa}");
        let mut labels = crate::zone::Labels::default();
        let zones = vec![zone(&parent, &mut labels), zone(&child, &mut labels)];
        let zones = crate::zone::Zones { zones, labels: labels.finish() };
        let state = Snapshot::default().with_zones(Arc::new(zones), None);
        let src = "127.0.0.1:5353".parse().unwrap();
        let ask = |name: &str| {
            let mut m = Message::new(7, MessageType::Query, OpCode::Query);
            m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
            let q = m.to_vec().unwrap();
            let general = respond_general(&state, &q, src, Transport::Udp).unwrap();
            let mut answer = Vec::new();
            assert!(Worker::new(None).answer(&state, &q, src, Transport::Udp, &mut answer));
            assert_eq!(answer, general, "{name}: the fast path answers as the general path");
            // Names compare without case (hickory compresses case-sensitively).
            let m = Message::from_vec(&answer).unwrap();
            (m.metadata.response_code, m.metadata.authoritative, m.answers, m.authorities)
        };
        let lower = ask("x.c.p.test.");
        assert_eq!(lower.0, ResponseCode::NXDomain, "the child zone's NXDOMAIN");
        assert_eq!(ask("X.C.p.TEST."), lower, "case does not matter");
        let (rcode, aa, answers, _) = ask("y.p.test.");
        assert_eq!((rcode, aa, answers.len()), (ResponseCode::NoError, true, 1), "a service the lookup reaches");
        let wire = crate::zone::wire_name(&Name::from_ascii("y.p.test.").unwrap());
        assert!(matches!(state.fast.get(&wire, 1), Some(super::FastEntry::Service { .. })));
    }

    /// Equal exactly when the slices are, at every length around the word
    /// size, whichever byte differs.
    #[test]
    fn same_name_is_slice_equality() {
        for n in 0..40usize {
            let a: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37)).collect();
            assert!(same_name(&a, &a.clone()), "{n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same_name(&a, &b), "{n} differs at {at}");
            }
            assert!(!same_name(&a, &a[..n.saturating_sub(1)]) || n == 0, "{n} vs shorter");
        }
    }
}
