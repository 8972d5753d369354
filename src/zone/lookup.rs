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
    /// What a signed answer must prove absent (read only when signing).
    pub denial: Option<Denial>,
}

/// The absence a negative answer or a referral states, for its NSEC.
#[derive(Debug, Clone, PartialEq)]
pub enum Denial {
    /// `name` exists (or a wildcard answers for it) and holds `types`, not the asked one.
    NoData { name: Name, types: Vec<RecordType> },
    /// `name` does not exist.
    NxDomain { name: Name },
    /// A referral to the child at `cut`, which has no DS here (an insecure delegation).
    Delegation { cut: Name },
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
    Service(&'z Service, Name, &'z Node),
    /// No data of the type; the node whose types are listed, if any.
    NoData(Option<&'z Node>),
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
        denial: None,
    };
    let mut name = qname.clone();
    let mut seen: Vec<Name> = Vec::new();
    loop {
        match resolve_one(zone, &name, qtype) {
            Resolution::Referral(cut, node) => {
                // RFC 1034 §4.3.2 step 3b, also after a CNAME (step 3a goes
                // back to step 1): the cut's NS and their addresses. A CNAME
                // chain that leads into a child zone keeps its answers and AA
                // and carries the referral too, as Knot and BIND answer.
                out.authority = node.get(RecordType::NS).map(|s| s.records(&cut)).unwrap_or_default();
                out.additional = addresses_for(zone, &out.authority);
                if out.answers.is_empty() {
                    out.authoritative = false;
                    out.denial = Some(Denial::Delegation { cut });
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
            Resolution::Service(svc, owner, node) => {
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
                    out.denial = Some(Denial::NoData { types: types_held(Some(node), qtype), name: owner.clone() });
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
            Resolution::NoData(node) => {
                out.authority.push(zone.negative_soa());
                out.denial = Some(Denial::NoData { types: types_held(node, qtype), name });
                break;
            }
            Resolution::NxDomain => {
                out.rcode = ResponseCode::NXDomain;
                out.authority.push(zone.negative_soa());
                out.denial = Some(Denial::NxDomain { name });
                break;
            }
        }
    }
    Some(out)
}

/// The types `node` holds (a service: A and AAAA), less the one asked for,
/// which a NODATA answer says is not there (a service with no address of
/// that family left, say).
fn types_held(node: Option<&Node>, qtype: RecordType) -> Vec<RecordType> {
    let Some(node) = node else { return Vec::new() };
    let mut types: Vec<RecordType> = node.rrsets.iter().map(|s| s.rtype).collect();
    if node.service.is_some() {
        types.extend([RecordType::A, RecordType::AAAA]);
    }
    types.retain(|t| *t != qtype);
    types
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
    let set = |t: RecordType| node.get(t).map(|s| s.records(owner));
    match held {
        Held::Service => match &node.service {
            Some(svc) => Resolution::Service(svc, owner.clone(), node),
            None => Resolution::NoData(Some(node)),
        },
        Held::FirstRRset => match node.rrsets.first() {
            Some(s) => Resolution::Data(s.records(owner)),
            None => Resolution::NoData(Some(node)),
        },
        Held::Cname => {
            let rec = set(RecordType::CNAME).and_then(|mut v| (!v.is_empty()).then(|| v.remove(0)));
            match rec {
                Some(rec) => match &rec.data {
                    RData::CNAME(c) => {
                        let target = c.0.clone();
                        Resolution::Cname(Box::new(rec), target)
                    }
                    _ => Resolution::NoData(Some(node)),
                },
                None => Resolution::NoData(Some(node)),
            }
        }
        Held::Data => set(qtype).map_or(Resolution::NoData(Some(node)), Resolution::Data),
        Held::NoData => Resolution::NoData(Some(node)),
    }
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
        if let Some((owner, node)) = zone.nodes.get_key_value(target) {
            for t in [RecordType::A, RecordType::AAAA] {
                if let Some(set) = node.get(t) {
                    out.extend(set.records(owner));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_zone_source, Source};
    use crate::zone::build_zone;

    /// A zone with a delegation and glue, a wildcard, an empty non-terminal,
    /// a lone wildcard, CNAME chains (in zone, out of zone, a loop, one too
    /// long) and a service.
    const ZONE: &str = r#"
origin = "l.test."
ns = ["ns1"]
[soa]
mname = "ns1"
rname = "h"
serial = 1
minimum = 60
[[records]]
name = "ns1"
type = "A"
data = "192.0.2.1"
[[records]]
name = "host"
type = "A"
data = "192.0.2.2"
[[records]]
name = "host"
type = "MX"
data = "10 host"
[[records]]
name = "child"
type = "NS"
data = "ns.child"
[[records]]
name = "ns.child"
type = "A"
data = "192.0.2.3"
[[records]]
name = "*.wild"
type = "TXT"
data = "w"
[[records]]
name = "*.lone"
type = "A"
data = "192.0.2.4"
[[records]]
name = "a.b.ent"
type = "A"
data = "192.0.2.5"
[[records]]
name = "c1"
type = "CNAME"
data = "c2"
[[records]]
name = "c2"
type = "CNAME"
data = "host"
[[records]]
name = "out"
type = "CNAME"
data = "elsewhere.example."
[[records]]
name = "loop1"
type = "CNAME"
data = "loop2"
[[records]]
name = "loop2"
type = "CNAME"
data = "loop1"
[[records]]
name = "to-svc"
type = "CNAME"
data = "svc"
[[regions]]
name = "r1"
addresses = ["198.51.100.1"]
[[services]]
name = "svc"
chain = ["weighted"]
"#;

    fn zones(extra: &str) -> Zones {
        let text = format!("{ZONE}{extra}");
        let mut labels = super::super::Labels::default();
        let zone =
            build_zone(&parse_zone_source(Source { path: "l.toml".into(), text }).unwrap(), &mut labels).unwrap();
        Zones { zones: vec![zone], labels: labels.finish() }
    }

    /// `lookup` with a service that answers 198.51.100.1 (TTL 30).
    fn ask(zones: &Zones, name: &str, t: RecordType) -> Option<Lookup> {
        let mut decide = |_: &Zone, _: &Service, _: RecordType| ServiceAnswer {
            addrs: vec!["198.51.100.1".parse().unwrap()],
            ttl: 30,
            servfail: false,
        };
        lookup(zones, &Name::from_ascii(name).unwrap(), t, &mut decide)
    }

    fn owners_and_types(records: &[Record]) -> Vec<String> {
        records.iter().map(|r| format!("{} {}", r.name.to_lowercase(), r.record_type())).collect()
    }

    fn is_negative(l: &Lookup, rcode: ResponseCode) -> bool {
        l.rcode == rcode
            && l.authoritative
            && l.answers.is_empty()
            && owners_and_types(&l.authority) == ["l.test. SOA"]
            && l.authority[0].ttl == 60
    }

    #[test]
    fn exact_match_with_additional_addresses() {
        let z = zones("");
        let l = ask(&z, "host.l.test.", RecordType::MX).unwrap();
        assert_eq!(owners_and_types(&l.answers), ["host.l.test. MX"]);
        assert_eq!(owners_and_types(&l.additional), ["host.l.test. A"]);
        assert!(l.authoritative && l.rcode == ResponseCode::NoError);
    }

    #[test]
    fn referral_at_and_below_a_cut_but_ds_at_the_cut_is_nodata() {
        let z = zones("");
        for name in ["child.l.test.", "x.child.l.test.", "ns.child.l.test.", "a.b.child.l.test."] {
            let l = ask(&z, name, RecordType::A).unwrap();
            assert!(!l.authoritative && l.answers.is_empty(), "{name}");
            assert_eq!(owners_and_types(&l.authority), ["child.l.test. NS"], "{name}");
            assert_eq!(owners_and_types(&l.additional), ["ns.child.l.test. A"], "{name}: glue");
        }
        assert!(is_negative(&ask(&z, "child.l.test.", RecordType::DS).unwrap(), ResponseCode::NoError));
        let below = ask(&z, "x.child.l.test.", RecordType::DS).unwrap();
        assert!(!below.authoritative, "DS below the cut is the child's");
    }

    #[test]
    fn cname_chains_in_zone_out_of_zone_looping_and_too_long() {
        let z = zones("");
        let l = ask(&z, "c1.l.test.", RecordType::A).unwrap();
        assert_eq!(owners_and_types(&l.answers), ["c1.l.test. CNAME", "c2.l.test. CNAME", "host.l.test. A"]);
        let l = ask(&z, "out.l.test.", RecordType::A).unwrap();
        assert_eq!(owners_and_types(&l.answers), ["out.l.test. CNAME"]);
        assert!(l.rcode == ResponseCode::NoError && l.authority.is_empty(), "the resolver follows on");
        let l = ask(&z, "loop1.l.test.", RecordType::A).unwrap();
        assert_eq!(owners_and_types(&l.answers), ["loop1.l.test. CNAME", "loop2.l.test. CNAME"]);
        // Asked for the CNAME itself: no chasing.
        let l = ask(&z, "c1.l.test.", RecordType::CNAME).unwrap();
        assert_eq!(owners_and_types(&l.answers), ["c1.l.test. CNAME"]);
        // Nine links: the chain stops after MAX_CNAME_CHAIN of them.
        let mut long = String::new();
        for i in 0..9 {
            long += &format!("[[records]]\nname = \"n{i}\"\ntype = \"CNAME\"\ndata = \"n{}\"\n", i + 1);
        }
        let z = zones(&long);
        let l = ask(&z, "n0.l.test.", RecordType::A).unwrap();
        assert_eq!(l.answers.len(), MAX_CNAME_CHAIN);
        assert!(l.answers.iter().all(|r| r.record_type() == RecordType::CNAME));
    }

    /// RFC 1034 §4.3.2 steps 3a then 3b: a CNAME into a child zone is the
    /// CNAME (authoritative) and the child's referral, as Knot answers
    /// (tests/integration/differential_random.rs found it missing).
    #[test]
    fn a_cname_into_a_child_zone_carries_the_referral() {
        let z = zones("[[records]]\nname = \"to-child\"\ntype = \"CNAME\"\ndata = \"www.child\"\n");
        let l = ask(&z, "to-child.l.test.", RecordType::A).unwrap();
        assert_eq!(owners_and_types(&l.answers), ["to-child.l.test. CNAME"]);
        assert!(l.authoritative && l.rcode == ResponseCode::NoError);
        assert_eq!(owners_and_types(&l.authority), ["child.l.test. NS"]);
        assert_eq!(owners_and_types(&l.additional), ["ns.child.l.test. A"]);
        assert!(l.denial.is_none(), "the answer is the CNAME, not a delegation");
    }

    #[test]
    fn wildcards_synthesise_with_the_asked_owner() {
        let z = zones("");
        let l = ask(&z, "x.wild.l.test.", RecordType::TXT).unwrap();
        assert_eq!(owners_and_types(&l.answers), ["x.wild.l.test. TXT"]);
        let l = ask(&z, "a.b.wild.l.test.", RecordType::TXT).unwrap();
        assert_eq!(owners_and_types(&l.answers), ["a.b.wild.l.test. TXT"]);
        assert!(is_negative(&ask(&z, "x.wild.l.test.", RecordType::A).unwrap(), ResponseCode::NoError));
        assert!(is_negative(&ask(&z, "wild.l.test.", RecordType::TXT).unwrap(), ResponseCode::NoError));
    }

    /// Issue 18 item 1: `*.lone` the only name under `lone`.
    #[test]
    fn a_lone_wildcard_matches_and_its_parent_is_an_empty_non_terminal() {
        let z = zones("");
        let l = ask(&z, "x.lone.l.test.", RecordType::A).unwrap();
        assert_eq!(owners_and_types(&l.answers), ["x.lone.l.test. A"]);
        let l = ask(&z, "a.b.lone.l.test.", RecordType::A).unwrap();
        assert_eq!(owners_and_types(&l.answers), ["a.b.lone.l.test. A"]);
        assert!(is_negative(&ask(&z, "lone.l.test.", RecordType::A).unwrap(), ResponseCode::NoError));
    }

    #[test]
    fn empty_non_terminals_are_nodata_and_missing_names_nxdomain() {
        let z = zones("");
        for name in ["b.ent.l.test.", "ent.l.test."] {
            assert!(is_negative(&ask(&z, name, RecordType::A).unwrap(), ResponseCode::NoError), "{name}");
        }
        for name in ["nx.l.test.", "x.ent.l.test.", "x.host.l.test.", "x.b.ent.l.test."] {
            assert!(is_negative(&ask(&z, name, RecordType::A).unwrap(), ResponseCode::NXDomain), "{name}");
        }
        assert!(is_negative(&ask(&z, "host.l.test.", RecordType::TXT).unwrap(), ResponseCode::NoError));
        assert!(ask(&z, "nx.example.", RecordType::A).is_none(), "outside every zone");
    }

    #[test]
    fn services_answer_a_and_aaaa_directly_and_through_a_cname() {
        let z = zones("");
        let l = ask(&z, "svc.l.test.", RecordType::A).unwrap();
        assert_eq!(owners_and_types(&l.answers), ["svc.l.test. A"]);
        assert_eq!(l.answers[0].ttl, 30);
        let l = ask(&z, "to-svc.l.test.", RecordType::A).unwrap();
        assert_eq!(owners_and_types(&l.answers), ["to-svc.l.test. CNAME", "svc.l.test. A"]);
        assert!(is_negative(&ask(&z, "svc.l.test.", RecordType::TXT).unwrap(), ResponseCode::NoError));
        // Mixed case finds the same names.
        let l = ask(&z, "SVC.L.Test.", RecordType::A).unwrap();
        assert_eq!(l.answers.len(), 1);
        let mut fail = |_: &Zone, _: &Service, _: RecordType| ServiceAnswer { addrs: vec![], ttl: 0, servfail: true };
        let l = lookup(&z, &Name::from_ascii("svc.l.test.").unwrap(), RecordType::A, &mut fail).unwrap();
        assert!(l.rcode == ResponseCode::ServFail && !l.authoritative);
    }
}
