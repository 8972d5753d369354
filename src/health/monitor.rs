//! The probe runtime: one prober task per distinct target, results fed to
//! the state machine, and on every transition a new `HealthView` built and
//! handed to the publish callback. The arrow points one way: the server
//! tells the monitor what to probe (`sync`) and receives views; the monitor
//! never reads the snapshot. Cold path: may lock and allocate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::endpoint_state::TargetState;
use super::overrides::{self, Override, OverrideError, OverrideKind, Scope, OVERRIDES_FILE};
use super::probe::{self, HttpClients, ProbeResult};
use super::rise_fall::Verdict;
use super::target::{ProbeTarget, RegionTargets};
use super::view::HealthView;

/// Settings of the health subsystem (from `meridian.toml` `[health]`).
#[derive(Debug, Clone)]
pub struct HealthSettings {
    /// Count `unknown` endpoints (no verdict yet) as up.
    pub unknown_is_up: bool,
    /// Probes in flight at once, over all targets.
    pub concurrency: usize,
    /// Where overrides are persisted (`overrides.json`).
    pub state_dir: Option<PathBuf>,
    /// Source address of probes (`probe_source`).
    pub probe_source: Option<IpAddr>,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings { unknown_is_up: true, concurrency: 256, state_dir: None, probe_source: None }
    }
}

/// Something the rest of the program may want to count or log.
pub trait HealthObserver: Send + Sync {
    fn probe(&self, _target: &ProbeTarget, _result: &ProbeResult) {}
    fn transition(&self, _target: &ProbeTarget, _from: Verdict, _to: Verdict) {}
}

/// The endpoints a probe target decides, as `region address` pairs (for
/// logs: an operator knows the region and the answered address, not the URL).
fn decided_by(regions: &[RegionTargets], target: &Arc<ProbeTarget>) -> String {
    let mut out: Vec<String> = Vec::new();
    for r in regions {
        for ep in r.endpoints.iter().filter(|ep| ep.target.as_ref() == Some(target)) {
            let item = format!("{} {}", r.name, ep.addr);
            if !out.contains(&item) {
                out.push(item);
            }
        }
    }
    if out.is_empty() {
        return "none configured".into();
    }
    out.join(", ")
}

/// Observes nothing.
pub struct NoObserver;
impl HealthObserver for NoObserver {}

/// Where views go (the server swaps them into its snapshot). Called with
/// the monitor's lock held, so views arrive in the order they were built.
pub type Publish = Box<dyn Fn(Arc<HealthView>) + Send + Sync>;

struct Entry {
    state: TargetState,
    cancel: CancellationToken,
    /// The last load the target reported, and when.
    load: Option<(f64, Instant)>,
}

struct Inner {
    targets: HashMap<Arc<ProbeTarget>, Entry>,
    overrides: Vec<Override>,
    /// Region state at the last publish, to notice returns for slow start.
    region_up: HashMap<String, bool>,
    ramp_since: HashMap<String, Instant>,
    /// The regions of the last `sync`, in configuration order.
    regions: Arc<[RegionTargets]>,
    /// The view last published (at first, the one being served): a new view
    /// that says the same is not published, so caches keyed on it survive.
    published: Arc<HealthView>,
    /// Verdicts agreed by the cluster, by target label; `None` (alone, or cut
    /// off from the cluster): this node's own probes decide.
    shared: Option<HashMap<String, Verdict>>,
    /// Loads pushed through the admin API: by region, and endpoint if one.
    pushed_load: HashMap<(String, Option<IpAddr>), (f64, Instant)>,
}

pub struct Monitor {
    inner: Mutex<Inner>,
    publish: Publish,
    clients: HttpClients,
    limit: Arc<Semaphore>,
    pub settings: HealthSettings,
    observer: Arc<dyn HealthObserver>,
}

