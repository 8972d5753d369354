//! Negative answers for the fast path: NXDOMAIN for a name that does not
//! exist and NODATA for an existing name without the asked type, each with
//! the zone's SOA as the general path encodes it. Built at load time from the
//! zones: per zone, every owner name (empty non-terminals included) with the
//! facts RFC 1034 §4.3.2 and RFC 4592 need. A delegation, a wildcard, a
//! CNAME, a service, a name outside every zone: `None`, the general path.

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use rustc_hash::FxHashMap;

use super::prebuilt::wire_name;
use crate::zone::{Zone, Zones};

/// Longest question (in labels, root excluded) answered here. It also keeps
/// hickory's 64 compression candidates (question suffixes first, then the
/// SOA's) from running out, which would change the SOA's bytes.
const MAX_LABELS: usize = 32;

#[derive(Debug, Default)]
pub struct NegativeIndex {
    /// Zone origins (lowercase wire) → `zones`.
    origins: FxHashMap<Vec<u8>, usize>,
    /// Bit n set when some origin is n bytes long on the wire: rules most of
    /// a question's suffixes out without hashing them.
    origin_lens: [u64; 4],
    /// `None` for a zone whose SOA this cannot reproduce.
    zones: Vec<Option<NegZone>>,
}

#[derive(Debug)]
struct NegZone {
    apex: Facts,
    /// Every owner name strictly below the apex, lowercase wire.
    names: FxHashMap<Vec<u8>, Facts>,
    soa: SoaTemplate,
}

/// What the lookup rules need to know of one existing name.
#[derive(Debug, Default)]
struct Facts {
    /// This name or an ancestor below the apex has NS: referral territory.
    cut: bool,
    /// `*.name` exists: names below it may be synthesized.
    wildcard_child: bool,
    cname: bool,
    /// A GSLB service answers A/AAAA here.
    service: bool,
    types: Vec<u16>,
}

impl Facts {
    /// NODATA here for `qtype`, exactly as `zone::lookup` would say it.
    fn nodata(&self, qtype: u16) -> bool {
        let a_or_aaaa = qtype == u16::from(RecordType::A) || qtype == u16::from(RecordType::AAAA);
        let something_else = self.cut // a referral
            || self.cname
            || qtype == u16::from(RecordType::ANY)
            || (self.service && a_or_aaaa)
            || self.types.contains(&qtype);
        !something_else
    }
}

/// The authority SOA record as the general path encodes it after a question
/// for the apex itself (at offset 12). After a longer question every
/// compression pointer in it moves by the bytes the question has before the
/// apex: hickory compresses each name to its longest suffix already written,
/// and the question's extra labels can only be part of such a suffix when
/// they repeat MNAME's or RNAME's label above the apex (see `guards`).
#[derive(Debug)]
struct SoaTemplate {
    bytes: Vec<u8>,
    /// Offsets in `bytes` of the compression pointers.
    pointers: Vec<usize>,
    /// The label (wire) just above the apex in MNAME and RNAME, for those in
    /// the zone: a question with that label there goes the general way.
    guards: Vec<Vec<u8>>,
}

/// A negative answer: its RCODE and the SOA for the authority section.
#[derive(Debug)]
pub struct NegativeAnswer<'a> {
    pub rcode: u8,
    soa: &'a SoaTemplate,
    shift: u16,
}

impl NegativeAnswer<'_> {
    /// Append the SOA record (the question must already be written).
    pub fn write_soa(&self, out: &mut Vec<u8>) {
        let base = out.len();
        out.extend_from_slice(&self.soa.bytes);
        for &at in &self.soa.pointers {
            let p = u16::from_be_bytes([out[base + at], out[base + at + 1]]) + self.shift;
            out[base + at..base + at + 2].copy_from_slice(&p.to_be_bytes());
        }
    }
}

impl NegativeIndex {
    pub fn build(zones: &Zones) -> NegativeIndex {
        let mut index = NegativeIndex::default();
        for (zi, z) in zones.zones.iter().enumerate() {
            let origin = wire_name(&z.origin);
            index.origin_lens[origin.len() / 64] |= 1 << (origin.len() % 64);
            index.origins.insert(origin, zi);
            index.zones.push(neg_zone(z));
        }
        index
    }

