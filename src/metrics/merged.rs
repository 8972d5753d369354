//! The families counted in per-worker shards, summed at scrape and encoded
//! the way prometheus-client's `Family<_, Counter>` and `Histogram` would.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use hickory_proto::rr::RecordType;

use super::shard::{Count, Shards};
use super::{qtype_label, DURATION_BUCKETS, RCODE_LABELS};

/// Every shard's label-set counts.
fn all_counts(shards: &Shards) -> Vec<Arc<Count>> {
    shards.all().iter().flat_map(|s| s.counts().clone()).collect()
}

/// `meridian_queries_total{rcode,qtype,service,region}`.
#[derive(Debug)]
pub(super) struct Queries(pub Arc<Shards>);

impl EncodeMetric for Queries {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let shards = self.0.all();
        let counts = all_counts(&self.0);
        let mut sums: BTreeMap<[&str; 4], u64> = BTreeMap::new();
        for (rcode, qtype, n) in shards.iter().flat_map(|s| s.plain_counts()) {
            *sums.entry([RCODE_LABELS[rcode], qtype_label(RecordType::from(qtype)), "", ""]).or_default() += n;
        }
        for c in &counts {
            *sums.entry([c.rcode, c.qtype, &c.service, &c.region]).or_default() += c.n.load(Relaxed);
        }
        for ([rcode, qtype, service, region], n) in sums {
            let labels = [("rcode", rcode), ("qtype", qtype), ("service", service), ("region", region)];
            encoder.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }

    /// Like an empty `Family`: no HELP/TYPE before the first answer.
    fn is_empty(&self) -> bool {
        self.0.all().iter().all(|s| s.counts().is_empty() && s.plain_counts().next().is_none())
    }
}

/// `meridian_fail_open_total{service}`.
#[derive(Debug)]
pub(super) struct FailOpen(pub Arc<Shards>);

impl EncodeMetric for FailOpen {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let counts = all_counts(&self.0);
        let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
        for c in counts.iter().filter(|c| c.fail_open) {
            *sums.entry(&c.service).or_default() += c.n.load(Relaxed);
        }
        for (service, n) in sums {
            encoder.encode_family(&[("service", service)])?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }

    fn is_empty(&self) -> bool {
        !self.0.all().iter().any(|s| s.counts().iter().any(|c| c.fail_open))
    }
}

/// `meridian_answer_duration_seconds`.
#[derive(Debug)]
pub(super) struct AnswerDuration(pub Arc<Shards>);

impl EncodeMetric for AnswerDuration {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut per_bucket = [0u64; DURATION_BUCKETS.len() + 1];
        let mut sum_nanos = 0u64;
        for shard in self.0.all() {
            let (buckets, nanos) = shard.durations();
            per_bucket.iter_mut().zip(buckets).for_each(|(total, n)| *total += n);
            sum_nanos += nanos;
        }
        // The count is the buckets' total, so `_count` always equals the +Inf bucket.
        let count = per_bucket.iter().sum();
        let bounds = DURATION_BUCKETS.iter().copied().chain([f64::MAX]);
        let buckets: Vec<(f64, u64)> = bounds.zip(per_bucket).collect();
        encoder.encode_histogram::<NoLabelSet>(sum_nanos as f64 / 1e9, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}