impl Monitor {
    /// `serving` is the view the snapshot holds now; `publish` receives every
    /// view that differs from the one before.
    pub fn new(
        settings: HealthSettings,
        observer: Arc<dyn HealthObserver>,
        serving: Arc<HealthView>,
        publish: Publish,
    ) -> Arc<Monitor> {
        let overrides =
            settings.state_dir.as_ref().map(|d| overrides::load(&d.join(OVERRIDES_FILE))).unwrap_or_default();
        Arc::new(Monitor {
            inner: Mutex::new(Inner {
                targets: HashMap::new(),
                overrides,
                region_up: HashMap::new(),
                ramp_since: HashMap::new(),
                regions: Arc::from([]),
                published: serving,
                shared: None,
                pushed_load: HashMap::new(),
            }),
            publish,
            clients: HttpClients::with_source(settings.probe_source),
            limit: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            settings,
            observer,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take the configuration's regions (every definition, in order: a name
    /// defined again is probed but judged by its first definition), start
    /// probers for new targets, stop those of targets that are gone, and
    /// publish. Call at start and after each reload, within a Tokio runtime.
    pub fn sync(self: &Arc<Self>, regions: Vec<RegionTargets>) {
        let mut wanted: Vec<Arc<ProbeTarget>> = Vec::new();
        for t in regions.iter().flat_map(|r| &r.endpoints).filter_map(|ep| ep.target.as_ref()) {
            if !wanted.contains(t) {
                wanted.push(Arc::clone(t));
            }
        }
        let mut inner = self.lock();
        inner.regions = regions.into();
        inner.targets.retain(|t, e| {
            let keep = wanted.contains(t);
            if !keep {
                e.cancel.cancel();
                info!(target = %t.label(), "probe stopped: no longer configured");
            }
            keep
        });
        for t in wanted {
            if inner.targets.contains_key(&t) {
                continue;
            }
            let cancel = CancellationToken::new();
            inner.targets.insert(
                Arc::clone(&t),
                Entry { state: TargetState::new(SystemTime::now()), cancel: cancel.clone(), load: None },
            );
            tokio::spawn(Arc::clone(self).prober(t, cancel));
        }
        drop(inner);
        self.publish();
    }

    async fn prober(self: Arc<Self>, target: Arc<ProbeTarget>, cancel: CancellationToken) {
        // The first probe soon (so cold start ends quickly), spread to avoid a thundering herd.
        let mut delay =
            Duration::from_millis(rand::rng().random_range(0..=target.interval.as_millis().min(500) as u64));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel.cancelled() => return,
            }
            let started = Instant::now();
            let result = {
                let Ok(_permit) = self.limit.acquire().await else { return };
                probe::run(&target, &self.clients).await
            };
            if cancel.is_cancelled() {
                return;
            }
            self.on_result(&target, result);
            // Next probe one interval after this one started, ±10% jitter.
            let jitter = rand::rng().random_range(0.9..=1.1);
            delay = target.interval.mul_f64(jitter).saturating_sub(started.elapsed());
        }
    }

    /// Feed one probe result; publishes when a verdict changes.
    pub fn on_result(&self, target: &Arc<ProbeTarget>, result: ProbeResult) {
        self.observer.probe(target, &result);
        let (transition, reported, regions) = {
            let mut inner = self.lock();
            let regions = Arc::clone(&inner.regions);
            let Some(entry) = inner.targets.get_mut(target) else { return };
            if let Some(l) = result.load {
                entry.load = Some((l, Instant::now()));
            }
            let transition = entry.state.observe(&result, target.rise, target.fall, SystemTime::now());
            (transition, result.load.is_some(), regions)
        };
        if let Some((from, to)) = transition {
            let endpoints = decided_by(&regions, target);
            info!(%endpoints, %from, %to, probe = %target.label(), detail = %result.detail, "endpoint state changed");
            self.observer.transition(target, from, to);
        }
        // A load report is news even without a transition: shedding reads it.
        if transition.is_some() || reported {
            self.publish();
        }
    }

    /// Record a load pushed by an operator or an agent (`meridian admin
    /// load`): for the whole region, or one endpoint of it. It ages like a
    /// probed report and is not persisted (a restart forgets it).
    pub fn report_load(&self, region: &str, addr: Option<IpAddr>, value: f64) {
        self.lock().pushed_load.insert((region.to_string(), addr), (value, Instant::now()));
        info!(region, ?addr, value, "load reported");
        self.publish();
    }

    /// Every pushed load at once, from the cluster (`cluster::loads`): with
    /// `[cluster]`, `admin load` goes through etcd and every node holds the
    /// same set, this node's own reports included.
    pub fn replace_pushed_loads(&self, loads: HashMap<(String, Option<IpAddr>), (f64, Instant)>) {
        self.lock().pushed_load = loads;
        self.publish();
    }

    /// Build the view from probe states and overrides and publish it.
    pub fn publish(&self) {
        // Under the lock, so publishes are stored in the order they were built.
        let mut inner = self.lock();
        let now = SystemTime::now();
        let before = inner.overrides.len();
        inner.overrides.retain(|o| !o.expired(now));
        if inner.overrides.len() != before {
            info!("an override expired and was cleared");
            self.persist(&inner.overrides);
        }
        let mut view = build_view(&mut inner, self.settings.unknown_is_up);
        if view.continue_from(&inner.published) {
            return; // nothing changed: keep the snapshot (and every cache keyed on it)
        }
        let view = Arc::new(view);
        inner.published = Arc::clone(&view);
        (self.publish)(view);
        drop(inner);
    }

    /// Republish periodically: expiring overrides, RTT updates, ramp ends.
    pub async fn ticker(self: Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            self.publish();
        }
    }

