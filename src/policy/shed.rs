//! `shed`: keep a busy leading region from being pushed over. Between its
//! `low` and `high` watermarks a growing share of its clients (those whose
//! subnet hash falls below the share, so the same clients move first and
//! come back last) goes to the next candidate whose own load is below its
//! `low`; above `high` every client does. Shed traffic never lands on a
//! region that is itself busy or whose load is unknown (no cascade); when
//! there is none, the fail policy decides. An unknown or stale load sheds
//! nobody.

use smallvec::smallvec;

use super::ctx::{Ctx, StepOutput};
use super::tiers::Tiers;
use super::{RegionId, ShedFail};

pub fn apply(tiers: Tiers, fail: ShedFail, ctx: &Ctx) -> StepOutput {
    let order: Vec<RegionId> = tiers.iter().flatten().copied().collect();
    let Some(&lead) = order.first() else {
        return StepOutput { tiers, scope: None, note: ctx.note(|| "no candidates".into()) };
    };
    let name = &ctx.regions[lead].name;
    let Some((low, high)) = ctx.regions[lead].watermarks else {
        return StepOutput { tiers, scope: None, note: ctx.note(|| format!("{name} has no watermarks; nobody shed")) };
    };
    let Some(load) = ctx.load(lead) else {
        let note = ctx.note(|| format!("{name} load unknown (no fresh report), low {low} high {high}; nobody shed"));
        return StepOutput { tiers, scope: None, note };
    };
    let share = shed_share(load, low, high);
    let about = || format!("{name} load {load} (low {low}, high {high})");
    if share <= 0.0 {
        return StepOutput { tiers, scope: None, note: ctx.note(|| format!("{}: below low; nobody shed", about())) };
    }
    // Salted by the region: its own clients move in a fixed order.
    let (u, prefix) = ctx.client_unit(name);
    // Only a partial share makes the outcome depend on the client's hash.
    let hashed = (share < 1.0).then_some(prefix);
    let pct = share * 100.0;
    if u >= share {
        let note = ctx.note(|| format!("{}: {pct:.0}% of its clients shed; this client (hash {u:.3}) stays", about()));
        return StepOutput { tiers, scope: hashed, note };
    }
    let target = order[1..].iter().copied().find(|id| below_low(ctx, *id));
    if let Some(t) = target {
        let note = ctx.note(|| {
            let (tl, _) = ctx.regions[t].watermarks.unwrap_or_default();
            format!(
                "{}: {pct:.0}% of its clients shed; this client (hash {u:.3}) goes to {} (load {} below its low {tl})",
                about(),
                ctx.regions[t].name,
                ctx.load(t).unwrap_or_default()
            )
        });
        return StepOutput { tiers: to_front(tiers, t), scope: hashed, note };
    }
    match fail {
        ShedFail::Nearest => {
            let note = ctx.note(|| {
                format!(
                    "{}: this client (hash {u:.3}) would be shed, but no other candidate is known to be below \
                     its low watermark: keep {name} (fail nearest)",
                    about()
                )
            });
            StepOutput { tiers, scope: hashed, note }
        }
        ShedFail::Headroom => match by_headroom(ctx, &order) {
            Some(chosen) => {
                let note = ctx.note(|| {
                    format!(
                        "{}: no other candidate known to be below its low watermark; spread by headroom: {}",
                        about(),
                        ctx.regions[chosen].name
                    )
                });
                StepOutput { tiers: to_front(tiers, chosen), scope: Some(prefix), note }
            }
            None => {
                let note = ctx.note(|| format!("{}: every candidate is at or over high: keep {name}", about()));
                StepOutput { tiers, scope: hashed, note }
            }
        },
    }
}

/// Share of clients shed at `load`: 0 below `low`, 1 at or above `high`,
/// linear between.
pub fn shed_share(load: f64, low: f64, high: f64) -> f64 {
    if load < low {
        0.0
    } else if load >= high {
        1.0
    } else {
        (load - low) / (high - low)
    }
}

/// Whether the region may take shed traffic: watermarks and a fresh load
/// below `low`. A region whose load is unknown could be the busiest of all.
fn below_low(ctx: &Ctx, id: RegionId) -> bool {
    match (ctx.regions[id].watermarks, ctx.load(id)) {
        (Some((low, _)), Some(load)) => load < low,
        _ => false,
    }
}

