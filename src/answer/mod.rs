//! Query bytes in, response bytes out, through one type both UDP and TCP
//! use, so the two transports can never disagree: a `Worker` (`worker.rs`)
//! holds what answering reuses from query to query (the decision cache, its
//! metric shard) and tries the fast path (`fast.rs`) before the general one
//! (`general`, below).

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::net::SocketAddr;

use crate::metrics::QueryObservation;
use crate::policy::{self, Client, Family};
use crate::wire::{self, ecs, EDNS_PAYLOAD};
use crate::zone;

mod decisions;
mod fast;
mod fit;
pub mod identity;
mod negative;
mod prebuilt;
mod sign;
mod signed_negative;
pub(crate) mod snapshot;
mod worker;

use decisions::Decisions;
pub use prebuilt::{FastEntry, FastIndex, Prebuilt};
pub use snapshot::Snapshot;
pub use worker::{Incoming, Outbox, Worker};

/// The transport a query came over: it decides truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The general path only (no prebuilt answers, no decision cache): the
/// reference the fast path is built from and compared against.
fn respond_general(state: &Snapshot, packet: &[u8], src: SocketAddr, transport: Transport) -> Option<Vec<u8>> {
    general(state, None, packet, src, transport, &mut QueryObservation::default())
}

/// Note a GSLB decision in `obs` as metric label ids: the first service and
/// its first region label the query; fail-open is counted if any decision
/// failed open.
fn note_decision(obs: &mut QueryObservation, zone: &zone::Zone, svc: &policy::Service, d: &policy::Decision) {
    if obs.service.is_none() {
        obs.service = Some(svc.id());
        obs.region = d.regions.first().map(|id| zone.regions[*id].label);
    }
    obs.fail_open |= d.fail_open;
}

/// The general path: parse with hickory, look up, decide (through
/// `decisions` when given), encode. Described in `obs`.
///
/// The question is answered in lowercase and its bytes as asked are put back
/// over the encoded question (RFC 4343): every name compressed to it then
/// keeps the asker's case, exactly as the fast path's prebuilt sections,
/// which point into the question, do. (hickory compresses case-sensitively:
/// left alone it would write `www` again after a question of `WWW`.)
fn general(
    state: &Snapshot,
    decisions: Option<&mut Decisions>,
    packet: &[u8],
    src: SocketAddr,
    transport: Transport,
    obs: &mut QueryObservation,
) -> Option<Vec<u8>> {
    let mut out = general_lowercase(state, decisions, packet, src, transport, obs)?;
    restore_question_case(packet, &mut out);
    Some(out)
}

/// Copy the query's question name over the answer's when the two are the
/// same name in another case (both written out from offset 12, no pointer).
fn restore_question_case(packet: &[u8], out: &mut [u8]) {
    if packet.get(4..6) != Some(&[0, 1]) || out.get(4..6) != Some(&[0, 1]) {
        return;
    }
    let Some(len) = wire::plain_name_len(packet, wire::HEADER_LEN) else { return };
    let (asked, answered) = (&packet[wire::HEADER_LEN..][..len], out.get_mut(wire::HEADER_LEN..wire::HEADER_LEN + len));
    if let Some(answered) = answered.filter(|a| a.eq_ignore_ascii_case(asked)) {
        answered.copy_from_slice(asked);
    }
}