    /// Set an override (replacing any on the same scope). Refused, with
    /// nothing changed, when it is too long or cannot be saved.
    pub fn set_override(
        &self,
        scope: Scope,
        kind: OverrideKind,
        for_: Option<Duration>,
    ) -> Result<Override, OverrideError> {
        let o = Override::new(scope.clone(), kind, for_, SystemTime::now())?;
        {
            let mut inner = self.lock();
            let mut next: Vec<Override> = inner.overrides.iter().filter(|x| x.scope != scope).cloned().collect();
            next.push(o.clone());
            self.save(&next)?;
            inner.overrides = next;
        }
        let for_ = for_.map_or_else(|| "until cleared".to_string(), |d| humantime::format_duration(d).to_string());
        info!(%scope, %kind, %for_, "override set");
        self.publish();
        Ok(o)
    }

    /// Remove the override on `scope`; whether there was one. Refused, with
    /// nothing changed, when the change cannot be saved.
    pub fn clear_override(&self, scope: &Scope) -> Result<bool, OverrideError> {
        let removed = {
            let mut inner = self.lock();
            let next: Vec<Override> = inner.overrides.iter().filter(|x| &x.scope != scope).cloned().collect();
            let removed = next.len() != inner.overrides.len();
            if removed {
                self.save(&next)?;
                inner.overrides = next;
            }
            removed
        };
        if removed {
            info!(%scope, "override cleared");
            self.publish();
        }
        Ok(removed)
    }

    /// Take `all` as the whole set of overrides (the cluster's, from etcd),
    /// saving it as the local cache. A cache that cannot be written is logged:
    /// the shared state is the truth, and the change is already made there.
    pub fn replace_overrides(&self, mut all: Vec<Override>) {
        let now = SystemTime::now();
        all.retain(|o| !o.expired(now));
        all.sort_by(|a, b| a.scope.cmp(&b.scope));
        {
            let mut inner = self.lock();
            let mut current = inner.overrides.clone();
            current.sort_by(|a, b| a.scope.cmp(&b.scope));
            if current == all {
                return;
            }
            if let Err(e) = self.save(&all) {
                error!(error = %e, "cannot save the shared overrides to the local cache");
            }
            inner.overrides = all;
        }
        info!("overrides replaced by the shared set");
        self.publish();
    }

    /// Judge targets by the cluster's verdicts (target label → verdict) from
    /// now on, or by this node's own probes again (`None`). Targets the
    /// cluster has no verdict for keep their own.
    pub fn set_shared_verdicts(&self, shared: Option<HashMap<String, Verdict>>) {
        {
            let mut inner = self.lock();
            if inner.shared == shared {
                return;
            }
            inner.shared = shared;
        }
        self.publish();
    }

    pub fn overrides(&self) -> Vec<Override> {
        self.lock().overrides.clone()
    }

    /// A copy of each target's state, for `/status`.
    pub fn target_states(&self) -> Vec<(Arc<ProbeTarget>, TargetState)> {
        self.lock().targets.iter().map(|(t, e)| (Arc::clone(t), e.state.clone())).collect()
    }