/// Weighted rendezvous over the candidates with a known load, weight
/// `high - load`: each client lands on one, in proportion to the room left.
fn by_headroom(ctx: &Ctx, order: &[RegionId]) -> Option<RegionId> {
    let mut best: Option<(f64, RegionId)> = None;
    for &id in order {
        let (Some((_, high)), Some(load)) = (ctx.regions[id].watermarks, ctx.load(id)) else { continue };
        let room = high - load;
        if room <= 0.0 {
            continue;
        }
        let (u, _) = ctx.client_unit(&format!("headroom {}", ctx.regions[id].name));
        // -w / ln(u): the highest score wins with probability w / Σw.
        let score = -room / (u.max(f64::MIN_POSITIVE)).ln();
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, id));
        }
    }
    best.map(|(_, id)| id)
}

/// `id` alone in front; the rest keep their tiers and order.
fn to_front(tiers: Tiers, id: RegionId) -> Tiers {
    let mut out: Tiers = smallvec![smallvec![id]];
    for tier in tiers {
        let rest: super::tiers::Tier = tier.into_iter().filter(|x| *x != id).collect();
        if !rest.is_empty() {
            out.push(rest);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixtures::{client, regions, AP_NORTHEAST, EU_WEST, US_EAST};
    use crate::policy::{Client, HealthView, Region};
    use std::net::IpAddr;
    use std::time::{Duration, Instant};

    fn flat(tiers: &Tiers) -> Vec<RegionId> {
        tiers.iter().flatten().copied().collect()
    }

    /// The fixture regions, each with watermarks 60 / 80.
    fn watermarked() -> Vec<Region> {
        let mut rs = regions();
        for r in &mut rs {
            r.watermarks = Some((60.0, 80.0));
        }
        rs
    }

    fn loads(pairs: &[(&str, f64)]) -> HealthView {
        let mut h = HealthView::all_up();
        for (r, v) in pairs {
            h.set_load(r, None, *v, Instant::now());
        }
        h
    }

    fn subnet(i: u32) -> Client {
        client(&IpAddr::from((0x0a00_0000 | (i << 8)).to_be_bytes()).to_string(), 24, None)
    }

    fn run(rs: &[Region], h: &HealthView, c: &Client, fail: ShedFail, order: &[RegionId]) -> StepOutput {
        let tiers: Tiers = order.iter().map(|id| smallvec![*id]).collect();
        apply(tiers, fail, &Ctx { regions: rs, client: c, health: h, explain: true, scopes: None })
    }

    #[test]
    fn the_share_grows_linearly_between_the_watermarks() {
        assert_eq!(shed_share(10.0, 60.0, 80.0), 0.0);
        assert_eq!(shed_share(60.0, 60.0, 80.0), 0.0);
        assert_eq!(shed_share(70.0, 60.0, 80.0), 0.5);
        assert_eq!(shed_share(80.0, 60.0, 80.0), 1.0);
        assert_eq!(shed_share(500.0, 60.0, 80.0), 1.0);
    }

    #[test]
    fn halfway_sheds_half_the_same_half_every_time_and_all_above_high() {
        let rs = watermarked();
        let order = [EU_WEST, US_EAST, AP_NORTHEAST];
        let n = 10_000u32;
        let moved = |h: &HealthView| -> Vec<u32> {
            (0..n).filter(|i| flat(&run(&rs, h, &subnet(*i), ShedFail::Nearest, &order).tiers)[0] != EU_WEST).collect()
        };
        let half = moved(&loads(&[("eu-west", 70.0), ("us-east", 10.0), ("ap-northeast", 10.0)]));
        let share = half.len() as f64 / f64::from(n);
        assert!((share - 0.5).abs() < 0.05, "{share}");
        assert_eq!(half, moved(&loads(&[("eu-west", 70.0), ("us-east", 10.0), ("ap-northeast", 10.0)])), "stable");
        // A little busier: the same clients and some more (the first to move stay moved).
        let more = moved(&loads(&[("eu-west", 75.0), ("us-east", 10.0), ("ap-northeast", 10.0)]));
        assert!(half.iter().all(|i| more.contains(i)) && more.len() > half.len());
        assert_eq!(moved(&loads(&[("eu-west", 80.0), ("us-east", 10.0)])).len(), n as usize);
        assert!(moved(&loads(&[("eu-west", 59.0), ("us-east", 10.0)])).is_empty(), "below low all return");
    }

    #[test]
    fn shed_clients_go_to_the_next_region_below_its_own_low_only() {
        let rs = watermarked();
        // us-east sits at its high watermark: eu-west's shed clients skip it for ap-northeast.
        let h = loads(&[("eu-west", 90.0), ("us-east", 80.0), ("ap-northeast", 20.0)]);
        let out = run(&rs, &h, &subnet(1), ShedFail::Nearest, &[EU_WEST, US_EAST, AP_NORTHEAST]);
        assert_eq!(flat(&out.tiers), vec![AP_NORTHEAST, EU_WEST, US_EAST]);
        assert_eq!(out.scope, None, "everyone is shed: the hash decided nothing");
        assert!(out.note.contains("goes to ap-northeast (load 20 below its low 60)"), "{}", out.note);
        // Between low and high is not below low either.
        let h = loads(&[("eu-west", 90.0), ("us-east", 65.0), ("ap-northeast", 20.0)]);
        let out = run(&rs, &h, &subnet(1), ShedFail::Nearest, &[EU_WEST, US_EAST, AP_NORTHEAST]);
        assert_eq!(flat(&out.tiers)[0], AP_NORTHEAST);
    }

    #[test]
    fn unknown_or_stale_loads_shed_nobody_and_never_take_shed_traffic() {
        let mut rs = watermarked();
        rs[EU_WEST].load_max_age = Duration::from_secs(5);
        let order = [EU_WEST, US_EAST];
        let mut stale = HealthView::all_up();
        stale.set_load("eu-west", None, 95.0, Instant::now() - Duration::from_secs(6));
        stale.set_load("us-east", None, 10.0, Instant::now());
        for h in [HealthView::all_up(), stale] {
            for i in 0..500 {
                let out = run(&rs, &h, &subnet(i), ShedFail::Nearest, &order);
                assert_eq!(flat(&out.tiers), order.to_vec());
                assert_eq!(out.scope, None);
            }
        }
        // eu-west over high but us-east's load unknown: it is no place to send anyone.
        let h = loads(&[("eu-west", 95.0)]);
        let out = run(&rs, &h, &subnet(3), ShedFail::Nearest, &order);
        assert_eq!(flat(&out.tiers), order.to_vec());
        assert!(out.note.contains("keep eu-west (fail nearest)"), "{}", out.note);
        // And a region without watermarks sheds nobody.
        let plain = regions();
        let out = run(&plain, &loads(&[("eu-west", 1e9)]), &subnet(3), ShedFail::Nearest, &order);
        assert_eq!(flat(&out.tiers), order.to_vec());
    }

    #[test]
    fn every_candidate_over_spreads_by_headroom_when_so_configured() {
        let rs = watermarked();
        // No one below low; headroom (high - load): eu-west 0, us-east 15, ap-northeast 5.
        let h = loads(&[("eu-west", 85.0), ("us-east", 65.0), ("ap-northeast", 75.0)]);
        let order = [EU_WEST, US_EAST, AP_NORTHEAST];
        let mut firsts = [0usize; 3];
        for i in 0..4000 {
            let out = run(&rs, &h, &subnet(i), ShedFail::Headroom, &order);
            assert_eq!(out.scope, Some(24));
            let again = run(&rs, &h, &subnet(i), ShedFail::Headroom, &order);
            assert_eq!(flat(&out.tiers), flat(&again.tiers), "stable per subnet");
            firsts[flat(&out.tiers)[0]] += 1;
        }
        assert_eq!(firsts[EU_WEST], 0, "no headroom, no clients: {firsts:?}");
        let us = firsts[US_EAST] as f64 / 4000.0;
        assert!((us - 0.75).abs() < 0.04, "15:5 → 75%: {firsts:?}");
        // With fail nearest the same loads keep everyone on eu-west.
        let out = run(&rs, &h, &subnet(1), ShedFail::Nearest, &order);
        assert_eq!(flat(&out.tiers)[0], EU_WEST);
    }

    #[test]
    fn a_partial_share_scopes_the_answer_to_the_hashed_subnet() {
        let rs = watermarked();
        let h = loads(&[("eu-west", 70.0), ("us-east", 10.0)]);
        for i in 0..50 {
            let out = run(&rs, &h, &subnet(i), ShedFail::Nearest, &[EU_WEST, US_EAST]);
            assert_eq!(out.scope, Some(24), "shed or kept, the hash decided");
        }
        let below = loads(&[("eu-west", 10.0), ("us-east", 10.0)]);
        let out = run(&rs, &below, &subnet(1), ShedFail::Nearest, &[EU_WEST, US_EAST]);
        assert_eq!((out.scope, out.note.as_str()), (None, "eu-west load 10 (low 60, high 80): below low; nobody shed"));
    }

    #[test]
    fn moving_to_the_front_keeps_the_other_tiers() {
        let t: Tiers = smallvec![smallvec![EU_WEST], smallvec![US_EAST, AP_NORTHEAST]];
        let out = to_front(t, AP_NORTHEAST);
        assert_eq!(out.iter().map(|t| t.to_vec()).collect::<Vec<_>>(), vec![vec![2], vec![1], vec![0]]);
    }
}
