//! The fast path: plain queries for indexed names are answered by splicing
//! the asker's header and question onto prebuilt sections (or onto a GSLB
//! decision's records), without building a `Message`. Anything it is not
//! sure about returns `None` and goes the general way; a test checks the two
//! give the same bytes.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::net::SocketAddr;

use super::decisions::Decisions;
use super::prebuilt::FastEntry;
use super::Snapshot;
use super::{Transport, Worker};
use crate::metrics::QueryObservation;
use crate::policy::Client;
use crate::wire::query::{has_upper, parse_simple, SimpleQuery};
use crate::wire::server_cookie::{Memo, ANSWER_LEN};
use crate::wire::EDNS_PAYLOAD;

/// A datagram parsed ahead of answering it: the query in the common shape
/// and what the prebuilt index holds for its name and type.
pub(super) struct Ahead<'s, 'p> {
    query: SimpleQuery<'p>,
    entry: Option<&'s FastEntry>,
}

/// Parse `packet` and find its index entry, written into `out` where the
/// caller keeps it; for a GSLB name, start loading the cached decision's
/// front slot, if it has one (`Decisions::prefetch`). A batch does this for
/// every query before answering any of it. `None`: not the common shape, so
/// the general path parses it. (Written in place: returned by value and then
/// moved into a batch's queue slot, the copy's wide loads of just-written
/// narrow fields stalled on store forwarding, a fifth of the receive loop's
/// samples.)
pub(super) fn look_ahead_into<'s, 'p>(
    state: &'s Snapshot,
    decisions: &Decisions,
    packet: &'p [u8],
    src: &SocketAddr,
    out: &mut Option<Ahead<'s, 'p>>,
) {
    let Some(query) = parse_simple(packet) else {
        *out = None;
        return;
    };
    let entry = state.fast.get(query.qname, query.qtype);
    if let Some(FastEntry::Service { service, .. }) = entry {
        decisions.prefetch(state, service, || client_of(&query, src), rtype(query.qtype));
    }
    *out = Some(Ahead { query, entry });
}

fn client_of(q: &SimpleQuery<'_>, src: &SocketAddr) -> Client {
    Client::from_ecs_or_source(q.edns.and_then(|e| e.ecs).map(|e| (e.addr, e.source)), src.ip())
}

/// Write the answer into `out` if the fast path is sure of it; `None` means
/// "not here" (and leaves `out` to be cleared for the general path). A
/// cached decision's answer is counted here, in `worker`'s counts
/// (`obs.counted`); anything else is described in `obs`.
pub(super) fn try_answer<'a>(
    worker: &mut Worker,
    state: &'a Snapshot,
    ahead: &Ahead<'a, '_>,
    src: &SocketAddr,
    transport: Transport,
    obs: &mut QueryObservation,
    out: &mut Vec<u8>,
) -> Option<()> {
    let q = &ahead.query;
    // DO=1 to a signed zone: the signed answer, prebuilt or from the
    // decision's cached RRSIGs; CO (RFC 9824) is echoed by the general path.
    let dnssec_ok = q.edns.is_some_and(|e| e.dnssec_ok);
    let compact_ok = q.edns.is_some_and(|e| e.compact_ok);
    let limit = match (&q.edns, transport) {
        (_, Transport::Tcp) => super::fit::TCP_MAX, // longer: the general path trims or SERVFAILs
        (Some(e), _) => e.payload.clamp(512, EDNS_PAYLOAD) as usize,
        (None, _) => 512,
    };
    let Some(entry) = ahead.entry else {
        // Not indexed: NXDOMAIN or NODATA when sure, else the general path.
        // The negative index hashes suffixes as they are, so a name in mixed
        // case is looked up lowercased (the answer still echoes it as asked:
        // the SOA's owner points into the question).
        let mut lower = [0u8; 255];
        let qname = if has_upper(q.qname) {
            let lower = &mut lower[..q.qname.len()];
            lower.iter_mut().zip(q.qname).for_each(|(l, b)| *l = b.to_ascii_lowercase());
            &*lower
        } else {
            q.qname
        };
        let neg = state.fast.negative(qname, q.qtype)?;
        if dnssec_ok && neg.signed {
            // Signed (compact denial): the general path's answer, kept per
            // name and type; CO is echoed by the general path.
            if compact_ok {
                return None;
            }
            let now = worker.unix_now();
            let s = worker.negatives.get(state, neg.zone, qname, q.qtype, now)?;
            header(out, q, s.aa, s.rcode, s.counts);
            out.extend_from_slice(&s.body);
            obs.rcode = Some(ResponseCode::from(0, s.rcode));
        } else {
            header(out, q, true, neg.rcode, [0, 1, 0]);
            neg.write_soa(out);
            obs.rcode = Some(ResponseCode::from(0, neg.rcode));
        }
        obs.qtype = Some(rtype(q.qtype));
        if let Some(e) = q.edns {
            opt(out, e.dnssec_ok, e.ecs.map(|_| (q.ecs_data, 0)));
            cookie(out, state, q, src, &mut worker.cookies);
        }
        return finish(out, limit, obs);
    };
    let mut decided = None;
    let scope = match entry {
        FastEntry::Static(pb) if dnssec_ok && pb.signed => {
            let s = pb.dnssec.as_deref().filter(|s| !compact_ok && worker.unix_now() < s.fresh_until)?;
            header(out, q, s.aa, s.rcode, s.counts);
            out.extend_from_slice(&s.body);
            obs.rcode = Some(ResponseCode::from(0, s.rcode));
            0
        }
        FastEntry::Static(pb) => {
            header(out, q, pb.aa, pb.rcode, pb.counts);
            out.extend_from_slice(&pb.body);
            obs.rcode = Some(ResponseCode::from(0, pb.rcode));
            0
        }
        FastEntry::Service { zone, service, owner } => {
            let z = state.zones.zones.get(*zone)?;
            let signer = z.signer.as_deref().filter(|_| dnssec_ok);
            let now = if signer.is_some() { worker.unix_now() } else { 0 };
            if signer.is_some() && compact_ok {
                return None;
            }
            let d = worker.decisions.decide(state, z, service, &client_of(q, src), rtype(q.qtype));
            if d.records.is_empty() {
                return None; // SERVFAIL and NODATA: the general path says them
            }
            let an = d.addresses.len() as u16;
            match signer {
                Some(signer) => {
                    let sigs = d.rrsigs(signer, owner, now)?;
                    header(out, q, true, 0, [an + sigs.count, 0, 0]);
                    out.extend_from_slice(&d.records);
                    out.extend_from_slice(&sigs.bytes);
                }
                None => {
                    header(out, q, true, 0, [an, 0, 0]);
                    out.extend_from_slice(&d.records);
                }
            }
            obs.rcode = Some(ResponseCode::NoError);
            let scope = d.scope;
            decided = Some((z, service, d));
            scope
        }
    };
    obs.qtype = Some(rtype(q.qtype));
    if let Some(e) = q.edns {
        opt(out, e.dnssec_ok, e.ecs.map(|c| (q.ecs_data, crate::wire::ecs::answer_scope(c.addr, c.source, scope))));
        cookie(out, state, q, src, &mut worker.cookies);
    }
    finish(out, limit, obs)?;
    if let (Some(counts), Some((z, svc, d))) = (worker.counts.as_mut(), decided) {
        obs.counted = d.count(counts, &state.zones.labels, obs, |o| super::note_decision(o, z, svc, &d));
    }
    Some(())
}

