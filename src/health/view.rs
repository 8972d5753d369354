//! The immutable picture of availability the policy chain reads. Rebuilt
//! whole and swapped in on every transition; never locked on the query path.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Share a returning region starts from during slow start.
pub const RAMP_FLOOR: f64 = 0.05;

#[derive(Debug, Clone, Default)]
pub struct HealthView {
    /// Regions withdrawn (failed, forced down or drained).
    down: HashSet<String>,
    /// Endpoints (answered addresses) withdrawn inside an available region,
    /// by region: looked up by `&str` on the query path, no key to build.
    down_addrs: HashMap<String, HashSet<IpAddr>>,
    /// Regions ramping back: (since, over).
    ramp: HashMap<String, (Instant, Duration)>,
    /// Lowest smoothed probe RTT of each region, ms.
    rtt_ms: HashMap<String, f64>,
}

impl HealthView {
    pub fn all_up() -> HealthView {
        HealthView::default()
    }

    pub fn with_down(regions: impl IntoIterator<Item = String>) -> HealthView {
        HealthView { down: regions.into_iter().collect(), ..Default::default() }
    }

    pub fn set_down(&mut self, region: &str) {
        self.down.insert(region.to_string());
    }

    pub fn set_addr_down(&mut self, region: &str, addr: IpAddr) {
        self.down_addrs.entry(region.to_string()).or_default().insert(addr);
    }

    pub fn set_ramp(&mut self, region: &str, since: Instant, over: Duration) {
        self.ramp.insert(region.to_string(), (since, over));
    }

    pub fn set_rtt(&mut self, region: &str, ms: f64) {
        self.rtt_ms.insert(region.to_string(), ms);
    }

    pub fn is_up(&self, region: &str) -> bool {
        !self.down.contains(region)
    }

    pub fn addr_up(&self, region: &str, addr: IpAddr) -> bool {
        self.down_addrs.get(region).is_none_or(|down| !down.contains(&addr))
    }

    pub fn any_down<'a>(&self, mut regions: impl Iterator<Item = &'a str>) -> bool {
        !self.down.is_empty() && regions.any(|r| self.down.contains(r))
    }

    /// Whether any region is in slow start (answers then depend on a client
    /// hash and the clock, so decisions must not be cached).
    pub fn ramping(&self) -> bool {
        !self.ramp.is_empty()
    }

    /// Slow-start factor in [RAMP_FLOOR, 1]: 1 when not ramping (without
    /// reading the clock: this is on the query path).
    pub fn ramp(&self, region: &str) -> f64 {
        if self.ramp.is_empty() || !self.ramp.contains_key(region) {
            return 1.0;
        }
        self.ramp_at(region, Instant::now())
    }

    pub fn ramp_at(&self, region: &str, now: Instant) -> f64 {
        match self.ramp.get(region) {
            None => 1.0,
            Some((since, over)) => {
                let f = now.saturating_duration_since(*since).as_secs_f64() / over.as_secs_f64().max(1e-3);
                f.clamp(RAMP_FLOOR, 1.0)
            }
        }
    }

    pub fn rtt_ms(&self, region: &str) -> Option<f64> {
        self.rtt_ms.get(region).copied()
    }

    pub fn down_regions(&self) -> impl Iterator<Item = &String> {
        self.down.iter()
    }
}
