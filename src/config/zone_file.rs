//! The zone TOML schema, exactly as an operator writes it (see docs/zone-format.md).
//!
//! Fields keep their byte spans so every later validation error can name the
//! line and column it is about.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

fn default_ttl() -> u32 {
    3600
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneFile {
    /// The zone apex, e.g. "gslb.example.test." (trailing dot optional).
    pub origin: Spanned<String>,
    /// Default TTL for records that do not set one.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    pub soa: Spanned<SoaSpec>,
    /// Apex NS names (shorthand for `[[records]] name="@" type="NS"`).
    #[serde(default)]
    pub ns: Vec<Spanned<String>>,
    /// RFC 1035 master files with more static records (a string or a list).
    #[serde(default)]
    pub include: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub records: Vec<Spanned<RecordSpec>>,
    /// Datacenters the services choose among.
    #[serde(default)]
    pub regions: Vec<Spanned<RegionSpec>>,
    /// Names answered dynamically for A and AAAA.
    #[serde(default)]
    pub services: Vec<Spanned<ServiceSpec>>,
    /// Cases `meridian check` evaluates: client → name → expected region or answer.
    #[serde(default)]
    pub expect: Vec<Spanned<ExpectSpec>>,
    /// Online DNSSEC signing (docs/dnssec.md): absent, the zone is unsigned.
    #[serde(default)]
    pub dnssec: Option<Spanned<DnssecSpec>>,
}

/// `[dnssec]`: the key files (relative to the zone file) and how long
/// signatures are valid.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnssecSpec {
    /// Combined signing keys, always active (shorthand for `[[dnssec.key]]`
    /// with only `file`).
    #[serde(default)]
    pub keys: Option<Spanned<Vec<Spanned<String>>>>,
    /// Keys with a role and a schedule (rollovers, docs/dnssec.md).
    #[serde(default)]
    pub key: Vec<Spanned<KeySpec>>,
    /// Days a signature is valid after it is made (default 14).
    #[serde(default)]
    pub signature_days: Option<Spanned<u32>>,
}

/// `[[dnssec.key]]`: one key file, what it signs, and when (a fixed
/// `state`, or times: RFC 3339 UTC strings, TOML datetimes or Unix seconds).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    pub file: Spanned<String>,
    /// "csk" (default), "ksk" or "zsk".
    pub role: Option<Spanned<String>>,
    /// "published", "active" or "retired" (not with times).
    pub state: Option<Spanned<String>>,
    pub publish: Option<Spanned<toml::Value>>,
    pub activate: Option<Spanned<toml::Value>>,
    pub retire: Option<Spanned<toml::Value>>,
    pub remove: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    pub name: Spanned<String>,
    pub addresses: Vec<Spanned<String>>,
    pub location: Option<Spanned<LocationSpec>>,
    #[serde(default = "default_weight")]
    pub weight: u32,
    pub capacity: Option<u32>,
    /// Healthy endpoints needed for the region to be up (default 1).
    #[serde(default = "default_min_healthy")]
    pub min_healthy: usize,
    /// Ramp a returning region to full weight over this long, e.g. "60s".
    pub slow_start: Option<Spanned<String>>,
    pub probe: Option<Spanned<ProbeSpec>>,
    /// Watermarks on the region's reported load (for `shed`) and how long a report counts.
    pub load: Option<Spanned<LoadSpec>>,
}

/// `[regions.load]`: `low` and `high` on the reported load, `max_age` of a report.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    pub low: Option<Spanned<f64>>,
    pub high: Option<Spanned<f64>>,
    /// A report older than this is unknown, e.g. "30s" (default 30s).
    pub max_age: Option<Spanned<String>>,
}

fn default_min_healthy() -> usize {
    1
}

