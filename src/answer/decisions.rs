//! An answer worker's cache of GSLB decisions, keyed by the client's database networks.
//!
//! For a chain that is [`Service::decided_by_networks`], every client inside
//! one (GeoIP network, ASN network) pair gets the same decision and the same
//! ECS scope: the record and the networks' lengths are all the chain reads.
//! So the chain runs once per pair, service and family, and the result is
//! reused until the zones, the databases or the availability picture
//! change (a health rebuild that changed nothing, or only probe RTTs, keeps
//! the cache). One per `Worker`, so no lock and no shared counter on the query path.
//!
//! How a client finds its entry depends on the size of the databases' search
//! trees:
//! - small trees (`GeoDb::class`, the demo database and most private maps):
//!   our own tables of the cache-resident tree give which records and
//!   network lengths the client falls in, and that is the key (`by_class`);
//!   no per-client state at all;
//! - big trees (GeoIP2 City): a walk misses the cache at every level, so a
//!   set-associative table keyed by the exact client (ECS subnet or resolver
//!   address) sits in front, one cache line per look-up, which the UDP
//!   receiver prefetches for a whole batch (`prefetch`); on a front miss the
//!   reader's walk gives the networks, the key of `by_network`.

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use ipnet::IpNet;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::cell::{Cell, Ref, RefCell};
use std::net::IpAddr;
use std::sync::{Arc, Weak};

use super::Snapshot;
use crate::dnssec::Signer;
use crate::geo::GeoDb;
use crate::metrics::{CounterId, LabelTable, QueryCounts, QueryObservation};
use crate::policy::{Client, Decision, Service};
use crate::zone::{Zone, Zones};

/// Decisions per worker before the cache starts over (a full GeoIP City
/// database has millions of networks; the busy ones come back quickly).
const MAX_ENTRIES: usize = 65_536;

/// Sets of the front table: 16,384 × 64 bytes = 1 MiB per answering thread,
/// room for two clients per set. With 8,192 sets the benchmark's 5,890 ECS
/// subnets left 15 % of them in sets of three or more (Poisson: a client
/// evicted on every pass, and a tree walk instead); with 16,384, 3 %.
const FRONT_SETS: usize = 16_384;

/// One exact client (ECS subnet or source address) of one service, and its
/// decision. 32 bytes, two to a cache line.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C)]
struct Slot {
    addr: u128,
    /// A `Box` held by `Decisions::by_network`, so a hit reads the decision
    /// without a second look-up; null in an empty slot. Entries leave that
    /// map only when the front is emptied too (`Decisions::clear`), so a
    /// pointer here always has its box alive.
    decision: *const Cached,
    /// `Service::id`; 0: empty slot.
    service: u32,
    prefix: u8,
    /// Bit 0: AAAA asked; bit 1: an IPv6 client address.
    family: u8,
}

impl Default for Slot {
    fn default() -> Slot {
        Slot { addr: 0, decision: std::ptr::null(), service: 0, prefix: 0, family: 0 }
    }
}

/// Two slots filling one cache line: a lookup reads this line and nothing
/// else. (A hashbrown map of the same keys reads its control bytes, the
/// bucket and the decision's count: with thousands of clients those are
/// three cache misses, the largest user-space cost of an ECS answer.)
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Set([Slot; 2]);

/// The exact clients seen, set-associative: a client evicts the older of the
/// two in its set (the evicted one is found again through its networks).
struct Front {
    sets: Vec<Set>,
}

impl Front {
    fn slot(service: u32, client: &Client, rtype_v6: bool) -> Slot {
        let addr = match client.addr {
            IpAddr::V4(a) => u128::from(a.to_bits()),
            IpAddr::V6(a) => a.to_bits(),
        };
        let family = Front::family(client, rtype_v6);
        Slot { addr, service, prefix: client.prefix, family, decision: std::ptr::null() }
    }

    /// Bit 0: AAAA asked; bit 1: an IPv6 client address.
    fn family(client: &Client, rtype_v6: bool) -> u8 {
        u8::from(rtype_v6) | u8::from(client.addr.is_ipv6()) << 1
    }

    fn set_of(&self, key: &Slot) -> usize {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let a = (key.addr as u64) ^ ((key.addr >> 64) as u64).wrapping_mul(K).rotate_left(29);
        let h = (a ^ (key.service as u64).rotate_left(17) ^ u64::from(key.prefix) << 56 ^ u64::from(key.family) << 48)
            .wrapping_mul(K);
        (h >> 32) as usize & (self.sets.len() - 1)
    }

