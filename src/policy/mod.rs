//! GSLB decisions: a service's policy chain orders its regions for one
//! client, then the answer is selected. One file per step; `chain.rs` runs
//! them, handing each a `Ctx` and tiers (`ctx.rs`, `tiers.rs`). Steps order
//! candidates; availability (health) is a separate filter applied first,
//! read from an immutable snapshot (`HealthView`).

// The chain and what its steps share; no step imports another step.
mod chain;
mod ctx;
mod distance;
mod matcher;
pub mod scopes;
mod tiers;
pub mod trace;

// One file per step.
mod failover;
mod geo;
mod latency;
mod least_loaded;
mod multi;
mod nearest;
mod shed;
mod sticky;
mod weighted;

#[cfg(test)]
mod fixtures;

pub use chain::{decide, decide_scoped};
pub use distance::distance_km;
pub use matcher::{MatchKind, Matcher, RuleMatch};
pub use scopes::GeoScopes;

use crate::geo::Location;
use crate::health::Endpoint;
pub use crate::health::HealthView;
use std::net::IpAddr;
use std::time::Duration;

/// Index of a region in its zone's region list.
pub type RegionId = usize;

/// A datacenter: a pool of addresses with a place and a weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub name: String,
    /// Id of `name` in the snapshot's metric label table (`zone::Labels`).
    pub label: u32,
    pub addresses: Vec<IpAddr>,
    /// Latitude, longitude in degrees.
    pub location: Option<(f64, f64)>,
    pub weight: u32,
    pub capacity: Option<u32>,
    /// One per address, in the same order: what probes it (if anything).
    pub endpoints: Vec<Endpoint>,
    /// Healthy endpoints needed for the region to be up.
    pub min_healthy: usize,
    /// Ramp a returning region from a small share to its full weight over this long.
    pub slow_start: Option<Duration>,
    /// `shed` watermarks on the region's reported load: (low, high), low < high.
    pub watermarks: Option<(f64, f64)>,
    /// A load report older than this is unknown.
    pub load_max_age: Duration,
}

/// How long a load report counts when the region does not say.
pub const DEFAULT_LOAD_MAX_AGE: Duration = Duration::from_secs(30);

impl Region {
    /// A region without probes (every endpoint always up).
    pub fn unprobed(name: &str, addresses: Vec<IpAddr>, location: Option<(f64, f64)>, weight: u32) -> Region {
        let endpoints = addresses.iter().map(|a| Endpoint { addr: *a, target: None }).collect();
        Region {
            name: name.into(),
            label: 0,
            addresses,
            location,
            weight,
            capacity: None,
            endpoints,
            min_healthy: 1,
            slow_start: None,
            watermarks: None,
            load_max_age: DEFAULT_LOAD_MAX_AGE,
        }
    }

    pub fn addresses_of(&self, family: Family) -> impl Iterator<Item = IpAddr> + '_ {
        self.addresses.iter().copied().filter(move |a| family.matches(a))
    }
}

/// The address family a query asks for (A or AAAA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn matches(self, a: &IpAddr) -> bool {
        matches!((self, a), (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_)))
    }
}

/// One step of a policy chain. Closed set: matched in one place (`chain.rs`).
#[derive(Debug, Clone)]
pub enum Step {
    /// Most specific geo rule's regions first (CIDR > ASN > subdivision > country > continent > default).
    Geo(Matcher<Vec<RegionId>>),
    /// Order by great-circle distance from the client.
    Nearest,
    /// Order by a configured latency table (ms per region), nearest where it is silent.
    Latency(Matcher<Vec<(RegionId, u32)>>),
    /// Order by the lowest probe RTT measured from this node, nearest where none.
    LatencyProbe,
    /// Pick by weight, randomly per query.
    Weighted,
    /// Weighted rendezvous hashing of the client subnet.
    Sticky,
    /// This order, first available first.
    Failover(Vec<RegionId>),
    /// Answer up to N addresses from the ordered regions.
    Multi(usize),
    /// Move a growing, hash-stable share of the leading region's clients to
    /// the next region below its own `low` watermark as its load climbs.
    Shed(ShedFail),
    /// Power of two choices on reported load among the leading tier.
    LeastLoaded,
}

/// What `shed` does with a client it sheds when no other candidate is below
/// its `low` watermark (shed traffic never goes to a busy region).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShedFail {
    /// Keep the leading region: nobody moves.
    Nearest,
    /// Spread over the candidates by headroom (`high` minus load).
    Headroom,
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Step::Geo(_) => "geo",
            Step::Nearest => "nearest",
            Step::Latency(_) | Step::LatencyProbe => "latency",
            Step::Weighted => "weighted",
            Step::Sticky => "sticky",
            Step::Failover(_) => "failover",
            Step::Multi(_) => "multi",
            Step::Shed(_) => "shed",
            Step::LeastLoaded => "least_loaded",
        }
    }

    /// Whether the step reads the client's location (so a GeoIP lookup is needed).
    pub fn needs_location(&self) -> bool {
        matches!(self, Step::Geo(_) | Step::Nearest | Step::Latency(_) | Step::LatencyProbe)
    }
}