fn finish(out: &[u8], limit: usize, obs: &mut QueryObservation) -> Option<()> {
    if out.len() > limit {
        obs.rcode = None;
        return None; // truncation is the general path's job
    }
    Some(())
}

/// Header and question: the query's own bytes (ID, QDCOUNT 1 and the
/// question as asked), then QR, AA, RD and CD as asked, RCODE and the
/// counts written over them: one copy, no header assembled field by field.
fn header(out: &mut Vec<u8>, q: &SimpleQuery, aa: bool, rcode: u8, counts: [u16; 3]) {
    let [an, ns, ar] = counts;
    let [an0, an1] = an.to_be_bytes();
    let [ns0, ns1] = ns.to_be_bytes();
    let [ar0, ar1] = (ar + u16::from(q.edns.is_some())).to_be_bytes();
    let at = out.len();
    out.extend_from_slice(q.head);
    let h = &mut out[at..at + 12];
    h[2] = 0x80 | if aa { 0x04 } else { 0 } | u8::from(q.rd);
    h[3] = if q.cd { 0x10 } else { 0 } | (rcode & 0x0f);
    h[6..12].copy_from_slice(&[an0, an1, ns0, ns1, ar0, ar1]);
}

/// Our OPT: payload 1232, version 0, DO copied, and the query's ECS option
/// data (`SimpleQuery::ecs_data`, validated: family, source prefix, scope 0,
/// exactly the address bytes the prefix covers) echoed with our scope.
fn opt(out: &mut Vec<u8>, dnssec_ok: bool, ecs: Option<(&[u8], u8)>) {
    let [p0, p1] = EDNS_PAYLOAD.to_be_bytes();
    let flags = if dnssec_ok { 0x80 } else { 0 };
    let Some((data, scope)) = ecs else {
        out.extend_from_slice(&[0, 0, 41, p0, p1, 0, 0, flags, 0, 0, 0]);
        return;
    };
    let len = data.len() as u8; // at most 20
    out.extend_from_slice(&[0, 0, 41, p0, p1, 0, 0, flags, 0, 0, len + 4, 0, 8, 0, len]);
    let at = out.len();
    out.extend_from_slice(data);
    out[at + 3] = scope;
}

/// After `opt`: the query's client cookie and a fresh server cookie, the
/// OPT record's length grown to hold them (the general path inserts the
/// option after ECS, so the bytes are the same).
#[inline]
fn cookie(out: &mut Vec<u8>, state: &Snapshot, q: &SimpleQuery, src: &SocketAddr, memo: &mut Memo) {
    let Ok(client) = <&[u8; 8]>::try_from(q.client_cookie) else { return };
    let c = &state.cookies;
    let data = c.answer_with(memo, client, src.ip(), c.now());
    // OPT's RDLENGTH: the two bytes before its options (written by `opt`).
    let rdlen_at = out.len() - q.edns.and_then(|e| e.ecs).map_or(0, |_| 4 + q.ecs_data.len()) - 2;
    let grown = u16::from_be_bytes([out[rdlen_at], out[rdlen_at + 1]]) + 4 + ANSWER_LEN as u16;
    out[rdlen_at..rdlen_at + 2].copy_from_slice(&grown.to_be_bytes());
    out.extend_from_slice(&[0, 10, 0, ANSWER_LEN as u8]);
    out.extend_from_slice(&data);
}

