//! `GET /map.json`: what the admin page (`page.html`) draws. Every region
//! with its live state (the `/status` entry, plus its location, capacity and
//! answers counted so far), and per service the `map` computation for the
//! GeoIP population: now, and after the page's what-if failures.
//!
//! Cheap to poll: the population (every network of the database, with one
//! point per country) is read once per database, and a map is computed once
//! per snapshot and what-if set. A new snapshot (a reload, a health change,
//! an override) drops the older maps.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::AdminCtx;
use crate::answer::Snapshot;
use crate::geo::GeoDb;
use crate::map::{self, MapError, MapRequest, Population, ReportOptions};

/// A map computed while a region ramps up (slow start) is redone after this
/// long: the ramp moves with the clock, not with the snapshot.
const RAMP_REFRESH: Duration = Duration::from_secs(2);
/// Maps kept for the current snapshot (what-if sets a page may flip between).
const KEEP: usize = 8;
/// Largest what-if set accepted (more than any zone has regions is an error anyway).
pub const MAX_WHATIF: usize = 64;

/// The population and computed maps, shared by the admin handlers.
#[derive(Default)]
pub struct MapCache {
    inner: Mutex<Inner>,
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

impl MapCache {
    /// The services part of the document for `state` and `whatif` (region
    /// names, sorted and deduplicated), from the cache when it has it.
    fn services(&self, state: &Arc<Snapshot>, whatif: &[String]) -> Result<Arc<Value>, MapError> {
        // One computation at a time: a second poll waits and then hits the cache.
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let ramping = state.health.ramping();
        let hit = inner.maps.iter().find(|e| {
            Arc::ptr_eq(&e.state, state) && e.whatif == whatif && !(ramping && e.at.elapsed() > RAMP_REFRESH)
        });
        if let Some(e) = hit {
            return Ok(Arc::clone(&e.doc));
        }
        let Some(db) = &state.geo else {
            let doc = json!({ "population": null, "services": [], "countries": {},
                "notes": ["no GeoIP database is configured: no clients to map"] });
            return Ok(Arc::new(doc));
        };
        let clients = match &inner.clients {
            Some((held, c)) if Arc::ptr_eq(held, db) => Arc::clone(c),
            _ => {
                let c = Arc::new(Clients::read(db)?);
                inner.clients = Some((Arc::clone(db), Arc::clone(&c)));
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
        let doc = Arc::new(doc);
        inner.maps.retain(|e| Arc::ptr_eq(&e.state, state));
        if inner.maps.len() >= KEEP {
            inner.maps.remove(0);
        }
        inner.maps.push(Entry {
            state: Arc::clone(state),
            whatif: whatif.to_vec(),
            at: Instant::now(),
            doc: Arc::clone(&doc),
        });
        Ok(doc)
    }
}

/// The whole document: regions now, and the services' map with `whatif` failed.
pub fn document(ctx: &AdminCtx, whatif: &[String]) -> Result<Value, MapError> {
    let mut whatif = whatif.to_vec();
    whatif.sort();
    whatif.dedup();
    let state = ctx.shared.load_full();
    let services = ctx.maps.services(&state, &whatif)?;
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
    doc["regions"] = Value::Array(regions);
    doc["cluster"] = status["cluster"].take();
    Ok(doc)
}
