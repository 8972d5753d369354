//! `nearest`: order by great-circle distance from the client to each region.

use smallvec::{smallvec, SmallVec};

use super::chain::{Ctx, Outcome, Tiers};
use super::RegionId;

/// Mean Earth radius (IUGG), km.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Haversine distance between two (lat, lon) points in degrees.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1) = (a.0.to_radians(), a.1.to_radians());
    let (la2, lo2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2) + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

pub fn apply(tiers: Tiers, ctx: &Ctx) -> Outcome {
    let loc = ctx.client.location.as_ref();
    let scope = Some(loc.map_or(0, |l| l.network.prefix_len()));
    let Some(client) = loc.and_then(|l| l.coords) else {
        return Outcome { tiers, scope, note: ctx.note(|| "client coordinates unknown; order unchanged".into()) };
    };
    let tiers = order_by_distance(tiers, ctx, client);
    let note = ctx.note(|| format!("client at {:.2},{:.2}: {}", client.0, client.1, ctx.distances(&tiers, client)));
    Outcome { tiers, scope, note }
}

/// Within each tier, nearest first; equal distances stay together, regions
/// without a location go last.
pub fn order_by_distance(tiers: Tiers, ctx: &Ctx, client: (f64, f64)) -> Tiers {
    let mut out = Tiers::new();
    for tier in tiers {
        let mut keyed: SmallVec<[(f64, RegionId); 4]> = tier
            .into_iter()
            .map(|id| (ctx.regions[id].location.map_or(f64::INFINITY, |l| distance_km(client, l)), id))
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        split_equal(&mut out, keyed);
    }
    out
}

/// Push regions as tiers, grouping equal keys.
pub fn split_equal<K: PartialEq>(out: &mut Tiers, keyed: impl IntoIterator<Item = (K, RegionId)>) {
    let mut last: Option<K> = None;
    for (k, id) in keyed {
        match (&last, out.last_mut()) {
            (Some(prev), Some(tier)) if *prev == k => tier.push(id),
            _ => out.push(smallvec![id]),
        }
        last = Some(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_known_distances() {
        // Dublin to Ashburn, roughly 5,440 km; Tokyo to Dublin, roughly 9,600 km.
        let d = distance_km((53.3, -6.3), (39.0, -77.5));
        assert!((5300.0..5600.0).contains(&d), "{d}");
        let d = distance_km((35.7, 139.7), (53.3, -6.3));
        assert!((9400.0..9800.0).contains(&d), "{d}");
        assert_eq!(distance_km((1.0, 2.0), (1.0, 2.0)), 0.0);
    }
}