    /// Save to the state directory (if any): a change not saved is not made.
    fn save(&self, overrides: &[Override]) -> Result<(), OverrideError> {
        match &self.settings.state_dir {
            Some(dir) => overrides::save(&dir.join(OVERRIDES_FILE), overrides),
            None => Ok(()),
        }
    }

    /// Save after expiry, which nobody waits for: a failure is logged.
    fn persist(&self, overrides: &[Override]) {
        if let Err(e) = self.save(overrides) {
            error!(error = %e, "cannot save the overrides after an expiry");
        }
    }
}

/// Endpoint up? Overrides first, then the probe verdict.
fn endpoint_up(
    inner: &Inner,
    region: &str,
    addr: IpAddr,
    target: Option<&Arc<ProbeTarget>>,
    unknown_is_up: bool,
) -> bool {
    let scope = Scope::Endpoint(region.to_string(), addr);
    if let Some(o) = inner.overrides.iter().find(|o| o.scope == scope) {
        return o.kind == OverrideKind::ForceUp;
    }
    let shared = target.and_then(|t| inner.shared.as_ref()?.get(&t.label()));
    match target.and_then(|t| inner.targets.get(t)) {
        None => true,
        Some(e) => match shared.copied().unwrap_or(e.state.verdict()) {
            Verdict::Up => true,
            Verdict::Down => false,
            Verdict::Unknown => unknown_is_up,
        },
    }
}