fn general_lowercase<'a>(
    state: &'a Snapshot,
    mut decisions: Option<&mut Decisions>,
    packet: &[u8],
    src: SocketAddr,
    transport: Transport,
    obs: &mut QueryObservation,
) -> Option<Vec<u8>> {
    if packet.len() < wire::HEADER_LEN || wire::is_response(packet) {
        return None;
    }
    let mut decoder = BinDecoder::new(packet);
    let mut query = match Message::read(&mut decoder) {
        Ok(q) => q,
        Err(_) => {
            let out = wire::formerr_header(packet);
            obs.rcode = out.as_ref().map(|_| ResponseCode::FormErr);
            return out;
        }
    };
    for q in &mut query.queries {
        let lower = q.name().to_lowercase();
        q.set_name(lower);
    }
    obs.qtype = query.queries.first().map(|q| q.query_type());
    let mut resp = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
    resp.metadata.recursion_desired = query.metadata.recursion_desired;
    resp.metadata.checking_disabled = query.metadata.checking_disabled;
    resp.add_queries(query.queries.iter().cloned());
    // Bytes past the last counted record (an OPT left out of ARCOUNT, junk):
    // FORMERR with the question and no OPT, as Knot 3.2 answers.
    if !decoder.is_empty() {
        resp.metadata.response_code = ResponseCode::FormErr;
        return encode(resp, transport, 512, obs);
    }

    // The response carries OPT exactly when the query did (RFC 6891 §6.1.1).
    let mut limit = 512usize;
    if let Some(qedns) = &query.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        edns.set_version(0);
        edns.set_dnssec_ok(qedns.flags().dnssec_ok);
        limit = qedns.max_payload().clamp(512, EDNS_PAYLOAD) as usize;
        // NSID on every answer whose query asked (the fast path never takes those).
        if qedns.option(EdnsCode::NSID).is_some() {
            if let Some(nsid) = state.identity.nsid() {
                edns.options_mut().insert(nsid);
            }
        }
        resp.set_edns(edns);
        if qedns.version() > 0 {
            resp.metadata.response_code = ResponseCode::BADVERS;
            return encode(resp, transport, limit, obs);
        }
    }

    if query.metadata.op_code != OpCode::Query {
        // RD and CD mean nothing outside QUERY: cleared, as BIND does.
        resp.metadata.recursion_desired = false;
        resp.metadata.checking_disabled = false;
        resp.metadata.response_code = ResponseCode::NotImp;
        return encode(resp, transport, limit, obs);
    }
    if query.queries.len() != 1 {
        resp.metadata.response_code = ResponseCode::FormErr;
        return encode(resp, transport, limit, obs);
    }
    // A malformed COOKIE option (RFC 7873 §5.2.2); a well-formed one is
    // answered with a fresh server cookie (below, after ECS).
    if query.edns.is_some() && !wire::cookie::lengths_ok(packet) {
        resp.metadata.response_code = ResponseCode::FormErr;
        return encode(resp, transport, limit, obs);
    }
    let mut query_ecs = None;
    if let Some(qedns) = &query.edns {
        if let Some(EdnsOption::Subnet(cs)) = qedns.option(EdnsCode::Subnet) {
            match ecs::validate(cs) {
                Ok(_) if !ecs::raw_lengths_ok(packet) => {
                    resp.metadata.response_code = ResponseCode::FormErr;
                    return encode(resp, transport, limit, obs);
                }
                Ok(valid) => query_ecs = Some((*cs, valid)),
                Err(_) => {
                    resp.metadata.response_code = ResponseCode::FormErr;
                    return encode(resp, transport, limit, obs);
                }
            }
        }
    }

    let q = &query.queries[0];
    let qtype = q.query_type();
    if q.query_class() == DNSClass::CH {
        // RFC 4892: which node this is; anything else in class CH is REFUSED.
        match state.identity.chaos(q) {
            Some(txt) => {
                resp.metadata.authoritative = true;
                resp.add_answer(txt);
            }
            None => resp.metadata.response_code = ResponseCode::Refused,
        }
        add_server_cookie(&mut resp, packet, state, src);
        return encode(resp, transport, limit, obs);
    }
    let refused = if q.query_class() != DNSClass::IN && q.query_class() != DNSClass::ANY {
        Some(ResponseCode::Refused)
    } else if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
        // No zone transfers: zones come from files, not from a primary.
        Some(ResponseCode::Refused)
    } else if qtype == RecordType::OPT {
        Some(ResponseCode::FormErr)
    } else if qtype == crate::dnssec::NXNAME && state.zones.find(q.name()).is_some_and(|z| z.signer.is_some()) {
        // RFC 9824 §3.5: NXNAME is a meta-type; asked of a zone that uses it, FORMERR.
        Some(ResponseCode::FormErr)
    } else {
        None
    };
    if let Some(rcode) = refused {
        resp.metadata.response_code = rcode;
        add_server_cookie(&mut resp, packet, state, src);
        return encode(resp, transport, limit, obs);
    }

    let name = q.name();
    let client = Client::from_ecs_or_source(query_ecs.map(|(_, v)| (v.addr, v.source_prefix)), src.ip());
    let mut scope: u8 = 0;
    let mut gslb = false;
    let mut decide = |z: &'a zone::Zone, svc: &'a policy::Service, rtype: RecordType| {
        let mut take = |d: &policy::Decision| {
            scope = scope.max(d.scope);
            gslb = true;
            note_decision(obs, z, svc, d);
            zone::ServiceAnswer { addrs: d.addresses.clone(), ttl: d.ttl, servfail: d.servfail }
        };
        match decisions.as_deref_mut() {
            Some(cache) => take(&cache.decide(state, z, svc, &client, rtype)),
            None => take(&decide_service(state, z, svc, &client, rtype, None)),
        }
    };
    let found = zone::lookup(&state.zones, name, qtype, &mut decide);
    if let Some((mut echo, v)) = query_ecs {
        // Scope: how far around the client this answer holds; 0 for answers that
        // do not depend on the client, and when the client sent no information.
        echo.set_scope_prefix(ecs::answer_scope(v.addr, v.source_prefix, scope));
        if let Some(e) = resp.edns.as_mut() {
            e.options_mut().insert(EdnsOption::Subnet(echo));
        }
    }
    // After ECS: the fast path writes them in this order.
    add_server_cookie(&mut resp, packet, state, src);
    // DO=1 to a signed zone: the signed answer (sign.rs).
    let dnssec = query.edns.as_ref().filter(|e| e.flags().dnssec_ok).map(|e| e.flags().z & sign::CO_FLAG != 0);
    let signed = dnssec.and_then(|co| {
        let zone = state.zones.find(name)?;
        Some((co, zone, zone.signer.as_deref()?))
    });
    match found {
        None => resp.metadata.response_code = ResponseCode::Refused,
        Some(mut found) => {
            match signed {
                Some((co, zone, signer)) => {
                    sign::sign_lookup(zone, signer, &mut found, qtype, co);
                    if co {
                        if let Some(e) = resp.edns.as_mut() {
                            e.flags_mut().z |= sign::CO_FLAG;
                        }
                    }
                }
                // Unsigned: the SOA written as the fast path writes it.
                None => found.authority = negative::explicit_soa(found.authority, name),
            }
            resp.metadata.response_code = found.rcode;
            resp.metadata.authoritative = found.authoritative;
            resp.insert_answers(found.answers);
            resp.insert_authorities(found.authority);
            resp.insert_additionals(found.additional);
        }
    }
    if gslb && transport == Transport::Tcp {
        fit::trim_addresses(&mut resp);
    }
    encode(resp, transport, limit, obs)
}

