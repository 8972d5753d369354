//! RRSIGs made online, when an answer is made, and cached by RRset: a GSLB
//! decision repeated for many clients, or a static RRset asked again, costs
//! one hash lookup, not a signature. Signatures are backdated an hour (clock
//! skew between us and validators) and valid `validity` ahead; a cached one
//! is made anew once half its validity is gone, long before it expires.
//!
//! Which keys sign is fixed when the signer is made (the zone's load): the
//! keys active then, KSK/CSK over the apex key sets, ZSK/CSK over the rest.
//! A key event (a ZSK turning active, retired…) reloads the zone and so
//! makes a new signer with an empty cache: no signature by a key that left
//! the active set is ever served from it.

use hickory_proto::dnssec::rdata::sig::SigInput;
use hickory_proto::dnssec::rdata::{DNSSECRData, RRSIG};
use hickory_proto::dnssec::TBS;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};
use hickory_proto::serialize::binary::BinEncodable;
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use super::{unix_now, KeyState, ZoneKey};

/// Inception this far in the past (RFC 6781 §4.4.2.2: validators' clocks drift).
const BACKDATE: u32 = 3600;
/// Cached RRsets kept before the cache starts over (bounds memory whatever
/// the clients ask: ECS can make many distinct decisions).
const CACHE_MAX: usize = 100_000;
/// Cached denials of names that do not exist (NSECs with NXNAME, one per
/// name asked, which the clients choose), kept apart: a flood of random
/// names starts these over, never the signatures of the zone's data, which
/// prebuilt answers replay.
const DENIALS_MAX: usize = 20_000;

/// Signs one zone's RRsets with its keys.
pub struct Signer {
    zone: Name,
    keys: Vec<ZoneKey>,
    /// Each key's state when the signer was made (parallel to `keys`).
    states: Vec<KeyState>,
    /// When the signer was made (Unix seconds): the states hold from then
    /// until `next_event`.
    made_at: u32,
    /// Seconds a signature is valid after now.
    validity: u32,
    /// Read-locked by every signed answer, write-locked only to add: the
    /// worker threads share hits without waiting on each other.
    cache: RwLock<FxHashMap<Vec<u8>, Cached>>,
    /// The NXNAME NSECs' signatures (`DENIALS_MAX`), locked the same way.
    denials: RwLock<FxHashMap<Vec<u8>, Cached>>,
    /// Most entries of `cache` and `denials` (tests make them small).
    caps: [usize; 2],
    /// How many times either cache has started over: a copy of its
    /// signatures kept elsewhere (the fast path's signed negative answers)
    /// is the cache's answer only while this has not moved.
    generation: AtomicU64,
}

impl std::fmt::Debug for Signer {
    // The keys print without their private halves; the cache by its size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("zone", &self.zone)
            .field("keys", &self.keys)
            .field("states", &self.states)
            .field("validity", &self.validity)
            .field("cached", &self.cached())
            .finish()
    }
}

#[derive(Debug, Clone)]
struct Cached {
    /// Unix time after which this entry is signed anew.
    renew_after: u32,
    rrsigs: Vec<Record>,
}

impl Signer {
    /// A signer for `keys` in the states their timing gives now.
    pub fn new(zone: Name, keys: Vec<ZoneKey>, validity_days: u32) -> Signer {
        Signer::made_at(zone, keys, validity_days, unix_now())
    }

    /// `new` as at Unix time `now`.
    pub fn made_at(zone: Name, keys: Vec<ZoneKey>, validity_days: u32, now: u32) -> Signer {
        let states = keys.iter().map(|k| k.timing.state_at(now)).collect();
        Signer {
            zone,
            keys,
            states,
            made_at: now,
            validity: validity_days.saturating_mul(86_400),
            cache: RwLock::default(),
            denials: RwLock::default(),
            caps: [CACHE_MAX, DENIALS_MAX],
            generation: AtomicU64::new(0),
        }
    }

