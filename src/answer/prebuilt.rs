//! Prebuilt answers: for every owner name and the types people ask of it,
//! the answer the general path gives, stored as wire bytes after the
//! question. The fast path replays them with the asker's ID, flags and OPT.
//! Built with the general path itself, so the two cannot disagree.

use hashbrown::hash_table::{Entry, HashTable};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
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
    /// Boxed, not a Vec: one word less in each of a big zone's entries.
    pub body: Box<[u8]>,
    /// The name's zone is signed: a DO=1 query gets `dnssec`, else the
    /// general path (which signs).
    pub signed: bool,
    /// The signed zone's DO=1 answer (RRsets with their RRSIGs), as the
    /// general path gives it; `None` if it could not be prebuilt.
    pub dnssec: Option<Box<SignedBody>>,
}

/// A prebuilt DO=1 answer of a signed zone: its sections carry RRSIGs out
/// of the signer's cache, so it is the general path's answer only until the
/// first of them is made anew (`Signer::renewed_at`); from then on the
/// fast path leaves it to the general path, and the server rebuilds the
/// index (`FastIndex::refresh_at`, a reload).
#[derive(Debug, Clone)]
pub struct SignedBody {
    pub aa: bool,
    pub rcode: u8,
    /// Answer, authority, additional record counts (no OPT).
    pub counts: [u16; 3],
    pub body: Vec<u8>,
    /// Unix seconds: replayed while `now < fresh_until`.
    pub fresh_until: u32,
}

