//! `failover`: the listed regions in order (the first available one wins,
//! since unavailable regions were filtered out before the chain ran).

use super::chain::{Ctx, Outcome, Tiers};
use super::RegionId;

pub fn apply(tiers: Tiers, order: &[RegionId], ctx: &Ctx) -> Outcome {
    let tiers = super::geo::promote(tiers, order);
    Outcome { tiers, scope: None, note: ctx.note(|| format!("order [{}]", ctx.names(order))) }
}
