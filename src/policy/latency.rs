//! `latency`: order by a configured latency table (client group → region →
//! ms); where the table says nothing, fall back to `nearest`.

use smallvec::smallvec;

use super::ctx::{Ctx, StepOutput};
use super::distance::order_by_distance;
use super::tiers::{split_equal, Tier, Tiers};
use super::{Matcher, RegionId};

pub fn apply(tiers: Tiers, table: &Matcher<Vec<(RegionId, u32)>>, ctx: &Ctx) -> StepOutput {
    let loc = ctx.client.location.as_ref();
    let coords = loc.and_then(|l| l.coords);
    let Some(m) = table.find_explained(ctx.client.addr, loc, ctx.explain) else {
        let scope = table.find_scope_of_miss(ctx.client.addr, loc, None).max(loc.map_or(0, |l| l.network.prefix_len()));
        let tiers = match coords {
            Some(c) => order_by_distance(tiers, ctx.regions, c),
            None => tiers,
        };
        return StepOutput {
            tiers,
            scope: Some(scope),
            note: ctx.note(|| "no latency row for this client; ordered by distance".into()),
        };
    };
    let mut out = Tiers::new();
    for tier in tiers {
        let mut measured: Vec<(u32, RegionId)> =
            m.value.iter().filter(|(id, _)| tier.contains(id)).map(|(id, ms)| (*ms, *id)).collect();
        measured.sort_by_key(|(ms, _)| *ms);
        split_equal(&mut out, measured);
        let rest: Tier = tier.into_iter().filter(|id| !m.value.iter().any(|(r, _)| r == id)).collect();
        if !rest.is_empty() {
            match coords {
                Some(c) => out.extend(order_by_distance(smallvec![rest], ctx.regions, c)),
                None => out.push(rest),
            }
        }
    }
    let note = ctx.note(|| {
        let rows: Vec<String> = m.value.iter().map(|(id, ms)| format!("{} {ms}ms", ctx.regions[*id].name)).collect();
        format!("matched {}: {}", m.label, rows.join(", "))
    });
    // Distance ordering of the rest depends on the database network too.
    let scope = m.scope.max(if coords.is_some() { loc.map_or(0, |l| l.network.prefix_len()) } else { 0 });
    StepOutput { tiers: out, scope: Some(scope), note }
}

