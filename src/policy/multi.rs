//! `multi`: answer up to N addresses, taken from the ordered regions in
//! order. The step only records N; it is read by the chain's last stage,
//! selection, which lives here too: without `multi`, the first region with
//! addresses of the asked family answers with all of them.

use std::net::IpAddr;

use super::ctx::{Ctx, StepOutput};
use super::tiers::Tiers;
use super::{Family, RegionId};

pub fn apply(tiers: Tiers, n: usize, ctx: &Ctx) -> StepOutput {
    StepOutput { tiers, scope: None, note: ctx.note(|| format!("answer up to {n} addresses")) }
}

/// The regions answered (in answer order) and their addresses of `family`.
/// `multi`: the `multi` step's N, if the chain has one.
pub fn select(
    tiers: Tiers,
    multi: Option<usize>,
    family: Family,
    fail_open: bool,
    ctx: &Ctx,
) -> (Vec<RegionId>, Vec<IpAddr>) {
    let ordered = tiers.into_iter().flatten();
    // Withdrawn endpoints inside an available region are not answered, unless failing open.
    let usable = |id: RegionId| {
        let r = &ctx.regions[id];
        r.addresses_of(family).filter(move |a| fail_open || ctx.health.addr_up(&r.name, *a))
    };
    let mut chosen = Vec::new();
    let mut addresses: Vec<IpAddr> = Vec::new();
    match multi {
        Some(n) => {
            for id in ordered {
                if addresses.len() >= n {
                    break;
                }
                let before = addresses.len();
                addresses.extend(usable(id).take(n - before));
                if addresses.len() > before {
                    chosen.push(id);
                }
            }
        }
        None => {
            // The first region that has addresses of this family answers with all of them.
            for id in ordered {
                addresses.extend(usable(id));
                if !addresses.is_empty() {
                    chosen.push(id);
                    break;
                }
            }
        }
    }
    (chosen, addresses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixtures::{londoner, regions, AP_NORTHEAST, EU_WEST, US_EAST};
    use crate::policy::{HealthView, Region};
    use smallvec::smallvec;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The fixture's regions, us-east with a second IPv4 address and
    /// eu-west with IPv6 only.
    fn pools() -> Vec<Region> {
        let mut rs = regions();
        rs[US_EAST] = Region::unprobed("us-east", vec![ip("192.0.2.10"), ip("192.0.2.11")], None, 50);
        rs[EU_WEST] = Region::unprobed("eu-west", vec![ip("2001:db8:20::10")], None, 30);
        rs
    }

    fn pick(rs: &[Region], health: &HealthView, multi: Option<usize>, fail_open: bool) -> (Vec<RegionId>, Vec<IpAddr>) {
        let client = londoner();
        let ctx = Ctx { regions: rs, client: &client, health, explain: false, scopes: None };
        let tiers: Tiers = smallvec![smallvec![EU_WEST, US_EAST], smallvec![AP_NORTHEAST]];
        select(tiers, multi, Family::V4, fail_open, &ctx)
    }

    #[test]
    fn without_multi_the_first_region_with_the_family_answers_all_its_addresses() {
        let (chosen, addrs) = pick(&pools(), &HealthView::all_up(), None, false);
        // eu-west leads but has no IPv4 address.
        assert_eq!(chosen, vec![US_EAST]);
        assert_eq!(addrs, vec![ip("192.0.2.10"), ip("192.0.2.11")]);
    }

    #[test]
    fn multi_takes_up_to_n_addresses_across_regions_in_order() {
        let up = HealthView::all_up();
        let (chosen, addrs) = pick(&pools(), &up, Some(3), false);
        assert_eq!(chosen, vec![US_EAST, AP_NORTHEAST]);
        assert_eq!(addrs, vec![ip("192.0.2.10"), ip("192.0.2.11"), ip("203.0.113.10")]);
        // N reached inside a region: the rest of it and later regions are left out.
        let (chosen, addrs) = pick(&pools(), &up, Some(1), false);
        assert_eq!((chosen, addrs), (vec![US_EAST], vec![ip("192.0.2.10")]));
        let (chosen, addrs) = pick(&pools(), &up, Some(0), false);
        assert!(chosen.is_empty() && addrs.is_empty());
    }

    #[test]
    fn withdrawn_addresses_are_skipped_unless_failing_open() {
        let mut h = HealthView::all_up();
        h.set_addr_down("us-east", ip("192.0.2.10"));
        assert_eq!(pick(&pools(), &h, None, false), (vec![US_EAST], vec![ip("192.0.2.11")]));
        h.set_addr_down("us-east", ip("192.0.2.11"));
        // Every us-east address withdrawn: the next region answers.
        assert_eq!(pick(&pools(), &h, None, false), (vec![AP_NORTHEAST], vec![ip("203.0.113.10")]));
        assert_eq!(pick(&pools(), &h, Some(2), false), (vec![AP_NORTHEAST], vec![ip("203.0.113.10")]));
        // Failing open answers them anyway.
        assert_eq!(pick(&pools(), &h, None, true).1, vec![ip("192.0.2.10"), ip("192.0.2.11")]);
    }
}