    pub fn zone(&self) -> &Name {
        &self.zone
    }

    /// Every key the zone lists, whatever its state.
    pub fn keys(&self) -> &[ZoneKey] {
        &self.keys
    }

    /// Each key with its state now (as of the zone's load).
    pub fn key_states(&self) -> impl Iterator<Item = (&ZoneKey, KeyState)> {
        self.keys.iter().zip(self.states.iter().copied())
    }

    /// The keys in the DNSKEY set.
    pub fn published(&self) -> impl Iterator<Item = &ZoneKey> {
        self.key_states().filter(|(_, s)| s.published()).map(|(k, _)| k)
    }

    /// The next time a key changes state (Unix seconds): the server
    /// reloads the zone then.
    pub fn next_event(&self) -> Option<u32> {
        self.keys.iter().flat_map(|k| k.timing.events()).filter(|&t| t > self.made_at).min()
    }

    /// The active keys that sign an RRset of type `rtype`.
    fn signers(&self, rtype: RecordType) -> impl Iterator<Item = &ZoneKey> {
        let apex_keys = matches!(rtype, RecordType::DNSKEY | RecordType::CDS | RecordType::CDNSKEY);
        self.key_states()
            .filter(move |(k, s)| {
                *s == KeyState::Active && if apex_keys { k.role.signs_keys() } else { k.role.signs_data() }
            })
            .map(|(k, _)| k)
    }

    /// RRSIGs (one per key) over `rrset`: records of one owner, type and
    /// TTL, owned by the name as it goes on the wire (a wildcard expansion
    /// is signed as the query name: RFC 9824 online signing needs no
    /// next-closer proof). Empty when signing fails (logged): the answer
    /// then goes out unsigned and a validator calls it bogus, never silent.
    pub fn sign(&self, rrset: &[Record]) -> Vec<Record> {
        self.sign_at(rrset, unix_now())
    }

    /// `sign` as at Unix time `now`.
    pub fn sign_at(&self, rrset: &[Record], now: u32) -> Vec<Record> {
        let Some(first) = rrset.first() else { return Vec::new() };
        let key = cache_key(rrset);
        let (cache, cap) =
            if is_nxname_denial(first) { (&self.denials, self.caps[1]) } else { (&self.cache, self.caps[0]) };
        if let Some(hit) = cache.read().ok().and_then(|c| c.get(&key).cloned()) {
            if now < hit.renew_after {
                return with_owner(hit.rrsigs, &first.name);
            }
        }
        let signers: Vec<&ZoneKey> = self.signers(first.record_type()).collect();
        let rrsigs: Vec<Record> = signers.iter().filter_map(|k| self.sign_with(k, rrset, now)).collect();
        if rrsigs.len() == signers.len() {
            if let Ok(mut cache) = cache.write() {
                if cache.len() >= cap {
                    self.start_over(&mut cache);
                }
                cache
                    .insert(key, Cached { renew_after: now.saturating_add(self.validity / 2), rrsigs: rrsigs.clone() });
            }
        }
        rrsigs
    }

