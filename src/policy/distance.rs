//! Great-circle distances, and tiers ordered by them (`nearest`, and the
//! fallback of `latency` where it has no number).

use smallvec::SmallVec;

use super::tiers::{split_equal, Tiers};
use super::{Region, RegionId};

/// Mean Earth radius (IUGG), km.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Haversine distance between two (lat, lon) points in degrees.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1) = (a.0.to_radians(), a.1.to_radians());
    let (la2, lo2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2) + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Within each tier, nearest to `client` first; equal distances stay
/// together, regions without a location go last.
pub fn order_by_distance(tiers: Tiers, regions: &[Region], client: (f64, f64)) -> Tiers {
    let mut out = Tiers::new();
    for tier in tiers {
        let mut keyed: SmallVec<[(f64, RegionId); 4]> = tier
            .into_iter()
            .map(|id| (regions[id].location.map_or(f64::INFINITY, |l| distance_km(client, l)), id))
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        split_equal(&mut out, keyed);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use smallvec::smallvec;

    #[test]
    fn haversine_known_distances() {
        // Dublin to Ashburn, roughly 5,440 km; Tokyo to Dublin, roughly 9,600 km.
        let d = distance_km((53.3, -6.3), (39.0, -77.5));
        assert!((5300.0..5600.0).contains(&d), "{d}");
        let d = distance_km((35.7, 139.7), (53.3, -6.3));
        assert!((9400.0..9800.0).contains(&d), "{d}");
        assert_eq!(distance_km((1.0, 2.0), (1.0, 2.0)), 0.0);
        // Antipodes: half the circumference, not NaN from rounding past 1.
        let d = distance_km((0.0, 0.0), (0.0, 180.0));
        assert!((d - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6, "{d}");
    }

    #[test]
    fn nearest_first_ties_together_unlocated_last_within_each_tier() {
        let at = |name: &str, loc: Option<(f64, f64)>| Region::unprobed(name, vec![], loc, 1);
        let regions = vec![
            at("tokyo", Some((35.7, 139.7))),
            at("nowhere", None),
            at("dublin", Some((53.3, -6.3))),
            at("dublin-2", Some((53.3, -6.3))),
            at("ashburn", Some((39.0, -77.5))),
        ];
        let london = (51.5, -0.1);
        let out = order_by_distance(smallvec![smallvec![0, 1, 2, 3], smallvec![4]], &regions, london);
        let got: Vec<Vec<RegionId>> = out.iter().map(|t| t.to_vec()).collect();
        // Ashburn is nearer than Tokyo but in a later tier: it stays there.
        assert_eq!(got, vec![vec![2, 3], vec![0], vec![1], vec![4]]);
    }
}
