//! Zone signing keys: one PKCS#8 PEM file per key, with a few comment lines
//! before the PEM block saying which zone and algorithm it is for, so a key
//! given to the wrong zone is refused rather than served (a validator would
//! see every answer as bogus).
//!
//! ```text
//! ; Meridian DNSSEC key. Keep it private (mode 0600).
//! ; zone: gslb.example.test.
//! ; algorithm: 13
//! -----BEGIN PRIVATE KEY-----
//! ...
//! ```

use hickory_proto::dnssec::crypto::{EcdsaSigningKey, Ed25519SigningKey};
use hickory_proto::dnssec::rdata::{CDNSKEY, CDS, DNSKEY, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, PublicKey, SigningKey};
use hickory_proto::rr::Name;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivatePkcs8KeyDer;
use std::path::{Path, PathBuf};

use super::KeyTiming;

/// The algorithms Meridian signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA P-256 with SHA-256, algorithm 13 (the default).
    EcdsaP256,
    /// Ed25519, algorithm 15.
    Ed25519,
}

impl KeyAlgorithm {
    pub fn number(self) -> u8 {
        match self {
            KeyAlgorithm::EcdsaP256 => 13,
            KeyAlgorithm::Ed25519 => 15,
        }
    }

    fn from_number(n: u8) -> Option<KeyAlgorithm> {
        match n {
            13 => Some(KeyAlgorithm::EcdsaP256),
            15 => Some(KeyAlgorithm::Ed25519),
            _ => None,
        }
    }

    fn hickory(self) -> Algorithm {
        match self {
            KeyAlgorithm::EcdsaP256 => Algorithm::ECDSAP256SHA256,
            KeyAlgorithm::Ed25519 => Algorithm::ED25519,
        }
    }
}

/// What a key signs, as the zone's `[dnssec]` says (the key file does not:
/// one file can serve as either). The role sets the DNSKEY flags, so the
/// key tag and DS follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// Combined signing key: signs everything, flags 257 (zone key + SEP).
    Csk,
    /// Key signing key: signs the DNSKEY, CDS and CDNSKEY sets, flags 257;
    /// the parent's DS points at it.
    Ksk,
    /// Zone signing key: signs everything else, flags 256 (no DS).
    Zsk,
}

impl KeyRole {
    pub fn parse(text: &str) -> Option<KeyRole> {
        match text {
            "csk" => Some(KeyRole::Csk),
            "ksk" => Some(KeyRole::Ksk),
            "zsk" => Some(KeyRole::Zsk),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KeyRole::Csk => "csk",
            KeyRole::Ksk => "ksk",
            KeyRole::Zsk => "zsk",
        }
    }

    /// DNSKEY flags: zone key (256), plus the secure entry point bit for keys the DS names.
    pub fn flags(self) -> u16 {
        match self {
            KeyRole::Csk | KeyRole::Ksk => 257,
            KeyRole::Zsk => 256,
        }
    }

    /// Signs the apex key sets (DNSKEY, CDS, CDNSKEY).
    pub fn signs_keys(self) -> bool {
        self != KeyRole::Zsk
    }

    /// Signs the zone's data (every other RRset).
    pub fn signs_data(self) -> bool {
        self != KeyRole::Ksk
    }
}

/// One loaded key: the private half and the DNSKEY it publishes.
pub struct ZoneKey {
    pub file: PathBuf,
    pub role: KeyRole,
    pub algorithm: KeyAlgorithm,
    pub key: Box<dyn SigningKey>,
    pub dnskey: DNSKEY,
    pub tag: u16,
    /// When it is published and signs (set by the zone loader; default: always active).
    pub timing: KeyTiming,
}

impl std::fmt::Debug for ZoneKey {
    // Never the private key, whatever prints a zone.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneKey")
            .field("file", &self.file)
            .field("role", &self.role)
            .field("algorithm", &self.algorithm)
            .field("tag", &self.tag)
            .field("timing", &self.timing)
            .finish()
    }
}

impl ZoneKey {
    /// The SHA-256 DS record data for the parent (RFC 4509).
    pub fn ds(&self, zone: &Name) -> Result<DS, String> {
        let digest = self.dnskey.to_digest(zone, DigestType::SHA256).map_err(|e| e.to_string())?;
        Ok(DS::new(self.tag, self.algorithm.hickory(), DigestType::SHA256, digest.as_ref().to_vec()))
    }

    /// The CDS and CDNSKEY the child publishes for the parent to pick up (RFC 7344).
    pub fn cds(&self, zone: &Name) -> Result<(CDS, CDNSKEY), String> {
        let ds = self.ds(zone)?;
        let cds = CDS::new(ds.key_tag(), Some(ds.algorithm()), ds.digest_type(), ds.digest().to_vec());
        let pk = self.dnskey.public_key().public_bytes().to_vec();
        let cdnskey = CDNSKEY::with_flags(self.dnskey.flags(), Some(self.algorithm.hickory()), pk);
        Ok((cds, cdnskey))
    }
}

