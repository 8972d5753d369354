//! Prometheus metrics (OpenMetrics text via prometheus-client), served by the
//! admin API at `/metrics`. Per-query counts go to per-thread shards
//! (`shard.rs`) that a scrape sums (`merged.rs`); everything else is
//! prometheus-client's own metrics.

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::health::probe::ProbeResult;
use crate::health::{HealthObserver, ProbeTarget, Verdict};

mod labels;
#[cfg(test)]
mod merge_tests;
mod merged;
mod shard;

pub use labels::Label;
pub use shard::LocalCounter;

use shard::{Shards, PLAIN_QTYPES};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    target: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    target: String,
    to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegionLabel {
    region: String,
}

/// What `respond()` saw of one query, filled as it answers.
#[derive(Debug, Default, Clone)]
pub struct QueryObservation {
    /// The response code sent; `None` when nothing was sent.
    pub rcode: Option<ResponseCode>,
    pub qtype: Option<RecordType>,
    /// The GSLB service that answered (first one, if a CNAME chain met several).
    pub service: Option<Label>,
    /// The region it answered first.
    pub region: Option<Label>,
    /// Every candidate region was down and the answer failed open.
    pub fail_open: bool,
    /// Already counted, through a `LocalCounter` (`Metrics::count_batch` skips it).
    pub counted: bool,
}

impl QueryObservation {
    /// Note a GSLB decision: the first service and its first region label the
    /// query; fail-open is counted if any decision failed open.
    pub fn record_service(
        &mut self,
        zone: &crate::zone::Zone,
        svc: &crate::policy::Service,
        d: &crate::policy::Decision,
    ) {
        if self.service.is_none() {
            self.service = Some(svc.label);
            self.region = d.regions.first().map(|id| zone.regions[*id].label);
        }
        self.fail_open |= d.fail_open;
    }
}

#[inline]
fn count_into(l: &mut shard::Local, obs: &QueryObservation) {
    if obs.counted {
        return;
    }
    let plain = obs.service.is_none() && obs.region.is_none() && !obs.fail_open;
    match (obs.rcode, obs.qtype.map(|t| usize::from(u16::from(t)))) {
        (None, _) => {}
        (Some(rcode), Some(t)) if plain && t < PLAIN_QTYPES => l.plain(rcode_index(rcode), t),
        (Some(rcode), _) => l.count(&named_key(rcode, obs)),
    }
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
    /// Queries, fail-opens and answer durations, counted per thread.
    shards: Arc<Shards>,
    probes: Family<ProbeLabels, Counter>,
    transitions: Family<TransitionLabels, Counter>,
    reloads: Family<ResultLabel, Counter>,
    overrides: Gauge,
    region_up: Family<RegionLabel, Gauge>,
    rrl: Family<ActionLabel, Counter>,
    tcp_refused: Family<ReasonLabel, Counter>,
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
        let shards = Arc::new(Shards::new());
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
        registry.register("meridian_probes", "Health probes run, by target and result (ok, fail)", probes.clone());
        let transitions = Family::<TransitionLabels, Counter>::default();
        registry.register(
            "meridian_probe_transitions",
            "Endpoint verdict changes, by target and new verdict",
            transitions.clone(),
        );
        registry.register(
            "meridian_fail_open",
            "Answers given with every region of the service down (fail = open)",
            merged::FailOpen(Arc::clone(&shards)),
        );
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register("meridian_reloads", "Configuration reloads, by result (ok, error)", reloads.clone());
        let overrides = Gauge::default();
        registry.register("meridian_overrides", "Operator overrides in force", overrides.clone());
        let region_up = Family::<RegionLabel, Gauge>::default();
        registry.register("meridian_region_up", "Whether a region is answered (1) or withdrawn (0)", region_up.clone());
        let rrl = Family::<ActionLabel, Counter>::default();
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
            let _ = rrl.get_or_create(&ActionLabel { action });
        }
        for reason in ["total", "per_client"] {
            let _ = tcp_refused.get_or_create(&ReasonLabel { reason });
        }
        // Both results exist from the start, so a rate over them is defined before the first reload.
        for result in ["ok", "error"] {
            let _ = reloads.get_or_create(&ResultLabel { result });
        }
        Metrics { registry, shards, probes, transitions, reloads, overrides, region_up, rrl, tcp_refused }
    }

    /// Count one query and the time its answer took (in this thread's shard).
    #[cfg(test)]
    pub fn query(&self, obs: &QueryObservation, took: Duration) {
        self.count(obs);
        self.answer_times(1, took);
    }

    /// Count one query; its time is observed separately (`answer_times`).
    #[cfg(test)]
    pub fn count(&self, obs: &QueryObservation) {
        self.shards.with_local(|l| count_into(l, obs));
    }

    /// Observe `n` answers that took `total` together, each at the mean. The
    /// UDP receiver times a whole batch with two clock reads (a read costs
    /// about as much as a static answer's own work); a batch of one is exact.
    #[cfg(test)]
    pub fn answer_times(&self, n: u64, total: Duration) {
        self.count_batch(&[], n, total);
    }

    /// Count each of `observed` (unless already `counted`) and observe `n`
    /// answers that took `total` together, each at the mean: the UDP receiver
    /// times a whole batch with two clock reads (a read costs about as much
    /// as a static answer's own work); a batch of one is exact. One look-up
    /// of this thread's shard for the whole receive batch.
    pub fn count_batch(&self, observed: &[QueryObservation], n: u64, total: Duration) {
        self.shards.with_local(|l| {
            for obs in observed {
                count_into(l, obs);
            }
            if n > 0 {
                l.observe(n, u64::try_from(total.as_nanos()).unwrap_or(u64::MAX));
            }
        });
    }

    /// A counter, on this thread, of answers labelled like `obs`, for a
    /// caller that gives many answers with the same labels (a cached GSLB
    /// decision). `None` if `obs` sent nothing or names no service (those
    /// are counted plainly), or while the thread exits.
    pub fn counter(&self, obs: &QueryObservation) -> Option<LocalCounter> {
        let rcode = obs.rcode?;
        obs.service?;
        self.shards.counter(&named_key(rcode, obs))
    }

    /// Whether `c` counts into these metrics (tests make several).
    pub fn owns(&self, c: &LocalCounter) -> bool {
        c.counts_into(&self.shards)
    }

    /// Whether `c` counts answers labelled like `obs` (for assertions).
    pub fn counts(&self, c: &LocalCounter, obs: &QueryObservation) -> bool {
        obs.rcode.is_some_and(|rcode| c.is_for(&named_key(rcode, obs)))
    }

    /// Count one response held back by rate limiting.
    pub fn rrl(&self, slipped: bool) {
        self.rrl.get_or_create(&ActionLabel { action: if slipped { "slip" } else { "drop" } }).inc();
    }

    /// Count one TCP connection refused by a cap.
    pub fn tcp_refused(&self, per_client: bool) {
        self.tcp_refused.get_or_create(&ReasonLabel { reason: if per_client { "per_client" } else { "total" } }).inc();
    }

    /// Count one configuration reload.
    pub fn reload(&self, ok: bool) {
        self.reloads.get_or_create(&ResultLabel { result: if ok { "ok" } else { "error" } }).inc();
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
}

