//! Runs a service's chain: availability filter, then each step in order,
//! then selection. Candidates travel as ordered tiers: each step only
//! reorders within (or splits) the tiers earlier steps produced, so a later
//! step refines an earlier one instead of undoing it.

use smallvec::smallvec;

use super::ctx::Ctx;
use super::tiers::{Tier, Tiers};
use super::trace::TraceStep;
use super::{Client, Decision, FailMode, Family, HealthView, Region, RegionId, Service, Step};

/// Decide the answer of `svc` for `client`. `trace` collects the explanation.
pub fn decide(
    svc: &Service,
    regions: &[Region],
    client: &Client,
    health: &HealthView,
    family: Family,
    mut trace: Option<&mut Vec<TraceStep>>,
) -> Decision {
    let ctx = Ctx { regions, client, health, explain: trace.is_some() };
    let up: Tier = svc.regions.iter().copied().filter(|id| health.is_up(&regions[*id].name)).collect();
    let all_down = up.is_empty();
    let degraded = up.len() < svc.regions.len();
    let ttl = match svc.ttl_degraded {
        Some(t) if degraded => t,
        _ => svc.ttl,
    };
    let (candidates, fail_open) = match (&svc.fail, all_down) {
        (_, false) => (up, false),
        (FailMode::Open, true) => (Tier::from_slice(&svc.regions), true),
        (FailMode::Fallback(id), true) => (smallvec![*id], false),
        (FailMode::Servfail, true) => {
            if let Some(t) = trace.as_deref_mut() {
                t.push(TraceStep::new(
                    "available",
                    &ctx,
                    &smallvec![Tier::from_slice(&svc.regions)],
                    &Tiers::new(),
                    "every region is down: SERVFAIL".into(),
                ));
            }
            return Decision { regions: vec![], addresses: vec![], scope: 0, fail_open: false, servfail: true, ttl };
        }
    };
    if let Some(t) = trace.as_deref_mut() {
        let down: Vec<RegionId> = svc.regions.iter().copied().filter(|id| !candidates.contains(id)).collect();
        let note = if fail_open {
            "every region is down: failing open to all of them".to_string()
        } else if down.is_empty() {
            "all regions available".to_string()
        } else {
            format!("withdrawn: {}", ctx.names(&down))
        };
        t.push(TraceStep::new(
            "available",
            &ctx,
            &smallvec![Tier::from_slice(&svc.regions)],
            &smallvec![candidates.clone()],
            note,
        ));
    }

    let mut tiers: Tiers = smallvec![candidates];
    let mut scope: Option<u8> = None;
    let mut multi: Option<usize> = None;
    for step in &svc.chain {
        let before = trace.is_some().then(|| tiers.clone());
        let out = match step {
            Step::Geo(rules) => super::geo::apply(tiers, rules, &ctx),
            Step::Nearest => super::nearest::apply(tiers, &ctx),
            Step::Latency(table) => super::latency::apply(tiers, table, &ctx),
            Step::LatencyProbe => super::latency::apply_probe(tiers, &ctx),
            Step::Weighted => super::weighted::apply(tiers, &ctx),
            Step::Sticky => super::sticky::apply(tiers, &ctx),
            Step::Failover(order) => super::failover::apply(tiers, order, &ctx),
            Step::Shed(fail) => super::shed::apply(tiers, *fail, &ctx),
            Step::LeastLoaded => super::least_loaded::apply(tiers, &ctx),
            Step::Multi(n) => {
                multi = Some(*n);
                super::multi::apply(tiers, *n, &ctx)
            }
        };
        if let Some(s) = out.scope {
            scope = Some(scope.map_or(s, |prev| prev.max(s)));
        }
        if let (Some(t), Some(before)) = (trace.as_deref_mut(), before) {
            t.push(TraceStep::new(step.name(), &ctx, &before, &out.tiers, out.note));
        }
        tiers = out.tiers;
    }

    // Slow start for ordering chains: a ramping region keeps a growing,
    // hash-stable share of the clients it leads for; the rest go to the next.
    if !svc.chain.iter().any(|s| matches!(s, Step::Weighted | Step::Sticky)) {
        let (ramped, ramp_scope) = super::sticky::ramp_first(tiers, &ctx, trace);
        tiers = ramped;
        if let Some(s) = ramp_scope {
            scope = Some(scope.map_or(s, |prev| prev.max(s)));
        }
    }
    let (chosen, addresses) = super::multi::select(tiers, multi, family, fail_open, &ctx);
    Decision { regions: chosen, addresses, scope: scope.unwrap_or(0), fail_open, servfail: false, ttl }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixtures::{client, located, regions};
    use crate::policy::Matcher;
    use std::net::IpAddr;

    fn svc(chain: Vec<Step>) -> Service {
        Service::new("www".into(), crate::metrics::Label::of("www"), 30, None, vec![0, 1, 2], chain, FailMode::Open)
    }

    fn www() -> Service {
        let mut geo = Matcher::default();
        geo.continent.insert("EU".into(), vec![1]);
        geo.continent.insert("NA".into(), vec![0]);
        geo.continent.insert("AS".into(), vec![2]);
        svc(vec![Step::Geo(geo), Step::Nearest])
    }

    #[test]
    fn geo_then_nearest_picks_the_mapped_region_and_falls_back_by_distance() {
        let rs = regions();
        let eu = client("10.3.0.0", 24, Some(located("10.3.0.0/16", "EU", (51.5, -0.1))));
        let d = decide(&www(), &rs, &eu, &HealthView::all_up(), Family::V4, None);
        assert_eq!(d.addresses, vec!["198.51.100.10".parse::<IpAddr>().unwrap()]);
        assert_eq!(d.scope, 16);
        // eu-west down: London's next region is the nearest one, us-east.
        let h = HealthView::with_down(["eu-west".to_string()]);
        let d = decide(&www(), &rs, &eu, &h, Family::V6, None);
        assert_eq!(d.addresses, vec!["2001:db8:10::10".parse::<IpAddr>().unwrap()]);
        // Unknown continent: nearest decides (Sydney → Tokyo).
        let oc = client("10.6.0.0", 24, Some(located("10.6.0.0/16", "OC", (-33.9, 151.2))));
        let d = decide(&www(), &rs, &oc, &HealthView::all_up(), Family::V4, None);
        assert_eq!(d.regions, vec![2]);
    }

    #[test]
    fn all_down_fails_open() {
        let rs = regions();
        let h = HealthView::with_down(rs.iter().map(|r| r.name.clone()));
        let d = decide(
            &svc(vec![Step::Failover(vec![1, 0, 2])]),
            &rs,
            &client("192.0.2.1", 32, None),
            &h,
            Family::V4,
            None,
        );
        assert!(d.fail_open);
        assert_eq!(d.regions, vec![1]);
        assert_eq!(d.scope, 0);
    }

    #[test]
    fn failover_takes_the_first_available() {
        let rs = regions();
        let s = svc(vec![Step::Failover(vec![1, 0, 2])]);
        let c = client("192.0.2.1", 32, None);
        assert_eq!(decide(&s, &rs, &c, &HealthView::all_up(), Family::V4, None).regions, vec![1]);
        let h = HealthView::with_down(["eu-west".to_string()]);
        assert_eq!(decide(&s, &rs, &c, &h, Family::V4, None).regions, vec![0]);
    }

    #[test]
    fn multi_answers_several_regions_in_order() {
        let rs = regions();
        let s = svc(vec![Step::Failover(vec![2, 1, 0]), Step::Multi(2)]);
        let d = decide(&s, &rs, &client("192.0.2.1", 32, None), &HealthView::all_up(), Family::V4, None);
        assert_eq!(d.regions, vec![2, 1]);
        assert_eq!(d.addresses.len(), 2);
    }

    #[test]
    fn sticky_scope_is_the_hashed_subnet() {
        let rs = regions();
        let s = svc(vec![Step::Sticky]);
        let d = decide(&s, &rs, &client("10.1.2.0", 24, None), &HealthView::all_up(), Family::V4, None);
        assert_eq!(d.scope, 24);
        let d2 = decide(&s, &rs, &client("10.1.2.0", 24, None), &HealthView::all_up(), Family::V4, None);
        assert_eq!(d.regions, d2.regions);
        let d = decide(&s, &rs, &client("10.1.0.0", 16, None), &HealthView::all_up(), Family::V4, None);
        assert_eq!(d.scope, 16);
    }
}
