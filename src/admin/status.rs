//! `GET /status`: every region of the current zones with its state, override
//! and endpoints (probe verdict, last result, last failure, RTT, last transition).

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::{rfc3339, rfc3339_secs, AdminCtx};
use crate::health::endpoint_state::TargetState;
use crate::health::{epoch_secs, Override, OverrideKind, ProbeTarget, Scope, Verdict};
use crate::metrics::verdict_label;

/// The state word of an override.
pub fn kind_state(kind: OverrideKind) -> &'static str {
    match kind {
        OverrideKind::Drain => "drained",
        OverrideKind::ForceUp => "forced-up",
        OverrideKind::ForceDown => "forced-down",
    }
}

/// The name of an override kind, as in the API paths and overrides.json.
pub fn kind_name(kind: OverrideKind) -> &'static str {
    match kind {
        OverrideKind::Drain => "drain",
        OverrideKind::ForceUp => "force-up",
        OverrideKind::ForceDown => "force-down",
    }
}

pub fn scope_json(scope: &Scope) -> Value {
    match scope {
        Scope::Region(r) => json!({ "region": r }),
        Scope::Endpoint(r, a) => json!({ "region": r, "endpoint": a.to_string() }),
    }
}

pub fn override_json(o: &Override) -> Value {
    json!({
        "scope": scope_json(&o.scope),
        "kind": kind_name(o.kind),
        "until": o.until.map(rfc3339_secs),
        "until_epoch": o.until,
        "set_at": rfc3339_secs(o.set_at),
        "set_at_epoch": o.set_at,
    })
}

/// The whole status document at `now`.
pub fn build(ctx: &AdminCtx, now: SystemTime) -> Value {
    let st = ctx.shared.load();
    let overrides: Vec<Override> = ctx.monitor.overrides().into_iter().filter(|o| !o.expired(now)).collect();
    let targets: HashMap<Arc<ProbeTarget>, TargetState> = ctx.monitor.target_states().into_iter().collect();
    let unknown_is_up = ctx.monitor.settings.unknown_is_up;
    let find = |scope: &Scope| overrides.iter().find(|o| &o.scope == scope);

    let mut regions = Vec::new();
    for r in st.zones.distinct_regions() {
        let region_override = find(&Scope::Region(r.name.clone()));
        let up = st.health.is_up(&r.name);
        let state = match region_override {
            Some(o) => kind_state(o.kind),
            None if up => "up",
            None => "down",
        };
        let mut healthy = 0;
        let endpoints: Vec<Value> = r
            .endpoints
            .iter()
            .map(|ep| {
                let ep_override = find(&Scope::Endpoint(r.name.clone(), ep.addr));
                let ts = ep.target.as_ref().and_then(|t| targets.get(t));
                let verdict = match (&ep.target, ts) {
                    (None, _) => "unprobed",
                    (Some(_), None) => "unknown",
                    (Some(_), Some(ts)) => verdict_label(ts.verdict()),
                };
                let ep_up = match ep_override {
                    Some(o) => o.kind == OverrideKind::ForceUp,
                    None => match ts.map(|t| t.verdict()) {
                        None | Some(Verdict::Up) => true,
                        Some(Verdict::Down) => false,
                        Some(Verdict::Unknown) => unknown_is_up,
                    },
                };
                healthy += usize::from(ep_up);
                let ep_state = match ep_override {
                    Some(o) => kind_state(o.kind),
                    None if ep_up => "up",
                    None => "down",
                };
                json!({
                    "address": ep.addr.to_string(),
                    "probe": ep.target.as_ref().map(|t| t.label()),
                    "verdict": verdict,
                    "state": ep_state,
                    "override": ep_override.map(override_json),
                    "last_result": ts.and_then(|t| t.last.as_ref()).map(|l| json!({
                        "ok": l.ok,
                        "detail": l.detail,
                        "rtt_ms": l.rtt.as_secs_f64() * 1000.0,
                    })),
                    "last_probe_at": ts.and_then(|t| t.last_at).map(rfc3339),
                    "last_probe_at_epoch": ts.and_then(|t| t.last_at).map(epoch_secs),
                    "last_failure": ts.and_then(|t| t.last_failure.as_ref()).map(|(reason, at)| json!({
                        "reason": reason,
                        "at": rfc3339(*at),
                        "at_epoch": epoch_secs(*at),
                    })),
                    "rtt_ms": ts.and_then(|t| t.rtt_ewma_ms),
                    "since": ts.map(|t| rfc3339(t.since)),
                    "since_epoch": ts.map(|t| epoch_secs(t.since)),
                    "transitions": ts.map_or(0, |t| t.transitions),
                    "fail_streak": ts.map_or(0, |t| t.fail_streak()),
                    "ok_streak": ts.map_or(0, |t| t.ok_streak()),
                    // Failed probes since the last transition (each logged once, at the transition).
                    "failures_since_change": ts.map_or(0, |t| t.failures_since_transition),
                })
            })
            .collect();
        let ramp = st.health.ramp(&r.name);
        regions.push(json!({
            "name": r.name,
            "state": state,
            "override": region_override.map(override_json),
            "min_healthy": r.min_healthy,
            "healthy_endpoints": healthy,
            "weight": r.weight,
            "slow_start": r.slow_start.map(|d| humantime::format_duration(d).to_string()),
            "ramp": (up && ramp < 1.0).then_some(ramp),
            "rtt_ms": st.health.rtt_ms(&r.name),
            // The load `shed` and `least_loaded` read now (null: unknown or stale).
            "load": st.health.load(&r.name, r.load_max_age),
            "load_max_age": humantime::format_duration(r.load_max_age).to_string(),
            "watermarks": r.watermarks.map(|(low, high)| json!({ "low": low, "high": high })),
            "endpoints": endpoints,
        }));
    }
    json!({
        "generated_at": rfc3339(now),
        "generated_at_epoch": epoch_secs(now),
        "regions": regions,
        "overrides": overrides.iter().map(override_json).collect::<Vec<_>>(),
    })
}
