//! Shared health verdicts: each node puts its verdict per probe target under
//! `<prefix>/verdicts/<node>/<target label>`, attached to a lease of its own
//! (a node that dies stops counting when the lease runs out). Every node
//! computes the same cluster verdict from the live reports: a target is down
//! when a majority of the nodes that report up or down say down.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::cluster_file::Quorum;
use crate::health::Verdict;

/// A node's reports live this long after its last keep-alive.
pub const LEASE_TTL_SECS: i64 = 3;
/// How often local verdicts are compared with the published ones.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub target: String,
    pub verdict: Verdict,
}

pub fn dir(prefix: &str) -> String {
    format!("{}/verdicts/", prefix.trim_end_matches('/'))
}

pub fn key(prefix: &str, node: &str, target: &str) -> String {
    format!("{}{node}/{target}", dir(prefix))
}

/// The node a report key belongs to.
pub fn node_of<'k>(prefix: &str, key: &'k str) -> Option<&'k str> {
    key.strip_prefix(&dir(prefix))?.split('/').next()
}

/// Live reports, by key: (node, report).
pub type Reports = BTreeMap<String, (String, Report)>;

/// The cluster's verdicts under `quorum` (default: down when more than half
/// of the nodes with a verdict say down). Reported but not yet judged by
/// anyone: unknown (the cold-start rule applies, not this node's own early
/// verdict); not reported at all: left out (own probes decide).
pub fn cluster_verdicts(reports: &Reports, quorum: Quorum) -> HashMap<String, Verdict> {
    let mut tally: HashMap<&str, (usize, usize)> = HashMap::new();
    for (_, r) in reports.values() {
        let t = tally.entry(r.target.as_str()).or_default();
        match r.verdict {
            Verdict::Up => t.0 += 1,
            Verdict::Down => t.1 += 1,
            Verdict::Unknown => {}
        }
    }
    tally
        .into_iter()
        .map(|(t, (up, down))| {
            let v = match (up, down) {
                (0, 0) => Verdict::Unknown,
                _ if quorum.is_down(down, up + down) => Verdict::Down,
                _ => Verdict::Up,
            };
            (t.to_string(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reports(list: &[(&str, &str, Verdict)]) -> Reports {
        list.iter()
            .map(|(node, target, v)| {
                (key("/m", node, target), (node.to_string(), Report { target: target.to_string(), verdict: *v }))
            })
            .collect()
    }

    fn cluster_verdicts_m(r: &Reports) -> HashMap<String, Verdict> {
        cluster_verdicts(r, Quorum::Majority)
    }

    #[test]
    fn other_rules_count_the_same_reports() {
        use Verdict::*;
        let t = "GET http://127.0.0.1:1/health";
        let r = reports(&[("a", t, Down), ("b", t, Up), ("c", t, Up)]);
        assert_eq!(cluster_verdicts(&r, Quorum::AtLeast(1))[t], Down);
        assert_eq!(cluster_verdicts(&r, Quorum::All)[t], Up);
        let r = reports(&[("a", t, Down), ("b", t, Down), ("c", t, Unknown)]);
        assert_eq!(cluster_verdicts(&r, Quorum::All)[t], Down, "unknown is no verdict");
    }

    #[test]
    fn a_majority_of_live_reporters_decides() {
        use Verdict::*;
        let t = "GET http://127.0.0.1:1/health";
        let v = cluster_verdicts_m(&reports(&[("a", t, Down), ("b", t, Up), ("c", t, Up)]));
        assert_eq!(v[t], Up, "one node cut off from the backend does not withdraw it");
        let v = cluster_verdicts_m(&reports(&[("a", t, Down), ("b", t, Down), ("c", t, Up)]));
        assert_eq!(v[t], Down);
        let v = cluster_verdicts_m(&reports(&[("a", t, Down), ("b", t, Up)]));
        assert_eq!(v[t], Up, "a tie is not a majority for down");
        let v = cluster_verdicts_m(&reports(&[("a", t, Down), ("b", t, Unknown)]));
        assert_eq!(v[t], Down, "only nodes with a verdict count");
        assert_eq!(cluster_verdicts_m(&reports(&[("a", t, Unknown)]))[t], Unknown);
        assert!(cluster_verdicts_m(&Reports::new()).is_empty());
        assert_eq!(node_of("/m", &key("/m", "b", t)), Some("b"));
    }
}