    fn get(&self, key: &Slot) -> Option<*const Cached> {
        if self.sets.is_empty() {
            return None;
        }
        let set = &self.sets[self.set_of(key)].0;
        let same = |s: &Slot| {
            s.addr == key.addr && s.service == key.service && s.prefix == key.prefix && s.family == key.family
        };
        set.iter().find(|s| same(s)).map(|s| s.decision)
    }

    fn insert(&mut self, key: Slot) {
        if self.sets.is_empty() {
            self.sets = vec![Set::default(); FRONT_SETS];
        }
        let i = self.set_of(&key);
        let set = &mut self.sets[i].0;
        set[1] = set[0];
        set[0] = key;
    }

    fn clear(&mut self) {
        self.sets.fill(Set::default());
    }
}

/// A decision as the cache holds it, with the worker's metric counter of the
/// answers the fast path gives from it: every such answer has the same labels
/// (the service, the decision's first region and fail-open, NOERROR, and the
/// family the decision was made for), so after the first one, counting is a
/// load and a store on the worker's shard, with no label lookup.
pub struct Cached {
    /// The answer section the fast path sends for this decision, one record
    /// per address (`answer_records`); empty for SERVFAIL and NODATA. Held
    /// inline, in the decision's own allocation: reading the addresses from
    /// their vector was one more cache line per answer.
    pub records: SmallVec<[u8; 64]>,
    pub decision: Decision,
    /// In the `QueryCounts` of the worker whose cache holds this decision.
    counter: Cell<Option<CounterId>>,
    /// Kept in the cache, so its counter will be used again (a decision
    /// made for one answer only is counted with its receive batch instead).
    kept: bool,
    /// The RRSIGs over `records` for a DO=1 query to a signed zone, made on
    /// the first such answer from this decision (`rrsigs`).
    signed: RefCell<Option<SignedPart>>,
}

/// The RRSIG records a signed answer from one decision adds after its
/// address records, as the general path writes them, and until when the
/// signer's cache gives these same signatures (`Signer::renewed_at`).
pub struct SignedPart {
    pub bytes: Vec<u8>,
    pub count: u16,
    fresh_until: u32,
}

/// A decision from `Decisions::decide`: the cache's own, or made for one answer.
pub enum Decided<'c> {
    Kept(&'c Cached),
    Fresh(Box<Cached>),
}

impl std::ops::Deref for Decided<'_> {
    type Target = Cached;
    #[inline]
    fn deref(&self) -> &Cached {
        match self {
            Decided::Kept(c) => c,
            Decided::Fresh(c) => c,
        }
    }
}

impl std::ops::Deref for Cached {
    type Target = Decision;
    fn deref(&self) -> &Decision {
        &self.decision
    }
}

impl Cached {
    fn new(decision: Decision, kept: bool) -> Box<Cached> {
        let records = answer_records(&decision);
        Box::new(Cached { records, decision, counter: Cell::new(None), kept, signed: RefCell::new(None) })
    }

