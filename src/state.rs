//! The one shared thing: an immutable snapshot of everything a query reads,
//! swapped atomically on reload (and, later, on health transitions).

use arc_swap::ArcSwap;
use std::sync::Arc;

use crate::zone::Zones;

/// Everything the query path reads. Built completely off the query path.
#[derive(Debug, Default)]
pub struct State {
    pub zones: Zones,
}

/// The swappable handle: queries `load()` it, reload and health `store()` a new one.
pub type SharedState = Arc<ArcSwap<State>>;

pub fn shared(state: State) -> SharedState {
    Arc::new(ArcSwap::from_pointee(state))
}

use crate::config::{ConfigError, ServerConfig};

impl State {
    /// Build a complete snapshot from the configuration; nothing is served
    /// from it until it has loaded without error.
    pub fn load(cfg: &ServerConfig) -> Result<State, ConfigError> {
        let zones = crate::zone::load_zones(&cfg.zones)?;
        Ok(State { zones })
    }
}
