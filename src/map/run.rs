//! Runs every service's real chain (`answer::decide_service`, what queries
//! and `explain` run) for every client of a population, now and after a
//! change of availability, and adds the weights up.

use hickory_proto::rr::{Name, RecordType};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::population::Population;
use super::MapError;
use crate::answer::Snapshot;
use crate::policy::{self, Client, Decision};
use crate::zone::Zone;

/// What to compute.
#[derive(Debug, Clone, Default)]
pub struct MapRequest {
    /// Regions taken down (a failure).
    pub fail: Vec<String>,
    /// Regions taken out of service by an operator. The answer path treats
    /// a drain as a failure; the two are kept apart only for the report.
    pub drain: Vec<String>,
    /// Only this service (its name, or its full owner name).
    pub service: Option<String>,
    /// A or AAAA: which answer the clients ask for.
    pub rtype: Option<RecordType>,
    /// Keep each client's outcome (`--each`).
    pub each: bool,
}

impl MapRequest {
    pub fn changes(&self) -> bool {
        !self.fail.is_empty() || !self.drain.is_empty()
    }
}

/// Where a client's answer goes: a region of the service's zone (by index),
/// or one of the outcomes that are not a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Region(usize),
    Servfail,
    /// No address of the asked family in the chosen regions.
    NoAddress,
}

/// Weights per outcome, in the zone's region order, then SERVFAIL, then none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally(pub BTreeMap<Outcome, f64>);

impl Tally {
    fn add(&mut self, o: Outcome, w: f64) {
        *self.0.entry(o).or_default() += w;
    }

    pub fn total(&self) -> f64 {
        self.0.values().sum()
    }

    /// The outcome with the most weight (the first such in order).
    pub fn top(&self) -> Option<(Outcome, f64)> {
        self.0.iter().fold(None, |best, (o, w)| match best {
            Some((_, bw)) if bw >= *w => best,
            _ => Some((*o, *w)),
        })
    }
}

/// One service for one client family (IPv4 or IPv6 clients).
#[derive(Debug, Clone, Default)]
pub struct FamilyMap {
    pub networks: usize,
    pub now: Tally,
    /// After the change (`None` without one).
    pub after: Option<Tally>,
    /// (from, to) → weight, with the continents that move.
    pub moves: BTreeMap<(Outcome, Outcome), Tally2>,
    pub by_continent: BTreeMap<String, (Tally, Tally)>,
    pub by_country: BTreeMap<String, (Tally, Tally)>,
}

/// A move's weight and its split by continent.
#[derive(Debug, Clone, Default)]
pub struct Tally2 {
    pub weight: f64,
    pub by_continent: BTreeMap<String, f64>,
}

/// One service's map.
#[derive(Debug, Clone)]
pub struct ServiceMap {
    /// The owner name (what `explain` is asked for).
    pub name: Name,
    pub zone: Name,
    /// The zone's regions: name, capacity.
    pub regions: Vec<(String, Option<u32>)>,
    /// IPv4 clients, IPv6 clients.
    pub v4: FamilyMap,
    pub v6: FamilyMap,
}

impl ServiceMap {
    pub fn outcome_name(&self, o: Outcome) -> &str {
        match o {
            Outcome::Region(i) => &self.regions[i].0,
            Outcome::Servfail => "SERVFAIL",
            Outcome::NoAddress => "(no address)",
        }
    }
}

/// One client's outcome for one service (`--each`).
#[derive(Debug, Clone)]
pub struct Each {
    pub net: IpNet,
    pub weight: f64,
    pub service: usize,
    pub now: Outcome,
    pub after: Option<Outcome>,
}

#[derive(Debug, Clone)]
pub struct Map {
    pub source: String,
    pub rtype: RecordType,
    pub request: MapRequest,
    /// What changes between "now" and "after", in words (empty: nothing).
    pub change: String,
    /// Said once, above the services (e.g. a service only one side has).
    pub notes: Vec<String>,
    pub services: Vec<ServiceMap>,
    pub each: Vec<Each>,
}

