//! RFC 1034 §4.3.2 lookup over one zone: referral, exact match, CNAME chain,
//! RFC 4592 wildcard, NODATA, NXDOMAIN. Pure: no wire, no sockets.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::IpAddr;

use crate::policy::Service;

use super::names::{wire_name, Held, Location, WireName};
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

/// What one name resolves to (a CNAME leads on to another).
enum Resolution<'z> {
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
            Resolution::Referral(cut, node) => {
                // A CNAME chain that leads into a child zone stops at the cut
                // with what it has (the resolver follows on from there).
                if out.answers.is_empty() {
                    out.authoritative = false;
                    out.authority = with_owner(node.get(RecordType::NS).map(|s| &s.records[..]).unwrap_or(&[]), &cut);
                    out.additional = addresses_for(zone, &out.authority);
                }
                break;
            }
            Resolution::Cname(rec, target) => {
                out.answers.push(*rec);
                seen.push(name.clone());
                let out_of_zone = !zone.origin.zone_of(&target);
                if out_of_zone || seen.len() >= MAX_CNAME_CHAIN || seen.contains(&target) {
                    break;
                }
                name = target;
            }
            Resolution::Data(records) => {
                out.additional = addresses_for(zone, &records);
                out.answers.extend(records);
                break;
            }
            Resolution::Service(svc, owner) => {
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
            Resolution::NoData => {
                out.authority.push(zone.negative_soa());
                break;
            }
            Resolution::NxDomain => {
                out.rcode = ResponseCode::NXDomain;
                out.authority.push(zone.negative_soa());
                break;
            }
        }
    }
    Some(out)
}

fn resolve_one<'z>(zone: &'z Zone, name: &Name, qtype: RecordType) -> Resolution<'z> {
    let wire = wire_name(name);
    let Some(w) = WireName::parse(&wire) else { return Resolution::NxDomain };
    // The name index says where the name leads; the nodes hold the records.
    let labels_from = |k: usize| w.labels() - k;
    match zone.names.locate(&w, qtype) {
        Some(Location::Referral(k)) => {
            let cut = name.trim_to(labels_from(k));
            match zone.nodes.get(&cut) {
                Some(node) => Resolution::Referral(cut, node),
                None => Resolution::NxDomain,
            }
        }
        Some(Location::Exact(facts)) => match zone.nodes.get(name) {
            Some(node) => from_node(node, facts.held(qtype), qtype, name),
            None => Resolution::NxDomain,
        },
        Some(Location::Wildcard(k)) => {
            let wild = name.trim_to(labels_from(k)).prepend_label("*").ok();
            let found = wild.as_ref().and_then(|n| Some((zone.nodes.get(n)?, zone.names.get(&wire_name(n))?)));
            match found {
                Some((node, facts)) => from_node(node, facts.held(qtype), qtype, name),
                None => Resolution::NxDomain,
            }
        }
        Some(Location::NxDomain) | None => Resolution::NxDomain,
    }
}

/// Records of `node` answered with owner `owner` (the name as asked, or the
/// name a wildcard was expanded for), as its facts say (`held`).
fn from_node<'z>(node: &'z Node, held: Held, qtype: RecordType, owner: &Name) -> Resolution<'z> {
    let set = |t: RecordType| node.get(t).map(|s| with_owner(&s.records, owner));
    match held {
        Held::Service => match &node.service {
            Some(svc) => Resolution::Service(svc, owner.clone()),
            None => Resolution::NoData,
        },
        Held::FirstRRset => match node.rrsets.first() {
            Some(s) => Resolution::Data(with_owner(&s.records, owner)),
            None => Resolution::NoData,
        },
        Held::Cname => {
            let rec = set(RecordType::CNAME).and_then(|mut v| (!v.is_empty()).then(|| v.remove(0)));
            match rec {
                Some(rec) => match &rec.data {
                    RData::CNAME(c) => {
                        let target = c.0.clone();
                        Resolution::Cname(Box::new(rec), target)
                    }
                    _ => Resolution::NoData,
                },
                None => Resolution::NoData,
            }
        }
        Held::Data => set(qtype).map_or(Resolution::NoData, Resolution::Data),
        Held::NoData => Resolution::NoData,
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
