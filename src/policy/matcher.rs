//! Rules keyed by where a client is, most specific first:
//! CIDR > ASN > subdivision > country > continent > default.
//! Also computes how far around the client the same rule holds (ECS scope).

use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;

use crate::geo::Location;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MatchKind {
    Cidr,
    Asn,
    Subdivision,
    Country,
    Continent,
    Default,
}

/// A rule table from client location to `T`.
#[derive(Debug, Clone)]
pub struct Matcher<T> {
    /// Sorted longest prefix first, so the first containing rule is the most specific.
    pub cidr: Vec<(IpNet, T)>,
    pub asn: HashMap<u32, T>,
    pub subdivision: HashMap<String, T>,
    pub country: HashMap<String, T>,
    pub continent: HashMap<String, T>,
    pub default: Option<T>,
}

impl<T> Default for Matcher<T> {
    fn default() -> Self {
        Matcher {
            cidr: Vec::new(),
            asn: HashMap::new(),
            subdivision: HashMap::new(),
            country: HashMap::new(),
            continent: HashMap::new(),
            default: None,
        }
    }
}

/// The rule that matched, why, and the ECS scope it supports.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleMatch<'a, T> {
    pub value: &'a T,
    pub kind: MatchKind,
    /// e.g. `continent EU`, `cidr 10.0.0.0/8`.
    pub label: String,
    pub scope: u8,
}

impl<T> Matcher<T> {
    pub fn sort_cidrs(&mut self) {
        self.cidr.sort_by_key(|c| std::cmp::Reverse(c.0.prefix_len()));
    }

    /// Whether any rule needs the client's geo data (not only CIDR).
    pub fn uses_asn(&self) -> bool {
        !self.asn.is_empty()
    }

    /// The most specific rule for this client, if any.
    pub fn find(&self, client: IpAddr, loc: Option<&Location>) -> Option<RuleMatch<'_, T>> {
        self.find_explained(client, loc, true)
    }

    /// `find`, with the human-readable `label` only when `explain` (formatting costs).
    pub fn find_explained(&self, client: IpAddr, loc: Option<&Location>, explain: bool) -> Option<RuleMatch<'_, T>> {
        self.find_scoped(client, loc, explain, None)
    }

    /// The rule a location matches, CIDR rules aside (which look at the
    /// address): what `find` picks for a client no CIDR rule covers. The
    /// widest-scope runs (`scopes.rs`) merge networks by it.
    pub fn location_rule(&self, loc: Option<&Location>) -> Option<&T> {
        let rule = loc.and_then(|l| {
            l.asn
                .and_then(|a| self.asn.get(&a))
                .or_else(|| l.subdivision.as_ref().and_then(|s| self.subdivision.get(s)))
                .or_else(|| l.country.as_ref().and_then(|c| self.country.get(c)))
                .or_else(|| l.continent.as_ref().and_then(|c| self.continent.get(c)))
        });
        rule.or(self.default.as_ref())
    }

    /// `find_explained`; `merged`: the widest prefix around the client over
    /// which the location rules give the same answer (`scopes.rs`), the
    /// scope's base instead of the deciding network when known.
    pub fn find_scoped(
        &self,
        client: IpAddr,
        loc: Option<&Location>,
        explain: bool,
        merged: Option<u8>,
    ) -> Option<RuleMatch<'_, T>> {
        let lab = |f: &dyn Fn() -> String| if explain { f() } else { String::new() };
        if let Some((net, v)) = self.cidr.iter().find(|(n, _)| n.contains(&client)) {
            let scope = self.narrow(client, net.prefix_len(), Some(net));
            return Some(RuleMatch { value: v, kind: MatchKind::Cidr, label: lab(&|| format!("cidr {net}")), scope });
        }
        // Everything below depends on the database's networks.
        let geo_prefix = loc.map_or(0, |l| l.network.prefix_len());
        let asn_prefix = loc.and_then(|l| l.asn_network).map_or(0, |n| n.prefix_len());
        let base = if self.uses_asn() { geo_prefix.max(asn_prefix) } else { merged.unwrap_or(geo_prefix) };
        let scope = self.narrow(client, base, None);
        let found = loc.and_then(|l| {
            if let Some(v) = l.asn.and_then(|a| self.asn.get(&a)) {
                // An ASN decision only depends on the ASN database's network.
                let s = self.narrow(client, asn_prefix, None);
                return Some((v, MatchKind::Asn, lab(&|| format!("asn {}", l.asn.unwrap_or(0))), s));
            }
            if let Some(v) = l.subdivision.as_ref().and_then(|s| self.subdivision.get(s)) {
                return Some((
                    v,
                    MatchKind::Subdivision,
                    lab(&|| format!("subdivision {}", l.subdivision.as_deref().unwrap_or(""))),
                    scope,
                ));
            }
            if let Some(v) = l.country.as_ref().and_then(|c| self.country.get(c)) {
                return Some((
                    v,
                    MatchKind::Country,
                    lab(&|| format!("country {}", l.country.as_deref().unwrap_or(""))),
                    scope,
                ));
            }
            if let Some(v) = l.continent.as_ref().and_then(|c| self.continent.get(c)) {
                return Some((
                    v,
                    MatchKind::Continent,
                    lab(&|| format!("continent {}", l.continent.as_deref().unwrap_or(""))),
                    scope,
                ));
            }
            None
        });
        match found {
            Some((value, kind, label, scope)) => Some(RuleMatch { value, kind, label, scope }),
            None => self.default.as_ref().map(|v| RuleMatch {
                value: v,
                kind: MatchKind::Default,
                label: lab(&|| "default".into()),
                scope,
            }),
        }
    }

    /// The scope prefix `base`, lengthened until no CIDR rule that does not
    /// apply to the client overlaps the client's network (so everyone in the
    /// returned network gets the same rule). `within`: the matched rule.
    fn narrow(&self, client: IpAddr, base: u8, within: Option<&IpNet>) -> u8 {
        let mut scope = base;
        for (net, _) in &self.cidr {
            if net.contains(&client) || !same_family(net, client) {
                continue;
            }
            if let Some(w) = within {
                if !w.contains(net) {
                    continue;
                }
            }
            let client_net = IpNet::new(client, scope).map(|n| n.trunc()).ok();
            if client_net.is_some_and(|cn| cn.contains(net) || net.contains(&cn.network())) {
                scope = scope.max(common_prefix(client, net.network()) + 1);
            }
        }
        scope
    }
}

