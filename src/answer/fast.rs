//! The fast path: plain queries for indexed names are answered by splicing
//! the asker's header and question onto prebuilt sections (or onto a GSLB
//! decision's records), without building a `Message`. Anything it is not
//! sure about returns `None` and goes the general way; a test checks the two
//! give the same bytes.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::net::{IpAddr, SocketAddr};

use super::prebuilt::FastEntry;
use super::Transport;
use crate::metrics::{Metrics, QueryObservation};
use crate::policy::Client;
use crate::state::State;
use crate::wire::query::{parse_simple, SimpleQuery};
use crate::wire::EDNS_PAYLOAD;

pub fn try_answer<'a>(
    state: &'a State,
    packet: &[u8],
    src: SocketAddr,
    transport: Transport,
    metrics: Option<&Metrics>,
    obs: &mut QueryObservation<&'a str>,
) -> Option<Vec<u8>> {
    let q = parse_simple(packet)?;
    let entry = state.fast.get(q.qname, q.qtype)?;
    let limit = match (&q.edns, transport) {
        (_, Transport::Tcp) => usize::MAX,
        (Some(e), _) => e.payload.clamp(512, EDNS_PAYLOAD) as usize,
        (None, _) => 512,
    };
    let mut out = Vec::with_capacity(512);
    let scope = match entry {
        FastEntry::Static(pb) => {
            header(&mut out, &q, pb.aa, pb.rcode, pb.counts);
            out.extend_from_slice(&pb.body);
            obs.rcode = Some(ResponseCode::from(0, pb.rcode));
            0
        }
        FastEntry::Service { zone, service } => {
            let z = state.zones.zones.get(*zone)?;
            let client = Client::from_ecs_or_source(q.edns.and_then(|e| e.ecs).map(|e| (e.addr, e.source)), src.ip());
            let d = super::decide_service(state, z, service, &client, RecordType::from(q.qtype), None);
            if d.servfail || d.addresses.is_empty() {
                return None; // SERVFAIL and NODATA: the general path says them
            }
            header(&mut out, &q, true, 0, [d.addresses.len() as u16, 0, 0]);
            for a in &d.addresses {
                out.extend_from_slice(&[0xc0, 0x0c]); // owner: the question's name
                match a {
                    IpAddr::V4(v4) => {
                        out.extend_from_slice(&[0, 1, 0, 1]);
                        out.extend_from_slice(&d.ttl.to_be_bytes());
                        out.extend_from_slice(&[0, 4]);
                        out.extend_from_slice(&v4.octets());
                    }
                    IpAddr::V6(v6) => {
                        out.extend_from_slice(&[0, 28, 0, 1]);
                        out.extend_from_slice(&d.ttl.to_be_bytes());
                        out.extend_from_slice(&[0, 16]);
                        out.extend_from_slice(&v6.octets());
                    }
                }
            }
            obs.rcode = Some(ResponseCode::NoError);
            if metrics.is_some() {
                obs.record_service(z, service, &d);
            }
            d.scope
        }
    };
    obs.qtype = Some(RecordType::from(q.qtype));
    if let Some(e) = q.edns {
        opt(&mut out, e.dnssec_ok, e.ecs.map(|c| (c, if c.source == 0 { 0 } else { scope })));
    }
    if out.len() > limit {
        obs.rcode = None;
        return None; // truncation is the general path's job
    }
    Some(out)
}

/// Header and question: ID, QR, AA, RD and CD as asked, RCODE, counts.
fn header(out: &mut Vec<u8>, q: &SimpleQuery, aa: bool, rcode: u8, counts: [u16; 3]) {
    out.extend_from_slice(&q.id);
    out.push(0x80 | if aa { 0x04 } else { 0 } | u8::from(q.rd));
    out.push(if q.cd { 0x10 } else { 0 } | (rcode & 0x0f));
    out.extend_from_slice(&[0, 1]);
    let ar = counts[2] + u16::from(q.edns.is_some());
    for c in [counts[0], counts[1], ar] {
        out.extend_from_slice(&c.to_be_bytes());
    }
    out.extend_from_slice(q.question);
}

