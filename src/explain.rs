//! `meridian explain` and `[[expect]]`: the same lookup and chain the query
//! path runs, with every step recorded.

use hickory_proto::rr::{Name, RData, RecordType};
use ipnet::IpNet;
use std::fmt::{self, Write};
use std::net::IpAddr;

use crate::answer::Snapshot;
use crate::policy::{self, trace::TraceStep, Client, Decision};
use crate::zone::{self, Lookup};

/// One service decision made while answering.
#[derive(Debug, Clone)]
pub struct ServiceTrace {
    pub service: String,
    pub ttl: u32,
    pub steps: Vec<TraceStep>,
    pub decision: Decision,
    pub region_names: Vec<String>,
}

/// Everything `explain` prints.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub qname: Name,
    pub qtype: RecordType,
    pub client: Client,
    pub resolver: IpAddr,
    pub services: Vec<ServiceTrace>,
    pub lookup: Option<Lookup>,
}

impl Explanation {
    /// ECS scope the reply would carry (when the query had ECS).
    pub fn scope(&self) -> u8 {
        if self.client.from_ecs {
            self.services.iter().map(|s| s.decision.scope).max().unwrap_or(0)
        } else {
            0
        }
    }

    /// The answer's addresses, sorted.
    pub fn addresses(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self
            .lookup
            .iter()
            .flat_map(|l| &l.answers)
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect();
        v.sort();
        v
    }

    /// The region that answered first (for a service name).
    pub fn first_region(&self) -> Option<&str> {
        self.services.last()?.region_names.first().map(String::as_str)
    }
}

/// Explain `qname`/`qtype` for a client subnet (as ECS would carry it) or,
/// without one, for the resolver's own address.
pub fn explain(
    state: &Snapshot,
    qname: &Name,
    qtype: RecordType,
    client: Option<IpNet>,
    resolver: IpAddr,
) -> Explanation {
    let base = Client::from_ecs_or_source(client.map(|n| (n.trunc().addr(), n.prefix_len())), resolver);
    // Shown whether or not a chain needs it.
    let located = Client { location: state.geo.as_ref().map(|g| g.lookup(base.addr)), ..base.clone() };
    let mut services = Vec::new();
    let mut decide = |z: &zone::Zone, svc: &policy::Service, rtype: RecordType| {
        let mut steps = Vec::new();
        let d = crate::answer::decide_service(state, z, svc, &base, rtype, Some(&mut steps));
        let region_names = d.regions.iter().map(|id| z.regions[*id].name.clone()).collect();
        let ans = zone::ServiceAnswer { addrs: d.addresses.clone(), ttl: d.ttl, servfail: d.servfail };
        services.push(ServiceTrace { service: svc.name.clone(), ttl: d.ttl, steps, decision: d, region_names });
        ans
    };
    let lookup = zone::lookup(&state.zones, qname, qtype, &mut decide);
    Explanation { qname: qname.clone(), qtype, client: located, resolver, services, lookup }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut o = String::new();
        let c = &self.client;
        let _ = writeln!(o, "query:    {} {}", self.qname, self.qtype);
        if c.from_ecs {
            let net = IpNet::new(c.addr, c.prefix).map(|n| n.trunc().to_string()).unwrap_or_default();
            let _ = writeln!(o, "client:   {net} (EDNS Client Subnet) via resolver {}", self.resolver);
        } else {
            let _ = writeln!(o, "client:   resolver {} (no ECS)", self.resolver);
        }
        match &c.location {
            Some(l) => {
                let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                let coords = l.coords.map_or("-".to_string(), |(a, b)| format!("{a:.4},{b:.4}"));
                let _ = writeln!(
                    o,
                    "location: network {} country {} continent {} subdivision {} coords {}{}",
                    l.network,
                    opt(&l.country),
                    opt(&l.continent),
                    opt(&l.subdivision),
                    coords,
                    l.asn.map_or(String::new(), |a| format!(" asn {a}"))
                );
            }
            None => {
                let _ = writeln!(o, "location: no GeoIP database");
            }
        }
        for s in &self.services {
            let _ = writeln!(o, "service:  {} (ttl {})", s.service, s.ttl);
            for t in &s.steps {
                let _ = writeln!(o, "  {:<9} in: {}", t.step, t.input);
                let _ = writeln!(o, "  {:<9} out: {}", "", t.output);
                let _ = writeln!(o, "  {:<9} why: {}", "", t.note);
            }
            let d = &s.decision;
            let _ = writeln!(
                o,
                "  chosen:   [{}]{}",
                s.region_names.join(", "),
                if d.fail_open { " (fail open: every region down)" } else { "" }
            );
        }
        match &self.lookup {
            None => {
                let _ = writeln!(o, "answer:   REFUSED (no zone for this name)");
            }
            Some(l) => {
                let _ = writeln!(o, "answer:   {}{}", rcode_name(l.rcode), if l.authoritative { " aa" } else { "" });
                for r in &l.answers {
                    let _ = writeln!(o, "  {r}");
                }
                for r in &l.authority {
                    let _ = writeln!(o, "  authority: {r}");
                }
            }
        }
        let _ = writeln!(o, "ecs scope: {}", self.scope());
        f.write_str(&o)
    }
}

/// Evaluate every `[[expect]]` case; the failures, each naming its case.
pub fn check_expectations(state: &Snapshot) -> Vec<String> {
    let mut failures = Vec::new();
    let resolver: IpAddr = IpAddr::from([127, 0, 0, 1]);
    for z in &state.zones.zones {
        for e in &z.expects {
            let ex = explain(state, &e.name, e.rtype, Some(e.client), resolver);
            let case = format!("{}: expect {} {} from {}", e.at, e.name, e.rtype, e.client);
            if let Some(want) = &e.region {
                let got = ex.first_region().unwrap_or("(none)");
                if got != want {
                    failures.push(format!("{case}: wanted region {want}, got {got}"));
                }
            }
            if let Some(want) = &e.answer {
                let mut want = want.clone();
                want.sort();
                let got = ex.addresses();
                if got != want {
                    failures.push(format!("{case}: wanted answer {want:?}, got {got:?}"));
                }
            }
        }
    }
    failures
}

/// The rcode as dig prints it.
fn rcode_name(r: hickory_proto::op::ResponseCode) -> String {
    use hickory_proto::op::ResponseCode::*;
    match r {
        NoError => "NOERROR".into(),
        FormErr => "FORMERR".into(),
        ServFail => "SERVFAIL".into(),
        NXDomain => "NXDOMAIN".into(),
        NotImp => "NOTIMP".into(),
        Refused => "REFUSED".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}
