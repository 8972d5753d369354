//! Negative answers for the fast path: NXDOMAIN for a name that does not
//! exist and NODATA for an existing name without the asked type. Where a name
//! leads comes from each zone's name index (`zone::NameIndex::locate`), the
//! same index `zone::lookup` reads. A delegation, a wildcard, a CNAME, a
//! service, a name outside every zone: `None`, the general path.
//!
//! The SOA of a negative answer is written by `SoaWire` on both paths, with
//! its own compression: the owner (the apex) and whatever MNAME and RNAME
//! share with the apex point into the question, which always holds the apex.

use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rustc_hash::FxHashMap;
use std::sync::Arc;

use crate::zone::{wire_name, Held, Location, NameIndex, WireName, Zone, Zones};

/// The general path's encoder (hickory) keeps the first 64 suffixes of a
/// message's names as compression targets, the question's first: past that
/// it would not point the SOA's owner at the question's apex as we do.
const COMPRESSION_CANDIDATES: usize = 64;

/// Where the question starts in a message.
const QUESTION_AT: usize = 12;

#[derive(Debug, Default)]
pub struct NegativeIndex {
    /// Zone origins (lowercase wire) → `zones`.
    origins: FxHashMap<Vec<u8>, usize>,
    /// Bit n set when some origin is n bytes long on the wire: rules most of
    /// a question's suffixes out without hashing them.
    origin_lens: [u64; 4],
    /// `None` for a zone whose SOA record is not an SOA.
    zones: Vec<Option<NegZone>>,
}

#[derive(Debug)]
struct NegZone {
    names: Arc<NameIndex>,
    soa: SoaWire,
    signed: bool,
}

/// The authority SOA of a negative answer in wire form, written the same way
/// by both paths: owner and RDATA names compressed against the apex as the
/// question holds it (RFC 1035 §4.1.4), nothing else.
#[derive(Debug, Clone)]
pub struct SoaWire {
    ttl: u32,
    /// MNAME and RNAME: the labels written out, then the byte offset in the
    /// apex of the suffix they point to (`None`: written out to the root).
    names: [(Vec<u8>, Option<u16>); 2],
    /// SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM.
    tail: [u8; 20],
}

impl SoaWire {
    /// `soa` is the zone's negative SOA (its owner the apex).
    pub fn new(soa: &Record) -> Option<SoaWire> {
        let RData::SOA(data) = &soa.data else { return None };
        let apex = wire_name(&soa.name);
        let mut tail = [0u8; 20];
        tail[0..4].copy_from_slice(&data.serial.to_be_bytes());
        tail[4..8].copy_from_slice(&data.refresh.to_be_bytes());
        tail[8..12].copy_from_slice(&data.retry.to_be_bytes());
        tail[12..16].copy_from_slice(&data.expire.to_be_bytes());
        tail[16..20].copy_from_slice(&data.minimum.to_be_bytes());
        let names = [against_apex(&wire_name(&data.mname), &apex)?, against_apex(&wire_name(&data.rname), &apex)?];
        Some(SoaWire { ttl: soa.ttl, names, tail })
    }

    /// RDATA, with the apex at `apex_at` in the message.
    pub fn write_rdata(&self, out: &mut Vec<u8>, apex_at: u16) {
        for (labels, pointer) in &self.names {
            out.extend_from_slice(labels);
            if let Some(p) = pointer {
                out.extend_from_slice(&(0xc000 | (apex_at + p)).to_be_bytes());
            }
        }
        out.extend_from_slice(&self.tail);
    }

    /// The whole record: owner, type, class, TTL, RDLENGTH, RDATA.
    pub fn write_record(&self, out: &mut Vec<u8>, apex_at: u16) {
        out.extend_from_slice(&(0xc000 | apex_at).to_be_bytes());
        out.extend_from_slice(&[0, 6, 0, 1]);
        out.extend_from_slice(&self.ttl.to_be_bytes());
        let len_at = out.len();
        out.extend_from_slice(&[0, 0]);
        self.write_rdata(out, apex_at);
        let len = (out.len() - len_at - 2) as u16;
        out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
    }
}

