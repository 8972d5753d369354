//! RFC 9824 compact denial of existence: an online signer answers NODATA
//! and "NXDOMAIN" alike with one NSEC at the query name whose next name is
//! the name's immediate successor (`\000.name`), so it covers nothing but the
//! name itself and gives away no other name of the zone (no zone walking).
//! For a name that does not exist the bitmap holds only NXNAME, RRSIG and
//! NSEC, which is how a resolver tells the two apart (RFC 9824 §3).

use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC};
use hickory_proto::rr::{Label, Name, RData, Record, RecordType};

/// The NXNAME meta-type (RFC 9824 §2), code 128.
pub const NXNAME: RecordType = RecordType::Unknown(128);

/// The NSEC at `owner` listing `types` (plus RRSIG and NSEC), next name
/// `\000.owner`, with the negative TTL `ttl` (RFC 9077).
pub fn compact_nsec(owner: &Name, types: impl IntoIterator<Item = RecordType>, ttl: u32) -> Record {
    let lower = owner.to_lowercase();
    // A name too long for one more label: the NSEC names itself as next,
    // still covering no other name.
    let next = Label::from_raw_bytes(&[0]).ok().and_then(|l| lower.prepend_label(l).ok()).unwrap_or(lower);
    let mut bitmap: Vec<RecordType> = types.into_iter().collect();
    bitmap.extend([RecordType::RRSIG, RecordType::NSEC]);
    bitmap.sort_by_key(|t| u16::from(*t));
    bitmap.dedup();
    Record::from_rdata(owner.clone(), ttl, RData::DNSSEC(DNSSECRData::NSEC(NSEC::new(next, bitmap))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_name_is_the_immediate_successor() {
        let owner = Name::from_ascii("Nx.Example.test.").unwrap();
        let r = compact_nsec(&owner, [NXNAME], 60);
        let RData::DNSSEC(DNSSECRData::NSEC(nsec)) = &r.data else { panic!() };
        assert_eq!(nsec.next_domain_name().to_ascii(), "\\000.nx.example.test.");
        let types: Vec<u16> = nsec.type_bit_maps().map(u16::from).collect();
        assert_eq!(types, [46, 47, 128]);
        assert_eq!(r.ttl, 60);
    }
}