fn build_view(inner: &mut Inner, unknown_is_up: bool) -> HealthView {
    let mut view = HealthView::default();
    let regions = Arc::clone(&inner.regions);
    // Region names name datacenters across zones: the first definition counts.
    let mut seen: Vec<&str> = Vec::new();
    for r in regions.iter() {
        if seen.contains(&r.name.as_str()) {
            continue;
        }
        seen.push(&r.name);
        let region_override = inner.overrides.iter().find(|o| o.scope == Scope::Region(r.name.clone())).map(|o| o.kind);
        let ups: Vec<bool> = r
            .endpoints
            .iter()
            .map(|ep| endpoint_up(inner, &r.name, ep.addr, ep.target.as_ref(), unknown_is_up))
            .collect();
        let n_up = ups.iter().filter(|u| **u).count();
        let required = r.min_healthy.min(ups.len()).max(1);
        let up = match region_override {
            Some(OverrideKind::ForceUp) => true,
            Some(OverrideKind::ForceDown | OverrideKind::Drain) => false,
            None => n_up >= required,
        };
        if !up {
            view.set_down(&r.name);
        } else if region_override != Some(OverrideKind::ForceUp) {
            for (ep, ok) in r.endpoints.iter().zip(&ups) {
                if !ok {
                    view.set_addr_down(&r.name, ep.addr);
                }
            }
        }
        // Lowest smoothed RTT among the region's healthy probed endpoints.
        let rtt = r
            .endpoints
            .iter()
            .zip(&ups)
            .filter(|(_, ok)| **ok)
            .filter_map(|(ep, _)| {
                ep.target.as_ref().and_then(|t| inner.targets.get(t)).and_then(|e| e.state.rtt_ewma_ms)
            })
            .min_by(|a, b| a.total_cmp(b));
        if let Some(ms) = rtt {
            view.set_rtt(&r.name, ms);
        }
        // Load reports of up endpoints (a down one serves nobody), the
        // younger of probed and pushed; the region's own pushed report too.
        for (ep, ok) in r.endpoints.iter().zip(&ups) {
            let probed = ep.target.as_ref().and_then(|t| inner.targets.get(t)).and_then(|e| e.load);
            let pushed = inner.pushed_load.get(&(r.name.clone(), Some(ep.addr))).copied();
            let newest = [probed, pushed].into_iter().flatten().max_by_key(|(_, at)| *at);
            if let (true, Some((v, at))) = (*ok, newest) {
                view.set_load(&r.name, Some(ep.addr), v, at);
            }
        }
        if let Some((v, at)) = inner.pushed_load.get(&(r.name.clone(), None)) {
            view.set_load(&r.name, None, *v, *at);
        }
        // Slow start: a region that was down and is up again ramps up.
        let was = inner.region_up.insert(r.name.clone(), up);
        if let Some(over) = r.slow_start {
            if was == Some(false) && up {
                inner.ramp_since.insert(r.name.clone(), Instant::now());
            }
            if !up {
                inner.ramp_since.remove(&r.name);
            }
            if let Some(since) = inner.ramp_since.get(&r.name) {
                if since.elapsed() < over {
                    view.set_ramp(&r.name, *since, over);
                }
            }
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Endpoint, ProbeKind};

    fn target(port: u16) -> Arc<ProbeTarget> {
        Arc::new(ProbeTarget {
            kind: ProbeKind::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
            interval: Duration::from_secs(3600),
            timeout: Duration::from_secs(1),
            fall: 1,
            rise: 1,
        })
    }

    fn region(name: &str, addr: [u8; 4], target: &Arc<ProbeTarget>) -> RegionTargets {
        let endpoints = vec![Endpoint { addr: IpAddr::from(addr), target: Some(Arc::clone(target)) }];
        RegionTargets { name: name.to_string(), endpoints, min_healthy: 1, slow_start: None }
    }

    fn result(ok: bool) -> ProbeResult {
        ProbeResult { ok, rtt: Duration::from_millis(2), detail: String::new(), load: None }
    }

    /// The monitor learns its regions from `sync` and sends views to its
    /// callback only when they differ from the last one (the view served at
    /// start counts as the last): unknown-as-up at start sends nothing, a
    /// fall sends the region down, a repeat failure or an idle publish sends
    /// nothing, and an RTT-only change keeps the availability identity.
    /// (No await in the test, so the spawned probers never run.)
    #[tokio::test]
    async fn views_go_to_the_callback_when_they_change() {
        let sent: Arc<Mutex<Vec<Arc<HealthView>>>> = Arc::default();
        let sink = Arc::clone(&sent);
        let views = || sent.lock().unwrap().clone();
        let serving = Arc::new(HealthView::all_up());
        let publish: Publish = Box::new(move |v| sink.lock().unwrap().push(v));
        let m = Monitor::new(HealthSettings::default(), Arc::new(NoObserver), serving, publish);
        let (eu, us) = (target(9), target(10));
        // "eu" twice: the second definition is probed but not judged.
        m.sync(vec![
            region("eu", [192, 0, 2, 1], &eu),
            region("us", [192, 0, 2, 2], &us),
            region("eu", [192, 0, 2, 9], &us),
        ]);
        assert!(views().is_empty(), "unknown counts as up: the served view still holds");
        assert_eq!(m.target_states().len(), 2, "one prober per distinct target");

        m.on_result(&eu, result(false));
        let v = views();
        assert_eq!(v.len(), 1);
        assert!(!v[0].is_up("eu") && v[0].is_up("us"));
        m.on_result(&eu, result(false));
        m.publish();
        assert_eq!(views().len(), 1, "nothing changed: nothing sent");

        m.on_result(&eu, result(true));
        let v = views();
        assert_eq!(v.len(), 2);
        assert!(v[1].is_up("eu") && v[1].rtt_ms("eu").is_some());
        assert!(!v[1].same_availability(&v[0]));

        // Reconfigured without "eu": its RTT goes, its availability did not change.
        m.sync(vec![region("us", [192, 0, 2, 2], &us)]);
        let v = views();
        assert_eq!(v.len(), 3);
        assert!(v[2].rtt_ms("eu").is_none());
        assert!(v[2].same_availability(&v[1]), "caches keyed on availability survive");
        assert_eq!(m.target_states().len(), 1, "the gone target's prober stopped");
    }

    /// The arrow points one way: health is handed regions and hands out
    /// views; it imports neither the snapshot nor the modules that read or
    /// own it, nor the zone and policy types (which import health).
    #[test]
    fn health_imports_nothing_downstream() {
        fn sources(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
                let p = e.path();
                if p.is_dir() {
                    sources(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        sources(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/health"), &mut files);
        assert!(files.len() > 4, "{files:?}");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for module in ["state", "answer", "server", "zone", "policy"] {
                let path = format!("crate::{module}");
                assert!(!text.contains(&path), "{} uses {path}", f.display());
            }
        }
    }
}
