//! Query bytes in, response bytes out: the single answer function both UDP
//! and TCP call, so the two transports can never disagree.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, RecordType};
use std::net::SocketAddr;

use crate::state::State;
use crate::wire::{self, ecs, EDNS_PAYLOAD};
use crate::zone;

/// The transport a query came over: it decides truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Answer one query. `None` means send nothing (responses, runts).
pub fn respond(state: &State, packet: &[u8], _src: SocketAddr, transport: Transport) -> Option<Vec<u8>> {
    if packet.len() < wire::HEADER_LEN || wire::is_response(packet) {
        return None;
    }
    let query = match Message::from_vec(packet) {
        Ok(q) => q,
        Err(_) => return wire::formerr_header(packet),
    };
    let mut resp = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
    resp.metadata.recursion_desired = query.metadata.recursion_desired;
    resp.metadata.checking_disabled = query.metadata.checking_disabled;
    resp.add_queries(query.queries.iter().cloned());

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
            return encode(resp, transport, limit);
        }
    }

    if query.metadata.op_code != OpCode::Query {
        resp.metadata.response_code = ResponseCode::NotImp;
        return encode(resp, transport, limit);
    }
    if query.queries.len() != 1 {
        resp.metadata.response_code = ResponseCode::FormErr;
        return encode(resp, transport, limit);
    }
    if let Some(qedns) = &query.edns {
        if let Some(EdnsOption::Subnet(cs)) = qedns.option(EdnsCode::Subnet) {
            match ecs::validate(cs) {
                Ok(valid) => {
                    // Static data does not depend on the client: scope 0 (RFC 7871 §7.2.1).
                    let mut echo = *cs;
                    echo.set_scope_prefix(0);
                    let _ = valid;
                    if let Some(e) = resp.edns.as_mut() {
                        e.options_mut().insert(EdnsOption::Subnet(echo));
                    }
                }
                Err(_) => {
                    resp.metadata.response_code = ResponseCode::FormErr;
                    return encode(resp, transport, limit);
                }
            }
        }
    }

    let q = &query.queries[0];
    let qtype = q.query_type();
    if q.query_class() != DNSClass::IN && q.query_class() != DNSClass::ANY {
        resp.metadata.response_code = ResponseCode::Refused;
        return encode(resp, transport, limit);
    }
    if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
        // No zone transfers: zones come from files, not from a primary.
        resp.metadata.response_code = ResponseCode::Refused;
        return encode(resp, transport, limit);
    }
    if qtype == RecordType::OPT {
        resp.metadata.response_code = ResponseCode::FormErr;
        return encode(resp, transport, limit);
    }

    let name = q.name();
    match zone::lookup(&state.zones, name, qtype) {
        None => resp.metadata.response_code = ResponseCode::Refused,
        Some(found) => {
            resp.metadata.response_code = found.rcode;
            resp.metadata.authoritative = found.authoritative;
            resp.insert_answers(found.answers);
            resp.insert_authorities(found.authority);
            resp.insert_additionals(found.additional);
        }
    }
    encode(resp, transport, limit)
}

/// Encode; over UDP, an answer larger than the client's limit is replaced by a
/// truncated one (TC=1, question and OPT only) so the client retries over TCP.
fn encode(mut resp: Message, transport: Transport, limit: usize) -> Option<Vec<u8>> {
    let bytes = resp.to_vec().ok()?;
    if transport == Transport::Tcp || bytes.len() <= limit {
        return Some(bytes);
    }
    resp.metadata.truncation = true;
    resp.answers.clear();
    resp.authorities.clear();
    resp.additionals.clear();
    resp.to_vec().ok()
}
