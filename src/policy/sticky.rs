//! `sticky`: weighted rendezvous (highest-random-weight) hashing of the
//! client subnet. A client keeps its region; when a region leaves, only that
//! region's clients move, spread over the rest by weight.

use std::net::IpAddr;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use smallvec::{smallvec, SmallVec};

use super::ctx::{Ctx, StepOutput};
use super::tiers::Tiers;
use super::trace::TraceStep;
use super::RegionId;

/// The subnet that identifies a client: ECS prefix capped at /24 (IPv4) or
/// /56 (IPv6), the granularity resolvers send and a site's size.
pub fn key_prefix(addr: IpAddr, prefix: u8) -> u8 {
    let cap = if addr.is_ipv4() { 24 } else { 56 };
    prefix.min(cap)
}

/// Rendezvous score of one region for one subnet: -w / ln(u), u uniform in (0, 1).
pub fn score(subnet: &[u8], region: &str, weight: f64) -> f64 {
    if weight <= 0.0 {
        return f64::NEG_INFINITY;
    }
    let h = xxh3_64_with_seed(subnet, xxh3_64_with_seed(region.as_bytes(), 0x6d65_7269_6469_616e));
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -weight / u.ln()
}

pub fn subnet_key(addr: IpAddr, prefix: u8) -> Vec<u8> {
    let net = ipnet::IpNet::new(addr, prefix).expect("valid prefix").trunc();
    let mut key = match net.network() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    key.push(prefix);
    key
}

pub fn apply(mut tiers: Tiers, ctx: &Ctx) -> StepOutput {
    let prefix = key_prefix(ctx.client.addr, ctx.client.prefix);
    if tiers.is_empty() {
        return StepOutput { tiers, scope: Some(prefix), note: ctx.note(|| "no candidates".into()) };
    }
    let key = subnet_key(ctx.client.addr, prefix);
    let first = tiers.remove(0);
    let mut keyed: Vec<(f64, RegionId)> =
        first.into_iter().map(|id| (score(&key, &ctx.regions[id].name, ctx.weight(id)), id)).collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out: Tiers = keyed.into_iter().map(|(_, id)| smallvec![id]).collect();
    out.extend(tiers);
    let note = ctx.note(|| {
        let net = ipnet::IpNet::new(ctx.client.addr, prefix).expect("valid").trunc();
        format!("rendezvous hash of {net}")
    });
    StepOutput { tiers: out, scope: Some(prefix), note }
}

