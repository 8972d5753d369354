//! Prometheus metrics (OpenMetrics text via prometheus-client), served by the
//! admin API at `/metrics`. Per-query counts go to per-worker shards
//! (`shard.rs`, `QueryCounts`) that a scrape sums (`merged.rs`); everything
//! else is prometheus-client's own metrics. This module sees labels and
//! numbers only: a query's service and region come as ids into the label
//! table of the snapshot that answered it (`LabelTable`).

use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::health::probe::ProbeResult;
use crate::health::{HealthObserver, ProbeTarget, Verdict};

#[cfg(test)]
mod merge_tests;
mod merged;
mod process;
mod shard;
mod text_format;

pub use shard::{CounterId, QueryCounts};
pub use text_format::Format;

use shard::Shards;

/// The names behind a snapshot's service and region ids (`QueryObservation`):
/// built with the zones, so an id means one name for one snapshot only.
pub type LabelTable = Arc<[Arc<str>]>;

/// Where a probe's verdict lands: one answered address of a region of a zone.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProbeOwner {
    pub zone: String,
    pub region: String,
    pub address: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    zone: String,
    region: String,
    address: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    zone: String,
    region: String,
    address: String,
    to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RrlActionLabel {
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Encrypted transport: `tls` or `quic`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportReasonLabel {
    transport: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegionLabel {
    region: String,
}

/// What the answer path saw of one query, filled as it answers.
#[derive(Debug, Default, Clone)]
pub struct QueryObservation {
    /// The response code sent; `None` when nothing was sent.
    pub rcode: Option<ResponseCode>,
    pub qtype: Option<RecordType>,
    /// The GSLB service that answered (first one, if a CNAME chain met
    /// several): its id in the snapshot's `LabelTable`.
    pub service: Option<u32>,
    /// The region it answered first, as a `LabelTable` id.
    pub region: Option<u32>,
    /// Every candidate region was down and the answer failed open.
    pub fail_open: bool,
    /// Already counted, through a `CounterId` (`QueryCounts::count_batch` skips it).
    pub counted: bool,
}

fn named_key(rcode: ResponseCode, obs: &QueryObservation) -> shard::Key {
    shard::Key {
        rcode: rcode_label(rcode),
        qtype: obs.qtype.map_or("", qtype_label),
        service: obs.service,
        region: obs.region,
        fail_open: obs.fail_open,
    }
}

/// Every metric Meridian exports, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    /// Queries, fail-opens and answer durations, counted per answer worker.
    shards: Arc<Shards>,
    probes: Family<ProbeLabels, Counter>,
    transitions: Family<TransitionLabels, Counter>,
    /// The addresses each probe target decides (by target label), for the probe metrics' labels.
    probe_owners: std::sync::RwLock<std::collections::HashMap<String, Vec<ProbeOwner>>>,
    reloads: Family<ResultLabel, Counter>,
    /// When the configuration was last loaded (start or reload), and whether it loaded.
    last_reload: Gauge<f64, std::sync::atomic::AtomicU64>,
    last_reload_ok: Gauge,
    overrides: Gauge,
    region_up: Family<RegionLabel, Gauge>,
    rrl: Family<RrlActionLabel, Counter>,
    tcp_refused: Family<ReasonLabel, Counter>,
    /// Connections of DNS over TLS and QUIC: open now, and refused by a cap.
    encrypted: Encrypted,
    /// etcd reachable (1/0) and live nodes, with `[cluster]` only (`with_cluster`).
    cluster: Option<(Gauge, Gauge)>,
}

struct Encrypted {
    open: Family<TransportLabel, Gauge>,
    refused: Family<TransportReasonLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Buckets of `meridian_answer_duration_seconds`: 2 µs to 50 ms.
const DURATION_BUCKETS: [f64; 14] =
    [2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 5e-2];

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let shards = Arc::new(Shards::default());
        registry.register(
            "meridian_queries",
            "DNS queries answered, by response code, query type, GSLB service and first answered region",
            merged::Queries(Arc::clone(&shards)),
        );
        registry.register_with_unit(
            "meridian_answer_duration",
            "Time spent building an answer (parse, lookup, policy, encode)",
            Unit::Seconds,
            merged::AnswerDuration(Arc::clone(&shards)),
        );
        let probes = Family::<ProbeLabels, Counter>::default();
        registry.register(
            "meridian_probes",
            "Health probes run, by zone, region and answered address they decide, and result (ok, fail)",
            probes.clone(),
        );
        let transitions = Family::<TransitionLabels, Counter>::default();
        registry.register(
            "meridian_probe_transitions",
            "Endpoint verdict changes, by zone, region, answered address and new verdict",
            transitions.clone(),
        );
        registry.register(
            "meridian_fail_open",
            "Answers given with every region of the service down (fail = open)",
            merged::FailOpen(Arc::clone(&shards)),
        );
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register("meridian_reloads", "Configuration reloads, by result (ok, error)", reloads.clone());
        let last_reload = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register_with_unit(
            "meridian_last_reload_timestamp",
            "When the configuration was last loaded or a reload was tried (Unix time)",
            Unit::Seconds,
            last_reload.clone(),
        );
        let last_reload_ok = Gauge::default();
        registry.register(
            "meridian_last_reload_successful",
            "Whether the last configuration load or reload succeeded (1) or failed and the previous one is served (0)",
            last_reload_ok.clone(),
        );
        registry.register(
            "meridian_build",
            "Meridian's version",
            prometheus_client::metrics::info::Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        for (metric, name, unit, help) in process::Process::ALL {
            match unit {
                Some("seconds") => registry.register_with_unit(name, help, Unit::Seconds, metric),
                Some(_) => registry.register_with_unit(name, help, Unit::Bytes, metric),
                None => registry.register(name, help, metric),
            }
        }
        let overrides = Gauge::default();
        registry.register("meridian_overrides", "Operator overrides in force", overrides.clone());
        let region_up = Family::<RegionLabel, Gauge>::default();
        registry.register("meridian_region_up", "Whether a region is answered (1) or withdrawn (0)", region_up.clone());
        let rrl = Family::<RrlActionLabel, Counter>::default();
        registry.register(
            "meridian_rrl_limited",
            "Responses held back by response rate limiting, by action (slip: sent truncated, drop)",
            rrl.clone(),
        );
        let tcp_refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "meridian_tcp_refused",
            "TCP connections closed at once, by reason (total: connection cap, per_client: per-client cap)",
            tcp_refused.clone(),
        );
        for action in ["slip", "drop"] {
            let _ = rrl.get_or_create(&RrlActionLabel { action });
        }
        for reason in ["total", "per_client"] {
            let _ = tcp_refused.get_or_create(&ReasonLabel { reason });
        }
        // Both results exist from the start, so a rate over them is defined before the first reload.
        for result in ["ok", "error"] {
            let _ = reloads.get_or_create(&ResultLabel { result });
        }
        let encrypted = Encrypted { open: Family::default(), refused: Family::default() };
        registry.register(
            "meridian_encrypted_connections",
            "Open DNS-over-TLS and DNS-over-QUIC connections, by transport",
            encrypted.open.clone(),
        );
        registry.register(
            "meridian_encrypted_refused",
            "Encrypted connections closed at once, by transport and reason (total, per_client)",
            encrypted.refused.clone(),
        );
        for transport in ["tls", "quic"] {
            let _ = encrypted.open.get_or_create(&TransportLabel { transport });
            for reason in ["total", "per_client"] {
                let _ = encrypted.refused.get_or_create(&TransportReasonLabel { transport, reason });
            }
        }
        Metrics {
            registry,
            shards,
            probes,
            transitions,
            probe_owners: Default::default(),
            reloads,
            last_reload,
            last_reload_ok,
            overrides,
            region_up,
            rrl,
            tcp_refused,
            encrypted,
            cluster: None,
        }
    }

    /// The metrics of a node with `[cluster]`: also its link to etcd,
    /// set at each scrape (`set_cluster`).
    pub fn with_cluster(mut self) -> Metrics {
        let (connected, live) = (Gauge::default(), Gauge::default());
        self.registry.register(
            "meridian_cluster_connected",
            "1 while etcd answers (shared overrides and verdicts), 0 while cut off",
            connected.clone(),
        );
        self.registry.register(
            "meridian_cluster_live_nodes",
            "Nodes whose verdict reports are live in etcd (0 while cut off)",
            live.clone(),
        );
        self.cluster = Some((connected, live));
        self
    }

    /// The cluster gauges now (a node without `[cluster]` has none).
    pub fn set_cluster(&self, connected: bool, live_nodes: usize) {
        if let Some((c, l)) = &self.cluster {
            c.set(i64::from(connected));
            l.set(live_nodes as i64);
        }
    }

    /// An encrypted connection (`transport`: tls, quic) opened (`true`) or closed.
    pub fn encrypted_open(&self, transport: &'static str, opened: bool) {
        let g = self.encrypted.open.get_or_create(&TransportLabel { transport });
        if opened {
            g.inc();
        } else {
            g.dec();
        }
    }

    /// Count one encrypted connection refused by a cap.
    pub fn encrypted_refused(&self, transport: &'static str, per_client: bool) {
        let reason = if per_client { "per_client" } else { "total" };
        self.encrypted.refused.get_or_create(&TransportReasonLabel { transport, reason }).inc();
    }

    /// A new shard of the per-query counts, for one answer worker (its only
    /// writer). Its counts stay in the scrape after it is dropped.
    pub fn query_counts(&self) -> QueryCounts {
        self.shards.add()
    }

    /// Answers so far by the first region they named (every service, type
    /// and code summed): the admin page turns two readings into a rate.
    pub fn answers_by_region(&self) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        for shard in self.shards.all() {
            for c in shard.counts().iter().filter(|c| !c.region.is_empty()) {
                *out.entry(c.region.to_string()).or_default() += c.n.load(std::sync::atomic::Ordering::Relaxed);
            }
        }
        out
    }

    /// Count one response held back by rate limiting.
    pub fn rrl(&self, slipped: bool) {
        self.rrl.get_or_create(&RrlActionLabel { action: if slipped { "slip" } else { "drop" } }).inc();
    }

    /// Count one TCP connection refused by a cap.
    pub fn tcp_refused(&self, per_client: bool) {
        self.tcp_refused.get_or_create(&ReasonLabel { reason: if per_client { "per_client" } else { "total" } }).inc();
    }

    /// Count one configuration reload.
    pub fn reload(&self, ok: bool) {
        self.reloads.get_or_create(&ResultLabel { result: if ok { "ok" } else { "error" } }).inc();
        self.loaded(ok);
    }

    /// Note a configuration load (the one at start, or a reload): now, and its result.
    pub fn loaded(&self, ok: bool) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        self.last_reload.set(now.as_secs_f64());
        self.last_reload_ok.set(i64::from(ok));
    }

    /// Set the gauges that describe the current health picture (called before encoding).
    pub fn set_health<'a>(&self, overrides: usize, regions: impl IntoIterator<Item = (&'a str, bool)>) {
        self.overrides.set(overrides as i64);
        self.region_up.clear();
        for (name, up) in regions {
            self.region_up.get_or_create(&RegionLabel { region: name.to_string() }).set(i64::from(up));
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The exposition in `format`.
    pub fn encode_as(&self, format: Format) -> String {
        match format {
            Format::OpenMetrics => self.encode(),
            Format::Text004 => text_format::to_text004(&self.encode()),
        }
    }
}

impl Metrics {
    /// Which (zone, region, address) each probe target decides, keyed by
    /// `ProbeTarget::label`: set at start and after each reload. A target
    /// shared by several addresses counts once for each.
    pub fn set_probe_owners(&self, owners: impl IntoIterator<Item = (String, ProbeOwner)>) {
        let mut map: std::collections::HashMap<String, Vec<ProbeOwner>> = Default::default();
        for (target, owner) in owners {
            let list = map.entry(target).or_default();
            if !list.contains(&owner) {
                list.push(owner);
            }
        }
        *self.probe_owners.write().unwrap_or_else(|e| e.into_inner()) = map;
    }

    /// `f` for each owner of `target` (one with empty labels if it has none: a reload raced the probe).
    fn each_owner(&self, target: &ProbeTarget, mut f: impl FnMut(&ProbeOwner)) {
        let owners = self.probe_owners.read().unwrap_or_else(|e| e.into_inner());
        match owners.get(&target.label()) {
            Some(list) if !list.is_empty() => list.iter().for_each(f),
            _ => f(&ProbeOwner::default()),
        }
    }
}

impl HealthObserver for Metrics {
    fn probe(&self, target: &ProbeTarget, result: &ProbeResult) {
        let result = if result.ok { "ok" } else { "fail" };
        self.each_owner(target, |o| {
            let (zone, region, address) = (o.zone.clone(), o.region.clone(), o.address.clone());
            self.probes.get_or_create(&ProbeLabels { zone, region, address, result }).inc();
        });
    }

    fn transition(&self, target: &ProbeTarget, _from: Verdict, to: Verdict) {
        let to = verdict_label(to);
        self.each_owner(target, |o| {
            let (zone, region, address) = (o.zone.clone(), o.region.clone(), o.address.clone());
            self.transitions.get_or_create(&TransitionLabels { zone, region, address, to }).inc();
        });
    }
}

pub fn verdict_label(v: Verdict) -> &'static str {
    match v {
        Verdict::Unknown => "unknown",
        Verdict::Up => "up",
        Verdict::Down => "down",
    }
}

