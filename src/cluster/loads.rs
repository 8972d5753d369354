//! Pushed loads in etcd (`meridian admin load` on any node): one key per
//! region, `<prefix>/loads/<region>`, or per endpoint,
//! `<prefix>/loads/<region>/<addr>`; the value the figure and the wall-clock
//! time it was reported, so every node ages it alike (`max_age` of
//! `[regions.load]`) and `shed` and `least_loaded` decide alike.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Cluster, ClusterError};

/// One pushed load as etcd holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pushed {
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<IpAddr>,
    pub value: f64,
    /// When it was reported, milliseconds since the epoch.
    pub at_ms: u64,
}

pub fn dir(prefix: &str) -> String {
    format!("{}/loads/", prefix.trim_end_matches('/'))
}

fn key(prefix: &str, region: &str, addr: Option<IpAddr>) -> String {
    match addr {
        None => format!("{}{region}", dir(prefix)),
        Some(a) => format!("{}{region}/{a}", dir(prefix)),
    }
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Put a load report, stamped now; the etcd revision of the write.
pub async fn put(c: &Cluster, region: &str, addr: Option<IpAddr>, value: f64) -> Result<i64, ClusterError> {
    let p = Pushed { region: region.to_string(), addr, value, at_ms: epoch_ms(SystemTime::now()) };
    super::overrides::put_json(c, key(&c.cfg.prefix, region, addr), &p).await
}

/// A stored report, or `None` (with a warning) for one Meridian did not write.
pub fn decode(key: &[u8], value: &[u8]) -> Option<Pushed> {
    let why = match serde_json::from_slice::<Pushed>(value) {
        Ok(p) if p.value.is_finite() && p.value >= 0.0 && !p.region.is_empty() => return Some(p),
        Ok(p) => format!("not a load report: region {:?}, value {}", p.region, p.value),
        Err(e) => e.to_string(),
    };
    tracing::warn!(key = %String::from_utf8_lossy(key), %why, "ignoring an undecodable load in etcd");
    None
}

/// The reports as the health monitor holds them: each one's report time
/// as an `Instant` of this process, so its age is the same on every node
/// (up to the nodes' clock difference).
pub fn for_monitor(all: &BTreeMap<Vec<u8>, Pushed>) -> HashMap<(String, Option<IpAddr>), (f64, Instant)> {
    let (now, wall) = (Instant::now(), epoch_ms(SystemTime::now()));
    all.values()
        .map(|p| {
            let age = Duration::from_millis(wall.saturating_sub(p.at_ms));
            ((p.region.clone(), p.addr), (p.value, now.checked_sub(age).unwrap_or(now)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_keep_their_age_and_bad_values_are_refused() {
        let ten_s_ago = epoch_ms(SystemTime::now()) - 10_000;
        let p =
            Pushed { region: "eu-west".into(), addr: Some("192.0.2.1".parse().unwrap()), value: 0.5, at_ms: ten_s_ago };
        let bytes = serde_json::to_vec(&p).unwrap();
        assert_eq!(decode(b"k", &bytes), Some(p.clone()));
        let mut all = BTreeMap::new();
        all.insert(b"k".to_vec(), p);
        let m = for_monitor(&all);
        let (v, at) = m[&("eu-west".to_string(), Some("192.0.2.1".parse().unwrap()))];
        assert_eq!(v, 0.5);
        assert!((9.5..11.0).contains(&at.elapsed().as_secs_f64()), "{:?}", at.elapsed());
        assert_eq!(key("/m/", "eu-west", None), "/m/loads/eu-west");
        for bad in [r#"{"region":"r","value":-1,"at_ms":1}"#, r#"{"region":"","value":1,"at_ms":1}"#, "garbage"] {
            assert_eq!(decode(b"k", bad.as_bytes()), None, "{bad}");
        }
    }
}
