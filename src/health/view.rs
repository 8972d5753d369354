//! The immutable picture of availability the policy chain reads. Rebuilt
//! whole and swapped in on every transition; never locked on the query path.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Share a returning region starts from during slow start.
pub const RAMP_FLOOR: f64 = 0.05;

/// The identity of one availability picture: its allocation. A cache keeps a
/// `Weak` of it, which keeps the allocation (not a value: there is none) from
/// being reused, so the same address always means the same picture. No
/// process-wide counter needed.
#[derive(Debug, Default)]
pub struct Availability;

fn fresh_availability() -> Arc<Availability> {
    Arc::new(Availability)
}

#[derive(Debug, Clone)]
pub struct HealthView {
    /// Changes whenever `down`, `down_addrs` or `ramp` may have changed (not
    /// for RTT updates): what cached GSLB decisions are keyed on.
    availability: Arc<Availability>,
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

impl Default for HealthView {
    fn default() -> Self {
        HealthView {
            availability: fresh_availability(),
            down: HashSet::new(),
            down_addrs: HashMap::new(),
            ramp: HashMap::new(),
            rtt_ms: HashMap::new(),
        }
    }
}

impl HealthView {
    pub fn all_up() -> HealthView {
        HealthView::default()
    }

    pub fn with_down(regions: impl IntoIterator<Item = String>) -> HealthView {
        HealthView { down: regions.into_iter().collect(), ..Default::default() }
    }

    pub fn set_down(&mut self, region: &str) {
        self.availability = fresh_availability();
        self.down.insert(region.to_string());
    }

    pub fn set_addr_down(&mut self, region: &str, addr: IpAddr) {
        self.availability = fresh_availability();
        self.down_addrs.entry(region.to_string()).or_default().insert(addr);
    }

    pub fn set_ramp(&mut self, region: &str, since: Instant, over: Duration) {
        self.availability = fresh_availability();
        self.ramp.insert(region.to_string(), (since, over));
    }

    /// The identity of this view's availability (see the field).
    pub fn availability(&self) -> &Arc<Availability> {
        &self.availability
    }

    /// Whether the two views are one availability picture (see `Availability`).
    pub fn same_availability(&self, other: &HealthView) -> bool {
        Arc::ptr_eq(&self.availability, &other.availability)
    }

    /// Take `previous`'s availability identity when the two say the same
    /// about availability, so caches survive a rebuild that changed nothing
    /// (or only RTTs). Returns whether the views are wholly equal (RTTs too).
    pub fn continue_from(&mut self, previous: &HealthView) -> bool {
        if self.down != previous.down || self.down_addrs != previous.down_addrs || self.ramp != previous.ramp {
            return false;
        }
        self.availability = Arc::clone(&previous.availability);
        self.rtt_ms == previous.rtt_ms
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The availability identity survives a rebuild that only moved RTTs, and
    /// changes with anything a cached decision depends on.
    #[test]
    fn availability_identity_follows_what_decisions_read() {
        let mut first = HealthView::with_down(["eu".to_string()]);
        first.set_rtt("us", 10.0);
        assert!(!first.same_availability(&HealthView::with_down(["eu".to_string()])), "fresh per view");

        let mut same = HealthView::with_down(["eu".to_string()]);
        same.set_rtt("us", 10.0);
        assert!(same.continue_from(&first), "equal views");
        assert!(same.same_availability(&first));

        let mut rtt_moved = HealthView::with_down(["eu".to_string()]);
        rtt_moved.set_rtt("us", 12.5);
        assert!(!rtt_moved.continue_from(&first), "RTTs differ: publish");
        assert!(rtt_moved.same_availability(&first), "but availability is the same");

        let mut more_down = HealthView::with_down(["eu".to_string()]);
        more_down.set_addr_down("us", "192.0.2.1".parse().unwrap());
        assert!(!more_down.continue_from(&first));
        assert!(!more_down.same_availability(&first));

        let mut ramping = HealthView::with_down(["eu".to_string()]);
        ramping.set_rtt("us", 10.0);
        ramping.set_ramp("ap", Instant::now(), Duration::from_secs(30));
        assert!(!ramping.continue_from(&first));
        assert!(!ramping.same_availability(&first));
    }
}