/// `name` (lowercase wire) as the labels to write and the offset in `apex`
/// of the longest suffix the two share (the root alone is not worth a pointer).
fn against_apex(name: &[u8], apex: &[u8]) -> Option<(Vec<u8>, Option<u16>)> {
    let (n, a) = (WireName::parse(name)?, WireName::parse(apex)?);
    let shared = (1..=n.labels().min(a.labels()))
        .take_while(|&c| n.label(n.labels() - c) == a.label(a.labels() - c))
        .last()
        .unwrap_or(0);
    if shared == 0 {
        return Some((name.to_vec(), None));
    }
    let keep = n.start(n.labels() - shared);
    Some((name[..keep].to_vec(), Some(a.start(a.labels() - shared) as u16)))
}

/// The general path's authority section: each SOA's RDATA replaced by the
/// bytes `SoaWire` writes for a question `qname`, so that hickory's own
/// compression choices never reach them (it writes the owner, pointing it at
/// the question's apex, and these bytes as they are).
pub fn explicit_soa(authority: Vec<Record>, qname: &Name) -> Vec<Record> {
    authority
        .into_iter()
        .map(|mut r| {
            let explicit = r.record_type() == RecordType::SOA && r.name.zone_of(qname);
            if let Some(soa) = explicit.then(|| SoaWire::new(&r)).flatten() {
                let apex_at = QUESTION_AT + wire_name(qname).len() - wire_name(&r.name).len();
                let mut rdata = Vec::with_capacity(64);
                soa.write_rdata(&mut rdata, apex_at as u16);
                r.data = RData::Unknown { code: RecordType::SOA, rdata: NULL::with(rdata) };
            }
            r
        })
        .collect()
}

/// A negative answer: its RCODE and the SOA for the authority section.
#[derive(Debug)]
pub struct NegativeAnswer<'a> {
    pub rcode: u8,
    /// The zone is signed: a DO=1 query gets the signed answer
    /// (`signed_negative.rs`), built by the general path, which signs.
    pub signed: bool,
    /// The zone's index in `Zones::zones`.
    pub zone: usize,
    soa: &'a SoaWire,
    apex_at: u16,
}

impl NegativeAnswer<'_> {
    /// Append the SOA record (the question must already be written).
    pub fn write_soa(&self, out: &mut Vec<u8>) {
        self.soa.write_record(out, self.apex_at);
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
        // OPT, zone transfers and the other meta types get their own answers.
        if qtype == 0 || qtype == u16::from(RecordType::OPT) || (128..=255).contains(&qtype) {
            return None;
        }
        // hickory refuses names over 255 bytes (FORMERR): so does `parse`.
        let w = WireName::parse(qname)?;
        // The most specific zone: the longest suffix that is an origin.
        let (k, zi) = (0..=w.labels()).find_map(|k| {
            let len = w.suffix(k).len();
            let maybe = self.origin_lens[len / 64] & (1 << (len % 64)) != 0;
            maybe.then(|| self.origins.get(w.suffix(k)).map(|&zi| (k, zi))).flatten()
        })?;
        if k >= COMPRESSION_CANDIDATES {
            return None;
        }
        let z = self.zones[zi].as_ref()?;
        let qtype = RecordType::from(qtype);
        let rcode = match z.names.locate(&w, qtype)? {
            Location::Exact(facts) if facts.held(qtype) == Held::NoData => 0,
            Location::NxDomain => 3,
            _ => return None,
        };
        Some(NegativeAnswer {
            rcode,
            soa: &z.soa,
            apex_at: (QUESTION_AT + w.start(k)) as u16,
            signed: z.signed,
            zone: zi,
        })
    }
}

fn neg_zone(z: &Zone) -> Option<NegZone> {
    Some(NegZone { names: Arc::clone(&z.names), soa: SoaWire::new(&z.negative_soa())?, signed: z.signer.is_some() })
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
