//! What a step sees (`Ctx`) and what it hands back (`StepOutput`): the one
//! interface between `chain.rs` and the step files.

use super::distance::distance_km;
use super::tiers::Tiers;
use super::{Client, HealthView, Region, RegionId};

/// What a step sees.
pub struct Ctx<'a> {
    pub regions: &'a [Region],
    pub client: &'a Client,
    pub health: &'a HealthView,
    /// Whether an explanation is being recorded (notes cost formatting).
    pub explain: bool,
}

impl Ctx<'_> {
    /// A step's note, formatted only when someone will read it.
    pub fn note(&self, f: impl FnOnce() -> String) -> String {
        if self.explain {
            f()
        } else {
            String::new()
        }
    }

    /// The weight a selection step uses: configured weight, scaled down while
    /// the region ramps back after an outage (slow start).
    pub fn weight(&self, id: RegionId) -> f64 {
        let r = &self.regions[id];
        f64::from(r.weight) * self.health.ramp(&r.name)
    }

    pub fn names(&self, ids: &[RegionId]) -> String {
        ids.iter().map(|id| self.regions[*id].name.as_str()).collect::<Vec<_>>().join(", ")
    }

    pub fn distances(&self, tiers: &Tiers, client: (f64, f64)) -> String {
        tiers
            .iter()
            .flatten()
            .map(|id| {
                let r = &self.regions[*id];
                match r.location {
                    Some(l) => format!("{} {:.0} km", r.name, distance_km(client, l)),
                    None => format!("{} (no location)", r.name),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What one step did: the candidates reordered, the ECS scope that order
/// holds for, and a note for `meridian explain`.
pub struct StepOutput {
    pub tiers: Tiers,
    /// The ECS scope this step's result supports; `None`: client-independent.
    pub scope: Option<u8>,
    pub note: String,
}