/// A name answered dynamically for A and AAAA.
#[derive(Debug)]
pub struct Service {
    pub name: String,
    pub ttl: u32,
    /// TTL while any of the service's regions is down (so caches return sooner).
    pub ttl_degraded: Option<u32>,
    pub regions: Vec<RegionId>,
    chain: Vec<Step>,
    pub fail: FailMode,
    /// `chain` read once at build: the query path asks both for every answer.
    located: bool,
    by_networks: bool,
    /// Unique in its snapshot, never 0: a 4-byte key for the decision cache,
    /// and the service's id in the metric label table (`zone::Labels`).
    id: u32,
}

/// What to answer when every candidate region is down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailMode {
    /// Answer as if all were up (a dead datacenter is no worse than no answer).
    Open,
    /// Answer SERVFAIL.
    Servfail,
    /// Answer this region.
    Fallback(RegionId),
}

impl Service {
    pub fn new(
        name: String,
        id: u32,
        ttl: u32,
        ttl_degraded: Option<u32>,
        regions: Vec<RegionId>,
        chain: Vec<Step>,
        fail: FailMode,
    ) -> Service {
        let located = chain.iter().any(Step::needs_location);
        let by_networks = chain.iter().all(|s| match s {
            // Load steps read a per-subnet hash and loads that move every report.
            Step::Weighted | Step::Sticky | Step::Shed(_) | Step::LeastLoaded => false,
            Step::Geo(m) => m.cidr.is_empty(),
            Step::Latency(m) => m.cidr.is_empty(),
            // Probe RTTs change every interval: not worth caching across.
            Step::LatencyProbe => false,
            Step::Nearest | Step::Failover(_) | Step::Multi(_) => true,
        });
        Service { name, ttl, ttl_degraded, regions, chain, fail, located, by_networks, id }
    }

    /// Never 0 for a service built with its zones; unique in its snapshot.
    #[inline]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Whether some step reads the client's location (a GeoIP lookup).
    #[inline]
    pub fn needs_location(&self) -> bool {
        self.located
    }

    /// Whether the chain's decision (and its ECS scope) depends on the client
    /// only through its database networks: no randomness (`weighted`), no
    /// per-subnet hash (`sticky`, `shed`, `least_loaded`), no CIDR rule (which
    /// looks at the address itself) and no probe RTTs or load reports (which
    /// move every interval). Such decisions
    /// may be cached per network. Slow start is the
    /// health view's business (`HealthView::ramping`).
    #[inline]
    pub fn decided_by_networks(&self) -> bool {
        self.by_networks
    }
}

/// Who is asking: the ECS subnet when given, else the resolver's address.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: IpAddr,
    /// ECS source prefix, or the full address length without ECS.
    pub prefix: u8,
    pub from_ecs: bool,
    /// Filled when the chain needs it.
    pub location: Option<Location>,
}

impl Client {
    /// RFC 7871 §7.1.2: an ECS subnet with a source prefix above 0 speaks for
    /// the client; otherwise the resolver's own address does (an IPv4-mapped
    /// IPv6 source is the IPv4 client it stands for).
    pub fn from_ecs_or_source(ecs: Option<(IpAddr, u8)>, source: IpAddr) -> Client {
        match ecs {
            // An IPv4-mapped subnet (family 2, `::ffff:10.3.0.0/120`) is the IPv4
            // one it stands for, as the databases see it; its scope is given
            // back in IPv6 bits (`ecs::answer_scope`).
            Some((IpAddr::V6(v6), prefix)) if prefix > 96 && v6.to_ipv4_mapped().is_some() => Client {
                addr: IpAddr::V4(v6.to_ipv4_mapped().expect("checked")),
                prefix: prefix - 96,
                from_ecs: true,
                location: None,
            },
            Some((addr, prefix)) if prefix > 0 => Client { addr, prefix, from_ecs: true, location: None },
            _ => {
                let addr = match source {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(source, IpAddr::V4),
                    v4 => v4,
                };
                Client { addr, prefix: if addr.is_ipv4() { 32 } else { 128 }, from_ecs: false, location: None }
            }
        }
    }
}

/// The outcome of a chain for one client and family.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Regions whose addresses were answered, in answer order.
    pub regions: Vec<RegionId>,
    pub addresses: Vec<IpAddr>,
    /// ECS scope prefix: how far the answer holds around the client (0: for everyone).
    pub scope: u8,
    /// Every candidate was down, so all were answered (fail open).
    pub fail_open: bool,
    /// Every candidate was down and the service says SERVFAIL.
    pub servfail: bool,
    /// TTL to answer with.
    pub ttl: u32,
}