    fn sign_with(&self, key: &ZoneKey, rrset: &[Record], now: u32) -> Option<Record> {
        let first = &rrset[0];
        let owner = first.name.to_lowercase();
        let input = SigInput {
            type_covered: first.record_type(),
            algorithm: key.key.algorithm(),
            num_labels: owner.num_labels(),
            original_ttl: first.ttl,
            sig_expiration: SerialNumber::new(now.saturating_add(self.validity)),
            sig_inception: SerialNumber::new(now.saturating_sub(BACKDATE)),
            key_tag: key.tag,
            signer_name: self.zone.to_lowercase(),
        };
        let records: Vec<Record> = rrset
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.name = owner.clone();
                r
            })
            .collect();
        let signed = TBS::from_input(&owner, DNSClass::IN, &input, records.iter())
            .map_err(|e| e.to_string())
            .and_then(|tbs| key.key.sign(&tbs).map_err(|e| e.to_string()));
        match signed {
            Ok(sig) => {
                let rrsig = RRSIG::from_sig(input, sig);
                Some(Record::from_rdata(first.name.clone(), first.ttl, RData::DNSSEC(DNSSECRData::RRSIG(rrsig))))
            }
            Err(e) => {
                tracing::error!(zone = %self.zone, file = %key.file.display(), error = %e, "cannot sign an RRset");
                None
            }
        }
    }

    /// When the cache makes anew a signature that expires at `expiration`
    /// (`sign` renews at half the validity): a copy of its bytes kept
    /// elsewhere (the fast path's) is the cache's answer until then.
    pub fn renewed_at(&self, expiration: u32) -> u32 {
        expiration.saturating_sub(self.validity - self.validity / 2)
    }

    /// Whether the cache has room for more prebuilt answers' signatures: the
    /// fast index stops prebuilding signed answers at half the cache, so the
    /// cache never starts over under it (which would make the general path's
    /// signatures differ from the replayed ones) and a big zone's load does
    /// not sign every RRset.
    pub fn room_to_prebuild(&self) -> bool {
        self.cache.read().map_or(0, |c| c.len()) < self.caps[0] / 2
    }

    /// Bumped whenever the cache starts over (see `generation`).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    fn start_over(&self, cache: &mut FxHashMap<Vec<u8>, Cached>) {
        cache.clear();
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Start the cache over now, as a full cache does (tests).
    #[cfg(test)]
    pub fn clear_cache(&self) {
        if let Ok(mut cache) = self.cache.write() {
            self.start_over(&mut cache);
        }
    }

    /// Entries in the signature caches (tests and status).
    pub fn cached(&self) -> usize {
        self.cache.read().map_or(0, |c| c.len()) + self.denials.read().map_or(0, |c| c.len())
    }
}

/// What makes two RRsets the same signature: owner (lowercase), type, TTL
/// and the RDATA of each record.
fn cache_key(rrset: &[Record]) -> Vec<u8> {
    let first = &rrset[0];
    let mut key = first.name.to_lowercase().to_bytes().unwrap_or_default();
    key.extend_from_slice(&u16::from(first.record_type()).to_be_bytes());
    key.extend_from_slice(&first.ttl.to_be_bytes());
    for r in rrset {
        let rdata = r.data.to_bytes().unwrap_or_default();
        key.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        key.extend_from_slice(&rdata);
    }
    key
}

/// An NSEC whose bitmap holds NXNAME: the compact denial of a name that
/// does not exist (`denial.rs`).
fn is_nxname_denial(first: &Record) -> bool {
    match &first.data {
        RData::DNSSEC(DNSSECRData::NSEC(nsec)) => nsec.type_bit_maps().any(|t| t == super::NXNAME),
        _ => false,
    }
}

