//! The one cell holding the snapshot queries read. The server owns it and is
//! its only writer: a reload and the health monitor (through the callback
//! `health_sink` hands it) each replace their own part, with a
//! compare-and-swap so neither undoes the other.

use arc_swap::{ArcSwap, Guard};
use std::ops::Deref;
use std::sync::Arc;

use crate::answer::Snapshot;
use crate::health::{HealthView, Publish, RegionTargets};
use crate::zone::Zones;

pub struct Published {
    current: ArcSwap<Snapshot>,
}

impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published").finish_non_exhaustive()
    }
}

impl Published {
    pub fn new(first: Snapshot) -> Arc<Published> {
        Arc::new(Published { current: ArcSwap::from_pointee(first) })
    }

    /// The current snapshot, for one query or one request.
    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    pub fn load_full(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// A receiver thread's own cached reference (one atomic load to check
    /// it is current, where `load` takes and returns a debt slot).
    pub(super) fn cache(self: &Arc<Self>) -> arc_swap::Cache<Reader, Arc<Snapshot>> {
        arc_swap::Cache::new(Reader(Arc::clone(self)))
    }

    /// A new configuration: `loaded`'s zones, GeoIP and index with the
    /// health current at the swap. (`loaded` is built, index and all, before
    /// the swap: the swap's closure may run again if health publishes meanwhile.)
    pub fn publish_config(&self, loaded: &Snapshot) {
        self.current.rcu(|cur| loaded.with_health(Arc::clone(&cur.health)));
    }

    /// A new health view: the current zones, GeoIP and index with `view`.
    pub fn publish_health(&self, view: Arc<HealthView>) {
        self.current.rcu(|cur| cur.with_health(Arc::clone(&view)));
    }

    /// The callback the health monitor publishes through.
    pub fn health_sink(self: &Arc<Self>) -> Publish {
        let this = Arc::clone(self);
        Box::new(move |view| this.publish_health(view))
    }
}

/// What `arc_swap::Cache` reads through; private to the server, so the
/// cell's writes stay here.
pub(super) struct Reader(Arc<Published>);

impl Deref for Reader {
    type Target = ArcSwap<Snapshot>;
    fn deref(&self) -> &ArcSwap<Snapshot> {
        &self.0.current
    }
}

/// What the health monitor judges: every region definition of `zones`, in
/// order (it judges a region by the first definition of its name).
pub fn health_targets(zones: &Zones) -> Vec<RegionTargets> {
    let regions = zones.zones.iter().flat_map(|z| &z.regions);
    regions
        .map(|r| RegionTargets {
            name: r.name.clone(),
            endpoints: r.endpoints.clone(),
            min_healthy: r.min_healthy,
            slow_start: r.slow_start,
        })
        .collect()
}

/// Which zone, region and address each probe target decides, for the
/// probe metrics' labels (`Metrics::set_probe_owners`).
pub fn probe_owners(zones: &Zones) -> Vec<(String, crate::metrics::ProbeOwner)> {
    let mut out = Vec::new();
    for z in &zones.zones {
        for r in &z.regions {
            for ep in &r.endpoints {
                if let Some(t) = &ep.target {
                    let owner = crate::metrics::ProbeOwner {
                        zone: z.origin.to_string(),
                        region: r.name.clone(),
                        address: ep.addr.to_string(),
                    };
                    out.push((t.label(), owner));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::answer::snapshot::demo;

    /// A reload loaded before a health publish and swapped in after it keeps
    /// that health; a health publish after a reload keeps the new zones.
    #[test]
    fn config_and_health_publishes_keep_each_other() {
        let cell = Published::new(demo());
        let loaded = Snapshot::default().with_zones(Arc::new(Zones::default()), None);
        let down = Arc::new(HealthView::with_down(["eu-west".to_string()]));
        (cell.health_sink())(Arc::clone(&down));
        cell.publish_config(&loaded);
        let now = cell.load_full();
        assert!(Arc::ptr_eq(&now.health, &down), "the reload kept the published health");
        assert!(Arc::ptr_eq(&now.zones, &loaded.zones) && Arc::ptr_eq(&now.fast, &loaded.fast));

        let up = Arc::new(HealthView::all_up());
        cell.publish_health(Arc::clone(&up));
        let now = cell.load_full();
        assert!(Arc::ptr_eq(&now.health, &up));
        assert!(Arc::ptr_eq(&now.zones, &loaded.zones), "the health publish kept the reloaded zones");
    }

    /// The monitor is told every region definition, with its endpoints' probes.
    #[test]
    fn health_targets_are_the_zones_regions() {
        let snapshot = demo();
        let targets = health_targets(&snapshot.zones);
        let regions: Vec<_> = snapshot.zones.zones.iter().flat_map(|z| &z.regions).collect();
        assert_eq!(targets.len(), regions.len());
        for (t, r) in targets.iter().zip(regions) {
            assert_eq!(
                (&t.name, &t.endpoints, t.min_healthy, t.slow_start),
                (&r.name, &r.endpoints, r.min_healthy, r.slow_start)
            );
        }
    }
}