/// Order by the lowest probe RTT this node measured to each region; regions
/// without a measurement follow, nearest first.
pub fn apply_probe(tiers: Tiers, ctx: &Ctx) -> StepOutput {
    let loc = ctx.client.location.as_ref();
    let coords = loc.and_then(|l| l.coords);
    let mut out = Tiers::new();
    for tier in tiers {
        let mut measured: Vec<(u64, RegionId)> = tier
            .iter()
            .filter_map(|id| ctx.health.rtt_ms(&ctx.regions[*id].name).map(|ms| ((ms * 1000.0) as u64, *id)))
            .collect();
        measured.sort_by_key(|(us, _)| *us);
        let rest: Tier = tier.into_iter().filter(|id| !measured.iter().any(|(_, m)| m == id)).collect();
        split_equal(&mut out, measured);
        if !rest.is_empty() {
            match coords {
                Some(c) => out.extend(order_by_distance(smallvec![rest], ctx.regions, c)),
                None => out.push(rest),
            }
        }
    }
    let note = ctx.note(|| {
        let rtts: Vec<String> = out
            .iter()
            .flatten()
            .map(|id| {
                let name = &ctx.regions[*id].name;
                match ctx.health.rtt_ms(name) {
                    Some(ms) => format!("{name} {ms:.1}ms"),
                    None => format!("{name} unmeasured"),
                }
            })
            .collect();
        format!("probe RTT from this node: {}", rtts.join(", "))
    });
    // The order itself is the same for every client; only the distance
    // fallback depends on where the client is.
    let scope = if coords.is_some() { Some(loc.map_or(0, |l| l.network.prefix_len())) } else { None };
    StepOutput { tiers: out, scope, note }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixtures::{client, londoner, regions, AP_NORTHEAST, EU_WEST, US_EAST};
    use crate::policy::{Client, HealthView};

    type Row = Vec<(RegionId, u32)>;

    fn table(rows: &[(&str, Row)]) -> Matcher<Row> {
        let mut m = Matcher::default();
        for (rule, row) in rows {
            if let Ok(net) = rule.parse() {
                m.cidr.push((net, row.clone()));
            } else {
                m.continent.insert(rule.to_string(), row.clone());
            }
        }
        m.sort_cidrs();
        m
    }

    fn flat(out: &StepOutput) -> Vec<Vec<RegionId>> {
        out.tiers.iter().map(|t| t.to_vec()).collect()
    }

    fn all() -> Tiers {
        smallvec![smallvec![US_EAST, EU_WEST, AP_NORTHEAST]]
    }

    fn run(t: &Matcher<Row>, client: &Client) -> StepOutput {
        let (rs, health) = (regions(), HealthView::all_up());
        apply(all(), t, &Ctx { regions: &rs, client, health: &health, explain: true, scopes: None })
    }

    #[test]
    fn lowest_latency_first_with_equal_latencies_tied() {
        let t = table(&[("EU", vec![(EU_WEST, 40), (AP_NORTHEAST, 12), (US_EAST, 12)])]);
        let out = run(&t, &londoner());
        assert_eq!(flat(&out), vec![vec![AP_NORTHEAST, US_EAST], vec![EU_WEST]]);
        assert_eq!(out.scope, Some(16));
        assert_eq!(out.note, "matched continent EU: eu-west 40ms, ap-northeast 12ms, us-east 12ms");
    }

    #[test]
    fn regions_the_row_leaves_out_follow_nearest_first() {
        let t = table(&[("EU", vec![(AP_NORTHEAST, 5)])]);
        let out = run(&t, &londoner());
        assert_eq!(flat(&out), vec![vec![AP_NORTHEAST], vec![EU_WEST], vec![US_EAST]]);
        // Unlocated: the rest stay one tier in their order, and only the rule's network matters.
        let t = table(&[("192.0.2.0/24", vec![(AP_NORTHEAST, 5)])]);
        let out = run(&t, &client("192.0.2.0", 24, None));
        assert_eq!(flat(&out), vec![vec![AP_NORTHEAST], vec![US_EAST, EU_WEST]]);
        assert_eq!(out.scope, Some(24));
    }

    #[test]
    fn without_a_row_the_order_is_by_distance() {
        let t = table(&[("NA", vec![(US_EAST, 5)])]);
        let out = run(&t, &londoner());
        assert_eq!(flat(&out), vec![vec![EU_WEST], vec![US_EAST], vec![AP_NORTHEAST]]);
        assert_eq!(out.scope, Some(16));
        let out = run(&t, &client("192.0.2.0", 24, None));
        assert_eq!((flat(&out), out.scope), (vec![vec![US_EAST, EU_WEST, AP_NORTHEAST]], Some(0)));
    }

    fn probe(client: &Client, rtts: &[(&str, f64)]) -> StepOutput {
        let rs = regions();
        let mut health = HealthView::all_up();
        for (name, ms) in rtts {
            health.set_rtt(name, *ms);
        }
        apply_probe(all(), &Ctx { regions: &rs, client, health: &health, explain: true, scopes: None })
    }

    #[test]
    fn probe_orders_by_measured_rtt_then_unmeasured_by_distance() {
        let out = probe(&londoner(), &[("ap-northeast", 40.0), ("us-east", 12.5)]);
        assert_eq!(flat(&out), vec![vec![US_EAST], vec![AP_NORTHEAST], vec![EU_WEST]]);
        assert_eq!(out.note, "probe RTT from this node: us-east 12.5ms, ap-northeast 40.0ms, eu-west unmeasured");
        // Only the distance fallback depends on the client.
        assert_eq!(out.scope, Some(16));
    }

    #[test]
    fn probe_ties_equal_rtts_and_is_client_independent_without_coordinates() {
        let out = probe(&client("192.0.2.0", 24, None), &[("eu-west", 7.0), ("ap-northeast", 7.0)]);
        assert_eq!(flat(&out), vec![vec![EU_WEST, AP_NORTHEAST], vec![US_EAST]]);
        assert_eq!(out.scope, None);
    }
}