/// How a region's endpoints are checked (docs/health.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// "http", "https" or "tcp".
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// For http/https: URL with an `{addr}` placeholder.
    pub url: Option<Spanned<String>>,
    /// For tcp: the port to connect to.
    pub port: Option<Spanned<u16>>,
    pub method: Option<String>,
    pub host: Option<Spanned<String>>,
    /// Accepted status codes, inclusive range (default [200, 399]).
    pub status: Option<Spanned<Vec<u16>>>,
    pub body: Option<String>,
    pub body_limit: Option<usize>,
    pub verify_tls: Option<bool>,
    /// PEM CA file (relative to the zone file) to trust instead of system roots.
    pub ca: Option<Spanned<String>>,
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub fall: Option<Spanned<u32>>,
    pub rise: Option<Spanned<u32>>,
    /// Address probed instead of the answered one: one address for all, or a
    /// table answered-address → probed-address.
    pub probe_addr: Option<Spanned<toml::Value>>,
    /// For http/https: a response header holding the backend's load.
    pub load_header: Option<Spanned<String>>,
    /// For http/https: a JSON body field (`a.b`) holding the backend's load.
    pub load_json: Option<Spanned<String>>,
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct LocationSpec {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: Spanned<String>,
    #[serde(default = "default_service_ttl")]
    pub ttl: u32,
    /// Candidate regions (default: every region of the zone), in order.
    pub regions: Option<Vec<Spanned<String>>>,
    /// Steps such as "geo", "nearest", "latency", "weighted", "sticky",
    /// "failover eu-west us-east", "multi 3", "shed", "least_loaded".
    pub chain: Spanned<Vec<Spanned<String>>>,
    /// When every region is down: "open" (default), "servfail", or a region name.
    pub fail: Option<Spanned<String>>,
    /// TTL while any of the service's regions is down.
    pub ttl_degraded: Option<u32>,
    pub geo: Option<Spanned<RuleSpec<Vec<Spanned<String>>>>>,
    pub latency: Option<Spanned<RuleSpec<BTreeMap<String, u32>>>>,
}

fn default_service_ttl() -> u32 {
    30
}

/// Rules keyed by client location; values are region lists (`geo`) or
/// region → ms tables (`latency`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec<T> {
    #[serde(default)]
    pub cidr: BTreeMap<String, Spanned<T>>,
    #[serde(default)]
    pub asn: BTreeMap<String, Spanned<T>>,
    #[serde(default)]
    pub subdivision: BTreeMap<String, Spanned<T>>,
    #[serde(default)]
    pub country: BTreeMap<String, Spanned<T>>,
    #[serde(default)]
    pub continent: BTreeMap<String, Spanned<T>>,
    pub default: Option<Spanned<T>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// Client address or subnet (as sent in ECS), e.g. "198.51.100.0/24".
    pub client: Spanned<String>,
    /// Service name, relative to the origin or absolute.
    pub name: Spanned<String>,
    #[serde(rename = "type", default = "default_expect_type")]
    pub rtype: Spanned<String>,
    /// The region expected to answer first.
    pub region: Option<Spanned<String>>,
    /// The exact addresses expected (sorted compare).
    pub answer: Option<Spanned<Vec<String>>>,
}

fn default_expect_type() -> Spanned<String> {
    Spanned::new(0..0, "A".to_string())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoaSpec {
    pub mname: Spanned<String>,
    pub rname: Spanned<String>,
    pub serial: u32,
    #[serde(default = "soa_refresh")]
    pub refresh: i32,
    #[serde(default = "soa_retry")]
    pub retry: i32,
    #[serde(default = "soa_expire")]
    pub expire: i32,
    #[serde(default = "soa_minimum")]
    pub minimum: u32,
    pub ttl: Option<u32>,
}

fn soa_refresh() -> i32 {
    7200
}
fn soa_retry() -> i32 {
    3600
}
fn soa_expire() -> i32 {
    1_209_600
}
fn soa_minimum() -> u32 {
    300
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSpec {
    /// Owner: "@" for the apex, relative to the origin, or absolute with a trailing dot.
    pub name: Spanned<String>,
    #[serde(rename = "type")]
    pub rtype: Spanned<String>,
    pub ttl: Option<u32>,
    /// Presentation-format RDATA: one string or a list (one record each).
    pub data: Spanned<toml::Value>,
}
