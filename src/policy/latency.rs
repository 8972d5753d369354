//! `latency`: order by a configured latency table (client group → region →
//! ms); where the table says nothing, fall back to `nearest`.

use smallvec::smallvec;

use super::chain::{Ctx, Outcome, Tier, Tiers};
use super::nearest::{order_by_distance, split_equal};
use super::{Matcher, RegionId};

pub fn apply(tiers: Tiers, table: &Matcher<Vec<(RegionId, u32)>>, ctx: &Ctx) -> Outcome {
    let loc = ctx.client.location.as_ref();
    let coords = loc.and_then(|l| l.coords);
    let Some(m) = table.find_explained(ctx.client.addr, loc, ctx.explain) else {
        let scope = table.find_scope_of_miss(ctx.client.addr, loc).max(loc.map_or(0, |l| l.network.prefix_len()));
        let tiers = match coords {
            Some(c) => order_by_distance(tiers, ctx, c),
            None => tiers,
        };
        return Outcome {
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
                Some(c) => out.extend(order_by_distance(smallvec![rest], ctx, c)),
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
    Outcome { tiers: out, scope: Some(scope), note }
}

/// Order by the lowest probe RTT this node measured to each region; regions
/// without a measurement follow, nearest first.
pub fn apply_probe(tiers: Tiers, ctx: &Ctx) -> Outcome {
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
                Some(c) => out.extend(order_by_distance(smallvec![rest], ctx, c)),
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
    Outcome { tiers: out, scope, note }
}