/// Read `path` as a key for `zone` in `role`. The error is the message
/// only; the caller prefixes the file (`FILE: message`).
pub fn load_key(path: &Path, zone: &Name, role: KeyRole) -> Result<ZoneKey, String> {
    let text = crate::config::files::read_text(path).map_err(|e| format!("cannot read the DNSSEC key: {e}"))?;
    parse_key(path, &text, zone, role)
}

fn parse_key(path: &Path, text: &str, zone: &Name, role: KeyRole) -> Result<ZoneKey, String> {
    let header = |field: &str| {
        text.lines()
            .take_while(|l| !l.starts_with("-----BEGIN"))
            .filter_map(|l| l.trim_start_matches([';', '#', ' ']).strip_prefix(field))
            .map(|v| v.trim().to_string())
            .next()
    };
    let key_zone =
        header("zone:").ok_or("no \"; zone: NAME\" line before the key (write keys with `meridian dnssec keygen`)")?;
    let norm = |n: &str| n.trim_end_matches('.').to_ascii_lowercase();
    if norm(&key_zone) != norm(&zone.to_ascii()) {
        return Err(format!("this key is for zone {key_zone}, not {zone}"));
    }
    let number = header("algorithm:").ok_or("no \"; algorithm: 13|15\" line before the key")?;
    let algorithm = number
        .parse::<u8>()
        .ok()
        .and_then(KeyAlgorithm::from_number)
        .ok_or(format!("unsupported algorithm {number}: Meridian signs with 13 (ECDSA P-256) or 15 (Ed25519)"))?;
    let der = PrivatePkcs8KeyDer::from_pem_slice(text.as_bytes())
        .map_err(|e| format!("no PKCS#8 private key (-----BEGIN PRIVATE KEY-----) in the file: {e}"))?;
    let key: Box<dyn SigningKey> = match algorithm {
        KeyAlgorithm::EcdsaP256 => Box::new(
            EcdsaSigningKey::from_pkcs8(&der, Algorithm::ECDSAP256SHA256)
                .map_err(|e| format!("not an ECDSA P-256 private key (algorithm 13): {e}"))?,
        ),
        KeyAlgorithm::Ed25519 => Box::new(
            Ed25519SigningKey::from_pkcs8(&der)
                .map_err(|e| format!("not an Ed25519 private key (algorithm 15): {e}"))?,
        ),
    };
    let public = key.to_public_key().map_err(|e| format!("cannot derive the public key: {e}"))?;
    let dnskey = DNSKEY::with_flags(role.flags(), public);
    let tag = dnskey.calculate_key_tag().map_err(|e| format!("cannot compute the key tag: {e}"))?;
    Ok(ZoneKey { file: path.to_path_buf(), role, algorithm, key, dnskey, tag, timing: KeyTiming::default() })
}

/// A new key file's text for `zone` (PEM with the header lines).
pub fn generate_key_file(zone: &Name, algorithm: KeyAlgorithm) -> Result<String, String> {
    let der = match algorithm {
        KeyAlgorithm::EcdsaP256 => EcdsaSigningKey::generate_pkcs8(Algorithm::ECDSAP256SHA256),
        KeyAlgorithm::Ed25519 => Ed25519SigningKey::generate_pkcs8(),
    }
    .map_err(|e| format!("cannot generate a key: {e}"))?;
    let b64 = data_encoding::BASE64.encode(der.secret_pkcs8_der());
    let mut out = format!(
        "; Meridian DNSSEC key (its role, csk, ksk or zsk, is set in the zone's [dnssec]). Keep it private (mode 0600).\n; zone: {}\n; algorithm: {}\n-----BEGIN PRIVATE KEY-----\n",
        zone.to_lowercase(),
        algorithm.number()
    );
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Name {
        Name::from_ascii("k.test.").unwrap()
    }

    #[test]
    fn generated_keys_load_for_their_zone_only() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Ed25519] {
            let text = generate_key_file(&zone(), alg).unwrap();
            let key = parse_key(Path::new("k"), &text, &zone(), KeyRole::Csk).unwrap();
            assert_eq!(key.algorithm, alg);
            assert_eq!(key.dnskey.flags(), 257);
            assert_eq!(key.ds(&zone()).unwrap().key_tag(), key.tag);
            let other = Name::from_ascii("other.test.").unwrap();
            let err = parse_key(Path::new("k"), &text, &other, KeyRole::Csk).unwrap_err();
            assert!(err.contains("this key is for zone k.test."), "{err}");
        }
    }

    #[test]
    fn unsupported_and_broken_keys_are_refused() {
        let text = generate_key_file(&zone(), KeyAlgorithm::EcdsaP256).unwrap();
        let rsa = text.replace("; algorithm: 13", "; algorithm: 8");
        assert!(parse_key(Path::new("k"), &rsa, &zone(), KeyRole::Csk)
            .unwrap_err()
            .contains("unsupported algorithm 8"));
        let mismatched = text.replace("; algorithm: 13", "; algorithm: 15");
        assert!(parse_key(Path::new("k"), &mismatched, &zone(), KeyRole::Csk).unwrap_err().contains("not an Ed25519"));
        let no_pem = "; zone: k.test.\n; algorithm: 13\n";
        assert!(parse_key(Path::new("k"), no_pem, &zone(), KeyRole::Csk).unwrap_err().contains("no PKCS#8"));
    }
}
