//! `meridian dnssec keygen ZONE` and `meridian dnssec ds ZONE`: make a key
//! file for a zone, and print the DS records its parent needs.

use hickory_proto::rr::Name;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::dnssec::{generate_key_file, KeyAlgorithm};

fn zone_name(text: &str) -> anyhow::Result<Name> {
    let mut name = Name::from_ascii(text).map_err(|e| anyhow::anyhow!("{text:?} is not a domain name: {e}"))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

/// Write a new key for `zone` to `out` (default `./ZONE.key`), mode 0600, never over a file.
pub fn keygen(zone: &str, alg: KeyAlgorithm, out: Option<&Path>) -> anyhow::Result<String> {
    let zone = zone_name(zone)?;
    let text = generate_key_file(&zone, alg).map_err(anyhow::Error::msg)?;
    let path = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("{}.key", zone.to_ascii().trim_end_matches('.'))));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(format!("{}: key for {zone}, algorithm {}\n", path.display(), alg.number()))
}

/// The SHA-256 DS records of `zone`'s KSKs and CSKs, as the parent publishes them.
pub fn ds(zone: &str, cfg: &crate::config::ServerConfig) -> anyhow::Result<String> {
    let name = zone_name(zone)?;
    let zones = crate::zone::load_zones(&cfg.zones)?;
    let z = zones
        .zones
        .iter()
        .find(|z| z.origin == name)
        .ok_or_else(|| anyhow::anyhow!("no zone {name} in {}", cfg.zones.display()))?;
    let signer =
        z.signer.as_ref().ok_or_else(|| anyhow::anyhow!("zone {name} ({}) has no [dnssec] keys", z.file.display()))?;
    let mut out = String::new();
    // Every key the DS may name (csk, ksk), whatever its state: a key
    // rolled in needs its DS at the parent before it is published.
    for k in signer.keys().iter().filter(|k| k.role.signs_keys()) {
        let ds = k.ds(&name).map_err(anyhow::Error::msg)?;
        out.push_str(&format!(
            "{name} IN DS {} {} 2 {}\n",
            ds.key_tag(),
            k.algorithm.number(),
            data_encoding::HEXUPPER.encode(ds.digest())
        ));
    }
    Ok(out)
}
