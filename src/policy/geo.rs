//! `geo`: the most specific rule's regions go first, in the rule's order;
//! the other candidates stay behind them as the fallback, in their order.

use super::ctx::{Ctx, StepOutput};
use super::tiers::{promote, Tiers};
use super::{Matcher, RegionId};

pub fn apply(tiers: Tiers, rules: &Matcher<Vec<RegionId>>, ctx: &Ctx) -> StepOutput {
    // Neighbouring networks with the same answer widen the scope (`scopes.rs`).
    let merged = ctx.scopes.and_then(|s| s.widest(rules, ctx.client.addr));
    let Some(m) = rules.find_scoped(ctx.client.addr, ctx.client.location.as_ref(), ctx.explain, merged) else {
        // No rule and no default: the answer still depends on the client
        // being in this place, so the scope is that of the miss.
        let scope = rules.find_scope_of_miss(ctx.client.addr, ctx.client.location.as_ref(), merged);
        return StepOutput {
            tiers,
            scope: Some(scope),
            note: ctx.note(|| "no rule matched; candidates pass through".into()),
        };
    };
    let note = ctx.note(|| format!("matched {} → [{}]", m.label, ctx.names(m.value)));
    StepOutput { tiers: promote(tiers, m.value), scope: Some(m.scope), note }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixtures::{client, londoner, regions, AP_NORTHEAST, EU_WEST, US_EAST};
    use crate::policy::{Client, HealthView};
    use smallvec::smallvec;

    fn run(rules: &Matcher<Vec<RegionId>>, client: &Client, tiers: Tiers) -> (Vec<Vec<RegionId>>, Option<u8>, String) {
        let (rs, health) = (regions(), HealthView::all_up());
        let ctx = Ctx { regions: &rs, client, health: &health, explain: true, scopes: None };
        let out = apply(tiers, rules, &ctx);
        (out.tiers.iter().map(|t| t.to_vec()).collect(), out.scope, out.note)
    }

    fn all() -> Tiers {
        smallvec![smallvec![US_EAST, EU_WEST, AP_NORTHEAST]]
    }

    #[test]
    fn the_rules_regions_lead_in_rule_order_and_the_rest_follow_as_one_tier() {
        let mut rules = Matcher::default();
        rules.continent.insert("EU".into(), vec![AP_NORTHEAST, EU_WEST]);
        let (tiers, scope, note) = run(&rules, &londoner(), all());
        assert_eq!(tiers, vec![vec![AP_NORTHEAST], vec![EU_WEST], vec![US_EAST]]);
        // The continent came from the database's /16.
        assert_eq!(scope, Some(16));
        assert_eq!(note, "matched continent EU → [ap-northeast, eu-west]");
    }

    #[test]
    fn a_listed_region_that_is_not_a_candidate_is_skipped() {
        let mut rules = Matcher::default();
        rules.continent.insert("EU".into(), vec![EU_WEST, US_EAST]);
        // eu-west was filtered out (down) before the chain ran.
        let (tiers, _, _) = run(&rules, &londoner(), smallvec![smallvec![US_EAST, AP_NORTHEAST]]);
        assert_eq!(tiers, vec![vec![US_EAST], vec![AP_NORTHEAST]]);
    }

    #[test]
    fn the_most_specific_rule_decides_and_default_catches_the_rest() {
        let mut rules = Matcher::default();
        rules.continent.insert("EU".into(), vec![EU_WEST]);
        rules.cidr.push(("10.3.0.0/20".parse().unwrap(), vec![US_EAST]));
        rules.default = Some(vec![AP_NORTHEAST]);
        rules.sort_cidrs();
        // The London client's address is inside the CIDR rule: it beats the continent.
        let (tiers, scope, _) = run(&rules, &londoner(), all());
        assert_eq!(tiers, vec![vec![US_EAST], vec![EU_WEST, AP_NORTHEAST]]);
        assert_eq!(scope, Some(20));
        let (tiers, scope, note) = run(&rules, &client("192.0.2.0", 24, None), all());
        assert_eq!(tiers, vec![vec![AP_NORTHEAST], vec![US_EAST, EU_WEST]]);
        // Everywhere but the half of the address space that holds the CIDR rule.
        assert_eq!((scope, note.as_str()), (Some(1), "matched default → [ap-northeast]"));
    }

    #[test]
    fn no_rule_leaves_the_order_and_scopes_the_miss() {
        let mut rules = Matcher::default();
        rules.continent.insert("NA".into(), vec![US_EAST]);
        let (tiers, scope, note) = run(&rules, &londoner(), all());
        assert_eq!(tiers, vec![vec![US_EAST, EU_WEST, AP_NORTHEAST]]);
        assert_eq!(scope, Some(16));
        assert_eq!(note, "no rule matched; candidates pass through");
        // Unlocated, beside a CIDR rule: the scope narrows until the rule's network is outside it.
        rules.cidr.push(("10.3.1.0/24".parse().unwrap(), vec![EU_WEST]));
        let (tiers, scope, _) = run(&rules, &client("10.3.0.0", 24, None), all());
        assert_eq!(tiers, vec![vec![US_EAST, EU_WEST, AP_NORTHEAST]]);
        assert_eq!(scope, Some(24));
    }
}
