//! `least_loaded`: the power of two choices among the leading tier (equally
//! good candidates). The client's subnet hash picks two of them; the one with
//! the lower reported load leads. Two random choices spread load almost as
//! well as asking everyone, without herding every client onto the one
//! region that happened to report lowest. The pair is fixed per subnet, so a
//! client moves only when the loads of its two change order. With a load
//! unknown in the pair, the order is left as it was.

use smallvec::smallvec;

use super::ctx::{Ctx, StepOutput};
use super::tiers::{Tier, Tiers};

pub fn apply(mut tiers: Tiers, ctx: &Ctx) -> StepOutput {
    let n = tiers.first().map_or(0, |t| t.len());
    if n < 2 {
        return StepOutput { tiers, scope: None, note: ctx.note(|| "one candidate leads; nothing to compare".into()) };
    }
    let (u1, prefix) = ctx.client_unit("least_loaded 1");
    let (u2, _) = ctx.client_unit("least_loaded 2");
    let i = ((u1 * n as f64) as usize).min(n - 1);
    let j = (i + 1 + ((u2 * (n - 1) as f64) as usize).min(n - 2)) % n;
    let (a, b) = (tiers[0][i.min(j)], tiers[0][i.max(j)]);
    let name = |id: usize| ctx.regions[id].name.as_str();
    let (Some(la), Some(lb)) = (ctx.load(a), ctx.load(b)) else {
        let note = ctx.note(|| format!("two choices {} and {}: a load is unknown; order unchanged", name(a), name(b)));
        return StepOutput { tiers, scope: Some(prefix), note };
    };
    // A tie keeps the earlier in the tier's order.
    let winner = if lb < la { b } else { a };
    let first = tiers.remove(0);
    let rest: Tier = first.into_iter().filter(|id| *id != winner).collect();
    let mut out: Tiers = smallvec![smallvec![winner], rest];
    out.extend(tiers);
    let note = ctx.note(|| format!("two choices by client hash: {} load {la}, {} load {lb}", name(a), name(b)));
    StepOutput { tiers: out, scope: Some(prefix), note }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixtures::{client, regions, AP_NORTHEAST, EU_WEST, US_EAST};
    use crate::policy::{HealthView, RegionId};
    use std::net::IpAddr;
    use std::time::Instant;

    fn leader(h: &HealthView, i: u32, tiers: Tiers) -> (RegionId, StepOutput) {
        let rs = regions();
        let c = client(&IpAddr::from((0x0a00_0000 | (i << 8)).to_be_bytes()).to_string(), 24, None);
        let out = apply(tiers, &Ctx { regions: &rs, client: &c, health: h, explain: true, scopes: None });
        (out.tiers[0][0], out)
    }

    fn loads(pairs: &[(&str, f64)]) -> HealthView {
        let mut h = HealthView::all_up();
        for (r, v) in pairs {
            h.set_load(r, None, *v, Instant::now());
        }
        h
    }

    #[test]
    fn the_lighter_of_two_hashed_choices_leads_and_the_busiest_never_does() {
        let h = loads(&[("us-east", 10.0), ("eu-west", 50.0), ("ap-northeast", 90.0)]);
        let all = || smallvec![smallvec![US_EAST, EU_WEST, AP_NORTHEAST]];
        let mut wins = [0usize; 3];
        for i in 0..3000 {
            let (w, out) = leader(&h, i, all());
            assert_eq!(leader(&h, i, all()).0, w, "stable per subnet");
            assert_eq!(out.scope, Some(24));
            assert_eq!(out.tiers.len(), 2, "the others stay one tier for later steps");
            wins[w] += 1;
        }
        // Pairs are uniform: the lightest wins 2 of 3 pairs, the middle 1 of 3, the busiest none.
        assert_eq!(wins[AP_NORTHEAST], 0, "{wins:?}");
        let us = wins[US_EAST] as f64 / 3000.0;
        assert!((us - 2.0 / 3.0).abs() < 0.04, "{wins:?}");
    }

    #[test]
    fn unknown_loads_or_a_single_candidate_leave_the_order() {
        let h = loads(&[("us-east", 10.0)]);
        for i in 0..200 {
            let (w, _) = leader(&h, i, smallvec![smallvec![EU_WEST, AP_NORTHEAST], smallvec![US_EAST]]);
            assert_eq!(w, EU_WEST, "both loads unknown: unchanged");
        }
        let (w, out) = leader(&h, 1, smallvec![smallvec![AP_NORTHEAST], smallvec![US_EAST]]);
        assert_eq!((w, out.scope), (AP_NORTHEAST, None));
    }
}