fn with_owner(mut rrsigs: Vec<Record>, owner: &Name) -> Vec<Record> {
    for r in &mut rrsigs {
        r.name = owner.clone();
    }
    rrsigs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::{generate_key_file, KeyAlgorithm};
    use hickory_proto::rr::rdata::A;

    fn signer() -> Signer {
        let zone = Name::from_ascii("s.test.").unwrap();
        let dir = std::env::temp_dir().join(format!("meridian-signer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // One file per call: tests run in parallel.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let path = dir.join(format!("k{}.key", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        std::fs::write(&path, generate_key_file(&zone, KeyAlgorithm::EcdsaP256).unwrap()).unwrap();
        let key = crate::dnssec::load_key(&path, &zone, crate::dnssec::KeyRole::Csk).unwrap();
        let _ = std::fs::remove_file(&path);
        Signer::new(zone, vec![key], 14)
    }

    fn a(owner: &str, last: u8) -> Record {
        Record::from_rdata(Name::from_ascii(owner).unwrap(), 30, RData::A(A::new(192, 0, 2, last)))
    }

    /// ECDSA signatures are randomised: the same bytes twice means the second
    /// came from the cache. A different decision is signed anew; the owner
    /// keeps the case it was asked with; validity is backdated an hour.
    #[test]
    fn a_repeated_rrset_is_signed_once() {
        let s = signer();
        let first = s.sign(&[a("www.s.test.", 1)]);
        let again = s.sign(&[a("WWW.s.test.", 1)]);
        assert_eq!(s.cached(), 1);
        assert_eq!(first[0].data, again[0].data);
        assert_eq!(again[0].name.to_ascii(), "WWW.s.test.");
        let other = s.sign(&[a("www.s.test.", 2)]);
        assert_eq!(s.cached(), 2);
        let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &other[0].data else { panic!("not an RRSIG") };
        let now = unix_now();
        let (inception, expiration) = (sig.input().sig_inception.get(), sig.input().sig_expiration.get());
        assert!(inception <= now - 3600 && inception > now - 3700, "{inception} vs {now}");
        assert!(expiration >= now + 14 * 86_400 - 5, "{expiration} vs {now}");
    }

    /// A cached signature is made anew once half its validity has gone,
    /// long before it expires; until then the cache answers.
    #[test]
    fn a_cached_signature_is_renewed_at_half_its_validity() {
        let s = signer();
        let now = unix_now();
        let expiry = |r: &[Record]| match &r[0].data {
            RData::DNSSEC(DNSSECRData::RRSIG(sig)) => sig.input().sig_expiration.get(),
            _ => panic!("not an RRSIG"),
        };
        let first = s.sign_at(&[a("www.s.test.", 1)], now);
        let week = 7 * 86_400;
        assert_eq!(expiry(&s.sign_at(&[a("www.s.test.", 1)], now + week - 60)), expiry(&first));
        let renewed = s.sign_at(&[a("www.s.test.", 1)], now + week + 1);
        assert_eq!(expiry(&renewed), now + week + 1 + 14 * 86_400);
        assert_eq!(s.cached(), 1);
    }

    /// Denials of random names (what a flood asks) start their own cache
    /// over, never the data's: a data RRset keeps its signature (the bytes a
    /// prebuilt answer replays), and the generation says the denials moved.
    #[test]
    fn a_flood_of_denials_leaves_the_datas_signatures_alone() {
        let mut s = signer();
        s.caps = [4, 3];
        let data = s.sign(&[a("www.s.test.", 1)]);
        let nodata =
            s.sign(&[crate::dnssec::compact_nsec(&Name::from_ascii("www.s.test.").unwrap(), [RecordType::A], 60)]);
        assert_eq!((s.cached(), s.generation()), (2, 0));
        for i in 0..10 {
            let name = Name::from_ascii(format!("r{i}.s.test.")).unwrap();
            s.sign(&[crate::dnssec::compact_nsec(&name, [crate::dnssec::NXNAME], 60)]);
            assert!(s.cached() <= 2 + 3, "{} cached", s.cached());
        }
        assert_eq!(s.generation(), 3, "the denials started over at 3, 6 and 9");
        assert_eq!(s.sign(&[a("www.s.test.", 1)])[0].data, data[0].data, "signed anew");
        let again =
            s.sign(&[crate::dnssec::compact_nsec(&Name::from_ascii("www.s.test.").unwrap(), [RecordType::A], 60)]);
        assert_eq!(again[0].data, nodata[0].data, "a NODATA denial is the data's");
        // The data's cache starts over when full, as before.
        for i in 2..6 {
            s.sign(&[a("www.s.test.", i)]);
        }
        assert_eq!(s.generation(), 4);
        assert!(s.sign(&[a("www.s.test.", 1)])[0].data != data[0].data);
    }

    fn key(role: crate::dnssec::KeyRole, timing: crate::dnssec::KeyTiming) -> ZoneKey {
        let mut k = signer().keys.remove(0);
        k.dnskey = hickory_proto::dnssec::rdata::DNSKEY::with_flags(role.flags(), k.dnskey.public_key().clone());
        k.tag = k.dnskey.calculate_key_tag().unwrap();
        k.role = role;
        k.timing = timing;
        k
    }

    fn tags(rrsigs: &[Record]) -> Vec<u16> {
        rrsigs
            .iter()
            .map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::RRSIG(sig)) => sig.input().key_tag,
                _ => panic!("not an RRSIG"),
            })
            .collect()
    }

    /// A KSK signs the DNSKEY set only; the active ZSK signs the rest; a
    /// published (not yet active) or retired ZSK signs nothing; the next
    /// event is the earliest time after the signer was made.
    #[test]
    fn roles_and_states_choose_the_signing_keys() {
        use crate::dnssec::{KeyRole, KeyTiming};
        let ksk = key(KeyRole::Ksk, KeyTiming::default());
        let old =
            key(KeyRole::Zsk, KeyTiming::Times { publish: None, activate: None, retire: Some(200), remove: Some(300) });
        let new =
            key(KeyRole::Zsk, KeyTiming::Times { publish: Some(100), activate: Some(200), retire: None, remove: None });
        assert_eq!((ksk.dnskey.flags(), old.dnskey.flags()), (257, 256));
        let (kt, ot, nt) = (ksk.tag, old.tag, new.tag);
        let dnskey = Record::from_rdata(
            Name::from_ascii("s.test.").unwrap(),
            30,
            RData::DNSSEC(DNSSECRData::DNSKEY(ksk.dnskey.clone())),
        );
        let zone = Name::from_ascii("s.test.").unwrap();
        let mut keys = vec![ksk, old, new];
        for (at, published, data, next) in [
            (150, vec![kt, ot, nt], vec![ot], Some(200)),
            (250, vec![kt, ot, nt], vec![nt], Some(300)),
            (300, vec![kt, nt], vec![nt], None),
        ] {
            let s = Signer::made_at(zone.clone(), std::mem::take(&mut keys), 14, at);
            assert_eq!(s.published().map(|k| k.tag).collect::<Vec<_>>(), published, "at {at}");
            assert_eq!(tags(&s.sign(&[a("www.s.test.", 1)])), data, "at {at}");
            assert_eq!(tags(&s.sign(std::slice::from_ref(&dnskey))), [kt], "at {at}");
            assert_eq!(s.next_event(), next, "at {at}");
            keys = s.keys;
        }
    }

    /// Whatever prints a zone (`{:?}`) never prints a private key.
    #[test]
    fn debug_output_holds_no_private_key() {
        let zone = Name::from_ascii("s.test.").unwrap();
        let text = generate_key_file(&zone, KeyAlgorithm::Ed25519).unwrap();
        let path = std::env::temp_dir().join(format!("meridian-signer-debug-{}.key", std::process::id()));
        std::fs::write(&path, &text).unwrap();
        let s = Signer::new(
            zone.clone(),
            vec![crate::dnssec::load_key(&path, &zone, crate::dnssec::KeyRole::Csk).unwrap()],
            14,
        );
        let _ = std::fs::remove_file(&path);
        s.sign(&[a("www.s.test.", 1)]);
        let printed = format!("{s:?}");
        assert!(printed.contains("cached: 1") && printed.contains("tag"), "{printed}");
        let der = text.lines().filter(|l| !l.starts_with(';') && !l.starts_with("-----")).collect::<String>();
        let der = data_encoding::BASE64.decode(der.as_bytes()).unwrap();
        let hex = der.iter().map(|b| format!("{b}")).collect::<Vec<_>>().join(", ");
        assert!(!printed.contains(&hex[..40]), "{printed}");
    }
}