    /// The negative answer to a plain lowercase question, when it is one for
    /// sure; `None` sends the query the general way.
    pub fn lookup(&self, qname: &[u8], qtype: u16) -> Option<NegativeAnswer<'_>> {
        // hickory refuses names over 255 bytes (FORMERR); OPT, zone transfers
        // and the other meta types get their own answers.
        if qname.len() > 255 || qtype == 0 || qtype == u16::from(RecordType::OPT) || (128..=255).contains(&qtype) {
            return None;
        }
        // Label starts (a name is at most 255 bytes), the root's last.
        let mut starts = [0u8; MAX_LABELS + 1];
        let (mut n, mut at) = (0, 0);
        loop {
            *starts.get_mut(n)? = at as u8;
            n += 1;
            match *qname.get(at)? as usize {
                0 => break,
                len => at += 1 + len,
            }
        }
        let suffix = |k: usize| &qname[starts[k] as usize..];
        // The most specific zone: the longest suffix that is an origin.
        let (k, zi) = (0..n).find_map(|k| {
            let len = suffix(k).len();
            let maybe = self.origin_lens[len / 64] & (1 << (len % 64)) != 0;
            maybe.then(|| self.origins.get(suffix(k)).map(|&zi| (k, zi))).flatten()
        })?;
        let z = self.zones[zi].as_ref()?;
        let rcode = if k == 0 {
            if !z.apex.nodata(qtype) {
                return None;
            }
            0
        } else {
            let label = &qname[starts[k - 1] as usize..starts[k] as usize];
            if z.soa.guards.iter().any(|g| g[..] == *label) {
                return None;
            }
            // The closest encloser: the longest suffix that exists.
            match (0..k).find_map(|j| z.names.get(suffix(j)).map(|f| (j, f))) {
                Some((0, f)) if f.nodata(qtype) => 0,
                Some((0, _)) => return None,
                Some((_, f)) if f.cut || f.wildcard_child => return None,
                None if z.apex.wildcard_child => return None,
                _ => 3,
            }
        };
        Some(NegativeAnswer { rcode, soa: &z.soa, shift: u16::from(starts[k]) })
    }
}

fn neg_zone(z: &Zone) -> Option<NegZone> {
    let apex_labels = z.origin.num_labels() as usize;
    let facts = |name: &Name| {
        let node = &z.nodes[name];
        let labels = name.num_labels() as usize;
        let has_ns = |n: usize| z.nodes.get(&name.trim_to(n)).is_some_and(|a| a.get(RecordType::NS).is_some());
        Facts {
            cut: (apex_labels + 1..=labels).any(has_ns),
            wildcard_child: name.prepend_label("*").is_ok_and(|w| z.nodes.contains_key(&w)),
            cname: node.get(RecordType::CNAME).is_some(),
            service: node.service.is_some(),
            types: node.rrsets.iter().map(|s| u16::from(s.rtype)).collect(),
        }
    };
    let names = z.nodes.keys().filter(|n| **n != z.origin).map(|n| (wire_name(n), facts(n))).collect();
    Some(NegZone { apex: facts(&z.origin), names, soa: soa_template(z)? })
}

fn soa_template(z: &Zone) -> Option<SoaTemplate> {
    let soa = z.negative_soa();
    let RData::SOA(data) = &soa.data else { return None };
    let (mname, rname) = (&data.mname, &data.rname);
    if mname.num_labels() as usize + rname.num_labels() as usize > 64 - MAX_LABELS {
        return None; // compression candidates could run out
    }
    let mut m = Message::new(0, MessageType::Response, OpCode::Query);
    m.add_query(Query::query(z.origin.clone(), RecordType::SOA));
    m.insert_authorities(vec![soa.clone()]);
    let wire = m.to_vec().ok()?;
    let bytes = wire.get(12 + wire_name(&z.origin).len() + 4..)?.to_vec();
    let mut pointers = Vec::new();
    let mut at = skip_name(&bytes, 0, &mut pointers)? + 10; // type, class, TTL, RDLENGTH
    at = skip_name(&bytes, at, &mut pointers)?;
    skip_name(&bytes, at, &mut pointers)?;
    let apex_labels = z.origin.num_labels();
    let guards = [mname, rname]
        .into_iter()
        .filter(|n| n.num_labels() > apex_labels && z.origin.zone_of(n))
        .map(|n| {
            let w = wire_name(&n.trim_to(apex_labels as usize + 1));
            w[..1 + w[0] as usize].to_vec()
        })
        .collect();
    Some(SoaTemplate { bytes, pointers, guards })
}

/// Skip a (possibly compressed) name at `at`, noting where its pointer is.
fn skip_name(b: &[u8], mut at: usize, pointers: &mut Vec<usize>) -> Option<usize> {
    loop {
        let len = *b.get(at)?;
        match len {
            0 => return Some(at + 1),
            0xc0..=0xff => {
                pointers.push(at);
                return Some(at + 2);
            }
            1..=63 => at += 1 + len as usize,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the fast path never asks (its index answers first) still gets the
    /// right answer here: a service's A/AAAA is not NODATA.
    #[test]
    fn services_and_cnames_are_not_nodata() {
        let zones = crate::zone::load_zones(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("zones")).unwrap();
        let index = NegativeIndex::build(&zones);
        let rcode = |name: &str, t: RecordType| {
            let wire = wire_name(&Name::from_ascii(name).unwrap());
            index.lookup(&wire, u16::from(t)).map(|a| a.rcode)
        };
        for t in [RecordType::A, RecordType::AAAA, RecordType::ANY] {
            assert_eq!(rcode("www.gslb.example.test.", t), None, "{t:?}");
        }
        assert_eq!(rcode("www.gslb.example.test.", RecordType::TXT), Some(0));
        assert_eq!(rcode("alias.gslb.example.test.", RecordType::CNAME), None);
        assert_eq!(rcode("static.gslb.example.test.", RecordType::A), None, "held");
        assert_eq!(rcode("nx.gslb.example.test.", RecordType::A), Some(3));
    }
}
