//! Query bytes in, response bytes out: the single answer function both UDP
//! and TCP call, so the two transports can never disagree.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::net::SocketAddr;
use std::time::Instant;

use crate::metrics::{Metrics, QueryObservation};
use crate::policy::{self, Client, Family};
use crate::wire::{self, ecs, EDNS_PAYLOAD};
use crate::zone;

mod decisions;
mod fast;
mod fit;
mod negative;
mod prebuilt;
pub(crate) mod snapshot;

pub use fast::{look_ahead, look_ahead_into, Ahead};
pub use prebuilt::{FastEntry, FastIndex, Prebuilt};
pub use snapshot::Snapshot;

/// The transport a query came over: it decides truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Answer one query. `None` means send nothing (responses, runts).
pub fn respond(state: &Snapshot, packet: &[u8], src: SocketAddr, transport: Transport) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let ahead = look_ahead(state, packet, src);
    respond_observed_into(
        state,
        packet,
        ahead.as_ref(),
        &src,
        transport,
        None,
        &mut QueryObservation::default(),
        &mut out,
    )
    .then_some(out)
}

/// The general path only (no prebuilt answers): the reference the fast path
/// is built from and compared against.
pub fn respond_general(state: &Snapshot, packet: &[u8], src: SocketAddr, transport: Transport) -> Option<Vec<u8>> {
    answer(state, packet, src, transport, None, &mut QueryObservation::default())
}

/// `respond`, counted in `metrics` (rcode, qtype, service, region, fail-open, time taken).
pub fn respond_metered(
    state: &Snapshot,
    packet: &[u8],
    src: SocketAddr,
    transport: Transport,
    metrics: Option<&Metrics>,
) -> Option<Vec<u8>> {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut obs = QueryObservation::default();
    let ahead = look_ahead(state, packet, src);
    let send = respond_observed_into(state, packet, ahead.as_ref(), &src, transport, metrics, &mut obs, &mut out);
    if let Some(m) = metrics {
        m.count_batch(std::slice::from_ref(&obs), 1, started.elapsed());
    }
    send.then_some(out)
}

/// `respond_metered` for loops that answer datagrams back to back: `ahead` is
/// `look_ahead(state, packet, src)`, done earlier (for a whole batch); the
/// answer is written into `out` (cleared first; reused, so no allocation per
/// answer) and described in `obs` for the caller to count with its batch
/// (`Metrics::count_batch`), except what a cached decision counted itself.
/// Returns whether to send `out`. Fast path, else general path.
#[allow(clippy::too_many_arguments)]
pub fn respond_observed_into<'a>(
    state: &'a Snapshot,
    packet: &[u8],
    ahead: Option<&Ahead<'a, '_>>,
    src: &SocketAddr,
    transport: Transport,
    metrics: Option<&Metrics>,
    obs: &mut QueryObservation,
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    if let Some(ahead) = ahead {
        if fast::try_answer(state, ahead, src, transport, metrics, obs, out).is_some() {
            return true;
        }
    }
    out.clear();
    match answer(state, packet, *src, transport, metrics, obs) {
        Some(general) => {
            out.extend_from_slice(&general);
            true
        }
        None => false,
    }
}

fn answer<'a>(
    state: &'a Snapshot,
    packet: &[u8],
    src: SocketAddr,
    transport: Transport,
    metrics: Option<&Metrics>,
    obs: &mut QueryObservation,
) -> Option<Vec<u8>> {
    if packet.len() < wire::HEADER_LEN || wire::is_response(packet) {
        return None;
    }
    let mut decoder = BinDecoder::new(packet);
    let query = match Message::read(&mut decoder) {
        Ok(q) => q,
        Err(_) => {
            let out = wire::formerr_header(packet);
            obs.rcode = out.as_ref().map(|_| ResponseCode::FormErr);
            return out;
        }
    };
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
        resp.set_edns(edns);
        if qedns.version() > 0 {
            resp.metadata.response_code = ResponseCode::BADVERS;
            return encode(resp, transport, limit, obs);
        }
    }

    if query.metadata.op_code != OpCode::Query {
        resp.metadata.response_code = ResponseCode::NotImp;
        return encode(resp, transport, limit, obs);
    }
    if query.queries.len() != 1 {
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
    if q.query_class() != DNSClass::IN && q.query_class() != DNSClass::ANY {
        resp.metadata.response_code = ResponseCode::Refused;
        return encode(resp, transport, limit, obs);
    }
    if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
        // No zone transfers: zones come from files, not from a primary.
        resp.metadata.response_code = ResponseCode::Refused;
        return encode(resp, transport, limit, obs);
    }
    if qtype == RecordType::OPT {
        resp.metadata.response_code = ResponseCode::FormErr;
        return encode(resp, transport, limit, obs);
    }

    let name = q.name();
    let client = Client::from_ecs_or_source(query_ecs.map(|(_, v)| (v.addr, v.source_prefix)), src.ip());
    let mut scope: u8 = 0;
    let mut gslb = false;
    let mut decide = |z: &'a zone::Zone, svc: &'a policy::Service, rtype: RecordType| {
        let d = decisions::decide(state, z, svc, &client, rtype);
        scope = scope.max(d.scope);
        gslb = true;
        if metrics.is_some() {
            obs.record_service(z, svc, &d);
        }
        zone::ServiceAnswer { addrs: d.addresses.clone(), ttl: d.ttl, servfail: d.servfail }
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
    match found {
        None => resp.metadata.response_code = ResponseCode::Refused,
        Some(found) => {
            resp.metadata.response_code = found.rcode;
            resp.metadata.authoritative = found.authoritative;
            resp.insert_answers(found.answers);
            resp.insert_authorities(negative::explicit_soa(found.authority, name));
            resp.insert_additionals(found.additional);
        }
    }
    if gslb && transport == Transport::Tcp {
        fit::trim_addresses(&mut resp);
    }
    encode(resp, transport, limit, obs)
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
    policy::decide(svc, &zone.regions, client, &state.health, family, trace)
}

/// Encode; over UDP, an answer larger than the client's limit is replaced by a
/// truncated one (TC=1, question and OPT only) so the client retries over TCP;
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
