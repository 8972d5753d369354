//! The per-thread shards, merged: what several threads count adds up, reads
//! as prometheus-client's own `Family` and `Histogram` would, and never goes
//! backwards while threads count.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::{LabelTable, Metrics, QueryCounts, QueryObservation, DURATION_BUCKETS};

/// Id 1: the service, id 2: its region.
fn labels() -> LabelTable {
    ["", "www.example.", "eu"].into_iter().map(std::sync::Arc::from).collect()
}

fn obs(rcode: ResponseCode, qtype: RecordType, gslb: bool, fail_open: bool) -> QueryObservation {
    let (service, region) = if gslb { (Some(1), Some(2)) } else { (None, None) };
    QueryObservation { rcode: Some(rcode), qtype: Some(qtype), service, region, fail_open, counted: false }
}

fn query(c: &mut QueryCounts, labels: &LabelTable, obs: &QueryObservation, took: Duration) {
    c.count_batch(labels, std::slice::from_ref(obs), 1, took.as_nanos() as u64);
}

/// The value of the sample `series` (name and labels as written), or 0 if absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// The lines of the per-query families, sorted (a `Family` encodes in hash order).
fn query_family_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            ["meridian_queries", "meridian_fail_open", "meridian_answer_duration"].iter().any(|f| l.contains(f))
        })
        .filter(|l| !l.starts_with("meridian_answer_duration_seconds_sum"))
        .collect();
    lines.sort_unstable();
    lines
}

