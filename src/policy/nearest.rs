//! `nearest`: order by great-circle distance from the client to each region.

use super::ctx::{Ctx, StepOutput};
use super::distance::order_by_distance;
use super::tiers::Tiers;

pub fn apply(tiers: Tiers, ctx: &Ctx) -> StepOutput {
    let loc = ctx.client.location.as_ref();
    let scope = Some(loc.map_or(0, |l| l.network.prefix_len()));
    let Some(client) = loc.and_then(|l| l.coords) else {
        return StepOutput { tiers, scope, note: ctx.note(|| "client coordinates unknown; order unchanged".into()) };
    };
    let tiers = order_by_distance(tiers, ctx.regions, client);
    let note = ctx.note(|| format!("client at {:.2},{:.2}: {}", client.0, client.1, ctx.distances(&tiers, client)));
    StepOutput { tiers, scope, note }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixtures::{client, located, londoner, regions, AP_NORTHEAST, EU_WEST, US_EAST};
    use crate::policy::{Client, HealthView, RegionId};
    use smallvec::smallvec;

    fn run(client: &Client, tiers: Tiers) -> (Vec<Vec<RegionId>>, Option<u8>, String) {
        let (rs, health) = (regions(), HealthView::all_up());
        let out = apply(tiers, &Ctx { regions: &rs, client, health: &health, explain: true, scopes: None });
        (out.tiers.iter().map(|t| t.to_vec()).collect(), out.scope, out.note)
    }

    #[test]
    fn nearest_first_and_the_scope_is_the_database_network() {
        let (tiers, scope, note) = run(&londoner(), smallvec![smallvec![US_EAST, EU_WEST, AP_NORTHEAST]]);
        assert_eq!(tiers, vec![vec![EU_WEST], vec![US_EAST], vec![AP_NORTHEAST]]);
        assert_eq!(scope, Some(16));
        assert!(note.starts_with("client at 51.50,-0.10: eu-west 4"), "{note}");
        let sydney = client("10.6.0.0", 24, Some(located("10.6.0.0/18", "OC", (-33.9, 151.2))));
        let (tiers, scope, _) = run(&sydney, smallvec![smallvec![US_EAST, EU_WEST, AP_NORTHEAST]]);
        assert_eq!(tiers, vec![vec![AP_NORTHEAST], vec![US_EAST], vec![EU_WEST]]);
        assert_eq!(scope, Some(18));
    }

    #[test]
    fn earlier_tiers_stay_ahead_of_nearer_regions() {
        let (tiers, _, _) = run(&londoner(), smallvec![smallvec![AP_NORTHEAST, US_EAST], smallvec![EU_WEST]]);
        assert_eq!(tiers, vec![vec![US_EAST], vec![AP_NORTHEAST], vec![EU_WEST]]);
    }

    #[test]
    fn without_coordinates_the_order_is_unchanged() {
        // No database record: the order holds for everyone (scope 0).
        let (tiers, scope, _) = run(&client("192.0.2.0", 24, None), smallvec![smallvec![AP_NORTHEAST, US_EAST]]);
        assert_eq!((tiers, scope), (vec![vec![AP_NORTHEAST, US_EAST]], Some(0)));
        // A record without coordinates: still unchanged, but only as far as its network.
        let mut loc = located("10.9.0.0/16", "EU", (0.0, 0.0));
        loc.coords = None;
        let (tiers, scope, note) = run(&client("10.9.0.0", 24, Some(loc)), smallvec![smallvec![AP_NORTHEAST, US_EAST]]);
        assert_eq!((tiers, scope), (vec![vec![AP_NORTHEAST, US_EAST]], Some(16)));
        assert_eq!(note, "client coordinates unknown; order unchanged");
    }
}