/// Slow start for ordering chains: when the leading region is ramping with
/// factor f, only clients whose hash falls below f keep it first; the others
/// get the next region. The hash is stable, so the share grows smoothly
/// and a client, once let in, stays in.
/// Returns the tiers and, when a ramp was applied, the ECS scope it implies.
pub fn ramp_first(mut tiers: Tiers, ctx: &Ctx, trace: Option<&mut Vec<TraceStep>>) -> (Tiers, Option<u8>) {
    let flat: SmallVec<[RegionId; 8]> = tiers.iter().flatten().copied().collect();
    let (Some(&first), Some(&second)) = (flat.first(), flat.get(1)) else { return (tiers, None) };
    let name = &ctx.regions[first].name;
    let f = ctx.health.ramp(name);
    if f >= 1.0 {
        return (tiers, None);
    }
    let prefix = key_prefix(ctx.client.addr, ctx.client.prefix);
    let h = xxh3_64_with_seed(&subnet_key(ctx.client.addr, prefix), xxh3_64_with_seed(name.as_bytes(), 0x72616d70));
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    if u < f {
        return (tiers, Some(prefix));
    }
    let before = tiers.clone();
    // Demote: first becomes second.
    tiers = std::iter::once(smallvec![second])
        .chain(std::iter::once(smallvec![first]))
        .chain(flat[2..].iter().map(|id| smallvec![*id]))
        .collect();
    if let Some(t) = trace {
        let note = format!("{name} is ramping up ({:.0}% of its clients); this client waits", f * 100.0);
        t.push(TraceStep::new("slow-start", ctx, &before, &tiers, note));
    }
    (tiers, Some(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixtures::{client, regions, AP_NORTHEAST, EU_WEST, US_EAST};
    use crate::policy::{Client, HealthView};
    use std::time::{Duration, Instant};

    fn flat(tiers: &Tiers) -> Vec<Vec<RegionId>> {
        tiers.iter().map(|t| t.to_vec()).collect()
    }

    fn sticky(client: &Client, tiers: Tiers) -> StepOutput {
        let (rs, health) = (regions(), HealthView::all_up());
        apply(tiers, &Ctx { regions: &rs, client, health: &health, explain: false, scopes: None })
    }

    #[test]
    fn the_scope_is_the_hashed_subnet_capped_at_a_site() {
        let all = || smallvec![smallvec![US_EAST, EU_WEST, AP_NORTHEAST]];
        assert_eq!(sticky(&client("10.1.2.3", 32, None), all()).scope, Some(24));
        assert_eq!(sticky(&client("10.1.0.0", 16, None), all()).scope, Some(16));
        assert_eq!(sticky(&client("2001:db8:1:2::", 64, None), all()).scope, Some(56));
        assert_eq!(sticky(&client("10.1.2.3", 32, None), Tiers::new()).scope, Some(24));
    }

    #[test]
    fn one_order_per_subnet_and_only_the_leading_tier_is_hashed() {
        let tiers = || smallvec![smallvec![US_EAST, EU_WEST], smallvec![AP_NORTHEAST]];
        let mut leaders = [0usize; 3];
        for i in 0..200u32 {
            let a = IpAddr::from((0x0a00_0000 | (i << 8) | 1).to_be_bytes());
            let b = IpAddr::from((0x0a00_0000 | (i << 8) | 254).to_be_bytes());
            let out = flat(&sticky(&Client::from_ecs_or_source(None, a), tiers()).tiers);
            // Two resolvers in one /24 are one client.
            assert_eq!(out, flat(&sticky(&Client::from_ecs_or_source(None, b), tiers()).tiers));
            assert_eq!(out.len(), 3);
            assert_eq!(out[2], vec![AP_NORTHEAST], "the second tier stays behind: {out:?}");
            leaders[out[0][0]] += 1;
        }
        // Both leading regions win some subnets (weights 50:30).
        assert!(leaders[US_EAST] > 90 && leaders[EU_WEST] > 50, "{leaders:?}");
    }

    #[test]
    fn a_region_of_weight_zero_is_never_first() {
        let mut rs = regions();
        rs[US_EAST].weight = 0;
        let health = HealthView::all_up();
        for i in 0..200u32 {
            let c = client(&IpAddr::from((i << 8).to_be_bytes()).to_string(), 24, None);
            let ctx = Ctx { regions: &rs, client: &c, health: &health, explain: false, scopes: None };
            let out = apply(smallvec![smallvec![US_EAST, EU_WEST, AP_NORTHEAST]], &ctx);
            assert_eq!(out.tiers.last().unwrap().as_slice(), &[US_EAST]);
        }
    }

    #[test]
    fn ramp_first_lets_in_a_stable_share_and_demotes_the_rest_by_one_place() {
        let rs = regions();
        let mut health = HealthView::all_up();
        // Just returned, ramping over an hour: the floor share (5%).
        health.set_ramp("us-east", Instant::now(), Duration::from_secs(3600));
        let (mut kept, n) = (0, 2000u32);
        for i in 0..n {
            let c = client(&IpAddr::from((i << 8).to_be_bytes()).to_string(), 24, None);
            let ctx = Ctx { regions: &rs, client: &c, health: &health, explain: false, scopes: None };
            let tiers: Tiers = smallvec![smallvec![US_EAST, EU_WEST], smallvec![AP_NORTHEAST]];
            let (out, scope) = ramp_first(tiers.clone(), &ctx, None);
            assert_eq!(scope, Some(24));
            assert_eq!(flat(&ramp_first(tiers.clone(), &ctx, None).0), flat(&out), "stable per client");
            if flat(&out) == flat(&tiers) {
                kept += 1;
            } else {
                assert_eq!(flat(&out), vec![vec![EU_WEST], vec![US_EAST], vec![AP_NORTHEAST]]);
            }
        }
        let share = f64::from(kept) / f64::from(n);
        assert!((share - 0.05).abs() < 0.02, "{share}");
    }

    #[test]
    fn ramp_first_without_a_ramping_leader_or_a_second_region_changes_nothing() {
        let rs = regions();
        let c = client("10.1.2.0", 24, None);
        let mut health = HealthView::all_up();
        health.set_ramp("eu-west", Instant::now(), Duration::from_secs(3600));
        let ctx = Ctx { regions: &rs, client: &c, health: &health, explain: false, scopes: None };
        // eu-west ramps but does not lead: no demotion, and no scope of its own.
        let (out, scope) = ramp_first(smallvec![smallvec![US_EAST], smallvec![EU_WEST]], &ctx, None);
        assert_eq!((flat(&out), scope), (vec![vec![US_EAST], vec![EU_WEST]], None));
        let (out, scope) = ramp_first(smallvec![smallvec![EU_WEST]], &ctx, None);
        assert_eq!((flat(&out), scope), (vec![vec![EU_WEST]], None));
    }

    #[test]
    fn a_demotion_is_traced() {
        let rs = regions();
        let mut health = HealthView::all_up();
        health.set_ramp("us-east", Instant::now(), Duration::from_secs(3600));
        let mut trace = Vec::new();
        for i in 0..100u32 {
            let c = client(&IpAddr::from((i << 8).to_be_bytes()).to_string(), 24, None);
            let ctx = Ctx { regions: &rs, client: &c, health: &health, explain: true, scopes: None };
            let (out, _) = ramp_first(smallvec![smallvec![US_EAST, EU_WEST]], &ctx, Some(&mut trace));
            if out[0].as_slice() == [EU_WEST] {
                break;
            }
        }
        let step = trace.last().expect("some client in a hundred waits at a 5% share");
        assert_eq!(step.step, "slow-start");
        assert_eq!((step.input.as_str(), step.output.as_str()), ("us-east = eu-west", "eu-west > us-east"));
        assert_eq!(step.note, "us-east is ramping up (5% of its clients); this client waits");
    }

    fn winner(subnet: &[u8], regions: &[(&str, f64)]) -> usize {
        (0..regions.len())
            .max_by(|a, b| {
                score(subnet, regions[*a].0, regions[*a].1).total_cmp(&score(subnet, regions[*b].0, regions[*b].1))
            })
            .unwrap()
    }

    #[test]
    fn weights_are_respected_and_removal_moves_only_that_regions_clients() {
        let all = [("us-east", 50.0), ("eu-west", 30.0), ("ap-northeast", 20.0)];
        let mut counts = [0usize; 3];
        let mut moved_wrongly = 0;
        let n = 20_000u32;
        for i in 0..n {
            let key = subnet_key(IpAddr::from((i << 8).to_be_bytes()), 24);
            let w = winner(&key, &all);
            counts[w] += 1;
            // Remove ap-northeast: clients of the other two must stay put.
            let w2 = winner(&key, &all[..2]);
            if w != 2 && w2 != w {
                moved_wrongly += 1;
            }
        }
        for (i, (_, weight)) in all.iter().enumerate() {
            let share = counts[i] as f64 / n as f64 * 100.0;
            assert!((share - weight).abs() < 2.0, "{i}: {share}");
        }
        assert_eq!(moved_wrongly, 0);
    }
}
