//! Widest honest ECS scopes for `geo` steps (issue 19).
//!
//! A `geo` step's answer depends on the client only through the rule its
//! location matches. Neighbouring database networks whose locations match
//! rules with equal regions get the same answer, so the scope may cover all
//! of them: for each geo step's rules, the database's networks (in address
//! order, gaps included) are merged into runs of equal answers, and a
//! client's scope is the shortest prefix around it that stays inside its
//! run. This is what gdnsd does with its merged tree. Built with the zones
//! and database (`answer::Snapshot::with_zones`); health does not enter (the
//! candidates a rule promotes are the same for every client).
//!
//! Not merged: rules with ASN entries (a second database's networks) and
//! databases with more than `MAX_NETWORKS` networks in a family (the walk
//! would hold up a reload); those keep the deciding network as the scope.

use rustc_hash::FxHashMap;
use std::net::IpAddr;

use super::{Matcher, RegionId, Service, Step};
use crate::geo::GeoDb;

/// Networks per family walked at most; beyond, no merging for that family.
pub const MAX_NETWORKS: usize = 2_000_000;

/// One family's runs: `starts[i]..=ends[i]` get the same answer, in order,
/// covering the whole space.
#[derive(Debug, Default)]
struct FamilyRuns {
    starts: Vec<u128>,
    ends: Vec<u128>,
}

/// Both families' runs for one set of rules.
#[derive(Debug, Default)]
pub struct Runs {
    v4: Option<FamilyRuns>,
    v6: Option<FamilyRuns>,
}

impl Runs {
    /// Merge `db`'s networks by the rule `rules` gives their location.
    fn build(db: &GeoDb, rules: &Matcher<Vec<RegionId>>, cap: usize) -> Runs {
        let family = |v6: bool| {
            let mut runs = FamilyRuns::default();
            let mut last: Option<Option<&Vec<RegionId>>> = None;
            let complete = db.for_each_network(v6, cap, |net, loc| {
                let (start, end) = bounds(net.network(), net.prefix_len());
                let answer = rules.location_rule(Some(loc));
                match runs.ends.last_mut() {
                    // Contiguous and the same answer: extend the run.
                    Some(e) if last == Some(answer) && *e + 1 == start => *e = end,
                    _ => {
                        runs.starts.push(start);
                        runs.ends.push(end);
                    }
                }
                last = Some(answer);
            });
            // A partition of the whole family, or nothing (then no merging).
            let max = if v6 { u128::MAX } else { u128::from(u32::MAX) };
            let whole = runs.starts.first() == Some(&0)
                && runs.ends.last() == Some(&max)
                && runs.starts.iter().skip(1).zip(&runs.ends).all(|(s, e)| *e + 1 == *s);
            (complete && whole).then_some(runs)
        };
        Runs { v4: family(false), v6: if db.is_v6() { family(true) } else { None } }
    }

    /// The shortest prefix around `addr` inside its run, `None` without runs
    /// for its family.
    pub fn widest(&self, addr: IpAddr) -> Option<u8> {
        let (runs, a, bits) = match addr.to_canonical() {
            IpAddr::V4(v4) => (self.v4.as_ref()?, u128::from(u32::from(v4)), 32u32),
            IpAddr::V6(v6) => (self.v6.as_ref()?, u128::from(v6), 128),
        };
        let i = runs.starts.partition_point(|s| *s <= a).checked_sub(1)?;
        let (start, end) = (runs.starts[i], runs.ends[i]);
        // Leading bits `a` shares with `b`, in the family's width.
        let common = |b: u128| ((a ^ b).leading_zeros() - (128 - bits)) as u8;
        // The block must start at or after `start`: it may not share with
        // `start - 1` all the bits that fix it; likewise for `end + 1`.
        let low = if start == 0 { 0 } else { common(start - 1) + 1 };
        let max = if bits == 32 { u128::from(u32::MAX) } else { u128::MAX };
        let high = if end == max { 0 } else { common(end + 1) + 1 };
        Some(low.max(high))
    }
}