/// One side of a comparison: a service as one configuration and health has it.
struct Side<'a> {
    state: &'a Snapshot,
    zone: &'a Zone,
    svc: &'a policy::Service,
    /// The zone's region index → the index in `ServiceMap::regions`.
    ids: Vec<usize>,
}

impl Side<'_> {
    fn outcome(&self, client: &Client, rtype: RecordType) -> Outcome {
        match outcome(&crate::answer::decide_service(self.state, self.zone, self.svc, client, rtype, None)) {
            Outcome::Region(i) => Outcome::Region(self.ids[i]),
            other => other,
        }
    }
}

/// A service to map: now, and after the change if there is one.
struct Job<'a> {
    now: Side<'a>,
    after: Option<Side<'a>>,
    map: ServiceMap,
}

/// The services of `state` that `wanted` names (all when `None`), by owner name.
fn services<'a>(state: &'a Snapshot, wanted: Option<&str>) -> Vec<(&'a Name, &'a Zone, &'a policy::Service)> {
    let mut out = Vec::new();
    for z in &state.zones.zones {
        let mut here: Vec<_> = z.services().collect();
        here.sort_by(|a, b| a.0.cmp(b.0));
        for (name, svc) in here {
            if wanted.is_none_or(|s| name_matches(name, &z.origin, s)) {
                out.push((name, z, &**svc));
            }
        }
    }
    out
}

fn empty_map(name: &Name, zone: &Zone, regions: Vec<(String, Option<u32>)>) -> ServiceMap {
    ServiceMap {
        name: name.clone(),
        zone: zone.origin.clone(),
        regions,
        v4: Default::default(),
        v6: Default::default(),
    }
}

/// Draw the map of `pop` on `state`, and after `req`'s failures and drains.
pub fn run(state: &Snapshot, pop: &Population, req: &MapRequest) -> Result<Map, MapError> {
    for r in req.fail.iter().chain(&req.drain) {
        if !state.zones.zones.iter().any(|z| z.regions.iter().any(|x| &x.name == r)) {
            return Err(MapError::UnknownRegion(r.clone()));
        }
    }
    let after_state = req.changes().then(|| {
        let mut h = (*state.health).clone();
        for r in req.fail.iter().chain(&req.drain) {
            h.set_down(r);
        }
        state.with_health(Arc::new(h))
    });
    let jobs: Vec<Job> = services(state, req.service.as_deref())
        .into_iter()
        .map(|(name, z, svc)| {
            let ids: Vec<usize> = (0..z.regions.len()).collect();
            let side = |state| Side { state, zone: z, svc, ids: ids.clone() };
            let regions = z.regions.iter().map(|r| (r.name.clone(), r.capacity)).collect();
            Job { now: side(state), after: after_state.as_ref().map(side), map: empty_map(name, z, regions) }
        })
        .collect();
    if jobs.is_empty() {
        return Err(MapError::UnknownService(req.service.clone().unwrap_or_default()));
    }
    let mut parts: Vec<String> = req.fail.iter().map(|x| format!("fail {x}")).collect();
    parts.extend(req.drain.iter().map(|x| format!("drain {x}")));
    Ok(draw(state, jobs, pop, req, parts.join(", "), Vec::new()))
}

