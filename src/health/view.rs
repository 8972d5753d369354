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
    /// Load reports by region, each with when it was made: whether one is
    /// still fresh is the reader's question (`load`), asked with its own age.
    load: HashMap<String, LoadReports>,
}

/// What a region's load reports say: one pushed for the whole region, and
/// one per endpoint (probed or pushed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReports {
    pub region: Option<(f64, Instant)>,
    pub endpoints: Vec<(IpAddr, f64, Instant)>,
}

impl Default for HealthView {
    fn default() -> Self {
        HealthView {
            availability: fresh_availability(),
            down: HashSet::new(),
            down_addrs: HashMap::new(),
            ramp: HashMap::new(),
            rtt_ms: HashMap::new(),
            load: HashMap::new(),
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
        self.rtt_ms == previous.rtt_ms && self.load == previous.load
    }

    /// Record a load report made at `at`: for the whole region (`addr`
    /// `None`) or for one endpoint. Loads are not availability: decisions
    /// that read them are never cached.
    pub fn set_load(&mut self, region: &str, addr: Option<IpAddr>, value: f64, at: Instant) {
        let r = self.load.entry(region.to_string()).or_default();
        match addr {
            None => r.region = Some((value, at)),
            Some(a) => {
                r.endpoints.retain(|(x, _, _)| *x != a);
                r.endpoints.push((a, value, at));
            }
        }
    }

    /// A region's load: its region-wide report if fresh, else the mean of its
    /// fresh endpoint reports. `None` (unknown) when nothing is younger than
    /// `max_age`: a stale report says nothing about now.
    pub fn load(&self, region: &str, max_age: Duration) -> Option<f64> {
        if self.load.is_empty() {
            return None;
        }
        self.load_at(region, max_age, Instant::now())
    }

    pub fn load_at(&self, region: &str, max_age: Duration, now: Instant) -> Option<f64> {
        let r = self.load.get(region)?;
        let fresh = |at: &Instant| now.saturating_duration_since(*at) <= max_age;
        if let Some((v, _)) = r.region.filter(|(_, at)| fresh(at)) {
            return Some(v);
        }
        let fresh_eps: Vec<f64> = r.endpoints.iter().filter(|(_, _, at)| fresh(at)).map(|(_, v, _)| *v).collect();
        (!fresh_eps.is_empty()).then(|| fresh_eps.iter().sum::<f64>() / fresh_eps.len() as f64)
    }

    /// Every region's reports, for `/status`.
    pub fn load_reports(&self) -> impl Iterator<Item = (&String, &LoadReports)> {
        self.load.iter()
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

        let mut loaded = HealthView::with_down(["eu".to_string()]);
        loaded.set_rtt("us", 10.0);
        loaded.set_load("us", None, 50.0, Instant::now());
        assert!(!loaded.continue_from(&first), "a new load report is published");
        assert!(loaded.same_availability(&first), "but cached decisions do not read loads");
    }

    #[test]
    fn a_load_is_the_fresh_region_report_else_the_mean_of_fresh_endpoint_reports() {
        let t0 = Instant::now();
        let age = Duration::from_secs(10);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let mut v = HealthView::all_up();
        assert_eq!(v.load_at("eu", age, t0), None, "no report: unknown");
        v.set_load("eu", Some(a), 40.0, t0);
        v.set_load("eu", Some(b), 60.0, t0 + Duration::from_secs(8));
        assert_eq!(v.load_at("eu", age, t0 + Duration::from_secs(9)), Some(50.0));
        // a's report is now older than the age: only b's counts.
        assert_eq!(v.load_at("eu", age, t0 + Duration::from_secs(11)), Some(60.0));
        assert_eq!(v.load_at("eu", age, t0 + Duration::from_secs(19)), None, "every report stale: unknown");
        v.set_load("eu", Some(a), 10.0, t0 + Duration::from_secs(8));
        assert_eq!(v.load_at("eu", age, t0 + Duration::from_secs(9)), Some(35.0), "a report replaces the last");
        v.set_load("eu", None, 90.0, t0);
        assert_eq!(v.load_at("eu", age, t0 + Duration::from_secs(9)), Some(90.0), "the region's own report first");
        assert_eq!(v.load_at("eu", age, t0 + Duration::from_secs(11)), Some(35.0), "until it is stale");
    }
}
