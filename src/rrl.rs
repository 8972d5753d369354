//! Response rate limiting in the spirit of BIND and Knot RRL: identical
//! responses to one client network are limited, so Meridian cannot be used
//! to amplify a flood at a spoofed victim. Every `slip`-th limited response
//! is sent truncated (TC=1, no records): a real client retries over TCP,
//! which a spoofer cannot do.
//!
//! Buckets are keyed by client network (/24 IPv4, /56 IPv6) and the kind of
//! response (name + type for answers, the zone for NXDOMAIN, the client
//! alone for errors), as BIND does, so one flood cannot starve other names.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use ipnet::IpNet;

/// `[rrl]` in meridian.toml.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RrlConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Identical responses per second per client network.
    #[serde(default = "default_rate")]
    pub responses_per_second: u32,
    /// Seconds of credit a quiet client accumulates (burst = rate × window).
    #[serde(default = "default_window")]
    pub window: u32,
    /// Every Nth limited response is sent truncated; 0 drops them all.
    #[serde(default = "default_slip")]
    pub slip: u32,
    /// Resolvers whose ECS-bearing queries are never limited (they speak for many clients).
    #[serde(default)]
    pub ecs_resolvers: Vec<IpNet>,
    /// Client networks never limited.
    #[serde(default)]
    pub exempt: Vec<IpNet>,
}

fn default_rate() -> u32 {
    20
}
fn default_window() -> u32 {
    5
}
fn default_slip() -> u32 {
    2
}

impl Default for RrlConfig {
    fn default() -> Self {
        RrlConfig {
            enabled: false,
            responses_per_second: default_rate(),
            window: default_window(),
            slip: default_slip(),
            ecs_resolvers: Vec::new(),
            exempt: Vec::new(),
        }
    }
}

/// What to do with a response (not `health::Verdict`, which says up or down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    Send,
    /// Send TC=1 with no records instead.
    Slip,
    Drop,
}

/// What kind of response, for the bucket key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseKind<'a> {
    /// A positive answer or NODATA: by lowercased qname and qtype.
    Answer(&'a [u8], u16),
    /// NXDOMAIN: one bucket per client network, so random-subdomain floods
    /// share it (BIND keys by zone; Meridian's zones are few, so this is close).
    NxDomain,
    /// REFUSED, FORMERR and other errors: one bucket per client network.
    Error,
}

struct Bucket {
    tokens: f64,
    last: Instant,
    limited: u32,
}

/// Buckets in shards so concurrent sockets rarely meet on one lock.
pub struct Limiter {
    cfg: RrlConfig,
    shards: Vec<Mutex<HashMap<u64, Bucket>>>,
}

const SHARDS: usize = 16;
/// Buckets per shard, at most: random names under a wildcard make a bucket
/// each, and without a cap a flood grows the table without end.
const SHARD_CAP: usize = 16_384;
/// The most buckets the limiter ever holds (about 20 MB with the maps' overhead).
pub const MAX_BUCKETS: usize = SHARDS * SHARD_CAP;

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl Limiter {
    pub fn new(cfg: RrlConfig) -> Limiter {
        Limiter { cfg, shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }

    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    /// Decide for one response to `client` (the packet's source address).
    pub fn check(&self, client: IpAddr, has_ecs: bool, kind: ResponseKind<'_>, now: Instant) -> Treatment {
        if !self.cfg.enabled || self.cfg.exempt.iter().any(|n| n.contains(&client)) {
            return Treatment::Send;
        }
        if has_ecs && self.cfg.ecs_resolvers.iter().any(|n| n.contains(&client)) {
            return Treatment::Send;
        }
        let net = client_net(client);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        net.hash(&mut h);
        kind.hash(&mut h);
        let key = h.finish();
        let rate = f64::from(self.cfg.responses_per_second.max(1));
        let cap = rate * f64::from(self.cfg.window.max(1));
        let shard = &self.shards[(key as usize) % SHARDS];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SHARD_CAP && !map.contains_key(&key) {
            sweep(&mut map, now, rate, cap);
        }
        let b = map.entry(key).or_insert(Bucket { tokens: cap, last: now, limited: 0 });
        b.tokens = (b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate).min(cap);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Treatment::Send;
        }
        b.limited = b.limited.wrapping_add(1);
        if self.cfg.slip > 0 && b.limited.is_multiple_of(self.cfg.slip) {
            Treatment::Slip
        } else {
            Treatment::Drop
        }
    }
}

/// Make room in a full shard, down to three quarters of the cap, so a sweep
/// (a pass over the shard) runs at most once per `SHARD_CAP / 4` new buckets.
/// Forgotten first: buckets that have refilled (they hold no information),
/// then those not limiting now, then any (a flood of distinct names, each
/// limited: forgetting one gives it back its burst, which is all it had).
fn sweep(map: &mut HashMap<u64, Bucket>, now: Instant, rate: f64, cap: f64) {
    let target = SHARD_CAP / 4 * 3;
    let credit = |b: &Bucket| b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate;
    map.retain(|_, b| credit(b) < cap);
    if map.len() > target {
        map.retain(|_, b| credit(b) < 1.0);
    }
    let mut excess = map.len().saturating_sub(target);
    if excess > 0 {
        map.retain(|_, _| {
            let keep = excess == 0;
            excess = excess.saturating_sub(1);
            keep
        });
    }
}

