//! The one shared thing: an immutable snapshot of everything a query reads,
//! swapped atomically on reload and on health transitions.

use arc_swap::ArcSwap;
use std::sync::Arc;

use crate::config::{ConfigError, ServerConfig};
use crate::geo::GeoDb;
use crate::health::HealthView;
use crate::zone::Zones;

/// Everything the query path reads. Built completely off the query path.
#[derive(Debug, Default)]
pub struct State {
    pub zones: Arc<Zones>,
    /// Client locations; `None` when no database is configured or present.
    pub geo: Option<Arc<GeoDb>>,
    /// Availability, rebuilt by the health monitor on every transition.
    pub health: Arc<HealthView>,
    /// Prebuilt answers for the UDP fast path (built from `zones`).
    pub fast: Arc<crate::answer::FastIndex>,
}

/// The swappable handle: queries `load()` it, reload and health `store()` a new one.
pub type SharedState = Arc<ArcSwap<State>>;

pub fn shared(state: State) -> SharedState {
    Arc::new(ArcSwap::from_pointee(state))
}

impl State {
    /// Build a complete snapshot from the configuration; nothing is served
    /// from it until it has loaded without error.
    pub fn load(cfg: &ServerConfig) -> Result<State, ConfigError> {
        let zones = crate::zone::load_zones(&cfg.zones)?;
        let geo = load_geo(cfg)?;
        let mut state =
            State { zones: Arc::new(zones), geo, health: Arc::new(HealthView::all_up()), fast: Default::default() };
        state.fast = Arc::new(crate::answer::FastIndex::build(&state));
        Ok(state)
    }
}

/// The shipped demo: `zones/` and `geoip/demo.mmdb` (unit tests' fixture).
#[cfg(test)]
pub(crate) fn demo() -> State {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg =
        ServerConfig { zones: root.join("zones"), geoip: Some(root.join("geoip/demo.mmdb")), ..Default::default() };
    State::load(&cfg).unwrap()
}

/// Open the configured GeoIP database(s); errors name the file.
pub fn load_geo(cfg: &ServerConfig) -> Result<Option<Arc<GeoDb>>, ConfigError> {
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