impl HealthObserver for Metrics {
    fn probe(&self, target: &ProbeTarget, result: &ProbeResult) {
        let labels = ProbeLabels { target: target.label(), result: if result.ok { "ok" } else { "fail" } };
        self.probes.get_or_create(&labels).inc();
    }

    fn transition(&self, target: &ProbeTarget, _from: Verdict, to: Verdict) {
        let labels = TransitionLabels { target: target.label(), to: verdict_label(to) };
        self.transitions.get_or_create(&labels).inc();
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

    #[test]
    fn counts_and_encodes() {
        let m = Metrics::new();
        let obs = QueryObservation {
            rcode: Some(ResponseCode::NoError),
            qtype: Some(RecordType::A),
            service: Some(Label::of("www.example.")),
            region: Some(Label::of("eu")),
            fail_open: true,
            counted: false,
        };
        m.query(&obs, Duration::from_micros(30));
        m.query(&QueryObservation::default(), Duration::from_micros(30));
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

    /// A decision's counter adds to the same series as `count`, only in the
    /// `Metrics` it came from; an observation marked counted is not counted twice.
    #[test]
    fn a_local_counter_adds_to_its_label_set() {
        let (m, other) = (Metrics::new(), Metrics::new());
        let mut obs = QueryObservation {
            rcode: Some(ResponseCode::NoError),
            qtype: Some(RecordType::AAAA),
            service: Some(Label::of("svc.example.")),
            region: Some(Label::of("us")),
            ..QueryObservation::default()
        };
        m.count(&obs);
        let c = m.counter(&obs).expect("a named label set");
        assert!(m.owns(&c) && !other.owns(&c) && m.counts(&c, &obs));
        c.add_one();
        c.add_one();
        obs.counted = true;
        m.count(&obs);
        let series = r#"meridian_queries_total{rcode="NOERROR",qtype="AAAA",service="svc.example.",region="us"}"#;
        assert!(m.encode().contains(&format!("{series} 3\n")), "{}", m.encode());
        assert!(!other.encode().contains(series));
        obs.region = Some(Label::of("eu"));
        assert!(!m.counts(&c, &obs));
        assert!(m.counter(&QueryObservation { service: None, ..obs }).is_none(), "plain answers are counted plainly");
    }

    /// A UDP batch is timed whole: every answer in it lands in the bucket of
    /// the mean, and the sum is the batch's time; an empty batch adds nothing.
    #[test]
    fn a_batch_is_observed_at_its_mean() {
        let m = Metrics::new();
        m.answer_times(4, Duration::from_micros(12)); // 3 µs each
        m.answer_times(0, Duration::from_micros(50));
        m.answer_times(1, Duration::from_micros(30));
        let text = m.encode();
        for (le, n) in [("0.000002", 0), ("0.000005", 4), ("0.00002", 4), ("0.00005", 5)] {
            let line = format!("meridian_answer_duration_seconds_bucket{{le=\"{le}\"}} {n}");
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(text.contains("meridian_answer_duration_seconds_count 5"), "{text}");
        assert!(text.contains("meridian_answer_duration_seconds_sum 0.000042"), "{text}");
    }
}
