//! A signed zone's keys: loaded from the files `[dnssec]` names (each error
//! names the key file: `FILE: message`), and published at the apex as
//! DNSKEY, CDS and CDNSKEY (RFC 7344) so that queries for them take the
//! ordinary lookup, and the name index knows the apex holds them.

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::rr::{Name, RData, RecordType};
use std::path::Path;

use super::{Node, RRset};
use crate::config::zone_file::DnssecSpec;
use crate::config::{ConfigError, Source};
use crate::dnssec::{load_key, Signer};

/// Signature validity when the zone does not say (days).
const DEFAULT_SIGNATURE_DAYS: u32 = 14;

pub(super) fn load_signer(src: &Source, origin: &Name, spec: &DnssecSpec) -> Result<Signer, ConfigError> {
    if spec.keys.get_ref().is_empty() {
        return Err(src.error(spec.keys.span(), "[dnssec] keys is empty: name at least one key file"));
    }
    let days = match &spec.signature_days {
        Some(d) if !(1..=365).contains(d.get_ref()) => {
            return Err(src.error(d.span(), format!("signature_days {} is not between 1 and 365", d.get_ref())))
        }
        Some(d) => *d.get_ref(),
        None => DEFAULT_SIGNATURE_DAYS,
    };
    let base = src.path.parent().unwrap_or(Path::new("."));
    let mut keys = Vec::new();
    for file in spec.keys.get_ref() {
        let path = base.join(file.get_ref());
        let key =
            load_key(&path, origin).map_err(|message| ConfigError { file: path.clone(), line: 0, col: 0, message })?;
        if keys.iter().any(|k: &crate::dnssec::ZoneKey| k.tag == key.tag && k.algorithm == key.algorithm) {
            return Err(src.error(file.span(), format!("{} is the same key as one listed before it", path.display())));
        }
        keys.push(key);
    }
    Ok(Signer::new(origin.clone(), keys, days))
}

/// DNSKEY, CDS and CDNSKEY RRsets at the apex, one record per key.
pub(super) fn publish_keys(origin: &Name, ttl: u32, signer: &Signer, apex: &mut Node) {
    let mut dnskey = Vec::new();
    let mut cds = Vec::new();
    let mut cdnskey = Vec::new();
    for k in signer.keys() {
        let rec = RData::DNSSEC;
        dnskey.push(rec(DNSSECRData::DNSKEY(k.dnskey.clone())));
        // A key whose digest cannot be made was refused when it loaded.
        if let Ok((c, ck)) = k.cds(origin) {
            cds.push(rec(DNSSECRData::CDS(c)));
            cdnskey.push(rec(DNSSECRData::CDNSKEY(ck)));
        }
    }
    for (rtype, rdata) in [(RecordType::DNSKEY, dnskey), (RecordType::CDS, cds), (RecordType::CDNSKEY, cdnskey)] {
        apex.rrsets.push(RRset { rtype, ttl, rdata: super::Rdatas::from_all(rdata) });
    }
}