/// Response code mnemonics (a bounded set: anything else is "OTHER").
const RCODE_LABELS: [&str; 8] = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "OTHER"];

fn rcode_index(r: ResponseCode) -> usize {
    match r {
        ResponseCode::NoError => 0,
        ResponseCode::FormErr => 1,
        ResponseCode::ServFail => 2,
        ResponseCode::NXDomain => 3,
        ResponseCode::NotImp => 4,
        ResponseCode::Refused => 5,
        ResponseCode::BADVERS => 6,
        _ => 7,
    }
}

fn rcode_label(r: ResponseCode) -> &'static str {
    RCODE_LABELS[rcode_index(r)]
}

/// Mnemonic of a query type; unassigned types share "OTHER" so clients cannot inflate the label set.
fn qtype_label(t: RecordType) -> &'static str {
    match t {
        RecordType::Unknown(_) => "OTHER",
        t => t.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Registered, in both formats, only on a node with `[cluster]`.
    #[test]
    fn cluster_gauges_only_with_a_cluster() {
        let plain = Metrics::new();
        plain.set_cluster(true, 3);
        assert!(!plain.encode().contains("meridian_cluster"));
        let m = Metrics::new().with_cluster();
        m.set_cluster(true, 3);
        for format in [Format::OpenMetrics, Format::Text004] {
            let text = m.encode_as(format);
            assert!(text.contains("# TYPE meridian_cluster_connected gauge\nmeridian_cluster_connected 1\n"), "{text}");
            assert!(text.contains("\nmeridian_cluster_live_nodes 3\n"), "{text}");
        }
        m.set_cluster(false, 0);
        assert!(m.encode().contains("\nmeridian_cluster_connected 0\n"));
        assert!(m.encode().ends_with("# EOF\n"));
    }

    /// A label table as a snapshot would hand over: id 1 the service, 2 and 3 regions.
    fn table(names: &[&str]) -> LabelTable {
        names.iter().map(|n| Arc::from(*n)).collect()
    }

    fn query(c: &mut QueryCounts, labels: &LabelTable, obs: &QueryObservation, took: Duration) {
        c.count_batch(labels, std::slice::from_ref(obs), 1, took.as_nanos() as u64);
    }

    #[test]
    fn counts_and_encodes() {
        let m = Metrics::new();
        let labels = table(&["", "www.example.", "eu"]);
        let mut c = m.query_counts();
        let obs = QueryObservation {
            rcode: Some(ResponseCode::NoError),
            qtype: Some(RecordType::A),
            service: Some(1),
            region: Some(2),
            fail_open: true,
            counted: false,
        };
        query(&mut c, &labels, &obs, Duration::from_micros(30));
        query(&mut c, &labels, &QueryObservation::default(), Duration::from_micros(30));
        m.reload(true);
        let text = m.encode();
        assert!(
            text.contains(r#"meridian_queries_total{rcode="NOERROR",qtype="A",service="www.example.",region="eu"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"meridian_fail_open_total{service="www.example."} 1"#), "{text}");
        assert!(text.contains("meridian_answer_duration_seconds_count 2"), "{text}");
        assert!(text.contains(r#"meridian_reloads_total{result="ok"} 1"#), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    /// A decision's counter adds to the same series as a counted observation,
    /// only in the `Metrics` it came from; an observation marked counted is
    /// not counted twice.
    #[test]
    fn a_counter_adds_to_its_label_set() {
        let (m, other) = (Metrics::new(), Metrics::new());
        let labels = table(&["", "svc.example.", "us", "eu"]);
        let (mut c, mut o) = (m.query_counts(), other.query_counts());
        let mut obs = QueryObservation {
            rcode: Some(ResponseCode::NoError),
            qtype: Some(RecordType::AAAA),
            service: Some(1),
            region: Some(2),
            ..QueryObservation::default()
        };
        c.count_batch(&labels, std::slice::from_ref(&obs), 0, 0);
        let id = c.counter(&labels, &obs).expect("a named label set");
        assert!(c.counts(id, &labels, &obs));
        c.add_one(id);
        c.add_one(id);
        obs.counted = true;
        c.count_batch(&labels, std::slice::from_ref(&obs), 0, 0);
        o.count_batch(&labels, &[], 1, 1);
        let series = r#"meridian_queries_total{rcode="NOERROR",qtype="AAAA",service="svc.example.",region="us"}"#;
        assert!(m.encode().contains(&format!("{series} 3\n")), "{}", m.encode());
        assert!(!other.encode().contains(series));
        obs.region = Some(3);
        assert!(!c.counts(id, &labels, &obs));
        assert!(
            c.counter(&labels, &QueryObservation { service: None, ..obs }).is_none(),
            "plain answers are counted plainly"
        );
    }

    /// Ids mean what the current label table says: after a reload renumbers
    /// the names, a label set's counts go on under its names, never under the
    /// names an id had before.
    #[test]
    fn a_new_label_table_renames_ids_and_keeps_counts_by_name() {
        let m = Metrics::new();
        let mut c = m.query_counts();
        let obs = |service, region| QueryObservation {
            rcode: Some(ResponseCode::NoError),
            qtype: Some(RecordType::A),
            service: Some(service),
            region: Some(region),
            ..QueryObservation::default()
        };
        let before = table(&["", "a.example.", "eu", "b.example.", "us"]);
        c.count_batch(&before, &[obs(1, 2), obs(3, 4)], 2, 2);
        let kept = c.counter(&before, &obs(1, 2)).unwrap();
        // Reloaded: b.example. is gone, a.example. and its region renumbered, a new service at id 1.
        let after = table(&["", "c.example.", "us", "a.example.", "eu"]);
        c.count_batch(&after, &[obs(1, 2), obs(3, 4), obs(3, 4)], 3, 3);
        assert_eq!(c.counter(&after, &obs(3, 4)), Some(kept), "the same names, the same count");
        let text = m.encode();
        let line = |s: &str, r: &str, n: u32| {
            format!(r#"meridian_queries_total{{rcode="NOERROR",qtype="A",service="{s}",region="{r}"}} {n}"#)
        };
        for want in [line("a.example.", "eu", 3), line("b.example.", "us", 1), line("c.example.", "us", 1)] {
            assert!(text.contains(&want), "{want} in {text}");
        }
        assert!(!text.contains(r#"service="c.example.",region="eu""#), "{text}");
    }

    /// A UDP batch is timed whole: every answer in it lands in the bucket of
    /// the mean, and the sum is the batch's time; an empty batch adds nothing.
    #[test]
    fn a_batch_is_observed_at_its_mean() {
        let m = Metrics::new();
        let mut c = m.query_counts();
        let labels = LabelTable::default();
        c.count_batch(&labels, &[], 4, 12_000); // 3 µs each
        c.count_batch(&labels, &[], 0, 50_000);
        c.count_batch(&labels, &[], 1, 30_000);
        let text = m.encode();
        for (le, n) in [("0.000002", 0), ("0.000005", 4), ("0.00002", 4), ("0.00005", 5)] {
            let line = format!("meridian_answer_duration_seconds_bucket{{le=\"{le}\"}} {n}");
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(text.contains("meridian_answer_duration_seconds_count 5"), "{text}");
        assert!(text.contains("meridian_answer_duration_seconds_sum 0.000042"), "{text}");
    }
}
