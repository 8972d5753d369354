//! `geo`: the most specific rule's regions go first, in the rule's order;
//! the other candidates stay behind them as the fallback, in their order.

use smallvec::smallvec;

use super::chain::{Ctx, Outcome, Tier, Tiers};
use super::{Matcher, RegionId};

pub fn apply(tiers: Tiers, rules: &Matcher<Vec<RegionId>>, ctx: &Ctx) -> Outcome {
    let Some(m) = rules.find_explained(ctx.client.addr, ctx.client.location.as_ref(), ctx.explain) else {
        // No rule and no default: the answer still depends on the client
        // being in this place, so the scope is that of the miss.
        let scope = rules.find_scope_of_miss(ctx.client.addr, ctx.client.location.as_ref());
        return Outcome {
            tiers,
            scope: Some(scope),
            note: ctx.note(|| "no rule matched; candidates pass through".into()),
        };
    };
    let note = ctx.note(|| format!("matched {} → [{}]", m.label, ctx.names(m.value)));
    Outcome { tiers: promote(tiers, m.value), scope: Some(m.scope), note }
}

/// Listed regions first (each its own tier, in list order), then the rest.
pub fn promote(tiers: Tiers, list: &[RegionId]) -> Tiers {
    let mut out = Tiers::new();
    for tier in tiers {
        for id in list {
            if tier.contains(id) {
                out.push(smallvec![*id]);
            }
        }
        let rest: Tier = tier.into_iter().filter(|id| !list.contains(id)).collect();
        if !rest.is_empty() {
            out.push(rest);
        }
    }
    out
}