fn same_family(net: &IpNet, ip: IpAddr) -> bool {
    matches!((net, ip), (IpNet::V4(_), IpAddr::V4(_)) | (IpNet::V6(_), IpAddr::V6(_)))
}

/// Length of the common leading bits of two addresses of one family.
fn common_prefix(a: IpAddr, b: IpAddr) -> u8 {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) ^ u32::from(b)).leading_zeros() as u8,
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a) ^ u128::from(b)).leading_zeros() as u8,
        _ => 0,
    }
}

impl<T> Matcher<T> {
    /// Scope for a client no rule matched: the database network (and ASN
    /// network when ASN rules exist), kept clear of CIDR rules.
    pub fn find_scope_of_miss(&self, client: IpAddr, loc: Option<&Location>, merged: Option<u8>) -> u8 {
        let geo_prefix = loc.map_or(0, |l| l.network.prefix_len());
        let asn_prefix = loc.and_then(|l| l.asn_network).map_or(0, |n| n.prefix_len());
        let base = if self.uses_asn() { geo_prefix.max(asn_prefix) } else { merged.unwrap_or(geo_prefix) };
        self.narrow(client, base, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(net: &str, cc: &str, cont: &str) -> Location {
        Location {
            network: net.parse().unwrap(),
            country: Some(cc.into()),
            continent: Some(cont.into()),
            ..Default::default()
        }
    }

    fn matcher() -> Matcher<&'static str> {
        let mut m = Matcher::default();
        m.cidr.push(("10.0.0.0/8".parse().unwrap(), "ten"));
        m.cidr.push(("10.1.2.0/24".parse().unwrap(), "ten-one-two"));
        m.country.insert("DE".into(), "de");
        m.continent.insert("EU".into(), "eu");
        m.default = Some("other");
        m.sort_cidrs();
        m
    }

    #[test]
    fn most_specific_rule_wins() {
        let m = matcher();
        let de = loc("198.51.100.0/24", "DE", "EU");
        let fr = loc("198.51.100.0/24", "FR", "EU");
        assert_eq!(*m.find("198.51.100.7".parse().unwrap(), Some(&de)).unwrap().value, "de");
        assert_eq!(*m.find("198.51.100.7".parse().unwrap(), Some(&fr)).unwrap().value, "eu");
        assert_eq!(*m.find("10.1.2.3".parse().unwrap(), Some(&de)).unwrap().value, "ten-one-two");
        assert_eq!(*m.find("10.9.9.9".parse().unwrap(), Some(&de)).unwrap().value, "ten");
        assert_eq!(*m.find("192.0.2.1".parse().unwrap(), None).unwrap().value, "other");
    }

    #[test]
    fn scope_follows_the_deciding_network_and_avoids_other_rules() {
        let m = matcher();
        let de = loc("198.51.100.0/24", "DE", "EU");
        assert_eq!(m.find("198.51.100.7".parse().unwrap(), Some(&de)).unwrap().scope, 24);
        assert_eq!(m.find("10.1.2.3".parse().unwrap(), None).unwrap().scope, 24);
        // 10.1.3.1 matches 10/8, but 10.1.2.0/24 is close by: the scope must exclude it.
        let s = m.find("10.1.3.1".parse().unwrap(), None).unwrap().scope;
        let net = IpNet::new("10.1.3.1".parse().unwrap(), s).unwrap().trunc();
        assert!(!net.contains(&"10.1.2.0".parse::<IpAddr>().unwrap()), "scope {s}");
        assert_eq!(s, 24);
        // Far away inside 10/8: the /8 holds except for the half with 10.1.2.0/24.
        let s = m.find("10.200.0.1".parse().unwrap(), None).unwrap().scope;
        assert_eq!(s, 9);
    }
}
