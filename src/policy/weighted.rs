//! `weighted`: pick among the leading candidates by weight, randomly per
//! query. A weighted random permutation (Efraimidis–Spirakis), so `multi`
//! after it gets the rest in weighted order too.

use rand::Rng;

use super::chain::{Ctx, Outcome, Tiers};
use super::RegionId;

pub fn apply(mut tiers: Tiers, ctx: &Ctx) -> Outcome {
    if tiers.is_empty() {
        return Outcome { tiers, scope: None, note: ctx.note(|| "no candidates".into()) };
    }
    let first = tiers.remove(0);
    let mut rng = rand::rng();
    let mut keyed: Vec<(f64, RegionId)> = first
        .into_iter()
        .map(|id| {
            let w = ctx.weight(id);
            // u^(1/w): larger weights give keys nearer 1; weight 0 goes last.
            let key = if w > 0.0 { rng.random::<f64>().powf(1.0 / w) } else { -1.0 };
            (key, id)
        })
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    let note = ctx.note(|| {
        let weights: Vec<String> =
            keyed.iter().map(|(_, id)| format!("{} {}", ctx.regions[*id].name, ctx.weight(*id))).collect();
        format!("random by weight ({})", weights.join(", "))
    });
    let mut out: Tiers = keyed.into_iter().map(|(_, id)| vec![id]).collect();
    out.extend(tiers);
    Outcome { tiers: out, scope: None, note }
}
