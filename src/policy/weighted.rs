//! `weighted`: pick among the leading candidates by weight, randomly per
//! query. The whole tier is ordered by successive weighted draws without
//! replacement (the same distribution as an Efraimidis–Spirakis permutation,
//! without a `powf` per region), so `multi` after it gets the rest in
//! weighted order too. Weight 0 goes last, in configured order.

use rand::Rng;
use smallvec::{smallvec, SmallVec};

use super::ctx::{Ctx, StepOutput};
use super::tiers::Tiers;
use super::RegionId;

pub fn apply(mut tiers: Tiers, ctx: &Ctx) -> StepOutput {
    if tiers.is_empty() {
        return StepOutput { tiers, scope: None, note: ctx.note(|| "no candidates".into()) };
    }
    let first = tiers.remove(0);
    let mut pool: SmallVec<[(f64, RegionId); 4]> = first.iter().map(|&id| (ctx.weight(id).max(0.0), id)).collect();
    let mut out = Tiers::new();
    let mut rng = rand::rng();
    loop {
        let total: f64 = pool.iter().map(|(w, _)| w).sum();
        if total <= 0.0 {
            break;
        }
        let i = pick(&pool, rng.random::<f64>() * total);
        out.push(smallvec![pool.remove(i).1]);
    }
    out.extend(pool.into_iter().map(|(_, id)| smallvec![id]));
    let note = ctx.note(|| {
        let weights: Vec<String> =
            out.iter().flatten().map(|id| format!("{} {}", ctx.regions[*id].name, ctx.weight(*id))).collect();
        format!("random by weight ({})", weights.join(", "))
    });
    out.extend(tiers);
    StepOutput { tiers: out, scope: None, note }
}

/// The entry whose cumulative-weight interval holds `r` (0 ≤ r < total);
/// rounding at the top end falls to the last entry with a weight.
fn pick(pool: &[(f64, RegionId)], mut r: f64) -> usize {
    for (i, (w, _)) in pool.iter().enumerate() {
        if *w > 0.0 && r < *w {
            return i;
        }
        r -= w;
    }
    pool.iter().rposition(|(w, _)| *w > 0.0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Client, HealthView, Region};

    /// First place follows the weights, and so does second place among the
    /// rest (what `multi` after `weighted` relies on); weight 0 is always last.
    #[test]
    fn order_follows_weights_without_replacement() {
        let regions: Vec<Region> = [("a", 50), ("b", 30), ("c", 20), ("zero", 0)]
            .iter()
            .map(|(n, w)| Region::unprobed(n, vec!["192.0.2.1".parse().unwrap()], None, *w))
            .collect();
        let client = Client::from_ecs_or_source(None, "192.0.2.9".parse().unwrap());
        let health = HealthView::all_up();
        let ctx = Ctx { regions: &regions, client: &client, health: &health, explain: false, scopes: None };
        let n = 30_000;
        let (mut first, mut second_after_a, mut a_first) = ([0usize; 4], [0usize; 4], 0);
        for _ in 0..n {
            let out = apply(smallvec![smallvec![0, 1, 2, 3]], &ctx);
            let order: Vec<RegionId> = out.tiers.iter().flatten().copied().collect();
            assert_eq!(order.len(), 4);
            assert_eq!(order[3], 3, "weight 0 last: {order:?}");
            first[order[0]] += 1;
            if order[0] == 0 {
                a_first += 1;
                second_after_a[order[1]] += 1;
            }
        }
        let share = |c: usize, of: usize| c as f64 / of as f64;
        assert!((share(first[0], n) - 0.5).abs() < 0.02, "{first:?}");
        assert!((share(first[1], n) - 0.3).abs() < 0.02, "{first:?}");
        assert!((share(first[2], n) - 0.2).abs() < 0.02, "{first:?}");
        // After a: b and c in the ratio 30:20.
        assert!((share(second_after_a[1], a_first) - 0.6).abs() < 0.03, "{second_after_a:?}");
    }

    #[test]
    fn all_zero_weights_keep_configured_order() {
        let regions: Vec<Region> =
            ["a", "b"].iter().map(|n| Region::unprobed(n, vec!["192.0.2.1".parse().unwrap()], None, 0)).collect();
        let client = Client::from_ecs_or_source(None, "192.0.2.9".parse().unwrap());
        let health = HealthView::all_up();
        let ctx = Ctx { regions: &regions, client: &client, health: &health, explain: false, scopes: None };
        let out = apply(smallvec![smallvec![1, 0]], &ctx);
        assert_eq!(out.tiers.iter().flatten().copied().collect::<Vec<_>>(), vec![1, 0]);
        assert_eq!(pick(&[(0.0, 0), (2.0, 1)], 5.0), 1, "rounding past the end takes the last weighted entry");
    }
}