    /// The RRSIGs over this decision's address records owned by `owner`
    /// (lowercase), at Unix time `now`: made once (through the signer's
    /// cache, which the general path reads too, so the bytes are the same)
    /// and kept until the signer would renew them. `None`: no records, or
    /// signing failed (the general path answers and logs).
    pub fn rrsigs(&self, signer: &Signer, owner: &Name, now: u32) -> Option<Ref<'_, SignedPart>> {
        let fresh = |s: &Option<SignedPart>| s.as_ref().is_some_and(|s| now < s.fresh_until);
        if !fresh(&self.signed.borrow()) {
            let made = self.sign(signer, owner, now)?;
            *self.signed.borrow_mut() = Some(made);
        }
        Ref::filter_map(self.signed.borrow(), Option::as_ref).ok()
    }

    fn sign(&self, signer: &Signer, owner: &Name, now: u32) -> Option<SignedPart> {
        if self.records.is_empty() {
            return None;
        }
        let records: Vec<Record> = self
            .addresses
            .iter()
            .map(|a| {
                let data = match a {
                    IpAddr::V4(v4) => RData::A((*v4).into()),
                    IpAddr::V6(v6) => RData::AAAA((*v6).into()),
                };
                Record::from_rdata(owner.clone(), self.ttl, data)
            })
            .collect();
        let rrsigs = signer.sign_at(&records, now);
        let expiry = rrsigs
            .iter()
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some(sig.input().sig_expiration.get()),
                _ => None,
            })
            .min()?;
        let count = u16::try_from(rrsigs.len()).ok()?;
        // Encoded after the question and the address records, as the
        // general path does: the RRSIGs' names compress the same way.
        let mut m = Message::new(0, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(owner.clone(), records[0].record_type()));
        m.insert_answers(records.into_iter().chain(rrsigs).collect());
        let bytes = m.to_vec().ok()?;
        let at = 12 + crate::zone::wire_name(owner).len() + 4;
        let tail = bytes.get(at..)?.strip_prefix(&self.records[..])?;
        Some(SignedPart { bytes: tail.to_vec(), count, fresh_until: signer.renewed_at(expiry) })
    }

    /// Count one fast-path answer from this decision in `counts` (the
    /// worker's own, ids in `labels`). `describe` adds the decision's labels
    /// to `obs`, which holds the answer's rcode and type; it runs only when
    /// the counter is made (the first answer), so a counted answer does not
    /// read the zone's regions. False: not counted (a decision not kept in
    /// the cache), and `obs` described for the caller to count.
    pub fn count(
        &self,
        counts: &mut QueryCounts,
        labels: &LabelTable,
        obs: &mut QueryObservation,
        describe: impl Fn(&mut QueryObservation),
    ) -> bool {
        if !self.kept {
            describe(obs);
            return false;
        }
        let counter = match self.counter.get() {
            Some(c) => c,
            None => {
                describe(obs);
                let Some(c) = counts.counter(labels, obs) else { return false };
                self.counter.set(Some(c));
                c
            }
        };
        if cfg!(debug_assertions) {
            let mut full = obs.clone();
            describe(&mut full);
            assert!(counts.counts(counter, labels, &full), "a decision's labels changed");
        }
        counts.add_one(counter);
        true
    }
}

/// A decision's answer records as the fast path writes them: owner a
/// pointer to the question's name (offset 12), class IN, the decision's TTL.
fn answer_records(d: &Decision) -> SmallVec<[u8; 64]> {
    let mut out = SmallVec::new();
    if d.servfail {
        return out;
    }
    let [t0, t1, t2, t3] = d.ttl.to_be_bytes();
    for a in &d.addresses {
        match a {
            IpAddr::V4(v4) => {
                out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, t0, t1, t2, t3, 0, 4]);
                out.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                out.extend_from_slice(&[0xc0, 0x0c, 0, 28, 0, 1, t0, t1, t2, t3, 0, 16]);
                out.extend_from_slice(&v6.octets());
            }
        }
    }
    out
}

#[derive(PartialEq, Eq, Hash)]
struct Key {
    /// `Service::id`, as in the front.
    service: u32,
    v6: bool,
    geo: Option<IpNet>,
    asn: Option<IpNet>,
}

/// One worker's decisions, and which snapshot they belong to. Weak
/// references: the cache never keeps an old configuration alive, and a live
/// `Weak` keeps its allocation from being reused, so comparing addresses
/// cannot be fooled.
pub struct Decisions {
    zones: Weak<Zones>,
    /// `HealthView::availability`, compared by address.
    health: Weak<crate::health::view::Availability>,
    geo: Option<Weak<GeoDb>>,
    front: Front,
    /// Every decision made for this snapshot through the front (which points into it).
    by_network: FxHashMap<Key, Box<Cached>>,
    /// Every decision made for this snapshot from small trees (`class_key`).
    by_class: FxHashMap<u128, Box<Cached>>,
}

// SAFETY: the front's raw pointers (the only thing that is not `Send`) point
// into boxes owned by the same `Decisions`, and no reference to a decision
// outlives a borrow of it: the whole cache moves between threads together.
unsafe impl Send for Decisions {}

impl Default for Decisions {
    fn default() -> Decisions {
        Decisions::new()
    }
}

impl Decisions {
    pub fn new() -> Decisions {
        Decisions {
            zones: Weak::new(),
            health: Weak::new(),
            geo: None,
            front: Front { sets: Vec::new() },
            by_network: FxHashMap::default(),
            by_class: FxHashMap::default(),
        }
    }

    /// Start over when any part of the snapshot changed.
    fn follow(&mut self, state: &Snapshot) {
        let same_geo = match (&self.geo, &state.geo) {
            (None, None) => true,
            (Some(w), Some(g)) => std::ptr::eq(w.as_ptr(), Arc::as_ptr(g)),
            _ => false,
        };
        if same_geo
            && std::ptr::eq(self.zones.as_ptr(), Arc::as_ptr(&state.zones))
            && std::ptr::eq(self.health.as_ptr(), Arc::as_ptr(state.health.availability()))
        {
            return;
        }
        self.clear();
        self.zones = Arc::downgrade(&state.zones);
        self.health = Arc::downgrade(state.health.availability());
        self.geo = state.geo.as_ref().map(Arc::downgrade);
    }