/// What the fast path knows about one (name, type).
#[derive(Debug, Clone)]
pub enum FastEntry {
    Static(Prebuilt),
    /// A GSLB service's A/AAAA: decided per query.
    Service {
        zone: usize,
        service: Arc<Service>,
        /// The name, lowercase: the owner a signed answer's RRSIGs cover.
        owner: Box<Name>,
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
    /// The earliest `SignedBody::fresh_until` of the index, if any.
    refresh_at: Option<u32>,
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

/// Eight name bytes with their ASCII capitals made lowercase (RFC 4343),
/// without a branch: a byte is a capital when its low seven bits reach 'A'
/// but not past 'Z' and its high bit is clear. (Label lengths, at most 63,
/// are never capitals.)
#[inline(always)]
fn fold(w: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low7 = w & !HIGH;
    let from_a = low7 + ONES * (0x80 - u64::from(b'A'));
    let past_z = low7 + ONES * (0x80 - u64::from(b'Z') - 1);
    w | ((from_a & !past_z & !w & HIGH) >> 2)
}

/// `key == lowercase(name)` for a lowercase key, inline: eight bytes at a
/// time, the last eight overlapping, so a name in any case (DNS 0x20) is
/// found without being copied first. (The slice comparison calls libc's
/// `bcmp`, which cost 5-8 % of the user time of an answer.)
#[inline]
fn same_name(key: &[u8], name: &[u8]) -> bool {
    let n = key.len();
    if n != name.len() {
        return false;
    }
    if n < 8 {
        return key.iter().zip(name).all(|(k, b)| *k == b.to_ascii_lowercase());
    }
    let word = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let mut at = 0;
    while at + 8 < n {
        if word(key, at) != fold(word(name, at)) {
            return false;
        }
        at += 8;
    }
    word(key, n - 8) == fold(word(name, n - 8))
}

/// The hash of a name in any case and a type: whole words folded, the last
/// few bytes shifted into one (a copy of variable length would be a call).
fn key_hash(name: &[u8], qtype: u16) -> u64 {
    let mut h = FxHasher::default();
    let mut words = name.chunks_exact(8);
    for w in &mut words {
        h.write_u64(fold(u64::from_ne_bytes(w.try_into().expect("8 bytes"))));
    }
    let tail = words.remainder().iter().enumerate().fold(0u64, |a, (k, b)| a | u64::from(*b) << (8 * k));
    h.write_u64(fold(tail));
    h.write_u16(qtype);
    h.finish()
}

impl FastIndex {
    /// The entry for a wire name, in any case, and type.
    pub fn get(&self, qname: &[u8], qtype: u16) -> Option<&FastEntry> {
        let found = self.map.find(key_hash(qname, qtype), |e| e.qtype == qtype && same_name(&e.name, qname));
        found.map(|e| &e.entry)
    }

    /// The NXDOMAIN or NODATA answer for a lowercase wire name and type
    /// missing from the index, when it is sure to be one.
    pub fn negative(&self, qname: &[u8], qtype: u16) -> Option<NegativeAnswer<'_>> {
        self.negative.lookup(qname, qtype)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// When the first prebuilt signed answer stops being replayed (Unix
    /// seconds): the server reloads then, so that signed answers of static
    /// names come from the fast path again, with their new signatures.
    pub fn refresh_at(&self) -> Option<u32> {
        self.refresh_at
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Index every owner name: the types it holds plus A and AAAA, unless
    /// those are a NODATA the negative index answers.
    /// `state` is the snapshot being built (its own index still empty).
    pub fn build(state: &Snapshot) -> FastIndex {
        let zones = &state.zones;
        // About one entry per name (A/AAAA NODATA are the negative index's):
        // room for them up front rather than a rehash at every doubling.
        let names: usize = zones.zones.iter().map(|z| z.nodes.len()).sum();
        let negative = NegativeIndex::build(zones);
        let mut index = FastIndex { map: HashTable::with_capacity(names + names / 8), ..FastIndex::default() };
        for (zi, z) in zones.zones.iter().enumerate() {
            // Does every name of this zone belong to it (no child zone served here)?
            let whole = !zones.zones.iter().any(|o| o.origin != z.origin && z.origin.zone_of(&o.origin));
            let nodes: Vec<(&Name, &zone::Node)> = z.nodes.iter().collect();
            let entries = |batch: &[(&Name, &zone::Node)], out: &mut Vec<(u64, Indexed)>| {
                for (name, node) in batch {
                    name_entries(state, &negative, zi, z, whole, name, node, out);
                }
            };
            let mut add = |batch: Vec<(u64, Indexed)>| {
                for (hash, e) in batch {
                    if let FastEntry::Static(Prebuilt { dnssec: Some(d), .. }) = &e.entry {
                        index.refresh_at = Some(index.refresh_at.map_or(d.fresh_until, |r| r.min(d.fresh_until)));
                    }
                    index.insert(hash, e);
                }
            };
            zone::in_parallel(&nodes, entries, &mut add);
        }
        index.negative = negative;
        index
    }

    /// Add or replace (the same name in two zones: the later zone's entry),
    /// hashed already.
    fn insert(&mut self, hash: u64, e: Indexed) {
        let eq = |o: &Indexed| o.qtype == e.qtype && o.name == e.name;
        match self.map.entry(hash, eq, |o| key_hash(&o.name, o.qtype)) {
            Entry::Occupied(mut o) => *o.get_mut() = e,
            Entry::Vacant(v) => {
                v.insert(e);
            }
        }
    }
}

/// The entries of one owner name: the types it holds plus A and AAAA,
/// unless those are a NODATA the negative index answers.
#[allow(clippy::too_many_arguments)]
fn name_entries(
    state: &Snapshot,
    negative: &NegativeIndex,
    zi: usize,
    z: &zone::Zone,
    whole: bool,
    name: &Name,
    node: &zone::Node,
    out: &mut Vec<(u64, Indexed)>,
) {
    let mut types: Vec<RecordType> = node.rrsets.iter().map(|s| s.rtype).collect();
    let wire = wire_name(name);
    let facts = if whole { z.names.get(&wire) } else { None };
    for t in [RecordType::A, RecordType::AAAA] {
        // A NODATA the negative index gives (the same bytes, see
        // answer::fast's tests) needs no entry: for a zone of A and
        // TXT names these were most of the index's memory and
        // load time (docs/performance.md, "Big zone").
        if !types.contains(&t) && !negative_has(negative, facts, &wire, t) {
            types.push(t);
        }
    }
    let mut push = |t: RecordType, entry: FastEntry| {
        let qtype = u16::from(t);
        out.push((key_hash(&wire, qtype), Indexed { name: wire.as_slice().into(), qtype, entry }));
    };
    for t in types {
        if let (Some(svc), RecordType::A | RecordType::AAAA) = (&node.service, t) {
            if decides_with(state, name, t, svc) {
                let owner = Box::new(name.to_lowercase());
                push(t, FastEntry::Service { zone: zi, service: Arc::clone(svc), owner });
                continue;
            }
        }
        let direct = facts.and_then(|f| direct(z, f, node, t));
        if let Some(pb) = direct.or_else(|| prebuild(state, name, t)) {
            push(t, FastEntry::Static(pb));
        }
    }
}

/// The general path's answer to a plain query for data held at the name
/// itself, written here: no lookup, message and parse per record, which were
/// most of a big zone's load time (docs/performance.md, "Big zones"). Only
/// for types whose RDATA holds no names (nothing to compress, no additional
/// section), at a name of `z` that is no service, CNAME or delegation;
/// `None` otherwise, and the general path answers. `wire` is `node`'s name.
fn direct(z: &zone::Zone, facts: &zone::NameFacts, node: &zone::Node, qtype: RecordType) -> Option<Prebuilt> {
    // A signed zone's entries carry their DO=1 answer too: `prebuild` makes both.
    if !matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::TXT)
        || node.service.is_some()
        || z.signer.is_some()
    {
        return None;
    }
    if facts.under_cut || facts.held(qtype) != zone::Held::Data {
        return None;
    }
    let set = node.get(qtype)?;
    let mut body = Vec::with_capacity(set.rdata.len() * 16);
    for data in set.rdata.iter() {
        // The owner is the question's name: a pointer to it (RFC 1035 §4.1.4).
        body.extend_from_slice(&[0xc0, 0x0c]);
        body.extend_from_slice(&u16::from(qtype).to_be_bytes());
        body.extend_from_slice(&[0, 1]); // IN
        body.extend_from_slice(&set.ttl.to_be_bytes());
        let len_at = body.len();
        body.extend_from_slice(&[0, 0]);
        match &data {
            RData::A(a) => body.extend_from_slice(&a.0.octets()),
            RData::AAAA(a) => body.extend_from_slice(&a.0.octets()),
            RData::TXT(txt) => {
                for s in txt.txt_data.iter() {
                    body.push(u8::try_from(s.len()).ok()?);
                    body.extend_from_slice(s);
                }
            }
            _ => return None,
        }
        let len = u16::try_from(body.len() - len_at - 2).ok()?;
        body[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
    }
    Some(Prebuilt {
        aa: true,
        rcode: 0,
        counts: [u16::try_from(set.rdata.len()).ok()?, 0, 0],
        body: body.into(),
        signed: false,
        dnssec: None,
    })
}

/// Whether the negative index answers `wire`/`qtype` (NODATA: the name
/// exists). `facts` are the name's own when its zone has no child zone
/// served here: then, not under a cut and with fewer than 64 labels (the
/// index's compression limit), it is located exactly
/// (`zone::NameIndex::locate`), and its facts alone say NODATA, without
/// the walk up its suffixes that was a sixth of a big zone's load. A wrong
/// guess would cost speed, never an answer: a missing entry is asked of the
/// negative index again per query, an extra one is the general path's answer.
fn negative_has(negative: &NegativeIndex, facts: Option<&zone::NameFacts>, wire: &[u8], qtype: RecordType) -> bool {
    match facts {
        Some(f) if !f.under_cut && wire.len() < 128 => f.held(qtype) == zone::Held::NoData,
        _ => negative.lookup(wire, qtype.into()).is_some(),
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
    let (aa, rcode, counts, body, _) = general_body(state, name, qtype, false)?;
    let signer = state.zones.find(name).and_then(|z| z.signer.as_deref());
    let dnssec = signer.filter(|s| s.room_to_prebuild()).and_then(|signer| {
        let (aa, rcode, counts, body, expiry) = general_body(state, name, qtype, true)?;
        let fresh_until = signer.renewed_at(expiry?);
        Some(Box::new(SignedBody { aa, rcode, counts, body, fresh_until }))
    });
    Some(Prebuilt { aa, rcode, counts, body: body.into(), signed: signer.is_some(), dnssec })
}

/// AA, RCODE, counts, the sections' bytes, the first RRSIG expiry.
type GeneralBody = (bool, u8, [u16; 3], Vec<u8>, Option<u32>);

/// The general path's answer to `name`/`qtype` asked over TCP (never
/// truncated), without EDNS or with only DO=1: AA, RCODE, the counts and
/// the bytes after the question, OPT left out (the fast path writes its
/// own), and with DO the first expiry of its RRSIGs.
fn general_body(state: &Snapshot, name: &Name, qtype: RecordType, dnssec_ok: bool) -> Option<GeneralBody> {
    let mut q = Message::new(0, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(name.clone(), qtype));
    if dnssec_ok {
        let mut e = Edns::new();
        e.set_max_payload(crate::wire::EDNS_PAYLOAD);
        e.set_dnssec_ok(true);
        q.set_edns(e);
    }
    let bytes = q.to_vec().ok()?;
    let resp = super::respond_general(state, &bytes, "127.0.0.1:53".parse().ok()?, super::Transport::Tcp)?;
    let qlen = wire_name(name).len() + 4;
    let body_at = 12 + qlen;
    if resp.len() < body_at {
        return None;
    }
    let c = |at: usize| u16::from_be_bytes([resp[at], resp[at + 1]]);
    let (mut counts, mut end) = ([c(6), c(8), c(10)], resp.len());
    if dnssec_ok {
        // Our OPT, last: payload 1232, DO, no options (as `fast::opt` writes it).
        let [p0, p1] = crate::wire::EDNS_PAYLOAD.to_be_bytes();
        let opt = [0, 0, 41, p0, p1, 0, 0, 0x80, 0, 0, 0];
        if counts[2] == 0 || !resp.ends_with(&opt) || resp.len() < body_at + opt.len() {
            return None;
        }
        counts[2] -= 1;
        end -= opt.len();
    }
    let expiry = if dnssec_ok { first_expiry(&resp) } else { None };
    Some((resp[2] & 0x04 != 0, resp[3] & 0x0f, counts, resp[body_at..end].to_vec(), expiry))
}

/// The earliest expiration of the RRSIGs in a response (`u32::MAX`
/// without any); `None` if it does not parse.
fn first_expiry(resp: &[u8]) -> Option<u32> {
    use hickory_proto::dnssec::rdata::DNSSECRData;
    use hickory_proto::rr::RData;
    let m = Message::from_vec(resp).ok()?;
    let expiries = m.answers.iter().chain(&m.authorities).chain(&m.additionals).filter_map(|r| match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some(sig.input().sig_expiration.get()),
        _ => None,
    });
    Some(expiries.min().unwrap_or(u32::MAX))
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

    /// A and AAAA at a name without them are NODATA from the negative index,
    /// not entries of their own (two per name of a big A/TXT zone), and every
    /// answer stays the general path's.
    #[test]
    fn nodata_for_a_and_aaaa_is_left_to_the_negative_index() {
        let z = "origin = \"n.test.\"\nns = [\"ns1\"]\n[soa]\nmname = \"ns1\"\nrname = \"h\"\nserial = 1\n\
                 [[records]]\nname = \"ns1\"\ntype = \"A\"\ndata = \"192.0.2.1\"\n\
                 [[records]]\nname = \"a\"\ntype = \"A\"\ndata = \"192.0.2.2\"\n\
                 [[records]]\nname = \"t\"\ntype = \"TXT\"\ndata = \"hello\"\n\
                 [[records]]\nname = \"c\"\ntype = \"CNAME\"\ndata = \"a\"\n";
        let mut labels = crate::zone::Labels::default();
        let zones = vec![zone(z, &mut labels)];
        let zones = crate::zone::Zones { zones, labels: labels.finish() };
        let state = Snapshot::default().with_zones(Arc::new(zones), None);
        let src = "127.0.0.1:5353".parse().unwrap();
        let has = |name: &str, t: RecordType| {
            state.fast.get(&crate::zone::wire_name(&Name::from_ascii(name).unwrap()), t.into()).is_some()
        };
        assert!(has("a.n.test.", RecordType::A) && has("t.n.test.", RecordType::TXT));
        assert!(has("c.n.test.", RecordType::AAAA), "a CNAME's A and AAAA are answers, not NODATA");
        for (name, t) in
            [("a.n.test.", RecordType::AAAA), ("t.n.test.", RecordType::A), ("t.n.test.", RecordType::AAAA)]
        {
            assert!(!has(name, t), "{name} {t:?} has an entry");
        }
        for name in ["n.test.", "ns1.n.test.", "a.n.test.", "t.n.test.", "c.n.test.", "x.n.test."] {
            for t in [RecordType::A, RecordType::AAAA, RecordType::TXT, RecordType::NS, RecordType::SOA] {
                let mut m = Message::new(7, MessageType::Query, OpCode::Query);
                m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
                let q = m.to_vec().unwrap();
                let general = respond_general(&state, &q, src, Transport::Udp).unwrap();
                let mut answer = Vec::new();
                assert!(Worker::new(None).answer(&state, &q, src, Transport::Udp, &mut answer));
                assert_eq!(answer, general, "{name} {t:?}");
            }
        }
    }

    /// Answers written directly (`direct`) are byte for byte the general
    /// path's (`prebuild`), and cover the plain data of a zone; CNAMEs,
    /// services, delegations and the names under them are left to the
    /// general path.
    #[test]
    fn direct_answers_are_the_general_paths() {
        let z = "origin = \"d.test.\"\nns = [\"ns1\"]\n[soa]\nmname = \"ns1\"\nrname = \"h\"\nserial = 1\n\
                 [[records]]\nname = \"ns1\"\ntype = \"A\"\ndata = \"192.0.2.1\"\n\
                 [[records]]\nname = \"@\"\ntype = \"A\"\ndata = [\"192.0.2.5\", \"192.0.2.6\"]\n\
                 [[records]]\nname = \"m\"\ntype = \"A\"\nttl = 60\ndata = [\"192.0.2.2\", \"192.0.2.3\"]\n\
                 [[records]]\nname = \"m\"\ntype = \"A\"\nttl = 30\ndata = \"192.0.2.4\"\n\
                 [[records]]\nname = \"m\"\ntype = \"AAAA\"\ndata = \"2001:db8::1\"\n\
                 [[records]]\nname = \"m\"\ntype = \"TXT\"\ndata = ['\"a b\" \"\" \"q\\\"x\\195\\169\"', \"plain\"]\n\
                 [[records]]\nname = \"x.y.deep\"\ntype = \"TXT\"\ndata = \"deep\"\n\
                 [[records]]\nname = \"c\"\ntype = \"CNAME\"\ndata = \"m\"\n\
                 [[records]]\nname = \"*.w\"\ntype = \"A\"\ndata = \"192.0.2.7\"\n\
                 [[records]]\nname = \"cut\"\ntype = \"NS\"\ndata = \"ns.cut\"\n\
                 [[records]]\nname = \"ns.cut\"\ntype = \"A\"\ndata = \"192.0.2.8\"\n\
                 [[records]]\nname = \"mx\"\ntype = \"MX\"\ndata = \"10 m\"\n";
        let mut labels = crate::zone::Labels::default();
        let zones = vec![zone(z, &mut labels)];
        let zones = crate::zone::Zones { zones, labels: labels.finish() };
        let state = Snapshot::default().with_zones(Arc::new(zones), None);
        let z = &state.zones.zones[0];
        let mut direct_count = 0;
        for (name, node) in &z.nodes {
            let wire = crate::zone::wire_name(name);
            let facts = z.names.get(&wire).expect("every name is indexed");
            let negative = super::NegativeIndex::build(&state.zones);
            for t in [RecordType::A, RecordType::AAAA, RecordType::TXT, RecordType::MX, RecordType::CNAME] {
                // The name's facts say NODATA exactly when the negative index does.
                let asked = negative.lookup(&wire, t.into()).is_some();
                assert_eq!(super::negative_has(&negative, Some(facts), &wire, t), asked, "{name} {t}");
                let Some(d) = super::direct(z, facts, node, t) else { continue };
                let g = super::prebuild(&state, name, t).expect("the general path answers");
                assert_eq!((d.aa, d.rcode, d.counts, &d.body, d.signed), (g.aa, g.rcode, g.counts, &g.body, g.signed));
                direct_count += 1;
            }
        }
        // @ A, ns1 A, m A/AAAA/TXT, x.y.deep TXT and `*.w` asked as itself;
        // not c, cut, ns.cut, mx.
        assert_eq!(direct_count, 7);
        let m = crate::zone::wire_name(&Name::from_ascii("m.d.test.").unwrap());
        let node = &z.nodes[&Name::from_ascii("m.d.test.").unwrap()];
        let a = super::direct(z, z.names.get(&m).unwrap(), node, RecordType::A).unwrap();
        assert_eq!(a.counts, [3, 0, 0]);
        assert_eq!(&a.body[6..10], &30u32.to_be_bytes(), "the set's lowest TTL");
    }

    /// A lowercase key equals a name exactly when the name lowercased (ASCII
    /// only, RFC 4343) is the key, at every length around the word size,
    /// whichever byte differs, for every byte value; equal names hash alike.
    #[test]
    fn same_name_is_equality_without_ascii_case() {
        use super::{fold, key_hash};
        for b in 0..=255u8 {
            let w = u64::from_ne_bytes([b, b'a', b'Z', b, 0x80 | b, b'@', b'[', b]);
            assert_eq!(fold(w).to_ne_bytes(), w.to_ne_bytes().map(|x| x.to_ascii_lowercase()), "{b:#x}");
        }
        for n in 0..40usize {
            let key: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37).to_ascii_lowercase()).collect();
            let upper: Vec<u8> = key.iter().map(u8::to_ascii_uppercase).collect();
            assert!(same_name(&key, &key.clone()), "{n}");
            assert!(same_name(&key, &upper), "{n}: uppercase");
            assert_eq!(key_hash(&key, 1), key_hash(&upper, 1), "{n}");
            for at in 0..n {
                for flip in [0x20u8, 0x01, 0x80] {
                    let mut b = upper.clone();
                    b[at] ^= flip;
                    let same = b.to_ascii_lowercase() == key;
                    assert_eq!(same_name(&key, &b), same, "{n} differs at {at} by {flip:#x}");
                }
            }
            assert!(!same_name(&key, &key[..n.saturating_sub(1)]) || n == 0, "{n} vs shorter");
        }
    }
}