/// Our OPT: payload 1232, version 0, DO copied, the ECS echo with its scope.
fn opt(out: &mut Vec<u8>, dnssec_ok: bool, ecs: Option<(crate::wire::query::SimpleEcs, u8)>) {
    out.extend_from_slice(&[0, 0, 41]);
    out.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
    out.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
    match ecs {
        None => out.extend_from_slice(&[0, 0]),
        Some((c, scope)) => {
            let n = (c.source as usize).div_ceil(8);
            let (family, bytes): (u16, Vec<u8>) = match c.addr {
                IpAddr::V4(a) => (1, a.octets()[..n].to_vec()),
                IpAddr::V6(a) => (2, a.octets()[..n].to_vec()),
            };
            let len = 4 + n as u16;
            out.extend_from_slice(&(len + 4).to_be_bytes());
            out.extend_from_slice(&[0, 8]);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&family.to_be_bytes());
            out.push(c.source);
            out.push(scope);
            out.extend_from_slice(&bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
    use hickory_proto::rr::Name;

    fn demo_state() -> State {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let cfg = ServerConfig {
            zones: root.join("zones"),
            geoip: Some(root.join("geoip/demo.mmdb")),
            ..ServerConfig::default()
        };
        State::load(&cfg).unwrap()
    }

    fn query(name: &str, t: RecordType, edns: Option<(bool, Option<&str>)>, rd: bool) -> Vec<u8> {
        let mut m = Message::new(0x5a5a, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = rd;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        if let Some((dnssec_ok, ecs)) = edns {
            let mut e = Edns::new();
            e.set_max_payload(1232);
            e.set_dnssec_ok(dnssec_ok);
            if let Some(net) = ecs {
                e.options_mut().insert(EdnsOption::Subnet(net.parse::<ClientSubnet>().unwrap()));
            }
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    /// The fast path answers these itself, with exactly the general path's bytes.
    #[test]
    fn fast_and_general_paths_give_identical_bytes() {
        let state = demo_state();
        assert!(state.fast.len() > 40, "index built: {}", state.fast.len());
        let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let names: &[(&str, RecordType)] = &[
            ("static.gslb.example.test.", RecordType::A),
            ("static.gslb.example.test.", RecordType::AAAA),
            ("static.gslb.example.test.", RecordType::TXT), // NODATA? no: TXT not held → not indexed
            ("alias.gslb.example.test.", RecordType::A),
            ("chain.gslb.example.test.", RecordType::AAAA),
            ("gslb.example.test.", RecordType::MX),
            ("gslb.example.test.", RecordType::NS),
            ("gslb.example.test.", RecordType::SOA),
            ("gslb.example.test.", RecordType::TXT),
            ("gslb.example.test.", RecordType::CAA),
            ("_sip._udp.gslb.example.test.", RecordType::SRV),
            ("sub.gslb.example.test.", RecordType::NS),
            ("ns1.sub.gslb.example.test.", RecordType::A),
            ("deep.ent.gslb.example.test.", RecordType::A),
            ("legacy.gslb.example.test.", RecordType::A),
            ("www.gslb.example.test.", RecordType::A),
            ("www.gslb.example.test.", RecordType::AAAA),
            ("nearest.gslb.example.test.", RecordType::A),
            ("failover.gslb.example.test.", RecordType::AAAA),
            ("multi.gslb.example.test.", RecordType::A),
            ("latency.gslb.example.test.", RecordType::A),
            ("sticky.gslb.example.test.", RecordType::A),
        ];
        let edns_cases: &[Option<(bool, Option<&str>)>] = &[
            None,
            Some((false, None)),
            Some((true, None)),
            Some((false, Some("10.3.0.0/24"))),
            Some((false, Some("2001:db8:5::/48"))),
            Some((false, Some("0.0.0.0/0"))),
            Some((false, Some("192.168.7.0/24"))),
        ];
        let mut fast_taken = 0;
        for (name, t) in names {
            for e in edns_cases {
                for rd in [false, true] {
                    let q = query(name, *t, *e, rd);
                    let general = super::super::respond_general(&state, &q, src, Transport::Udp);
                    let mut obs = QueryObservation::default();
                    let fast = try_answer(&state, &q, src, Transport::Udp, None, &mut obs);
                    if let Some(f) = &fast {
                        fast_taken += 1;
                        assert_eq!(Some(f), general.as_ref(), "{name} {t:?} {e:?} rd={rd}");
                    }
                    assert_eq!(super::super::respond(&state, &q, src, Transport::Udp), general);
                }
            }
        }
        assert!(fast_taken >= 250, "the fast path answered {fast_taken} of them");
    }

    #[test]
    fn unusual_queries_go_the_general_way() {
        let state = demo_state();
        let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let mut obs = QueryObservation::default();
        for q in [
            query("StAtIc.gslb.example.test.", RecordType::A, None, false),
            query("nx.gslb.example.test.", RecordType::A, None, false),
            query("x.wild.gslb.example.test.", RecordType::A, None, false),
            query("big.gslb.example.test.", RecordType::TXT, None, false),
        ] {
            assert!(try_answer(&state, &q, src, Transport::Udp, None, &mut obs).is_none());
        }
    }
}