impl Limiter {
    /// Buckets held now, over every shard.
    pub fn buckets(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len()).sum()
    }
}

/// The network a client is limited as: /24 for IPv4, /56 for IPv6.
pub fn client_net(ip: IpAddr) -> IpNet {
    let prefix = if ip.is_ipv4() { 24 } else { 56 };
    IpNet::new(ip, prefix).expect("valid prefix").trunc()
}

/// The bucket kind of a response we built (it echoes the question), and
/// the lowercased question name in `name_buf`. `None` for a header-only answer.
pub fn kind_of<'a>(response: &[u8], name_buf: &'a mut [u8; 256]) -> ResponseKind<'a> {
    let rcode = response.get(3).map_or(0, |b| b & 0x0f);
    let qdcount = response.get(4..6).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    if rcode == 3 {
        return ResponseKind::NxDomain;
    }
    if rcode != 0 || qdcount == 0 {
        return ResponseKind::Error;
    }
    // The question name is uncompressed in our own responses.
    let mut i = 12;
    let mut n = 0;
    while let Some(&len) = response.get(i) {
        let end = i + 1 + len as usize;
        if len == 0 || len & 0xc0 != 0 || end > response.len() || n + 1 + len as usize > name_buf.len() {
            break;
        }
        for &b in &response[i..end] {
            name_buf[n] = b.to_ascii_lowercase();
            n += 1;
        }
        i = end;
    }
    let qtype = response.get(i + 1..i + 3).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    ResponseKind::Answer(&name_buf[..n], qtype)
}

/// The slipped form of a response: header and question only, TC set.
pub fn truncated(response: &[u8]) -> Vec<u8> {
    let mut i = 12;
    while let Some(&len) = response.get(i) {
        if len == 0 {
            i += 1;
            break;
        }
        i += 1 + len as usize;
    }
    let end = (i + 4).min(response.len());
    let mut out = response[..end].to_vec();
    if out.len() >= 12 {
        out[2] |= 0x02; // TC
        out[6..12].fill(0); // no answer, authority or additional records
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limiter(rate: u32, slip: u32) -> Limiter {
        Limiter::new(RrlConfig { enabled: true, responses_per_second: rate, window: 1, slip, ..Default::default() })
    }

    #[test]
    fn identical_responses_are_limited_per_network_and_slip() {
        let l = limiter(10, 2);
        let t0 = Instant::now();
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        let same_net: IpAddr = "198.51.100.200".parse().unwrap();
        let kind = ResponseKind::Answer(b"\x03www\x04test\x00", 1);
        let sent = (0..100).filter(|_| l.check(a, false, kind, t0) == Treatment::Send).count();
        assert_eq!(sent, 10, "a burst of the bucket size");
        assert_ne!(l.check(same_net, false, kind, t0), Treatment::Send, "the /24 shares the bucket");
        let verdicts: Vec<Treatment> = (0..4).map(|_| l.check(a, false, kind, t0)).collect();
        assert!(verdicts.contains(&Treatment::Slip) && verdicts.contains(&Treatment::Drop), "{verdicts:?}");
        // Another client and another name are not limited.
        assert_eq!(l.check("203.0.113.9".parse().unwrap(), false, kind, t0), Treatment::Send);
        assert_eq!(l.check(a, false, ResponseKind::Answer(b"\x01x\x00", 1), t0), Treatment::Send);
        // Credit comes back with time.
        assert_eq!(l.check(a, false, kind, t0 + Duration::from_millis(200)), Treatment::Send);
    }

    /// Random names under a wildcard, each its own bucket, all within one
    /// window (so none has refilled): the table stays bounded.
    #[test]
    fn a_flood_of_distinct_names_keeps_the_bucket_table_bounded() {
        let l = limiter(20, 0);
        let t0 = Instant::now();
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        let mut name = *b"\x08xxxxxxxx\x04wild\x04test\x00";
        let mut most = 0;
        for i in 0..(MAX_BUCKETS * 2) as u64 {
            name[1..9].copy_from_slice(&(i as u32).to_be_bytes().repeat(2));
            let now = t0 + Duration::from_micros(i);
            assert_eq!(l.check(a, false, ResponseKind::Answer(&name, 1), now), Treatment::Send);
            if i % 1024 == 0 {
                most = most.max(l.buckets());
                assert!(most <= MAX_BUCKETS, "{most} buckets after {i} names");
            }
        }
        assert!(most > MAX_BUCKETS / 2, "the flood filled the table: {most}");
    }

    #[test]
    fn ecs_from_configured_resolvers_and_disabled_are_never_limited() {
        let mut cfg = RrlConfig { enabled: true, responses_per_second: 1, window: 1, ..Default::default() };
        cfg.ecs_resolvers.push("127.0.0.0/8".parse().unwrap());
        let l = Limiter::new(cfg);
        let t0 = Instant::now();
        let r: IpAddr = "127.0.0.1".parse().unwrap();
        let kind = ResponseKind::Error;
        assert!((0..50).all(|_| l.check(r, true, kind, t0) == Treatment::Send));
        assert_eq!(l.check(r, false, kind, t0), Treatment::Send);
        assert_ne!(l.check(r, false, kind, t0), Treatment::Send);
        let off = Limiter::new(RrlConfig::default());
        assert!((0..50).all(|_| off.check(r, false, kind, t0) == Treatment::Send));
    }
}
