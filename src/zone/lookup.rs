//! RFC 1034 §4.3.2 lookup over one zone: referral, exact match, CNAME chain,
//! RFC 4592 wildcard, NODATA, NXDOMAIN. Pure: no wire, no sockets.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::IpAddr;

use crate::policy::Service;

use super::{Node, Zone, Zones};

/// Longest CNAME chain followed inside a zone (Knot and BIND use similar bounds).
const MAX_CNAME_CHAIN: usize = 8;

/// What the zone data says about one question.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

/// What a GSLB service answers for one question.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceAnswer {
    pub addrs: Vec<IpAddr>,
    pub ttl: u32,
    /// Every region down and the service says SERVFAIL.
    pub servfail: bool,
}

/// One step of resolution at one name.
enum Step<'z> {
    Referral(Name, &'z Node),
    Cname(Box<Record>, Name),
    Data(Vec<Record>),
    Service(&'z Service, Name),
    NoData,
    NxDomain,
}

/// Answer `qname`/`qtype` from the zones; `None` when no zone covers the name
/// (the caller answers REFUSED: Meridian never recurses). `decide` answers a
/// GSLB service's A/AAAA (the policy chain), returning its addresses; it gets
/// the zone and service borrowed from `zones`, so it may keep their names.
pub fn lookup<'z>(
    zones: &'z Zones,
    qname: &Name,
    qtype: RecordType,
    decide: &mut dyn FnMut(&'z Zone, &'z Service, RecordType) -> ServiceAnswer,
) -> Option<Lookup> {
    let zone = zones.find(qname)?;
    let mut out = Lookup {
        rcode: ResponseCode::NoError,
        authoritative: true,
        answers: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
    };
    let mut name = qname.clone();
    let mut seen: Vec<Name> = Vec::new();
    loop {
        match resolve_one(zone, &name, qtype) {
            Step::Referral(cut, node) => {
                // A CNAME chain that leads into a child zone stops at the cut
                // with what it has (the resolver follows on from there).
                if out.answers.is_empty() {
                    out.authoritative = false;
                    out.authority = with_owner(node.get(RecordType::NS).map(|s| &s.records[..]).unwrap_or(&[]), &cut);
                    out.additional = addresses_for(zone, &out.authority);
                }
                break;
            }
            Step::Cname(rec, target) => {
                out.answers.push(*rec);
                seen.push(name.clone());
                let out_of_zone = !zone.origin.zone_of(&target);
                if out_of_zone || seen.len() >= MAX_CNAME_CHAIN || seen.contains(&target) {
                    break;
                }
                name = target;
            }
            Step::Data(records) => {
                out.additional = addresses_for(zone, &records);
                out.answers.extend(records);
                break;
            }
            Step::Service(svc, owner) => {
                let rtype = if qtype == RecordType::ANY { RecordType::A } else { qtype };
                let ans = decide(zone, svc, rtype);
                if ans.servfail {
                    out.rcode = ResponseCode::ServFail;
                    out.authoritative = false;
                    out.answers.clear();
                    break;
                }
                if ans.addrs.is_empty() {
                    out.authority.push(zone.negative_soa());
                }
                out.answers.extend(ans.addrs.into_iter().map(|a| {
                    let data = match a {
                        IpAddr::V4(v4) => RData::A(A(v4)),
                        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                    };
                    Record::from_rdata(owner.clone(), ans.ttl, data)
                }));
                break;
            }
            Step::NoData => {
                out.authority.push(zone.negative_soa());
                break;
            }
            Step::NxDomain => {
                out.rcode = ResponseCode::NXDomain;
                out.authority.push(zone.negative_soa());
                break;
            }
        }
    }
    Some(out)
}

fn resolve_one<'z>(zone: &'z Zone, name: &Name, qtype: RecordType) -> Step<'z> {
    let apex_labels = zone.origin.num_labels() as usize;
    let labels = name.num_labels() as usize;
    // A delegation at or above the name wins, except DS at the cut itself,
    // which belongs to the parent side (we hold none, so it is NODATA).
    for n in apex_labels + 1..=labels {
        let ancestor = name.trim_to(n);
        if let Some(node) = zone.nodes.get(&ancestor) {
            if node.get(RecordType::NS).is_some() && !(n == labels && qtype == RecordType::DS) {
                return Step::Referral(ancestor, node);
            }
        }
    }
    if let Some(node) = zone.nodes.get(name) {
        return from_node(node, name, qtype);
    }
    // RFC 4592: find the closest encloser, then look for its wildcard child.
    for n in (apex_labels..labels).rev() {
        let encloser = name.trim_to(n);
        if n == apex_labels || zone.nodes.contains_key(&encloser) {
            let Ok(wild) = encloser.prepend_label("*") else { break };
            return match zone.nodes.get(&wild) {
                Some(node) => from_node(node, name, qtype),
                None => Step::NxDomain,
            };
        }
    }
    Step::NxDomain
}

/// Records of `node` answered with owner `owner` (the name as asked, or the
/// name a wildcard was expanded for).
fn from_node<'z>(node: &'z Node, owner: &Name, qtype: RecordType) -> Step<'z> {
    if let Some(svc) = &node.service {
        let any_dynamic = qtype == RecordType::ANY && node.rrsets.is_empty();
        if matches!(qtype, RecordType::A | RecordType::AAAA) || any_dynamic {
            return Step::Service(svc, owner.clone());
        }
    }
    if qtype == RecordType::ANY {
        // RFC 8482 §4.1: answer with one RRset rather than all of them.
        return match node.rrsets.first() {
            Some(set) => Step::Data(with_owner(&set.records, owner)),
            None => Step::NoData,
        };
    }
    if qtype != RecordType::CNAME {
        if let Some(cname) = node.get(RecordType::CNAME) {
            let rec = with_owner(&cname.records, owner).remove(0);
            let target = match &rec.data {
                RData::CNAME(c) => c.0.clone(),
                _ => unreachable!("CNAME RRset holds CNAME data"),
            };
            return Step::Cname(Box::new(rec), target);
        }
    }
    match node.get(qtype) {
        Some(set) => Step::Data(with_owner(&set.records, owner)),
        None => Step::NoData,
    }
}

fn with_owner(records: &[Record], owner: &Name) -> Vec<Record> {
    records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.name = owner.clone();
            r
        })
        .collect()
}

/// Additional-section addresses for NS, MX and SRV targets held in this zone
/// (including glue below a delegation), A before AAAA, each name once.
fn addresses_for(zone: &Zone, records: &[Record]) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    let mut done: Vec<&Name> = Vec::new();
    for r in records {
        let target = match &r.data {
            RData::NS(ns) => &ns.0,
            RData::MX(mx) => &mx.exchange,
            RData::SRV(srv) => &srv.target,
            _ => continue,
        };
        if done.contains(&target) {
            continue;
        }
        done.push(target);
        if let Some(node) = zone.nodes.get(target) {
            for t in [RecordType::A, RecordType::AAAA] {
                if let Some(set) = node.get(t) {
                    out.extend(set.records.iter().cloned());
                }
            }
        }
    }
    out
}
