//! `GET /map.json`: what the admin page (`map_page.html`) draws. Every region
//! with its live state (the `/status` entry, plus its location, capacity and
//! answers counted so far), and per service the `map` computation for the
//! GeoIP population: now, and after the page's what-if failures.
//!
//! Cheap to poll: the population (every network of the database, with one
//! point per country) is read once per database, and a map is computed once
//! per snapshot and what-if set, on a thread of its own, one at a time. A
//! request waits a moment for a new map; when it takes longer (a large
//! database), the request answers at once with the regions as they are now
//! and the last map of the same what-if set, marked `map_stale`, so a drain
//! still shows within a poll.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use super::AdminCtx;
use crate::answer::Snapshot;
use crate::geo::GeoDb;
use crate::map::{self, MapError, MapRequest, Population, ReportOptions};

/// A map computed while a region ramps up (slow start) is redone after this
/// long: the ramp moves with the clock, not with the snapshot.
const RAMP_REFRESH: Duration = Duration::from_secs(2);
/// How long a request waits for its map before answering with the last one.
const WAIT: Duration = Duration::from_millis(300);
/// Maps kept (what-if sets a page may flip between, and the last of each
/// for a snapshot still being mapped).
const KEEP: usize = 8;
/// Largest what-if set accepted (more than any zone has regions is an error anyway).
pub const MAX_WHATIF: usize = 64;

/// Why there is no document.
#[derive(Debug)]
pub enum ViewError {
    /// An unknown region in the what-if set.
    BadRequest(String),
    /// The map could not be computed (the GeoIP database could not be read).
    Unavailable(String),
}

/// The population and computed maps, shared by the admin handlers.
#[derive(Default)]
pub struct MapCache {
    inner: Mutex<Inner>,
    /// Signalled when a computation ends.
    done: Condvar,
}

impl std::fmt::Debug for MapCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapCache").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    /// The database it was read from (held, so the pointer cannot be reused).
    clients: Option<(Arc<GeoDb>, Arc<Clients>)>,
    maps: Vec<Entry>,
    /// The computation under way (snapshot and what-if set).
    running: Option<(Arc<Snapshot>, Vec<String>)>,
    /// The last computation's failure, for the requests that asked for it.
    failed: Option<(Arc<Snapshot>, Vec<String>, String)>,
}

/// The default population and where each country is drawn.
struct Clients {
    pop: Population,
    /// Country code → (mean latitude, mean longitude, networks), over the
    /// networks that have coordinates.
    countries: BTreeMap<String, (f64, f64, usize)>,
}

struct Entry {
    state: Arc<Snapshot>,
    whatif: Vec<String>,
    at: Instant,
    doc: Arc<Value>,
}

impl Clients {
    fn read(db: &GeoDb) -> Result<Clients, MapError> {
        let pop = Population::from_geo(db)?;
        let mut sums: BTreeMap<String, (f64, f64, usize)> = BTreeMap::new();
        for c in &pop.clients {
            let loc = db.lookup(c.net.addr());
            if let (Some(cc), Some((lat, lon))) = (loc.country, loc.coords) {
                let s = sums.entry(cc).or_default();
                s.0 += lat;
                s.1 += lon;
                s.2 += 1;
            }
        }
        let countries = sums.into_iter().map(|(cc, (lat, lon, n))| (cc, (lat / n as f64, lon / n as f64, n))).collect();
        Ok(Clients { pop, countries })
    }
}

impl Inner {
    fn fresh(&self, state: &Arc<Snapshot>, whatif: &[String]) -> Option<Arc<Value>> {
        let ramping = state.health.ramping();
        let hit = self.maps.iter().find(|e| {
            Arc::ptr_eq(&e.state, state) && e.whatif == whatif && !(ramping && e.at.elapsed() > RAMP_REFRESH)
        });
        hit.map(|e| Arc::clone(&e.doc))
    }

    fn failure(&self, state: &Arc<Snapshot>, whatif: &[String]) -> Option<String> {
        let f = self.failed.as_ref()?;
        (Arc::ptr_eq(&f.0, state) && f.1 == whatif).then(|| f.2.clone())
    }

    /// The newest map of `whatif` for any snapshot.
    fn last(&self, whatif: &[String]) -> Option<Arc<Value>> {
        self.maps.iter().rev().find(|e| e.whatif == whatif).map(|e| Arc::clone(&e.doc))
    }
}

