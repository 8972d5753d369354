//! Per-thread cache of GSLB decisions, keyed by the client's database networks.
//!
//! For a chain that is [`Service::decided_by_networks`], every client inside
//! one (GeoIP network, ASN network) pair gets the same decision and the same
//! ECS scope: the record and the networks' lengths are all the chain reads.
//! So the chain runs once per pair, service and family, and the result is
//! reused until the zones, the databases or the availability picture
//! change (a health rebuild that changed nothing, or only probe RTTs, keeps
//! the cache). A hit
//! costs one tree walk and one hash probe instead of a record decode and the
//! chain. In front of it, the same decisions keyed by the exact client
//! (ECS subnet or resolver address) save the tree walk for repeat askers.
//! Per thread, so no lock and no shared counter on the query path.

use hickory_proto::rr::RecordType;
use ipnet::IpNet;
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::{Arc, Weak};

use crate::geo::GeoDb;
use crate::policy::{Client, Decision, Service};
use crate::state::State;
use crate::zone::{Zone, Zones};

/// Entries per thread before the cache starts over (a full GeoIP City
/// database has millions of networks; the busy ones come back quickly).
const MAX_ENTRIES: usize = 65_536;

/// The exact client (ECS subnet or source address) asking for a service:
/// the front of the cache, which also saves the tree walk for repeat askers.
#[derive(PartialEq, Eq, Hash)]
struct ClientKey {
    service: usize,
    v6: bool,
    addr: IpAddr,
    prefix: u8,
}

#[derive(PartialEq, Eq, Hash)]
struct Key {
    /// The service's address inside the snapshot's zones (stable while they live).
    service: usize,
    v6: bool,
    geo: Option<IpNet>,
    asn: Option<IpNet>,
}

/// Which snapshot the entries belong to. Weak references: the cache never
/// keeps an old configuration alive, and a live `Weak` keeps its allocation
/// from being reused, so comparing addresses cannot be fooled.
struct Cache {
    zones: Weak<Zones>,
    /// `HealthView::availability`: unique, so no weak reference is needed.
    health: u64,
    geo: Option<Weak<GeoDb>>,
    by_client: FxHashMap<ClientKey, Rc<Decision>>,
    by_network: FxHashMap<Key, Rc<Decision>>,
}

impl Cache {
    fn new() -> Cache {
        Cache {
            zones: Weak::new(),
            health: 0,
            geo: None,
            by_client: FxHashMap::default(),
            by_network: FxHashMap::default(),
        }
    }

    /// Start over when any part of the snapshot changed.
    fn follow(&mut self, state: &State) {
        let same_geo = match (&self.geo, &state.geo) {
            (None, None) => true,
            (Some(w), Some(g)) => std::ptr::eq(w.as_ptr(), Arc::as_ptr(g)),
            _ => false,
        };
        if same_geo
            && std::ptr::eq(self.zones.as_ptr(), Arc::as_ptr(&state.zones))
            && self.health == state.health.availability()
        {
            return;
        }
        self.by_client.clear();
        self.by_network.clear();
        self.zones = Arc::downgrade(&state.zones);
        self.health = state.health.availability();
        self.geo = state.geo.as_ref().map(Arc::downgrade);
    }
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::new());
}

/// The decision of `svc` for `client`: from the cache when the chain allows,
/// else computed (weighted, sticky, CIDR rules, slow start in progress).
pub fn decide(state: &State, zone: &Zone, svc: &Service, client: &Client, rtype: RecordType) -> Rc<Decision> {
    if !svc.decided_by_networks() || state.health.ramping() {
        return Rc::new(super::decide_service(state, zone, svc, client, rtype, None));
    }
    let v6 = rtype == RecordType::AAAA;
    let service = std::ptr::from_ref(svc) as usize;
    let front = ClientKey { service, v6, addr: client.addr, prefix: client.prefix };
    let hit = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        c.follow(state);
        c.by_client.get(&front).cloned()
    });
    if let Some(d) = hit {
        return d;
    }
    let (geo, asn) = match (&state.geo, svc.needs_location()) {
        (Some(db), true) => {
            let (g, a) = db.networks(client.addr);
            (Some(g), a)
        }
        _ => (None, None),
    };
    let key = Key { service, v6, geo, asn };
    let d = match CACHE.with(|c| c.borrow().by_network.get(&key).cloned()) {
        Some(d) => d,
        None => Rc::new(super::decide_service(state, zone, svc, client, rtype, None)),
    };
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.by_network.len() >= MAX_ENTRIES {
            c.by_network.clear();
        }
        if c.by_client.len() >= MAX_ENTRIES {
            c.by_client.clear();
        }
        c.by_network.entry(key).or_insert_with(|| Rc::clone(&d));
        c.by_client.insert(front, Rc::clone(&d));
    });
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::HealthView;

    fn clients() -> Vec<Client> {
        let mut out = Vec::new();
        for a in 0..=12u8 {
            for b in [0u8, 1, 77, 200] {
                out.push(Client::from_ecs_or_source(
                    Some((IpAddr::from([10, a, b, 0]), 24)),
                    IpAddr::from([127, 0, 0, 1]),
                ));
            }
            let v6: IpAddr = format!("2001:db8:{a:x}:{a:x}00::").parse().unwrap();
            out.push(Client::from_ecs_or_source(Some((v6, 56)), IpAddr::from([127, 0, 0, 1])));
            out.push(Client::from_ecs_or_source(None, IpAddr::from([10, a, 3, 4])));
        }
        out.push(Client::from_ecs_or_source(None, "::ffff:10.3.0.9".parse().unwrap()));
        out.push(Client::from_ecs_or_source(Some(("0.0.0.0".parse().unwrap(), 0)), IpAddr::from([10, 5, 0, 1])));
        out
    }

    /// Cached decisions equal fresh ones for every service that allows caching,
    /// over many clients, both families, twice (second time from the cache),
    /// and after a health change (which must not be answered from the old cache).
    #[test]
    fn cached_decisions_equal_fresh_ones() {
        let mut state = crate::state::demo();
        let mut cached_services = 0;
        for round in 0..3 {
            if round == 2 {
                // eu-west down: a new health view, so the cache must start over.
                state.health = Arc::new(HealthView::with_down(["eu-west".to_string()]));
            }
            for z in state.zones.zones.iter() {
                for (_, svc) in z.services() {
                    cached_services += usize::from(round == 0 && svc.decided_by_networks());
                    for c in clients() {
                        for t in [RecordType::A, RecordType::AAAA] {
                            let fresh = super::super::decide_service(&state, z, svc, &c, t, None);
                            let got = decide(&state, z, svc, &c, t);
                            if svc.decided_by_networks() {
                                assert_eq!(*got, fresh, "{} {t} for {c:?} (round {round})", svc.name);
                            } else {
                                // weighted is random: only compare the deterministic parts.
                                assert_eq!((got.scope, got.ttl), (fresh.scope, fresh.ttl), "{}", svc.name);
                            }
                        }
                    }
                }
            }
        }
        assert!(cached_services >= 4, "the demo zone has cacheable services: {cached_services}");
    }
}