/// Which clients move from the configuration `old` to `new` (the same
/// population, GeoIP and health): services are matched by owner name,
/// regions by name.
pub fn diff(
    old: &Snapshot,
    new: &Snapshot,
    pop: &Population,
    req: &MapRequest,
    change: String,
) -> Result<Map, MapError> {
    let before = services(old, req.service.as_deref());
    let after = services(new, req.service.as_deref());
    let mut notes = Vec::new();
    let mut jobs = Vec::new();
    for (name, oz, osvc) in &before {
        let Some((_, nz, nsvc)) = after.iter().find(|(n, _, _)| n == name) else {
            notes.push(format!("service {name} is only in the old configuration"));
            continue;
        };
        // Old regions in order, then the new ones; capacity as configured now.
        let mut regions: Vec<(String, Option<u32>)> = oz.regions.iter().map(|r| (r.name.clone(), None)).collect();
        for r in &nz.regions {
            match regions.iter_mut().find(|(n, _)| n == &r.name) {
                Some(slot) => slot.1 = r.capacity,
                None => regions.push((r.name.clone(), r.capacity)),
            }
        }
        let ids =
            |z: &Zone| z.regions.iter().map(|r| regions.iter().position(|(n, _)| n == &r.name).unwrap_or(0)).collect();
        let now = Side { state: old, zone: oz, svc: osvc, ids: ids(oz) };
        let later = Side { state: new, zone: nz, svc: nsvc, ids: ids(nz) };
        jobs.push(Job { now, after: Some(later), map: empty_map(name, oz, regions) });
    }
    for (name, _, _) in &after {
        if !before.iter().any(|(n, _, _)| n == name) {
            notes.push(format!("service {name} is only in the new configuration"));
        }
    }
    if jobs.is_empty() {
        return Err(MapError::UnknownService(req.service.clone().unwrap_or_default()));
    }
    Ok(draw(old, jobs, pop, req, change, notes))
}

fn draw(
    state: &Snapshot,
    mut jobs: Vec<Job>,
    pop: &Population,
    req: &MapRequest,
    change: String,
    notes: Vec<String>,
) -> Map {
    let rtype = req.rtype.unwrap_or(RecordType::A);
    let mut each = Vec::new();
    for c in &pop.clients {
        // The resolver address is the client's own: a /0 "subnet" is then
        // that address, as `explain --client` would take it.
        let client = Client::from_ecs_or_source(Some((c.net.addr(), c.net.prefix_len())), c.net.addr());
        let loc = state.geo.as_ref().map(|g| g.lookup(c.net.addr()));
        let continent = loc.as_ref().and_then(|l| l.continent.clone()).unwrap_or_else(|| "--".into());
        let country = loc.as_ref().and_then(|l| l.country.clone()).unwrap_or_else(|| "--".into());
        for (i, job) in jobs.iter_mut().enumerate() {
            let now = job.now.outcome(&client, rtype);
            let after = job.after.as_ref().map(|s| s.outcome(&client, rtype));
            let fam = if c.net.addr().is_ipv4() { &mut job.map.v4 } else { &mut job.map.v6 };
            fam.networks += 1;
            fam.now.add(now, c.weight);
            let later = after.unwrap_or(now);
            if after.is_some() {
                fam.after.get_or_insert_with(Tally::default).add(later, c.weight);
            }
            let cont = fam.by_continent.entry(continent.clone()).or_default();
            cont.0.add(now, c.weight);
            cont.1.add(later, c.weight);
            let cty = fam.by_country.entry(country.clone()).or_default();
            cty.0.add(now, c.weight);
            cty.1.add(later, c.weight);
            if later != now {
                let m = fam.moves.entry((now, later)).or_default();
                m.weight += c.weight;
                *m.by_continent.entry(continent.clone()).or_default() += c.weight;
            }
            if req.each {
                each.push(Each { net: c.net, weight: c.weight, service: i, now, after });
            }
        }
    }
    Map {
        source: pop.source.clone(),
        rtype,
        request: req.clone(),
        change,
        notes,
        services: jobs.into_iter().map(|j| j.map).collect(),
        each,
    }
}

/// `www` (under the zone's origin) or `www.gslb.example.test` (with or without the final dot).
fn name_matches(name: &Name, origin: &Name, wanted: &str) -> bool {
    let wanted = wanted.trim_end_matches('.');
    let full = name.to_ascii();
    let full = full.trim_end_matches('.');
    let relative = format!("{wanted}.{}", origin.to_ascii());
    full.eq_ignore_ascii_case(wanted) || full.eq_ignore_ascii_case(relative.trim_end_matches('.'))
}

/// The region the client is sent to: the first one answered, as the
/// metrics and `explain` count it.
fn outcome(d: &Decision) -> Outcome {
    if d.servfail {
        Outcome::Servfail
    } else if d.addresses.is_empty() {
        Outcome::NoAddress
    } else {
        d.regions.first().map_or(Outcome::NoAddress, |r| Outcome::Region(*r))
    }
}
