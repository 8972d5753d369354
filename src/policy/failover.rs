//! `failover`: the listed regions in order (the first available one wins,
//! since unavailable regions were filtered out before the chain ran).

use super::ctx::{Ctx, StepOutput};
use super::tiers::{promote, Tiers};
use super::RegionId;

pub fn apply(tiers: Tiers, order: &[RegionId], ctx: &Ctx) -> StepOutput {
    let tiers = promote(tiers, order);
    StepOutput { tiers, scope: None, note: ctx.note(|| format!("order [{}]", ctx.names(order))) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixtures::{londoner, regions, AP_NORTHEAST, EU_WEST, US_EAST};
    use crate::policy::HealthView;
    use smallvec::smallvec;

    fn run(tiers: Tiers, order: &[RegionId]) -> StepOutput {
        let (rs, client, health) = (regions(), londoner(), HealthView::all_up());
        apply(tiers, order, &Ctx { regions: &rs, client: &client, health: &health, explain: true, scopes: None })
    }

    fn flat(out: &StepOutput) -> Vec<Vec<RegionId>> {
        out.tiers.iter().map(|t| t.to_vec()).collect()
    }

    #[test]
    fn listed_order_then_unlisted_and_the_same_for_every_client() {
        let out = run(smallvec![smallvec![US_EAST, EU_WEST, AP_NORTHEAST]], &[AP_NORTHEAST, US_EAST]);
        assert_eq!(flat(&out), vec![vec![AP_NORTHEAST], vec![US_EAST], vec![EU_WEST]]);
        // The located client does not narrow it: the order holds for everyone.
        assert_eq!(out.scope, None);
        assert_eq!(out.note, "order [ap-northeast, us-east]");
    }

    #[test]
    fn a_withdrawn_region_is_passed_over_to_the_next_listed() {
        // eu-west was filtered out as down: the next in the order leads.
        let out = run(smallvec![smallvec![US_EAST, AP_NORTHEAST]], &[EU_WEST, AP_NORTHEAST, US_EAST]);
        assert_eq!(flat(&out), vec![vec![AP_NORTHEAST], vec![US_EAST]]);
    }

    #[test]
    fn an_earlier_steps_tiers_outrank_the_failover_order() {
        // After geo put us-east alone in front, failover orders only behind it.
        let out = run(smallvec![smallvec![US_EAST], smallvec![EU_WEST, AP_NORTHEAST]], &[AP_NORTHEAST, US_EAST]);
        assert_eq!(flat(&out), vec![vec![US_EAST], vec![AP_NORTHEAST], vec![EU_WEST]]);
    }
}