    fn clear(&mut self) {
        self.front.clear();
        self.by_network.clear();
        self.by_class.clear();
    }

    fn full(&self) -> bool {
        self.by_network.len() + self.by_class.len() >= MAX_ENTRIES
    }
}

/// Whether `svc`'s decisions are found through the front (keyed by exact
/// clients): chains that read the location, unless the databases give
/// network classes.
fn through_front(state: &Snapshot, svc: &Service) -> bool {
    svc.decided_by_networks() && svc.needs_location() && !state.geo.as_ref().is_some_and(|g| g.has_classes())
}

/// The `by_class` key: service, family bits as in the front, network class,
/// and the widest geo scope around the client (`GeoScopes::service_key`).
fn class_key(service: u32, family: u8, class: u32, merged: u8) -> u128 {
    u128::from(merged) << 64 | u128::from(service) << 32 | u128::from(family) << 30 | u128::from(class)
}

/// A decision made now and kept under `key` in `map` (the whole cache starts
/// over first when full; `map` is reached through `cache` again so the clear
/// and the insert cannot see two different maps).
fn decide_and_keep<'c, K: std::hash::Hash + Eq + 'c>(
    cache: &'c mut Decisions,
    map: fn(&mut Decisions) -> &mut FxHashMap<K, Box<Cached>>,
    key: K,
    decide: impl FnOnce() -> Decision,
) -> &'c Cached {
    let d = Cached::new(decide(), true);
    if cache.full() {
        cache.clear();
    }
    let slot = map(cache).entry(key).insert_entry(d);
    slot.into_mut()
}

