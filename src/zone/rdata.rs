//! The RDATA of one RRset, stored by type: an address in its 4 or 16 bytes
//! and a TXT record as its strings, where hickory's `RData` (any type) takes
//! 184 bytes per record. Big zones are mostly these types (issue 26).

use hickory_proto::rr::rdata::{A, AAAA, TXT};
use hickory_proto::rr::RData;

/// Every record of a set has the set's type, so one variant holds them all.
#[derive(Debug, Clone)]
pub enum Rdatas {
    A(Vec<A>),
    AAAA(Vec<AAAA>),
    TXT(Vec<TXT>),
    Other(Vec<RData>),
}

impl Rdatas {
    /// A set of one record.
    pub fn one(data: RData) -> Rdatas {
        match data {
            RData::A(a) => Rdatas::A(vec![a]),
            RData::AAAA(a) => Rdatas::AAAA(vec![a]),
            RData::TXT(t) => Rdatas::TXT(vec![t]),
            other => Rdatas::Other(vec![other]),
        }
    }

    /// A set of these records, in this order.
    pub fn from_all(all: Vec<RData>) -> Rdatas {
        let mut it = all.into_iter();
        let Some(first) = it.next() else { return Rdatas::Other(Vec::new()) };
        let mut set = Rdatas::one(first);
        it.for_each(|d| set.push(d));
        set
    }

    pub fn len(&self) -> usize {
        match self {
            Rdatas::A(v) => v.len(),
            Rdatas::AAAA(v) => v.len(),
            Rdatas::TXT(v) => v.len(),
            Rdatas::Other(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record `i` as hickory's `RData`.
    pub fn get(&self, i: usize) -> Option<RData> {
        match self {
            Rdatas::A(v) => v.get(i).map(|a| RData::A(*a)),
            Rdatas::AAAA(v) => v.get(i).map(|a| RData::AAAA(*a)),
            Rdatas::TXT(v) => v.get(i).map(|t| RData::TXT(t.clone())),
            Rdatas::Other(v) => v.get(i).cloned(),
        }
    }

    /// Every record, in order.
    pub fn iter(&self) -> impl Iterator<Item = RData> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    pub fn contains(&self, data: &RData) -> bool {
        match (self, data) {
            (Rdatas::A(v), RData::A(a)) => v.contains(a),
            (Rdatas::AAAA(v), RData::AAAA(a)) => v.contains(a),
            (Rdatas::TXT(v), RData::TXT(t)) => v.contains(t),
            (Rdatas::Other(v), d) => v.contains(d),
            _ => false,
        }
    }

    /// Add a record at the end (of the set's type; another type makes the
    /// set a general one rather than lose it).
    pub fn push(&mut self, data: RData) {
        match (&mut *self, data) {
            (Rdatas::A(v), RData::A(a)) => v.push(a),
            (Rdatas::AAAA(v), RData::AAAA(a)) => v.push(a),
            (Rdatas::TXT(v), RData::TXT(t)) => v.push(t),
            (Rdatas::Other(v), d) => v.push(d),
            (_, d) => {
                let mut all: Vec<RData> = self.iter().collect();
                all.push(d);
                *self = Rdatas::Other(all);
            }
        }
    }

    /// Give back the room a growing set left.
    pub fn shrink_to_fit(&mut self) {
        match self {
            Rdatas::A(v) => v.shrink_to_fit(),
            Rdatas::AAAA(v) => v.shrink_to_fit(),
            Rdatas::TXT(v) => v.shrink_to_fit(),
            Rdatas::Other(v) => v.shrink_to_fit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::CNAME;
    use hickory_proto::rr::Name;

    /// What goes in comes out, in order, whatever the type; a record of
    /// another type is kept, not dropped.
    #[test]
    fn records_round_trip_in_order() {
        let a = |s: &str| RData::A(A(s.parse().unwrap()));
        let sets = [
            vec![a("192.0.2.1"), a("192.0.2.2")],
            vec![RData::AAAA(AAAA("2001:db8::1".parse().unwrap()))],
            vec![RData::TXT(TXT::new(vec!["x".into(), "".into()])), RData::TXT(TXT::new(vec!["y".into()]))],
            vec![RData::CNAME(CNAME(Name::from_ascii("t.test.").unwrap()))],
            vec![a("192.0.2.9"), RData::CNAME(CNAME(Name::from_ascii("t.test.").unwrap()))],
        ];
        for all in sets {
            let set = Rdatas::from_all(all.clone());
            assert_eq!(set.iter().collect::<Vec<_>>(), all);
            assert_eq!(set.len(), all.len());
            assert!(all.iter().all(|d| set.contains(d)));
            assert!(!set.contains(&a("198.51.100.1")));
        }
        assert!(matches!(Rdatas::one(a("192.0.2.1")), Rdatas::A(_)));
    }
}