#[test]
fn counts_from_two_threads_are_merged_at_scrape() {
    let m = Metrics::new();
    let other = Metrics::new();
    let www = String::from("www.example.");
    let labels = labels();
    let plain = obs(ResponseCode::NoError, RecordType::A, false, false);
    let gslb = obs(ResponseCode::NoError, RecordType::AAAA, true, true);
    let nx = obs(ResponseCode::NXDomain, RecordType::CAA, false, false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut c = m.query_counts();
                for _ in 0..1000 {
                    query(&mut c, &labels, &plain, Duration::from_micros(3));
                    query(&mut c, &labels, &gslb, Duration::from_micros(30));
                }
                query(&mut c, &labels, &nx, Duration::from_millis(60));
            });
        }
    });
    // Another `Metrics` keeps its own counts.
    query(&mut other.query_counts(), &labels, &plain, Duration::from_micros(3));
    query(&mut m.query_counts(), &labels, &QueryObservation::default(), Duration::from_micros(1));

    // The threads have exited: their counts stay.
    let text = m.encode();
    assert_eq!(value(&text, r#"meridian_queries_total{rcode="NOERROR",qtype="A",service="",region=""}"#), 2000.0);
    assert_eq!(
        value(&text, r#"meridian_queries_total{rcode="NOERROR",qtype="AAAA",service="www.example.",region="eu"}"#),
        2000.0
    );
    assert_eq!(value(&text, r#"meridian_queries_total{rcode="NXDOMAIN",qtype="CAA",service="",region=""}"#), 2.0);
    assert_eq!(value(&text, r#"meridian_fail_open_total{service="www.example."}"#), 2000.0);
    assert_eq!(value(&text, "meridian_answer_duration_seconds_count"), 4003.0);
    assert_eq!(value(&text, r#"meridian_answer_duration_seconds_bucket{le="0.000002"}"#), 1.0);
    assert_eq!(value(&text, r#"meridian_answer_duration_seconds_bucket{le="0.000005"}"#), 2001.0);
    assert_eq!(value(&text, r#"meridian_answer_duration_seconds_bucket{le="0.00005"}"#), 4001.0);
    assert_eq!(value(&text, r#"meridian_answer_duration_seconds_bucket{le="0.05"}"#), 4001.0);
    assert_eq!(value(&text, r#"meridian_answer_duration_seconds_bucket{le="+Inf"}"#), 4003.0);
    let sum = value(&text, "meridian_answer_duration_seconds_sum");
    assert!((sum - (2000.0 * 33e-6 + 0.12 + 1e-6)).abs() < 1e-9, "{sum}");
    assert_eq!(value(&other.encode(), "meridian_answer_duration_seconds_count"), 1.0);

    // Line for line what prometheus-client's own families would say.
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct QueryLabels {
        rcode: &'static str,
        qtype: &'static str,
        service: String,
        region: String,
    }
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct ServiceLabel {
        service: String,
    }
    let mut reference = Registry::default();
    let queries = Family::<QueryLabels, Counter>::default();
    let help = "DNS queries answered, by response code, query type, GSLB service and first answered region";
    reference.register("meridian_queries", help, queries.clone());
    let duration = Histogram::new(DURATION_BUCKETS);
    let help = "Time spent building an answer (parse, lookup, policy, encode)";
    reference.register_with_unit("meridian_answer_duration", help, Unit::Seconds, duration.clone());
    let fail_open = Family::<ServiceLabel, Counter>::default();
    let help = "Answers given with every region of the service down (fail = open)";
    reference.register("meridian_fail_open", help, fail_open.clone());
    let labels = |rcode, qtype, service: &str, region: &str| QueryLabels {
        rcode,
        qtype,
        service: service.into(),
        region: region.into(),
    };
    queries.get_or_create(&labels("NOERROR", "A", "", "")).inc_by(2000);
    queries.get_or_create(&labels("NOERROR", "AAAA", &www, "eu")).inc_by(2000);
    queries.get_or_create(&labels("NXDOMAIN", "CAA", "", "")).inc_by(2);
    fail_open.get_or_create(&ServiceLabel { service: www.clone() }).inc_by(2000);
    for (n, secs) in [(2000, 3e-6), (2000, 30e-6), (2, 0.06), (1, 1e-6)] {
        (0..n).for_each(|_| duration.observe(secs));
    }
    let mut expected = String::new();
    prometheus_client::encoding::text::encode(&mut expected, &reference).unwrap();
    assert_eq!(query_family_lines(&text), query_family_lines(&expected), "{text}");
}

#[test]
fn nothing_counted_reads_as_empty_families() {
    let text = Metrics::new().encode();
    assert!(!text.contains("meridian_queries"), "{text}");
    assert!(!text.contains("meridian_fail_open"), "{text}");
    assert!(text.contains("meridian_answer_duration_seconds_count 0"), "{text}");
}

#[test]
fn scrapes_while_threads_count_never_go_backwards() {
    const THREADS: u64 = 3;
    const EACH: u64 = 100_000;
    let m = Metrics::new();
    let scraping = AtomicBool::new(false);
    let labels = labels();
    let plain = obs(ResponseCode::NoError, RecordType::A, false, false);
    let gslb = obs(ResponseCode::NoError, RecordType::A, true, true);
    let series = [
        r#"meridian_queries_total{rcode="NOERROR",qtype="A",service="",region=""}"#,
        r#"meridian_queries_total{rcode="NOERROR",qtype="A",service="www.example.",region="eu"}"#,
        r#"meridian_fail_open_total{service="www.example."}"#,
        "meridian_answer_duration_seconds_count",
        r#"meridian_answer_duration_seconds_bucket{le="0.00001"}"#,
    ];
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (m, scraping, plain, gslb, labels) = (&m, &scraping, &plain, &gslb, &labels);
            s.spawn(move || {
                let mut c = m.query_counts();
                while !scraping.load(Relaxed) {
                    std::thread::yield_now();
                }
                // Later threads add their shards while scrapes run.
                std::thread::sleep(Duration::from_millis(2 * t));
                for i in 0..EACH {
                    query(&mut c, labels, if i % 3 == 0 { gslb } else { plain }, Duration::from_nanos(i % 20_000));
                }
            });
        }
        let mut last = [0.0; 5];
        for _ in 0..100_000 {
            let text = m.encode();
            scraping.store(true, Relaxed);
            let now = series.map(|s| value(&text, s));
            for ((s, was), is) in series.iter().zip(last).zip(now) {
                assert!(is >= was, "{s} went from {was} to {is}");
            }
            let inf = value(&text, r#"meridian_answer_duration_seconds_bucket{le="+Inf"}"#);
            assert_eq!(now[3], inf, "_count is the +Inf bucket");
            last = now;
            if now[3] == (THREADS * EACH) as f64 {
                break;
            }
        }
        assert_eq!(last[3], (THREADS * EACH) as f64, "every query counted");
    });
}
