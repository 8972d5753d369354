//! `sticky`: weighted rendezvous (highest-random-weight) hashing of the
//! client subnet. A client keeps its region; when a region leaves, only that
//! region's clients move, spread over the rest by weight.

use std::net::IpAddr;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use smallvec::{smallvec, SmallVec};

use super::chain::{Ctx, Outcome, Tiers};
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

pub fn apply(mut tiers: Tiers, ctx: &Ctx) -> Outcome {
    let prefix = key_prefix(ctx.client.addr, ctx.client.prefix);
    if tiers.is_empty() {
        return Outcome { tiers, scope: Some(prefix), note: ctx.note(|| "no candidates".into()) };
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
    Outcome { tiers: out, scope: Some(prefix), note }
}

/// Slow start for ordering chains: when the leading region is ramping with
/// factor f, only clients whose hash falls below f keep it first; the others
/// get the next region. The hash is stable, so the share grows smoothly
/// and a client, once let in, stays in.
/// Returns the tiers and, when a ramp was applied, the ECS scope it implies.
pub fn ramp_first(
    mut tiers: Tiers,
    ctx: &Ctx,
    trace: Option<&mut Vec<super::explain::TraceStep>>,
) -> (Tiers, Option<u8>) {
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
        t.push(super::explain::TraceStep::new("slow-start", ctx, &before, &tiers, note));
    }
    (tiers, Some(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

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
