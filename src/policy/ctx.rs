//! What a step sees (`Ctx`) and what it hands back (`StepOutput`): the one
//! interface between `chain.rs` and the step files.

use super::distance::distance_km;
use super::scopes::GeoScopes;
use super::tiers::Tiers;
use super::{Client, HealthView, Region, RegionId};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// What a step sees.
pub struct Ctx<'a> {
    pub regions: &'a [Region],
    pub client: &'a Client,
    pub health: &'a HealthView,
    /// Whether an explanation is being recorded (notes cost formatting).
    pub explain: bool,
    /// Widest scopes of the snapshot's geo steps, when built.
    pub scopes: Option<&'a GeoScopes>,
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

    /// The region's reported load, `None` when unknown or stale.
    pub fn load(&self, id: RegionId) -> Option<f64> {
        let r = &self.regions[id];
        self.health.load(&r.name, r.load_max_age)
    }

    /// A number in [0, 1) fixed for the client's subnet and `salt`, and the
    /// subnet prefix it is fixed for (the ECS scope of a decision made by it).
    pub fn client_unit(&self, salt: &str) -> (f64, u8) {
        let prefix = super::sticky::key_prefix(self.client.addr, self.client.prefix);
        let key = super::sticky::subnet_key(self.client.addr, prefix);
        let h = xxh3_64_with_seed(&key, xxh3_64_with_seed(salt.as_bytes(), 0x6c6f_6164));
        ((h >> 11) as f64 / (1u64 << 53) as f64, prefix)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixtures::{londoner, regions, AP_NORTHEAST, EU_WEST, US_EAST};
    use smallvec::smallvec;
    use std::time::{Duration, Instant};

    #[test]
    fn weight_is_scaled_by_the_ramp_and_notes_are_formatted_only_when_explaining() {
        let (mut rs, client) = (regions(), londoner());
        rs[AP_NORTHEAST].location = None;
        let mut health = HealthView::all_up();
        health.set_ramp("eu-west", Instant::now(), Duration::from_secs(3600));
        let quiet = Ctx { regions: &rs, client: &client, health: &health, explain: false, scopes: None };
        assert_eq!(quiet.weight(US_EAST), 50.0);
        // Just returned: the floor share of its configured 30.
        assert!(
            (quiet.weight(EU_WEST) - 30.0 * crate::health::view::RAMP_FLOOR).abs() < 1e-9,
            "{}",
            quiet.weight(EU_WEST)
        );
        assert_eq!(quiet.note(|| unreachable!("formatted without an explanation")), "");
        let ctx = Ctx { explain: true, ..quiet };
        assert_eq!(ctx.note(|| "why".into()), "why");
        assert_eq!(ctx.names(&[EU_WEST, US_EAST]), "eu-west, us-east");
        let tiers: Tiers = smallvec![smallvec![EU_WEST], smallvec![AP_NORTHEAST]];
        assert_eq!(ctx.distances(&tiers, (53.3, -6.3)), "eu-west 0 km, ap-northeast (no location)");
    }
}