impl MapCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The services part of the document for `state` and `whatif` (region
    /// names, sorted and deduplicated) and whether it is that snapshot's.
    fn services(self: &Arc<Self>, state: &Arc<Snapshot>, whatif: &[String]) -> Result<(Arc<Value>, bool), ViewError> {
        let Some(db) = &state.geo else {
            let doc = json!({ "population": null, "services": [], "countries": {},
                "notes": ["no GeoIP database is configured: no clients to map"] });
            return Ok((Arc::new(doc), true));
        };
        // Checked here, not on the thread: a typo is the caller's 400 at once.
        for r in whatif {
            if !state.zones.zones.iter().any(|z| z.regions.iter().any(|x| &x.name == r)) {
                return Err(ViewError::BadRequest(MapError::UnknownRegion(r.clone()).to_string()));
            }
        }
        let deadline = Instant::now() + WAIT;
        let mut inner = self.lock();
        loop {
            if let Some(doc) = inner.fresh(state, whatif) {
                return Ok((doc, true));
            }
            if let Some(e) = inner.failure(state, whatif) {
                return Err(ViewError::Unavailable(e));
            }
            if inner.running.is_none() {
                inner.running = Some((Arc::clone(state), whatif.to_vec()));
                inner.failed = None;
                let (me, state, db, whatif) = (Arc::clone(self), Arc::clone(state), Arc::clone(db), whatif.to_vec());
                std::thread::Builder::new()
                    .name("admin-map".into())
                    .spawn(move || me.compute(&state, &db, &whatif))
                    .map_err(|e| ViewError::Unavailable(format!("cannot start the map computation: {e}")))?;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            inner = self.done.wait_timeout(inner, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        let stale = inner.last(whatif).unwrap_or_else(|| Arc::new(json!({ "services": [], "countries": {} })));
        Ok((stale, false))
    }

    /// Map `state` with `whatif` failed and keep the result (or the failure).
    fn compute(&self, state: &Arc<Snapshot>, db: &Arc<GeoDb>, whatif: &[String]) {
        // A panic must not leave `running` set: no map would ever be computed again.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.map(state, db, whatif)))
            .unwrap_or(Err(MapError::Panicked));
        let mut inner = self.lock();
        inner.running = None;
        match result {
            Ok(doc) => {
                // A newer map of the same what-if set replaces older snapshots' ones.
                inner.maps.retain(|e| e.whatif != whatif);
                if inner.maps.len() >= KEEP {
                    inner.maps.remove(0);
                }
                let entry = Entry { state: Arc::clone(state), whatif: whatif.to_vec(), at: Instant::now(), doc };
                inner.maps.push(entry);
            }
            Err(e) => {
                tracing::warn!(error = %e, "the admin page's map could not be computed");
                inner.failed = Some((Arc::clone(state), whatif.to_vec(), e.to_string()));
            }
        }
        drop(inner);
        self.done.notify_all();
    }

    fn map(&self, state: &Snapshot, db: &Arc<GeoDb>, whatif: &[String]) -> Result<Arc<Value>, MapError> {
        let held = self.lock().clients.clone();
        let clients = match held {
            Some((d, c)) if Arc::ptr_eq(&d, db) => c,
            _ => {
                // Read without the lock: polls keep being answered meanwhile.
                let c = Arc::new(Clients::read(db)?);
                self.lock().clients = Some((Arc::clone(db), Arc::clone(&c)));
                c
            }
        };
        let req = MapRequest { fail: whatif.to_vec(), ..Default::default() };
        let m = map::run(state, &clients.pop, &req)?;
        let mut doc = map::json(&m, ReportOptions { qps: None, countries: true });
        doc["countries"] = Value::Object(
            clients
                .countries
                .iter()
                .map(|(cc, (lat, lon, n))| (cc.clone(), json!({ "lat": lat, "lon": lon, "networks": n })))
                .collect(),
        );
        Ok(Arc::new(doc))
    }
}

/// The whole document: regions now, and the services' map with `whatif` failed.
pub fn document(ctx: &AdminCtx, whatif: &[String]) -> Result<Value, ViewError> {
    let mut whatif = whatif.to_vec();
    whatif.sort();
    whatif.dedup();
    let state = ctx.shared.load_full();
    let (services, fresh) = ctx.maps.services(&state, &whatif)?;
    let now = SystemTime::now();
    let mut status = super::status::build(ctx, now);
    let answers = ctx.metrics.answers_by_region();
    let mut regions = match status["regions"].take() {
        Value::Array(r) => r,
        _ => Vec::new(),
    };
    for r in regions.iter_mut() {
        // By name: `/status` read the snapshot again, maybe a reloaded one.
        let Some(def) = state.zones.distinct_regions().find(|d| r["name"] == d.name.as_str()) else { continue };
        r["location"] = json!(def.location.map(|(lat, lon)| json!({ "lat": lat, "lon": lon })));
        r["capacity"] = json!(def.capacity);
        r["answers"] = json!(answers.get(&def.name).copied().unwrap_or(0));
        r["whatif_failed"] = json!(whatif.contains(&def.name));
    }
    let mut doc = (*services).clone();
    doc["generated_at"] = status["generated_at"].take();
    doc["generated_at_epoch"] = status["generated_at_epoch"].take();
    doc["whatif"] = json!(whatif);
    // The map is the last one computed, not yet this snapshot's (a large database).
    doc["map_stale"] = json!(!fresh);
    doc["regions"] = Value::Array(regions);
    doc["cluster"] = status["cluster"].take();
    Ok(doc)
}
