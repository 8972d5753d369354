//! The signed answer (DO=1 to a signed zone): every authoritative RRset of
//! the answer and authority sections followed by its RRSIGs, and the
//! absence a negative answer or referral states proven by one RFC 9824
//! compact-denial NSEC, itself signed. NS and glue of a delegation are not
//! authoritative here and stay unsigned (RFC 4035 §2.2).

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Record, RecordType};

use crate::dnssec::{compact_nsec, Signer, NXNAME};
use crate::zone::{Denial, Lookup, Zone};

/// The EDNS "Compact Answers OK" flag (RFC 9824 §4), bit 1 of the flags.
pub(super) const CO_FLAG: u16 = 0x4000;

/// Sign `found` in place. "NXDOMAIN" becomes NOERROR with an NXNAME NSEC
/// unless the client set CO (`compact_ok`), which asks for the NXDOMAIN
/// rcode back. An NSEC asked for at a name that exists is the answer itself;
/// RRSIG asked for: the signatures held at the name.
pub(super) fn sign_lookup(zone: &Zone, signer: &Signer, found: &mut Lookup, qtype: RecordType, compact_ok: bool) {
    if found.rcode == ResponseCode::ServFail {
        return;
    }
    found.answers = with_rrsigs(signer, std::mem::take(&mut found.answers));
    let negative_ttl = zone.negative_soa().ttl;
    let nsec = match found.denial.take() {
        None => return,
        Some(Denial::Delegation { cut }) => {
            // A secure child: its DS, signed, says so; else an NSEC proves there is none.
            if let Some(ds) = zone.nodes.get(&cut).and_then(|n| n.get(RecordType::DS)) {
                found.authority.extend(with_rrsigs(signer, ds.records(&cut)));
                return;
            }
            compact_nsec(&cut, [RecordType::NS], negative_ttl)
        }
        Some(Denial::NoData { name, types }) if qtype == RecordType::NSEC && found.answers.is_empty() => {
            found.answers = with_rrsigs(signer, vec![compact_nsec(&name, types, negative_ttl)]);
            found.authority.clear();
            return;
        }
        Some(Denial::NoData { name, types }) if qtype == RecordType::RRSIG && found.answers.is_empty() => {
            // The RRSIGs held at the name: its static RRsets' and its NSEC's
            // (a NODATA would deny what its own NSEC bitmap lists).
            let mut sets: Vec<Vec<Record>> = zone
                .nodes
                .get(&name)
                .map(|node| node.rrsets.iter().map(|s| s.records(&name)).collect())
                .unwrap_or_default();
            sets.push(vec![compact_nsec(&name, types, negative_ttl)]);
            found.answers = sets.iter().flat_map(|set| signer.sign(set)).collect();
            found.authority.clear();
            return;
        }
        Some(Denial::NoData { name, types }) => compact_nsec(&name, types, negative_ttl),
        Some(Denial::NxDomain { name }) => {
            if !compact_ok {
                found.rcode = ResponseCode::NoError;
            }
            compact_nsec(&name, [NXNAME], negative_ttl)
        }
    };
    let mut authority = std::mem::take(&mut found.authority);
    if found.authoritative {
        authority = with_rrsigs(signer, authority); // the SOA of a negative answer
    }
    authority.extend(with_rrsigs(signer, vec![nsec]));
    found.authority = authority;
}

/// `records` with each run of one owner and type followed by its RRSIGs.
fn with_rrsigs(signer: &Signer, records: Vec<Record>) -> Vec<Record> {
    let mut out = Vec::with_capacity(records.len() * 2);
    let mut start = 0;
    for i in 1..=records.len() {
        let ends = i == records.len()
            || records[i].record_type() != records[start].record_type()
            || records[i].name != records[start].name;
        if ends {
            let rrsigs = signer.sign(&records[start..i]);
            out.extend_from_slice(&records[start..i]);
            out.extend(rrsigs);
            start = i;
        }
    }
    out
}