/// The client cookie and a fresh server cookie, whatever the query's
/// server cookie was (`wire::server_cookie`; docs/transports.md says why
/// never BADCOOKIE), on every answer to a query with a well-formed cookie
/// once its question is read: CHAOS and refusals too (RFC 7873 §5.2.3).
fn add_server_cookie(resp: &mut Message, packet: &[u8], state: &Snapshot, src: SocketAddr) {
    if let (Some(client), Some(e)) = (wire::cookie::option(packet).and_then(wire::cookie::client), resp.edns.as_mut()) {
        let c = &state.cookies;
        e.options_mut().insert(EdnsOption::Unknown(10, c.answer(client, src.ip(), c.now()).to_vec()));
    }
}

/// One GSLB decision, the same for both paths and for `explain`: locate the
/// client when the chain needs it, then run the chain for the asked family.
pub(crate) fn decide_service(
    state: &Snapshot,
    zone: &zone::Zone,
    svc: &policy::Service,
    client: &Client,
    rtype: RecordType,
    trace: Option<&mut Vec<policy::trace::TraceStep>>,
) -> policy::Decision {
    let located;
    let client = if svc.needs_location() && state.geo.is_some() {
        located = Client { location: state.geo.as_ref().map(|g| g.lookup(client.addr)), ..client.clone() };
        &located
    } else {
        client
    };
    let family = if rtype == RecordType::AAAA { Family::V6 } else { Family::V4 };
    policy::decide_scoped(svc, &zone.regions, client, &state.health, Some(&state.scopes), family, trace)
}

/// Encode; over UDP, an answer larger than the client's limit first loses
/// the addresses it carries as extra (`fit::without_extra_additionals`), and
/// is otherwise replaced by a truncated one (TC=1, question and OPT only) so
/// the client retries over TCP;
/// over TCP, one that still cannot fit 65,535 bytes is SERVFAIL (see `fit`).
fn encode(resp: Message, transport: Transport, limit: usize, obs: &mut QueryObservation) -> Option<Vec<u8>> {
    let rcode = resp.metadata.response_code;
    let out = encode_sized(resp, transport, limit);
    if let Some(out) = &out {
        let sf = ResponseCode::ServFail.low();
        let replaced = out[3] & 0x0f == sf && rcode.low() != sf;
        obs.rcode = Some(if replaced { ResponseCode::ServFail } else { rcode });
    }
    out
}

fn encode_sized(mut resp: Message, transport: Transport, limit: usize) -> Option<Vec<u8>> {
    let bytes = match resp.to_vec() {
        Ok(b) if transport == Transport::Tcp && fit::overflowed(&b, &resp) => {
            tracing::warn!("an answer longer than 65,535 bytes cannot go over TCP; sending SERVFAIL");
            servfail(&mut resp)?
        }
        Ok(b) => b,
        Err(e) => {
            // Data we cannot put on the wire: SERVFAIL beats silence (the client would retry forever).
            tracing::warn!(error = %e, "cannot encode an answer; sending SERVFAIL");
            servfail(&mut resp)?
        }
    };
    if transport == Transport::Tcp || bytes.len() <= limit {
        return Some(bytes);
    }
    if let Some(fits) = fit::without_extra_additionals(&mut resp, limit) {
        return Some(fits);
    }
    resp.metadata.truncation = true;
    resp.answers.clear();
    resp.authorities.clear();
    resp.additionals.clear();
    resp.to_vec().ok()
}

/// `resp` as SERVFAIL: no records, not authoritative (question and OPT kept).
fn servfail(resp: &mut Message) -> Option<Vec<u8>> {
    resp.metadata.response_code = ResponseCode::ServFail;
    resp.metadata.authoritative = false;
    resp.answers.clear();
    resp.authorities.clear();
    resp.additionals.clear();
    resp.to_vec().ok()
}
