//! What a query reads: an immutable snapshot of zones, GeoIP, health and the
//! prebuilt-answer index. The server owns the one cell that holds the
//! current snapshot (`server::Published`); this file only says how a
//! snapshot is made and how each kind of change makes the next one.

use std::sync::Arc;

use super::identity::Identity;
use super::FastIndex;
use crate::config::{ConfigError, ServerConfig};
use crate::geo::GeoDb;
use crate::health::HealthView;
use crate::policy::GeoScopes;
use crate::wire::server_cookie::Cookies;
use crate::zone::Zones;

/// Everything the query path reads. Built completely off the query path.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub zones: Arc<Zones>,
    /// Client locations; `None` when no database is configured or present.
    pub geo: Option<Arc<GeoDb>>,
    /// Availability, as the health monitor last published it.
    pub health: Arc<HealthView>,
    /// Prebuilt answers for the UDP fast path (built from `zones`).
    pub fast: Arc<FastIndex>,
    /// What NSID and CHAOS `id.server` say (from meridian.toml).
    pub identity: Arc<Identity>,
    /// Server cookie secrets (from meridian.toml) and their clock.
    pub cookies: Arc<Cookies>,
    /// Widest ECS scopes of the geo steps (built from `zones` and `geo`).
    pub scopes: Arc<GeoScopes>,
}

impl Snapshot {
    /// Build a complete snapshot from the configuration, with every region
    /// up; nothing is served from it until it has loaded without error.
    pub fn load(cfg: &ServerConfig) -> Result<Snapshot, ConfigError> {
        let zones = crate::zone::load_zones(&cfg.zones)?;
        for w in zones.zones.iter().flat_map(|z| &z.warnings) {
            tracing::warn!("{w}");
        }
        let geo = load_geo(cfg)?;
        let cookies = Cookies::new(cfg.cookies.secret, cfg.cookies.previous_secret);
        let base = Snapshot {
            identity: Arc::new(Identity::from_config(cfg)),
            cookies: Arc::new(cookies),
            ..Default::default()
        };
        Ok(base.with_zones(Arc::new(zones), geo))
    }

    /// New configuration: these zones and GeoIP, this snapshot's health, and
    /// the fast index built for them (the expensive part).
    pub fn with_zones(&self, zones: Arc<Zones>, geo: Option<Arc<GeoDb>>) -> Snapshot {
        let scopes = GeoScopes::build(geo.as_deref(), zones.zones.iter().flat_map(|z| z.services().map(|(_, s)| &**s)));
        let mut next = Snapshot {
            zones,
            geo,
            health: Arc::clone(&self.health),
            fast: Default::default(),
            identity: Arc::clone(&self.identity),
            cookies: Arc::clone(&self.cookies),
            scopes: Arc::new(scopes),
        };
        // The index holds static answers only (services are decided per
        // query), so it does not depend on the health it is built beside.
        next.fast = Arc::new(FastIndex::build(&next));
        next
    }

    /// New availability: this snapshot with `health` instead. Cheap (shares
    /// everything else), so it may run inside a compare-and-swap retry.
    pub fn with_health(&self, health: Arc<HealthView>) -> Snapshot {
        Snapshot {
            zones: Arc::clone(&self.zones),
            geo: self.geo.clone(),
            health,
            fast: Arc::clone(&self.fast),
            identity: Arc::clone(&self.identity),
            cookies: Arc::clone(&self.cookies),
            scopes: Arc::clone(&self.scopes),
        }
    }
}

/// The shipped demo: `zones/` and `geoip/demo.mmdb` (unit tests' fixture).
#[cfg(test)]
pub(crate) fn demo() -> Snapshot {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg =
        ServerConfig { zones: root.join("zones"), geoip: Some(root.join("geoip/demo.mmdb")), ..Default::default() };
    let mut state = Snapshot::load(&cfg).unwrap();
    // A fixed clock: answers to queries with cookies compare byte for byte.
    state.cookies = Arc::new(Cookies::default().with_clock(|| 1_700_000_000));
    state
}

/// Open the configured GeoIP database(s); errors name the file.
fn load_geo(cfg: &ServerConfig) -> Result<Option<Arc<GeoDb>>, ConfigError> {
    let (path, required) = cfg.geoip_path();
    if !required && !path.exists() {
        tracing::warn!(file = %path.display(), "no GeoIP database: client locations are unknown");
        return Ok(None);
    }
    let err = |e: crate::geo::GeoError| {
        use crate::geo::GeoError::*;
        let file = match &e {
            Read { path, .. } | Invalid { path, .. } | Csv { path, .. } | Write { path, .. } => path.clone(),
        };
        // The error's text starts with the file name; ConfigError prints it once.
        let text = e.to_string();
        let prefix = format!("{}: ", file.display());
        let message = text.strip_prefix(&prefix).unwrap_or(&text).to_string();
        ConfigError { file, line: 0, col: 0, message }
    };
    let db = GeoDb::open(&path, cfg.geoip_asn.as_deref()).map_err(err)?;
    Ok(Some(Arc::new(db)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each constructor changes its part only: a new configuration keeps the
    /// health it is built from, and a new health keeps zones, GeoIP and the
    /// index (the same index, not a rebuilt one).
    #[test]
    fn each_change_replaces_its_part_only() {
        let base = demo();
        let down = Arc::new(HealthView::with_down(["eu-west".to_string()]));
        let health_changed = base.with_health(Arc::clone(&down));
        assert!(Arc::ptr_eq(&health_changed.health, &down));
        assert!(Arc::ptr_eq(&health_changed.zones, &base.zones));
        assert!(Arc::ptr_eq(&health_changed.fast, &base.fast));
        assert!(Arc::ptr_eq(&health_changed.scopes, &base.scopes));
        assert!(!base.scopes.is_empty(), "the demo's geo steps have widest-scope runs");
        assert_eq!(health_changed.geo.is_some(), base.geo.is_some());

        let zones = Arc::new(Zones::default());
        let zones_changed = health_changed.with_zones(Arc::clone(&zones), None);
        assert!(Arc::ptr_eq(&zones_changed.health, &down), "health is not configuration");
        assert!(Arc::ptr_eq(&zones_changed.zones, &zones));
        assert!(zones_changed.geo.is_none());
        assert!(zones_changed.fast.is_empty() && !base.fast.is_empty(), "index rebuilt for the new zones");
    }
}