/// The record type of a query's QTYPE, the usual ones without hickory's
/// full table of names (a call and a jump table per answer).
#[inline]
fn rtype(qtype: u16) -> RecordType {
    match qtype {
        1 => RecordType::A,
        28 => RecordType::AAAA,
        _ => RecordType::from(qtype),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
    use hickory_proto::rr::Name;
    use std::sync::Arc;

    /// The fast path alone, as an `Option`.
    fn fast_only(state: &Snapshot, q: &[u8], src: SocketAddr, obs: &mut QueryObservation) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut worker = Worker::new(None);
        let mut ahead = None;
        look_ahead_into(state, &worker.decisions, q, &src, &mut ahead);
        try_answer(&mut worker, state, &ahead?, &src, Transport::Udp, obs, &mut out).map(|()| out)
    }

    /// The whole answer path (fast, else general), as the servers call it.
    fn respond(state: &Snapshot, q: &[u8], src: SocketAddr, transport: Transport) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        Worker::new(None).answer(state, q, src, transport, &mut out).then_some(out)
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

    const EDNS_CASES: &[Option<(bool, Option<&str>)>] = &[
        None,
        Some((false, None)),
        Some((true, None)),
        Some((false, Some("10.3.0.0/24"))),
        Some((false, Some("2001:db8:5::/48"))),
        Some((false, Some("0.0.0.0/0"))),
        Some((false, Some("192.168.7.0/24"))),
        // Address bytes past the first eight, and prefixes that end mid-byte.
        Some((false, Some("2001:db8:3:0:1200::/72"))),
        Some((true, Some("2001:db8:7::1/128"))),
        Some((false, Some("10.3.16.0/20"))),
        // IPv4-mapped: decided as 10.3.0.0/24, scope in IPv6 bits.
        Some((false, Some("::ffff:10.3.0.0/120"))),
    ];

    /// The fast path answers these itself, with exactly the general path's bytes.
    #[test]
    fn fast_and_general_paths_give_identical_bytes() {
        let state = crate::answer::snapshot::demo();
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
        let mut fast_taken = 0;
        for (name, t) in names {
            for e in EDNS_CASES {
                for (rd, cd) in [(false, false), (true, false), (true, true)] {
                    let mut q = query(name, *t, *e, rd);
                    q[3] |= if cd { 0x10 } else { 0 };
                    let general = super::super::respond_general(&state, &q, src, Transport::Udp);
                    let mut obs = QueryObservation::default();
                    let fast = fast_only(&state, &q, src, &mut obs);
                    if let Some(f) = &fast {
                        fast_taken += 1;
                        assert_eq!(Some(f), general.as_ref(), "{name} {t:?} {e:?} rd={rd} cd={cd}");
                    }
                    assert_eq!(respond(&state, &q, src, Transport::Udp), general);
                }
            }
        }
        assert!(fast_taken >= 250, "the fast path answered {fast_taken} of them");
    }

    /// A query carrying NSID never gets a prebuilt answer (the fast parser
    /// passes on option 3): the general path answers it, with the node id,
    /// and otherwise the same bytes as the fast answer to the query without
    /// the option. Without NSID, nothing of the node id shows.
    #[test]
    fn nsid_queries_go_the_general_way_and_carry_the_node_id() {
        use hickory_proto::rr::rdata::opt::{EdnsCode, NSIDPayload};
        let mut state = crate::answer::snapshot::demo();
        let id = crate::answer::identity::Identity { node_id: Some("node-7.example".into()), version: None };
        state.identity = Arc::new(id);
        let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let names = [
            ("static.gslb.example.test.", RecordType::A),
            ("www.gslb.example.test.", RecordType::A),
            ("failover.gslb.example.test.", RecordType::AAAA),
            ("nx.gslb.example.test.", RecordType::A),
            ("gslb.example.test.", RecordType::SOA),
        ];
        let (mut fast_without, mut checked) = (0, 0);
        for (name, t) in names {
            for e in EDNS_CASES.iter().flatten() {
                let plain = query(name, t, Some(*e), true);
                let mut asked = Message::from_vec(&plain).unwrap();
                let edns = asked.edns.as_mut().unwrap();
                edns.options_mut().insert(EdnsOption::NSID(NSIDPayload::new(Vec::new()).unwrap()));
                let asked = asked.to_vec().unwrap();
                let mut obs = QueryObservation::default();
                assert!(fast_only(&state, &asked, src, &mut obs).is_none(), "{name} {e:?}: prebuilt answer to NSID");
                let general = super::super::respond_general(&state, &asked, src, Transport::Udp).unwrap();
                assert_eq!(respond(&state, &asked, src, Transport::Udp).as_ref(), Some(&general));
                assert_eq!(respond(&state, &asked, src, Transport::Tcp).as_ref(), Some(&general));
                let got = Message::from_vec(&general).unwrap();
                let nsid = got.edns.as_ref().and_then(|e| e.option(EdnsCode::NSID).cloned());
                assert_eq!(nsid, Some(EdnsOption::NSID(NSIDPayload::new(b"node-7.example".to_vec()).unwrap())));

                // The same answer as without NSID, but for the option.
                let plain_answer = respond(&state, &plain, src, Transport::Udp).unwrap();
                fast_without += usize::from(fast_only(&state, &plain, src, &mut obs).is_some());
                let mut stripped = got.clone();
                stripped.edns.as_mut().unwrap().options_mut().remove(EdnsCode::NSID);
                assert_eq!(stripped.to_vec().unwrap(), plain_answer, "{name} {e:?}");
                assert!(!plain_answer.windows(14).any(|w| w == b"node-7.example"), "NSID unasked");
                checked += 1;
            }
        }
        assert!(checked > 40 && fast_without > 40, "{fast_without} of {checked} fast without NSID");
    }

    /// ECS as `(family, source, address bytes)`.
    type RawEcs<'a> = Option<(u16, u8, &'a [u8])>;

    /// A query as resolvers send it, built byte by byte: `name` exactly as
    /// given (any case), RD, CD, and an OPT with DO, a client cookie (alone,
    /// or with a server cookie) and ECS `(family, source, address bytes)`.
    struct Raw<'a> {
        name: &'a str,
        qtype: u16,
        rd: bool,
        cd: bool,
        edns: Option<(bool, usize, RawEcs<'a>)>,
    }

    impl Raw<'_> {
        fn bytes(&self) -> Vec<u8> {
            let mut p = vec![0x12, 0x34, u8::from(self.rd), if self.cd { 0x10 } else { 0 }, 0, 1, 0, 0, 0, 0, 0];
            p.push(u8::from(self.edns.is_some()));
            p.extend_from_slice(&wire(self.name));
            p.extend_from_slice(&self.qtype.to_be_bytes());
            p.extend_from_slice(&[0, 1]);
            if let Some((dnssec_ok, cookie_len, ecs)) = self.edns {
                let mut opts = Vec::new();
                if cookie_len > 0 {
                    opts.extend_from_slice(&[0, 10, 0, cookie_len as u8]);
                    opts.extend((0..cookie_len as u8).map(|i| i.wrapping_mul(31) ^ 0xa5));
                }
                if let Some((family, source, addr)) = ecs {
                    opts.extend_from_slice(&[0, 8, 0, 4 + addr.len() as u8]);
                    opts.extend_from_slice(&family.to_be_bytes());
                    opts.extend_from_slice(&[source, 0]);
                    opts.extend_from_slice(addr);
                }
                p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
                p.extend_from_slice(&(opts.len() as u16).to_be_bytes());
                p.extend_from_slice(&opts);
            }
            p
        }
    }

    /// `name` with the case of each letter from the bits of `pattern` (DNS
    /// 0x20 as resolvers randomise it).
    fn recase(name: &str, pattern: u64) -> String {
        let mut bits = pattern;
        name.chars()
            .map(|c| {
                let up = c.is_ascii_alphabetic() && bits & 1 == 1;
                if c.is_ascii_alphabetic() {
                    bits = bits.rotate_right(1);
                }
                if up {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }

    /// Issue 19: names in any case (DNS 0x20), with DO, cookies and ECS in
    /// every combination, take the fast path exactly when their lowercase
    /// form does, and both paths give the same bytes: the lowercase name's
    /// answer with the question as asked (names compressed to the question
    /// point at it, so they keep its case; the record bytes are the same).
    #[test]
    fn any_case_with_do_cookies_and_ecs_is_answered_fast_and_identically() {
        let state = crate::answer::snapshot::demo();
        let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let (a, aaaa, txt, mx) = (1u16, 28u16, 16u16, 15u16);
        // (name, type, whether the lowercase query must be answered fast)
        let names: &[(&str, u16, bool)] = &[
            ("static.gslb.example.test.", a, true),
            ("static.gslb.example.test.", aaaa, true),
            ("www.gslb.example.test.", a, true),
            ("www.gslb.example.test.", aaaa, true),
            ("nearest.gslb.example.test.", a, true),
            ("failover.gslb.example.test.", aaaa, true),
            ("gslb.example.test.", mx, true),
            ("gslb.example.test.", txt, true),
            ("nx-1.gslb.example.test.", a, true),       // NXDOMAIN
            ("a.b.nx.gslb.example.test.", aaaa, true),  // NXDOMAIN
            ("static.gslb.example.test.", txt, true),   // NODATA
            ("deep.ent.gslb.example.test.", mx, false), // an empty non-terminal's child
            ("x.wild.gslb.example.test.", a, false),    // wildcard
            ("x.wild.gslb.example.test.", mx, false),   // wildcard NODATA
            ("alias.gslb.example.test.", a, false),     // CNAME
            ("chain.gslb.example.test.", aaaa, false),  // CNAME chain
            ("x.sub.gslb.example.test.", a, false),     // referral
        ];
        let v4: &[u8] = &[81, 2, 69];
        let v6: &[u8] = &[0x20, 0x01, 0x02, 0x18, 0, 0, 0];
        let ecs_cases: [RawEcs; 4] = [None, Some((1, 24, v4)), Some((2, 56, v6)), Some((1, 0, &[]))];
        let patterns =
            [0u64, u64::MAX, 0xaaaa_aaaa_aaaa_aaaa, 0x5555_5555_5555_5555, 0x9e37_79b9_7f4a_7c15, 0x0123_4567];
        let (mut fast_mixed, mut asked) = (0, 0);
        for &(name, qtype, must_be_fast) in names {
            for (rd, cd) in [(false, false), (true, true)] {
                let mut edns_cases = vec![None];
                for dnssec_ok in [false, true] {
                    for cookie_len in [0, 8, 24] {
                        for ecs in ecs_cases {
                            edns_cases.push(Some((dnssec_ok, cookie_len, ecs)));
                        }
                    }
                }
                for edns in edns_cases {
                    let lower_q = Raw { name, qtype, rd, cd, edns }.bytes();
                    let mut obs = QueryObservation::default();
                    let lower_fast = fast_only(&state, &lower_q, src, &mut obs);
                    let lower = super::super::respond_general(&state, &lower_q, src, Transport::Udp).unwrap();
                    if must_be_fast {
                        assert!(lower_fast.is_some(), "{name} {qtype} {edns:?}: not answered fast");
                    }
                    for pattern in patterns {
                        let cased = recase(name, pattern);
                        let q = Raw { name: &cased, qtype, rd, cd, edns }.bytes();
                        let what = format!("{cased} {qtype} rd={rd} cd={cd} {edns:?}");
                        let general = super::super::respond_general(&state, &q, src, Transport::Udp).unwrap();
                        let qlen = wire(name).len() + 4;
                        let question = 12..12 + qlen;
                        assert_eq!(general[question.clone()], q[question.clone()], "{what}: question as asked");
                        let mut expect = lower.clone();
                        expect[question.clone()].copy_from_slice(&q[question.clone()]);
                        assert_eq!(general, expect, "{what}: the lowercase answer with the question as asked");
                        let mut obs = QueryObservation::default();
                        let fast = fast_only(&state, &q, src, &mut obs);
                        assert_eq!(fast.is_some(), lower_fast.is_some(), "{what}: case changed the path");
                        if let Some(f) = fast {
                            assert_eq!(f, general, "{what}");
                            fast_mixed += usize::from(pattern != 0);
                        }
                        assert_eq!(respond(&state, &q, src, Transport::Udp), Some(general), "{what}");
                        asked += 1;
                    }
                }
            }
        }
        assert!(fast_mixed > 2_000, "the fast path answered {fast_mixed} mixed-case queries of {asked}");
    }

    /// A query with a client cookie (alone or with any server cookie) is
    /// answered fast with that client cookie and our server cookie for the
    /// source address, the same bytes as the general path's; the cookie
    /// follows ECS in the OPT record.
    #[test]
    fn cookies_are_answered_fast_with_a_server_cookie() {
        let state = crate::answer::snapshot::demo();
        let src: SocketAddr = "192.0.2.9:5353".parse().unwrap();
        let c = &state.cookies;
        for cookie_len in [8, 16, 24, 40] {
            for ecs in [None, Some((1, 24, &[81u8, 2, 69][..]))] {
                let q = Raw {
                    name: "www.gslb.example.test.",
                    qtype: 1,
                    rd: false,
                    cd: false,
                    edns: Some((false, cookie_len, ecs)),
                }
                .bytes();
                let mut obs = QueryObservation::default();
                let fast = fast_only(&state, &q, src, &mut obs).expect("answered fast");
                assert_eq!(Some(&fast), super::super::respond_general(&state, &q, src, Transport::Udp).as_ref());
                let client: [u8; 8] = std::array::from_fn(|i| (i as u8).wrapping_mul(31) ^ 0xa5);
                let mut option = vec![0, 10, 0, 24];
                option.extend_from_slice(&c.answer(&client, src.ip(), c.now()));
                assert!(fast.ends_with(&option), "{cookie_len} {ecs:?}: cookie last");
                assert!(c.valid(&option[4..], src.ip(), c.now()));
                let m = Message::from_vec(&fast).unwrap();
                let opts = m.edns.as_ref().unwrap().options().as_ref().len();
                assert_eq!(opts, 1 + usize::from(ecs.is_some()), "the OPT record parses");
            }
        }
    }

    #[test]
    fn unusual_queries_go_the_general_way() {
        let state = crate::answer::snapshot::demo();
        let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let mut obs = QueryObservation::default();
        for q in [
            query("x.wild.gslb.example.test.", RecordType::A, None, false),
            query("nx.sub.gslb.example.test.", RecordType::A, None, false),
            query("nx.example.org.", RecordType::A, None, false),
            query("big.gslb.example.test.", RecordType::TXT, None, false),
        ] {
            assert!(fast_only(&state, &q, src, &mut obs).is_none());
        }
    }

    /// Wire form of a dotted name, case kept (no escapes).
    fn wire(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }

    /// `query` with any wire name (binary labels, over-long names) spliced in.
    fn query_wire(qname: &[u8], t: RecordType, edns: Option<(bool, Option<&str>)>, rd: bool) -> Vec<u8> {
        let mut q = query("x.", t, edns, rd);
        q.splice(12..15, qname.iter().copied());
        q
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Want {
        NxDomain,
        NoData,
        General,
    }

    /// Every EDNS variant and RD of one question: the fast path answers all
    /// of them with the general path's bytes (and the rcode wanted) or none.
    fn check_negative(state: &Snapshot, qname: &[u8], t: RecordType, want: Want) -> usize {
        let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let mut fast_taken = 0;
        for e in EDNS_CASES {
            for rd in [false, true] {
                let q = query_wire(qname, t, *e, rd);
                let what = format!("{:?} {t:?} {e:?} rd={rd}", String::from_utf8_lossy(qname));
                let general = super::super::respond_general(state, &q, src, Transport::Udp);
                let mut obs = QueryObservation::default();
                let fast = fast_only(state, &q, src, &mut obs);
                assert_eq!(fast.is_some(), want != Want::General, "{what}: fast path answered {fast:?}");
                if let Some(f) = &fast {
                    fast_taken += 1;
                    assert_eq!(Some(f), general.as_ref(), "{what}");
                    let (rcode, soa) = (f[3] & 0x0f, f[8..10] == [0, 1]);
                    assert_eq!((rcode, soa), (if want == Want::NxDomain { 3 } else { 0 }, true), "{what}");
                    assert_eq!(obs.rcode, Some(ResponseCode::from(0, rcode)));
                }
                assert_eq!(respond(state, &q, src, Transport::Udp), general, "{what}");
            }
        }
        fast_taken
    }

    const NX_TYPES: &[RecordType] =
        &[RecordType::A, RecordType::AAAA, RecordType::TXT, RecordType::MX, RecordType::DS, RecordType::SRV];

    /// NXDOMAIN and NODATA from the fast path are the general path's bytes;
    /// everything else about missing names (cuts, wildcards, CNAMEs, names
    /// outside the zones, mixed case, odd types) goes the general way.
    #[test]
    fn negative_answers_are_the_general_paths() {
        use Want::*;
        let state = crate::answer::snapshot::demo();
        let z = ".gslb.example.test.";
        let mut cases: Vec<(Vec<u8>, Vec<RecordType>, Want)> = Vec::new();
        let mut add = |names: &[&str], types: &[RecordType], want: Want| {
            for n in names {
                let n = if n.ends_with('.') { n.to_string() } else { format!("{n}{z}") };
                cases.push((wire(&n), types.to_vec(), want));
            }
        };
        let nx = ["nx", "nx-1", "nx-1000", "a.b.c.d.e.f.nx", "x.deep.ent", "x.ent", "a.b.ent", "y.exists.wild"];
        add(&nx, NX_TYPES, NxDomain);
        let nx = ["x.static", "x.www", "x.dangling", "nothing-here", "*.nx", "x.ns2", "x.host.deep.ent", "_tcp._udp"];
        add(&nx, NX_TYPES, NxDomain);
        // 63 labels above the apex: the most whose apex hickory still compresses to.
        let long63 = "a.".repeat(62) + "a";
        add(&[long63.as_str()], &[RecordType::A], NxDomain);
        // Names that share labels with MNAME and RNAME: the SOA's bytes are ours.
        let soa_like = ["hostmaster", "x.hostmaster", "x.ns1", "ns1.ns1"];
        add(&soa_like, NX_TYPES, NxDomain);
        let cut = ["sub", "x.sub", "a.b.sub", "ns1.sub", "x.ns1.sub", "ns2.sub"];
        add(&cut, &[RecordType::TXT, RecordType::MX], General);
        add(&cut[1..], &[RecordType::DS], General);
        add(&["sub"], &[RecordType::DS], NoData); // DS at the cut: the parent side's, none held
        add(&["x.wild", "a.b.wild", "b.x.wild"], &[RecordType::MX, RecordType::SRV], General);
        add(&["*.wild", "exists.wild"], &[RecordType::MX, RecordType::SRV], NoData);
        // Any case (DNS 0x20): the lowercase name's answer, the question as asked.
        let mixed = ["NX", "Nx-1", "nx.GSLB.example.test.", "Nx.Gslb.Example.Test.", "x.Deep.ent", "X.STATIC"];
        add(&mixed, &[RecordType::A, RecordType::TXT], NxDomain);
        add(&["gslb.EXAMPLE.test.", "Static", "ENT"], &[RecordType::SRV], NoData);
        add(&["X.Wild", "nx.SUB"], &[RecordType::MX], General);
        let outside = ["example.test.", "nx.example.org.", "test.", ".", "xgslb.example.test.", "example.test.x."];
        add(&outside, NX_TYPES, General);
        let apex_nodata = [RecordType::SRV, RecordType::PTR, RecordType::DS, RecordType::DNSKEY, RecordType::HINFO];
        add(&["gslb.example.test."], &apex_nodata, NoData);
        add(&["gslb.example.test."], &[RecordType::Unknown(65280), RecordType::Unknown(256)], NoData);
        let meta = [RecordType::ANY, RecordType::AXFR, RecordType::IXFR, RecordType::OPT, RecordType::Unknown(0)];
        add(&["gslb.example.test.", "nx", "static"], &meta, General);
        add(&["nx"], &[RecordType::Unknown(128), RecordType::TSIG, RecordType::Unknown(254)], General);
        add(&["ent", "deep.ent", "_udp"], &[RecordType::TXT, RecordType::MX, RecordType::SRV], NoData);
        add(&["static", "mail", "ns2", "www", "sip"], &[RecordType::TXT, RecordType::MX, RecordType::DS], NoData);
        add(&["alias", "chain", "dangling", "external"], &[RecordType::TXT, RecordType::MX], General);
        add(&["ns1"], &[RecordType::TXT], NoData); // MNAME's own name
        let long64 = "a.".repeat(63) + "a";
        add(&[long64.as_str()], &[RecordType::A], General);
        // 255 bytes on the wire is the longest name; hickory refuses 256 (FORMERR).
        for (extra, want) in [(0, NxDomain), (1, General)] {
            let mut n = Vec::new();
            for len in [63, 63, 63, 43 + extra] {
                n.push(len as u8);
                n.extend(std::iter::repeat_n(b'l', len));
            }
            n.extend_from_slice(&wire(z));
            assert_eq!(n.len(), 255 + extra);
            cases.push((n, vec![RecordType::A], want));
        }
        // Any bytes make a label; a dot inside one does not split it.
        let mut odd = b"\x02\x00\xff\x03a.b\x01*\x02\x01\x80".to_vec();
        odd.extend_from_slice(&wire(z));
        cases.push((odd, NX_TYPES.to_vec(), NxDomain));

        let (mut nx_fast, mut nx_asked) = (0, 0);
        for (name, types, want) in &cases {
            for t in types {
                let n = check_negative(&state, name, *t, *want);
                if *want == NxDomain {
                    (nx_fast, nx_asked) = (nx_fast + n, nx_asked + EDNS_CASES.len() * 2);
                }
            }
        }
        assert!(nx_fast == nx_asked && nx_fast > 1_000, "the fast path answered {nx_fast} of {nx_asked} NXDOMAIN");
    }

    fn zone(text: &str, labels: &mut crate::zone::Labels) -> crate::zone::Zone {
        let source = crate::config::Source { path: "t.toml".into(), text: text.to_string() };
        crate::zone::build_zone(&crate::config::parse_zone_source(source).unwrap(), labels).unwrap()
    }

    /// Zones whose SOA names lie outside them, in a parent, or at the apex,
    /// a child zone served next to its parent's delegation, an apex wildcard.
    #[test]
    fn negative_answers_in_other_zone_shapes() {
        use Want::*;
        let soa = |mname: &str, rname: &str| format!("[soa]\nmname = \"{mname}\"\nrname = \"{rname}\"\nserial = 7\n");
        let rec = |name: &str, t: &str, data: &str| {
            format!("[[records]]\nname = \"{name}\"\ntype = \"{t}\"\ndata = \"{data}\"\n")
        };
        let labels = &mut crate::zone::Labels::default();
        let zones = vec![
            zone(
                &format!(
                    "origin = \"p.test.\"\nns = [\"ns.example.net.\"]\n{}{}{}{}",
                    soa("ns.example.net.", "hostmaster.example.net."),
                    rec("c", "NS", "ns1.c"),
                    rec("ns1.c", "A", "192.0.2.1"),
                    rec("host", "A", "192.0.2.2"),
                ),
                labels,
            ),
            zone(
                &format!(
                    "origin = \"c.p.test.\"\nns = [\"ns1\"]\n{}{}",
                    soa("ns1", "dns.p.test."),
                    rec("ns1", "A", "192.0.2.1")
                ),
                labels,
            ),
            zone(
                &format!(
                    "origin = \"w.test.\"\nns = [\"ns.w.test.\"]\nttl = 60\n{}{}{}",
                    soa("@", "h"),
                    rec("*", "A", "192.0.2.3"),
                    rec("ns", "A", "192.0.2.4")
                ),
                labels,
            ),
            zone(
                &format!(
                    "origin = \"q.example.net.\"\nns = [\"ns.example.net.\"]\n{}{}",
                    soa("ns.example.net.", "hostmaster"),
                    rec("www", "A", "192.0.2.5")
                ),
                labels,
            ),
        ];
        let labels = std::mem::take(labels).finish();
        let state = Snapshot::default().with_zones(Arc::new(crate::zone::Zones { zones, labels }), None);
        let cases: &[(&str, Want)] = &[
            ("nx.p.test.", NxDomain),
            ("a.b.nx.p.test.", NxDomain),
            ("x.host.p.test.", NxDomain),
            ("host.p.test.", NoData),
            ("p.test.", NoData),
            ("x.c.p.test.", NxDomain), // the child zone, not the parent's referral
            ("c.p.test.", NoData),
            ("dns.c.p.test.", NxDomain),
            ("ns1.c.p.test.", NoData), // MNAME
            ("x.ns1.c.p.test.", NxDomain),
            ("nx.w.test.", General), // the apex wildcard
            ("w.test.", NoData),
            ("x.ns.w.test.", NxDomain),
            ("h.w.test.", General),
            ("nx.q.example.net.", NxDomain),
            ("ns.q.example.net.", NxDomain),
            ("www.q.example.net.", NoData),
            ("hostmaster.q.example.net.", NxDomain), // RNAME
            ("example.net.", General),
            ("test.", General),
        ];
        let mut fast = 0;
        for (name, want) in cases {
            for t in [RecordType::TXT, RecordType::SRV, RecordType::DS] {
                fast += check_negative(&state, &wire(name), t, *want);
            }
        }
        let answerable = cases.iter().filter(|(_, w)| *w != General).count();
        assert_eq!(fast, answerable * 3 * EDNS_CASES.len() * 2);
    }

    /// A signed zone's DO=1 answers, positive (signed sections prebuilt)
    /// and negative (per-name compact-denial NSECs, kept by the worker), its
    /// DO=0 answers and every answer of an unsigned zone beside it all come
    /// from the fast path, with the general path's bytes.
    #[test]
    fn signed_and_unsigned_zones_side_by_side_stay_on_the_fast_path() {
        let dir = std::env::temp_dir().join(format!("meridian-fast-signed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("s.key");
        let s_name = Name::from_ascii("s.test.").unwrap();
        let text = crate::dnssec::generate_key_file(&s_name, crate::dnssec::KeyAlgorithm::EcdsaP256).unwrap();
        std::fs::write(&key, text).unwrap();
        let labels = &mut crate::zone::Labels::default();
        let body = "ns = [\"ns.example.net.\"]\n[soa]\nmname = \"ns.example.net.\"\nrname = \"h\"\nserial = 1\n\
                    [[records]]\nname = \"host\"\ntype = \"A\"\ndata = \"192.0.2.1\"\n";
        let signed = format!("origin = \"s.test.\"\n{body}[dnssec]\nkeys = [\"{}\"]\n", key.display());
        let zones = vec![zone(&signed, labels), zone(&format!("origin = \"u.test.\"\n{body}"), labels)];
        let labels = std::mem::take(labels).finish();
        let state = Snapshot::default().with_zones(Arc::new(crate::zone::Zones { zones, labels }), None);
        let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        for (zone_name, is_signed) in [("s.test.", true), ("u.test.", false)] {
            for (name, t) in [("host", RecordType::A), ("host", RecordType::TXT), ("nx", RecordType::A)] {
                for dnssec_ok in [false, true] {
                    let q = query(&format!("{name}.{zone_name}"), t, Some((dnssec_ok, None)), false);
                    let fast = fast_only(&state, &q, src, &mut QueryObservation::default());
                    let general = super::super::respond_general(&state, &q, src, Transport::Udp);
                    assert!(fast.is_some(), "{name}.{zone_name} {t:?} DO={dnssec_ok}: not from the fast path");
                    assert_eq!(fast, general, "{name}.{zone_name} {t:?} DO={dnssec_ok}");
                    let signed = general.as_deref().is_some_and(|g| !super::signed_tests::rrsigs(g).is_empty());
                    assert_eq!(signed, is_signed && dnssec_ok, "{name}.{zone_name} {t:?} DO={dnssec_ok}");
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The signed fast path (issue 21 must-show 3): DO=1 answers of a signed
/// zone replayed from prebuilt signed sections or a decision's cached
/// RRSIGs, byte for byte the general path's.
#[cfg(test)]
mod signed_tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
    use hickory_proto::rr::Name;

    /// The demo zones with the demo zone signed by a fresh CSK, in a
    /// temporary directory (removed by the caller).
    fn signed_demo(tag: &str) -> (Snapshot, std::path::PathBuf) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::temp_dir().join(format!("meridian-fast-signed-{tag}-{}", std::process::id()));
        let zones = dir.join("zones");
        std::fs::create_dir_all(&zones).unwrap();
        for f in std::fs::read_dir(root.join("zones")).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, zones.join(f.file_name().unwrap())).unwrap();
        }
        let apex = Name::from_ascii("gslb.example.test.").unwrap();
        let key = crate::dnssec::generate_key_file(&apex, crate::dnssec::KeyAlgorithm::EcdsaP256).unwrap();
        std::fs::write(zones.join("k.key"), key).unwrap();
        let toml = zones.join("gslb.example.test.toml");
        let text = std::fs::read_to_string(&toml).unwrap() + "\n[dnssec]\nkeys = [\"k.key\"]\n";
        std::fs::write(&toml, text).unwrap();
        let cfg =
            crate::config::ServerConfig { zones, geoip: Some(root.join("geoip/demo.mmdb")), ..Default::default() };
        (Snapshot::load(&cfg).unwrap(), dir)
    }

    fn query(name: &str, t: RecordType, ecs: Option<&str>) -> Vec<u8> {
        let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        let mut e = Edns::new();
        e.set_max_payload(1232);
        e.set_dnssec_ok(true);
        if let Some(net) = ecs {
            e.options_mut().insert(EdnsOption::Subnet(net.parse::<ClientSubnet>().unwrap()));
        }
        m.set_edns(e);
        m.to_vec().unwrap()
    }

    fn fast_with(worker: &mut Worker, state: &Snapshot, q: &[u8]) -> Option<Vec<u8>> {
        let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let (mut out, mut ahead, mut obs) = (Vec::new(), None, QueryObservation::default());
        look_ahead_into(state, &worker.decisions, q, &src, &mut ahead);
        try_answer(worker, state, &ahead?, &src, Transport::Udp, &mut obs, &mut out).map(|()| out)
    }

    fn general(state: &Snapshot, q: &[u8]) -> Vec<u8> {
        super::super::respond_general(state, q, "127.0.0.1:5353".parse().unwrap(), Transport::Udp).unwrap()
    }

    pub(super) fn rrsigs(answer: &[u8]) -> Vec<hickory_proto::dnssec::rdata::RRSIG> {
        use hickory_proto::dnssec::rdata::DNSSECRData;
        use hickory_proto::rr::RData;
        let m = Message::from_vec(answer).unwrap();
        (m.answers.iter().chain(&m.authorities))
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::RRSIG(s)) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    const SUBNETS: &[Option<&str>] = &[
        None,
        Some("10.3.0.0/24"),
        Some("2001:db8:5::/48"),
        Some("192.168.7.0/24"),
        Some("0.0.0.0/0"),
        Some("2001:db8:3:0:1200::/72"),
        Some("10.3.16.0/20"),
        Some("::ffff:10.3.0.0/120"),
        Some("198.51.100.0/24"),
        Some("203.0.113.0/24"),
    ];

    /// Static names, CNAME chains, the apex's sets, a referral, and the GSLB
    /// services under many ECS subnets, in lower and mixed case, asked with
    /// DO=1 of the signed demo zone: the fast path answers each (a fresh
    /// worker and one whose decision cache is warm), with RRSIGs, and with
    /// exactly the general path's bytes. With CO set it leaves them to the
    /// general path (which echoes CO).
    #[test]
    fn signed_do_answers_are_fast_and_identical_to_the_general_path() {
        let (state, dir) = signed_demo("same");
        let names: &[(&str, RecordType)] = &[
            ("static.gslb.example.test.", RecordType::A),
            ("static.gslb.example.test.", RecordType::AAAA),
            ("alias.gslb.example.test.", RecordType::A),
            ("chain.gslb.example.test.", RecordType::AAAA),
            ("gslb.example.test.", RecordType::MX),
            ("gslb.example.test.", RecordType::NS),
            ("gslb.example.test.", RecordType::SOA),
            ("gslb.example.test.", RecordType::TXT),
            ("gslb.example.test.", RecordType::DNSKEY),
            ("_sip._udp.gslb.example.test.", RecordType::SRV),
            ("sub.gslb.example.test.", RecordType::NS),
            ("www.gslb.example.test.", RecordType::A),
            ("www.gslb.example.test.", RecordType::AAAA),
            ("nearest.gslb.example.test.", RecordType::A),
            ("failover.gslb.example.test.", RecordType::AAAA),
            ("multi.gslb.example.test.", RecordType::A),
            ("latency.gslb.example.test.", RecordType::A),
        ];
        let mut warm = Worker::new(None);
        let (mut fast, mut asked, mut www_sigs) = (0, 0, std::collections::HashSet::new());
        for (name, t) in names {
            for ecs in SUBNETS {
                for pattern in [0u64, 0x5a5a_5a5a, u64::MAX] {
                    let cased: String = name
                        .chars()
                        .enumerate()
                        .map(|(i, c)| if pattern >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c })
                        .collect();
                    let q = query(&cased, *t, *ecs);
                    let what = format!("{cased} {t:?} {ecs:?}");
                    let general = general(&state, &q);
                    for _ in 0..2 {
                        let got = fast_with(&mut warm, &state, &q);
                        assert_eq!(got.as_ref(), Some(&general), "{what}: warm worker");
                    }
                    let got = fast_with(&mut Worker::new(None), &state, &q);
                    assert_eq!(got.as_ref(), Some(&general), "{what}: cold worker");
                    let sigs = rrsigs(&general);
                    assert!(!sigs.is_empty(), "{what}: unsigned");
                    if name.starts_with("www") {
                        www_sigs.insert(sigs[0].sig().to_vec());
                    }
                    // CO: the general path's (it echoes the flag).
                    let mut co = q.clone();
                    co[opt_flags_at(&q)] |= 0x40;
                    assert!(fast_with(&mut warm, &state, &co).is_none(), "{what}: CO from the fast path");
                    fast += 1;
                    asked += 1;
                }
            }
        }
        assert_eq!(fast, asked);
        assert!(www_sigs.len() >= 2, "different decisions, different signatures: {}", www_sigs.len());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Where the OPT's high flags byte (DO, CO) is in a query with one
    /// question and an OPT as its only additional record.
    fn opt_flags_at(q: &[u8]) -> usize {
        let mut i = 12;
        while q[i] != 0 {
            i += 1 + q[i] as usize;
        }
        let at = i + 1 + 4 + 7;
        assert_eq!(q[at - 6..at - 4], [0, 41], "the OPT record");
        assert_eq!(q[at] & 0x80, 0x80, "DO");
        at
    }

    /// A prebuilt signed answer is replayed only until its signatures'
    /// renewal point (half their validity, `Signer::renewed_at`), the
    /// server's reload time (`FastIndex::refresh_at`); a decision's RRSIGs
    /// are signed anew from then on, and again equal the general path's.
    #[test]
    fn signed_answers_are_not_replayed_past_their_renewal() {
        let (state, dir) = signed_demo("expiry");
        let now = crate::dnssec::unix_now();
        let q = query("static.gslb.example.test.", RecordType::A, None);
        let wire = crate::zone::wire_name(&Name::from_ascii("static.gslb.example.test.").unwrap());
        let Some(FastEntry::Static(pb)) = state.fast.get(&wire, 1) else { panic!("static A not indexed") };
        let fresh_until = pb.dnssec.as_ref().expect("a signed body").fresh_until;
        let expiry = rrsigs(&general(&state, &q))[0].input().sig_expiration.get();
        assert_eq!(fresh_until, expiry - 7 * 86_400, "renewed at half the 14 days");
        assert!(fresh_until >= now + 7 * 86_400 - 5);
        let refresh = state.fast.refresh_at().expect("a refresh time");
        assert!(refresh <= fresh_until && refresh >= now + 7 * 86_400 - 5, "{refresh} vs {fresh_until}");

        let mut worker = Worker::new(None);
        worker.signing_time = Some(fresh_until - 1);
        assert_eq!(fast_with(&mut worker, &state, &q), Some(general(&state, &q)), "still fresh");
        worker.signing_time = Some(fresh_until);
        assert_eq!(fast_with(&mut worker, &state, &q), None, "replayed at its renewal point");
        // The whole path still answers, signed, through the general path.
        let mut out = Vec::new();
        let src = "127.0.0.1:5353".parse().unwrap();
        assert!(worker.answer(&state, &q, src, Transport::Udp, &mut out));
        assert_eq!(out, general(&state, &q));

        // A decision: fresh until its RRSIGs' renewal, then signed anew.
        let q = query("www.gslb.example.test.", RecordType::A, Some("10.3.0.0/24"));
        let mut worker = Worker::new(None);
        let first = fast_with(&mut worker, &state, &q).unwrap();
        assert_eq!(first, general(&state, &q));
        let sig = rrsigs(&first)[0].clone();
        let renew = sig.input().sig_expiration.get() - 7 * 86_400;
        worker.signing_time = Some(renew - 1);
        assert_eq!(fast_with(&mut worker, &state, &q).as_ref(), Some(&first), "cached until renewal");
        worker.signing_time = Some(renew);
        let renewed = fast_with(&mut worker, &state, &q).unwrap();
        let new_sig = rrsigs(&renewed)[0].clone();
        assert_eq!(new_sig.input().sig_expiration.get(), renew + 14 * 86_400, "signed anew at the renewal");
        assert_ne!(renewed, first);
        // The signer's cache holds the new signature: the general path agrees.
        assert_eq!(renewed, general(&state, &q));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// NXDOMAIN (NOERROR with an NXNAME NSEC), NODATA at names with data,
    /// at the apex, at empty non-terminals and beside the wildcard, and
    /// names under the wildcard or a cut (the general path's), in lower and
    /// mixed case, with and without ECS, RD and CD, asked with DO=1 of the
    /// signed demo zone: a cold worker, and one warm from the same and
    /// other questions, answer with exactly the general path's bytes, signed;
    /// the negative ones from the fast path. With CO: the general path's.
    #[test]
    fn signed_negative_answers_are_fast_and_identical_to_the_general_path() {
        use RecordType as T;
        let (state, dir) = signed_demo("negative");
        let z = ".gslb.example.test.";
        // (names, types, fast: the fast path must answer)
        let cases: &[(&[&str], &[RecordType], bool)] = &[
            (
                &["nx", "nx-1", "a.b.c.nx", "x.static", "x.deep.ent", "y.exists.wild", "hostmaster", "x.ns1"],
                &[T::A, T::AAAA, T::TXT, T::MX, T::DS],
                true,
            ),
            (&["nx", "x.static"], &[T::NSEC, T::RRSIG, T::SRV], true),
            (&["static", "mail", "ns1", "www"], &[T::TXT, T::MX, T::DS, T::SRV, T::NSEC, T::RRSIG], true),
            (&["@"], &[T::SRV, T::PTR, T::DS, T::HINFO, T::Unknown(65280)], true),
            (&["ent", "deep.ent", "_udp"], &[T::A, T::TXT, T::NSEC], true), // empty non-terminals
            (&["exists.wild", "*.wild"], &[T::MX, T::SRV], true),
            (&["x.wild", "a.b.wild"], &[T::A, T::MX, T::NSEC], false), // under the wildcard
            (&["x.sub", "sub"], &[T::A, T::DS], false),                // the cut
        ];
        let subnets = [None, Some("10.3.0.0/24"), Some("2001:db8:7::1/128")];
        let mut warm = Worker::new(None);
        let (mut fast, mut asked) = (0, 0);
        for round in 0..2 {
            for (names, types, must_be_fast) in cases {
                for name in *names {
                    let name = if *name == "@" { z[1..].to_string() } else { format!("{name}{z}") };
                    for t in *types {
                        for (i, ecs) in subnets.iter().enumerate() {
                            for pattern in [0u64, 0x5a5a_5a5a_5a5a_5a5a, u64::MAX] {
                                let cased: String = name
                                    .chars()
                                    .enumerate()
                                    .map(|(k, c)| if pattern >> (k % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c })
                                    .collect();
                                let mut q = query(&cased, *t, *ecs);
                                q[2] |= u8::from(i == 1); // RD
                                q[3] |= if i == 2 { 0x10 } else { 0 }; // CD
                                let what = format!("{cased} {t:?} {ecs:?} round {round}");
                                let general = general(&state, &q);
                                assert!(!rrsigs(&general).is_empty(), "{what}: unsigned");
                                let got = fast_with(&mut warm, &state, &q);
                                if *must_be_fast || got.is_some() {
                                    assert_eq!(got.as_ref(), Some(&general), "{what}: warm worker");
                                    fast += 1;
                                }
                                if round == 0 && pattern == 0 && i == 0 {
                                    let cold = fast_with(&mut Worker::new(None), &state, &q);
                                    if *must_be_fast || cold.is_some() {
                                        assert_eq!(cold.as_ref(), Some(&general), "{what}: cold worker");
                                    }
                                    // CO: the general path's (it echoes the flag and says NXDOMAIN).
                                    let mut co = q.clone();
                                    co[opt_flags_at(&q)] |= 0x40;
                                    assert!(
                                        fast_with(&mut warm, &state, &co).is_none(),
                                        "{what}: CO from the fast path"
                                    );
                                }
                                if *must_be_fast {
                                    asked += 1;
                                }
                                // The whole path agrees.
                                let mut out = Vec::new();
                                assert!(warm.answer(
                                    &state,
                                    &q,
                                    "127.0.0.1:5353".parse().unwrap(),
                                    Transport::Udp,
                                    &mut out
                                ));
                                assert_eq!(out, general, "{what}: Worker::answer");
                            }
                        }
                    }
                }
            }
        }
        assert!(fast >= asked && asked > 1_000, "{fast} fast of {asked}");
        // An NXDOMAIN says NOERROR with an NXNAME NSEC, signed.
        let nx = general(&state, &query("nx.gslb.example.test.", T::A, None));
        let m = Message::from_vec(&nx).unwrap();
        assert_eq!(m.metadata.response_code, hickory_proto::op::ResponseCode::NoError);
        let nsec = m.authorities.iter().find(|r| r.record_type() == T::NSEC).expect("an NSEC");
        let hickory_proto::rr::RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::NSEC(nsec)) = &nsec.data else {
            panic!("not an NSEC: {nsec:?}")
        };
        assert!(nsec.type_bit_maps().any(|t| u16::from(t) == 128), "NXNAME: {nsec:?}");
        assert!(nx.len() < 512, "{} bytes", nx.len());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A kept signed negative answer is replayed only until the first of its
    /// signatures is renewed, and only while the signer's cache has not
    /// started over (the general path would sign anew): past either, it is
    /// built again, and again equals the general path's.
    #[test]
    fn signed_negative_answers_are_not_replayed_past_their_renewal() {
        let (state, dir) = signed_demo("negative-expiry");
        let q = query("nx-renewal.gslb.example.test.", RecordType::A, Some("10.3.0.0/24"));
        let mut worker = Worker::new(None);
        let first = fast_with(&mut worker, &state, &q).expect("from the fast path");
        assert_eq!(first, general(&state, &q));
        let sigs = rrsigs(&first);
        assert_eq!(sigs.len(), 2, "the SOA's and the NSEC's");
        let expiry = sigs.iter().map(|s| s.input().sig_expiration.get()).min().unwrap();
        let renew = expiry - 7 * 86_400;
        worker.signing_time = Some(renew - 1);
        assert_eq!(fast_with(&mut worker, &state, &q).as_ref(), Some(&first), "kept until renewal");
        worker.signing_time = Some(renew);
        assert_eq!(fast_with(&mut worker, &state, &q), None, "replayed at its renewal point");
        let mut out = Vec::new();
        assert!(worker.answer(&state, &q, "127.0.0.1:5353".parse().unwrap(), Transport::Udp, &mut out));
        assert_eq!(out, general(&state, &q), "the general path answers");

        // The signer's cache starts over: new signatures (ECDSA is randomised),
        // on both paths.
        worker.signing_time = None;
        assert_eq!(fast_with(&mut worker, &state, &q).as_ref(), Some(&first), "kept again");
        let z = state.zones.zones.iter().find(|z| z.signer.is_some()).unwrap();
        z.signer.as_ref().unwrap().clear_cache();
        let again = fast_with(&mut worker, &state, &q).expect("from the fast path");
        assert_ne!(again, first, "replayed past the signer's restart");
        assert_eq!(again, general(&state, &q));
        assert_eq!(fast_with(&mut worker, &state, &q).as_ref(), Some(&again));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Random names (what a flood sends) never grow a worker's kept signed
    /// negative answers past their bound: the cache starts over, and its
    /// answers stay the general path's; a new snapshot empties it.
    #[test]
    fn random_signed_negative_names_stay_within_the_bound() {
        let (state, dir) = signed_demo("negative-flood");
        let max = 16 << 10;
        let mut worker = Worker::new(None);
        worker.negatives = super::super::signed_negative::SignedNegatives::with_max_bytes(max);
        let (mut most, mut restarts, mut last) = (0, 0, 0);
        for i in 0..200u32 {
            let name = format!("r{:08x}.gslb.example.test.", i.wrapping_mul(0x9e37_79b9));
            let q = query(&name, RecordType::A, None);
            assert_eq!(fast_with(&mut worker, &state, &q), Some(general(&state, &q)), "{name}");
            let (n, bytes) = worker.negatives.size();
            assert!(bytes <= max, "{bytes} bytes kept");
            most = most.max(n);
            restarts += usize::from(n < last);
            last = n;
        }
        assert!(most > 20 && restarts >= 3, "{most} entries at most, {restarts} restarts");
        // A new snapshot (a reload): nothing of the old one is replayed.
        let (next, dir2) = signed_demo("negative-flood-next");
        let q = query("r00000000.gslb.example.test.", RecordType::A, None);
        assert_eq!(fast_with(&mut worker, &next, &q), Some(general(&next, &q)));
        assert_eq!(worker.negatives.size().0, 1);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&dir2);
    }
}