#[inline]
fn prefetch_line<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it reads nothing and cannot fault.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch(std::ptr::from_ref(p).cast::<i8>(), _MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl Decisions {
    /// Ask the CPU to start loading the front slot `decide` will read for this
    /// client, so that while earlier queries of a receive batch are answered the
    /// slot's cache miss (with thousands of clients the table does not stay in
    /// cache) overlaps theirs rather than stalling this answer.
    /// (Databases with network classes need no front: nothing to prefetch.)
    pub fn prefetch(&self, state: &Snapshot, svc: &Service, client: impl FnOnce() -> Client, rtype: RecordType) {
        if !through_front(state, svc) || self.front.sets.is_empty() {
            return;
        }
        let key = Front::slot(svc.id(), &client(), rtype == RecordType::AAAA);
        prefetch_line(&self.front.sets[self.front.set_of(&key)]);
    }

    /// The decision of `svc` for `client`: from the cache when the chain allows,
    /// else computed (weighted, sticky, CIDR rules, slow start in progress).
    pub fn decide<'c>(
        &'c mut self,
        state: &Snapshot,
        zone: &Zone,
        svc: &Service,
        client: &Client,
        rtype: RecordType,
    ) -> Decided<'c> {
        let fresh = || super::decide_service(state, zone, svc, client, rtype, None);
        if !svc.decided_by_networks() || state.health.ramping() {
            return Decided::Fresh(Cached::new(fresh(), false));
        }
        self.follow(state);
        let d = self.find_or_decide(state, svc, client, rtype, fresh);
        // SAFETY: `d` points into a box held by one of this cache's maps; it
        // stays there while `self` is borrowed (only `&mut self` removes it).
        // (A pointer rather than a reference: returning a borrow found in one
        // branch while the other mutates the map is beyond today's borrow checker.)
        Decided::Kept(unsafe { &*d })
    }

    fn find_or_decide(
        &mut self,
        state: &Snapshot,
        svc: &Service,
        client: &Client,
        rtype: RecordType,
        fresh: impl FnOnce() -> Decision,
    ) -> *const Cached {
        let v6 = rtype == RecordType::AAAA;
        let service = svc.id();
        // A chain that reads no location decides the same for everyone: its one
        // network entry is the whole cache, no front slot needed.
        let located = svc.needs_location();
        if let Some(class) = state.geo.as_ref().filter(|_| located).and_then(|g| g.class(client.addr)) {
            // Two networks of one class may lie in runs of different widths
            // (`policy::scopes`): the widest scope is part of the key.
            let merged = state.scopes.service_key(svc, client.addr);
            let key = class_key(service, Front::family(client, v6), class, merged);
            if let Some(d) = self.by_class.get(&key) {
                return &**d;
            }
            return decide_and_keep(self, |c| &mut c.by_class, key, fresh);
        }
        let front = Front::slot(service, client, v6);
        if located {
            if let Some(p) = self.front.get(&front) {
                return p;
            }
        } else if let Some(d) = self.by_network.get(&Key { service, v6, geo: None, asn: None }) {
            return &**d;
        }
        let (geo, asn) = match (&state.geo, located) {
            (Some(db), true) => {
                let (g, a) = db.networks(client.addr);
                (Some(g), a)
            }
            _ => (None, None),
        };
        let key = Key { service, v6, geo, asn };
        let d: *const Cached = match self.by_network.get(&key) {
            Some(d) => &**d,
            None => decide_and_keep(self, |c| &mut c.by_network, key, fresh),
        };
        if located {
            // `d` is in `by_network` (found there, or put there above with nothing run since).
            self.front.insert(Slot { decision: d, ..front });
        }
        d
    }
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

    #[test]
    fn front_keys_are_exact_and_a_set_keeps_its_two_newest() {
        let client = |ecs: &str, prefix: u8| {
            Client::from_ecs_or_source(Some((ecs.parse().unwrap(), prefix)), IpAddr::from([127, 0, 0, 1]))
        };
        // Stand-ins for decisions: only compared, never read.
        let p = |n: usize| std::ptr::without_provenance::<Cached>(n * 64);
        let mut f = Front { sets: vec![Set::default(); 1] }; // one set: every key collides
        let a = Front::slot(8, &client("10.3.0.0", 24), false);
        f.insert(Slot { decision: p(1), ..a });
        assert_eq!(f.get(&a), Some(p(1)));
        // Same bits, other meaning: AAAA asked, another prefix, an IPv6 client, another service.
        assert_eq!(f.get(&Front::slot(8, &client("10.3.0.0", 24), true)), None);
        assert_eq!(f.get(&Front::slot(8, &client("10.3.0.0", 16), false)), None);
        assert_eq!(f.get(&Front::slot(8, &client("::a03:0", 24), false)), None);
        assert_eq!(f.get(&Front::slot(16, &client("10.3.0.0", 24), false)), None);
        let b = Front::slot(8, &client("10.3.1.0", 24), false);
        let c = Front::slot(8, &client("10.3.2.0", 24), false);
        f.insert(Slot { decision: p(2), ..b });
        assert_eq!((f.get(&a), f.get(&b)), (Some(p(1)), Some(p(2))));
        f.insert(Slot { decision: p(3), ..c });
        assert_eq!((f.get(&a), f.get(&b), f.get(&c)), (None, Some(p(2)), Some(p(3))));
        f.clear();
        assert_eq!(f.get(&c), None);
        assert_eq!(std::mem::size_of::<Set>(), 64, "a set is one cache line");
    }

    /// Cached decisions equal fresh ones for every service that allows caching,
    /// over many clients, both families, twice (second time from the cache),
    /// and after a health change (which must not be answered from the old
    /// cache); both ways in: keyed by network class (the demo database is
    /// small) and through the front, as for a big database.
    #[test]
    fn cached_decisions_equal_fresh_ones() {
        for classes in [true, false] {
            let mut state = crate::answer::snapshot::demo();
            if !classes {
                let (path, asn) = state.geo.as_ref().unwrap().paths();
                let db = GeoDb::open(path, asn).unwrap().without_classes();
                state.geo = Some(Arc::new(db));
            }
            assert_eq!(state.geo.as_ref().unwrap().has_classes(), classes);
            let mut cache = Decisions::new();
            check_cached_decisions(&mut cache, state);
            // The way in meant for the database is the one that filled (a
            // chain that reads no location has one `by_network` entry either way).
            let (class, network) = (cache.by_class.len(), cache.by_network.len());
            if classes {
                assert!(class > 10 && network < 5, "{class} {network}");
            } else {
                assert!(class == 0 && network > 10, "{class} {network}");
            }
        }
    }

    fn check_cached_decisions(cache: &mut Decisions, mut state: Snapshot) {
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
                            let got = cache.decide(&state, z, svc, &c, t);
                            if svc.decided_by_networks() {
                                assert_eq!(got.decision, fresh, "{} {t} for {c:?} (round {round})", svc.name);
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