/// First and last address of `addr/prefix` as numbers in the family's width.
fn bounds(addr: IpAddr, prefix: u8) -> (u128, u128) {
    let (a, bits) = match addr {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    let host_bits = bits - u32::from(prefix).min(bits);
    let span = if host_bits == 128 { u128::MAX } else { (1u128 << host_bits) - 1 };
    (a & !span, (a & !span) | span)
}

/// Runs for every mergeable geo step of a snapshot's services, keyed by the
/// step's rules (their address: the zones they live in are held by the same
/// snapshot).
#[derive(Debug, Default)]
pub struct GeoScopes {
    by_rules: FxHashMap<usize, Runs>,
}

impl GeoScopes {
    pub fn build<'a>(db: Option<&GeoDb>, services: impl Iterator<Item = &'a Service>) -> GeoScopes {
        let mut by_rules = FxHashMap::default();
        let Some(db) = db else { return GeoScopes { by_rules } };
        for svc in services {
            for step in &svc.chain {
                if let Step::Geo(rules) = step {
                    if !rules.uses_asn() {
                        by_rules.entry(key(rules)).or_insert_with(|| Runs::build(db, rules, MAX_NETWORKS));
                    }
                }
            }
        }
        GeoScopes { by_rules }
    }

    /// The widest scope `rules` allows around `addr`, if they were merged.
    #[inline]
    pub fn widest(&self, rules: &Matcher<Vec<RegionId>>, addr: IpAddr) -> Option<u8> {
        self.by_rules.get(&key(rules))?.widest(addr)
    }

    /// The widest scope over `svc`'s merged geo steps around `addr` (the
    /// narrowest of them): with the database networks, what decides a
    /// cached decision's scope (`answer::decisions`). 0 without any.
    pub fn service_key(&self, svc: &Service, addr: IpAddr) -> u8 {
        // `nearest` and `latency` scope at least the database network, which
        // holds the merged prefix: the chain's scope is theirs (`www`).
        if self.by_rules.is_empty() || svc.chain.iter().any(|s| matches!(s, Step::Nearest | Step::Latency(_))) {
            return 0;
        }
        let mut k = 0;
        for step in &svc.chain {
            if let Step::Geo(rules) = step {
                k = k.max(self.widest(rules, addr).unwrap_or(0));
            }
        }
        k
    }

    pub fn is_empty(&self) -> bool {
        self.by_rules.is_empty()
    }
}

fn key(rules: &Matcher<Vec<RegionId>>) -> usize {
    std::ptr::from_ref(rules) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(spans: &[(u128, u128)]) -> Runs {
        let fr = FamilyRuns { starts: spans.iter().map(|s| s.0).collect(), ends: spans.iter().map(|s| s.1).collect() };
        Runs { v4: Some(fr), v6: None }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn widest_stays_inside_the_run() {
        // 0.0.0.0–7.255.255.255 one answer, 8.0.0.0–8.0.0.255 another, the rest a third.
        let r = runs(&[(0, 0x07ff_ffff), (0x0800_0000, 0x0800_00ff), (0x0800_0100, u128::from(u32::MAX))]);
        assert_eq!(r.widest(ip("1.2.3.4")), Some(5));
        assert_eq!(r.widest(ip("8.0.0.7")), Some(24));
        // 8.0.1.0 up to the end: 8.0.1.0/24, 8.0.2.0/23, …, 8.128.0.0/9, 9.0.0.0/8, 10.0.0.0/7, 16/4, …
        assert_eq!(r.widest(ip("8.0.1.9")), Some(24));
        assert_eq!(r.widest(ip("9.1.1.1")), Some(8));
        assert_eq!(r.widest(ip("200.1.1.1")), Some(1));
        assert_eq!(r.widest(ip("2001:db8::1")), None, "no IPv6 runs");
        // One run over everything: /0.
        assert_eq!(runs(&[(0, u128::from(u32::MAX))]).widest(ip("1.1.1.1")), Some(0));
    }

    /// MaxMind's City test database under `www`'s continent map: runs for
    /// both families; over the cap, none (the deciding network stays the scope).
    #[test]
    fn city_test_database_merges_unless_over_the_cap() {
        let db = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/geoip/maxmind-test/GeoIP2-City-Test.mmdb");
        let db = GeoDb::open(&db, None).unwrap();
        let mut rules: Matcher<Vec<RegionId>> = Matcher::default();
        for (c, r) in [("NA", 0), ("SA", 0), ("EU", 1), ("AF", 1), ("AS", 2), ("OC", 2)] {
            rules.continent.insert(c.into(), vec![r]);
        }
        // Without a default, the unlocated gaps around 216.160.83.56/29 answer
        // differently (no rule); with one naming the same region, they merge.
        let runs = Runs::build(&db, &rules, MAX_NETWORKS);
        assert_eq!(runs.widest(ip("216.160.83.56")), Some(29));
        rules.default = Some(vec![0]);
        let runs = Runs::build(&db, &rules, MAX_NETWORKS);
        assert_eq!(runs.widest(ip("216.160.83.56")), Some(5), "gdnsd's figure in the issue");
        assert!(runs.widest(ip("2001:218::1")).is_some_and(|p| p <= 32));
        let none = Runs::build(&db, &rules, 10);
        assert_eq!((none.widest(ip("216.160.83.56")), none.widest(ip("2001:218::1"))), (None, None));
    }

    #[test]
    fn bounds_of_networks() {
        assert_eq!(bounds(ip("10.1.0.0"), 16), (0x0a01_0000, 0x0a01_ffff));
        assert_eq!(bounds(ip("10.1.2.3"), 32), (0x0a01_0203, 0x0a01_0203));
        assert_eq!(bounds(ip("0.0.0.0"), 0), (0, u128::from(u32::MAX)));
        assert_eq!(bounds(ip("::"), 0), (0, u128::MAX));
    }
}
