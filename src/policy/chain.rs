//! Runs a service's chain: availability filter, then each step in order,
//! then selection. Candidates travel as ordered tiers: each step only
//! reorders within (or splits) the tiers earlier steps produced, so a later
//! step refines an earlier one instead of undoing it.

use smallvec::smallvec;

use super::ctx::Ctx;
use super::scopes::GeoScopes;
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
    trace: Option<&mut Vec<TraceStep>>,
) -> Decision {
    decide_scoped(svc, regions, client, health, None, family, trace)
}

/// `decide`, with geo steps' scopes widened by `scopes` (`scopes.rs`).
pub fn decide_scoped(
    svc: &Service,
    regions: &[Region],
    client: &Client,
    health: &HealthView,
    scopes: Option<&GeoScopes>,
    family: Family,
    mut trace: Option<&mut Vec<TraceStep>>,
) -> Decision {
    let ctx = Ctx { regions, client, health, explain: trace.is_some(), scopes };
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
        Service::new("www".into(), 1, 30, None, vec![0, 1, 2], chain, FailMode::Open)
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

    /// The fixture regions, each with watermarks 60 / 80, and a geo chain
    /// that sends Europe to eu-west, then shed.
    fn shedding() -> (Vec<Region>, Service) {
        let mut rs = regions();
        for r in &mut rs {
            r.watermarks = Some((60.0, 80.0));
        }
        let mut geo = Matcher::default();
        geo.continent.insert("EU".into(), vec![1]);
        (rs, svc(vec![Step::Geo(geo), Step::Nearest, Step::Shed(crate::policy::ShedFail::Nearest)]))
    }

    fn european(i: u32) -> Client {
        let net = format!("10.{}.{}.0", 64 + i / 256, i % 256);
        // The database knows a /16: a scope of /24 is the shed hash's own.
        client(&net, 24, Some(located(&format!("10.{}.0.0/16", 64 + i / 256), "EU", (51.5, -0.1))))
    }

    fn with_loads(h: &mut HealthView, loads: &[(&str, f64)]) {
        for (r, v) in loads {
            h.set_load(r, None, *v, std::time::Instant::now());
        }
    }

    #[test]
    fn load_steps_are_never_cached_by_network() {
        assert!(svc(vec![Step::Nearest]).decided_by_networks());
        assert!(!svc(vec![Step::Nearest, Step::Shed(crate::policy::ShedFail::Nearest)]).decided_by_networks());
        assert!(!svc(vec![Step::Nearest, Step::LeastLoaded]).decided_by_networks());
    }

    #[test]
    fn halfway_between_the_watermarks_moves_half_of_eu_wests_clients_through_the_chain() {
        let (rs, s) = shedding();
        let n = 10_000u32;
        let moved = |eu: f64| -> Vec<u32> {
            let mut h = HealthView::all_up();
            with_loads(&mut h, &[("eu-west", eu), ("us-east", 10.0), ("ap-northeast", 10.0)]);
            (0..n)
                .filter(|i| {
                    let d = decide(&s, &rs, &european(*i), &h, Family::V4, None);
                    assert_eq!(d.scope, if eu > 60.0 && eu < 80.0 { 24 } else { 16 }, "load {eu}");
                    d.regions != vec![1]
                })
                .collect()
        };
        assert!(moved(50.0).is_empty(), "below low: nobody moves");
        let half = moved(70.0);
        let share = half.len() as f64 / f64::from(n);
        assert!((share - 0.5).abs() < 0.05, "{share}");
        assert_eq!(half, moved(70.0), "the same clients on repeat");
        assert_eq!(moved(85.0).len(), n as usize, "above high: all of them");
        assert!(moved(55.0).is_empty(), "back below low: they all return");
    }

    #[test]
    fn no_cascade_onto_a_region_at_its_high_watermark() {
        let (rs, s) = shedding();
        // eu-west failed; us-east (next by distance) already at high; ap-northeast quiet.
        let mut h = HealthView::with_down(["eu-west".to_string()]);
        with_loads(&mut h, &[("us-east", 80.0), ("ap-northeast", 20.0)]);
        for i in 0..1000 {
            let d = decide(&s, &rs, &european(i), &h, Family::V4, None);
            assert_eq!(d.regions, vec![2], "client {i} sent to {:?}", d.regions);
        }
        let mut trace = Vec::new();
        decide(&s, &rs, &european(7), &h, Family::V4, Some(&mut trace));
        let shed = trace.iter().find(|t| t.step == "shed").expect("traced");
        assert_eq!(shed.output, "ap-northeast > us-east");
        assert!(shed.note.contains("us-east load 80 (low 60, high 80): 100% of its clients shed"), "{}", shed.note);
    }

    #[test]
    fn missing_or_stale_reports_shed_nobody_through_the_chain() {
        let (mut rs, s) = shedding();
        rs[1].load_max_age = std::time::Duration::from_secs(5);
        let mut stale = HealthView::all_up();
        stale.set_load("eu-west", None, 99.0, std::time::Instant::now() - std::time::Duration::from_secs(6));
        with_loads(&mut stale, &[("us-east", 10.0)]);
        for h in [HealthView::all_up(), stale] {
            for i in 0..500 {
                assert_eq!(decide(&s, &rs, &european(i), &h, Family::V4, None).regions, vec![1]);
            }
        }
    }
}
