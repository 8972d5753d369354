//! One index per zone of every name that exists in it (empty non-terminals
//! included) with the facts RFC 1034 §4.3.2 and RFC 4592 lookup needs, keyed
//! by lowercase wire name. `zone::lookup` and the fast path's negative
//! answers both locate a name here, so they cannot disagree on it.

use hickory_proto::rr::{Name, RecordType};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

/// What lookup needs to know of one existing name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NameFacts {
    /// NS here, below the apex: a zone cut.
    pub cut: bool,
    /// This name or an ancestor below the apex is a cut.
    pub under_cut: bool,
    /// `*.name` exists: missing names below it are synthesised from it.
    pub wildcard_child: bool,
    /// A GSLB service answers A/AAAA here.
    pub service: bool,
    /// Types held, in the node's order (ANY answers with the first). Inline:
    /// a heap block per name cost more than the types (issue 26).
    pub types: SmallVec<[RecordType; 4]>,
}

/// What a name's own data answers for one type (RFC 1034 §4.3.2 step 3.a;
/// RFC 8482 §4.1 for ANY: one RRset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Service,
    /// ANY: the first RRset.
    FirstRRset,
    Cname,
    Data,
    NoData,
}

impl NameFacts {
    pub fn held(&self, qtype: RecordType) -> Held {
        if self.service
            && (matches!(qtype, RecordType::A | RecordType::AAAA) || qtype == RecordType::ANY && self.types.is_empty())
        {
            return Held::Service;
        }
        if qtype == RecordType::ANY {
            return if self.types.is_empty() { Held::NoData } else { Held::FirstRRset };
        }
        if qtype != RecordType::CNAME && self.types.contains(&RecordType::CNAME) {
            return Held::Cname;
        }
        if self.types.contains(&qtype) {
            Held::Data
        } else {
            Held::NoData
        }
    }
}

/// Where a name inside the zone leads. An ancestor is given as the index of
/// its first label in the name (`WireName::suffix`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Location<'a> {
    /// A delegation at or above the name: the cut is this suffix.
    Referral(usize),
    /// The name exists.
    Exact(&'a NameFacts),
    /// The name does not exist; `*.<closest encloser>` does (RFC 4592). The
    /// closest encloser is this suffix.
    Wildcard(usize),
    NxDomain,
}

/// A wire name split at its labels (at most 127 labels fit in 255 bytes).
#[derive(Debug, Clone)]
pub struct WireName<'a> {
    wire: &'a [u8],
    /// Start of each label, the root's last.
    starts: [u8; 128],
    /// Labels, root excluded.
    labels: usize,
}

impl<'a> WireName<'a> {
    /// `None` for anything that is not an uncompressed name of at most 255 bytes.
    pub fn parse(wire: &'a [u8]) -> Option<WireName<'a>> {
        if wire.len() > 255 {
            return None;
        }
        let mut starts = [0u8; 128];
        let (mut n, mut at) = (0, 0);
        loop {
            *starts.get_mut(n)? = at as u8;
            match *wire.get(at)? as usize {
                0 => break,
                len @ 1..=63 => at += 1 + len,
                _ => return None,
            }
            n += 1;
        }
        (at + 1 == wire.len()).then_some(WireName { wire, starts, labels: n })
    }

    /// Labels, root excluded.
    pub fn labels(&self) -> usize {
        self.labels
    }

    /// Where label `k` starts (`labels()` is the root).
    pub fn start(&self, k: usize) -> usize {
        usize::from(self.starts[k])
    }

    /// The name from label `k` on.
    pub fn suffix(&self, k: usize) -> &'a [u8] {
        &self.wire[self.start(k)..]
    }

    /// Label `k`, length byte included.
    pub fn label(&self, k: usize) -> &'a [u8] {
        &self.wire[self.start(k)..self.start(k + 1)]
    }
}

/// Every name of one zone (lowercase wire) → its facts.
#[derive(Debug, Clone, Default)]
pub struct NameIndex {
    names: FxHashMap<Box<[u8]>, NameFacts>,
    /// Length of the apex's wire form.
    apex_len: usize,
}

impl NameIndex {
    /// Index `nodes` (every name of the zone, empty non-terminals included).
    pub fn build(origin: &Name, nodes: &super::Nodes) -> NameIndex {
        let apex = wire_name(origin);
        let mut names: FxHashMap<Box<[u8]>, NameFacts> =
            FxHashMap::with_capacity_and_hasher(nodes.len(), Default::default());
        // Each name's wire form and facts made on every core (the wire form
        // is most of the work), inserted here.
        let all: Vec<(&Name, &super::Node)> = nodes.iter().collect();
        let facts = |batch: &[(&Name, &super::Node)], out: &mut Vec<(Box<[u8]>, NameFacts)>| {
            for (name, node) in batch {
                let wire = wire_name(name);
                let facts = NameFacts {
                    cut: wire.len() > apex.len() && node.get(RecordType::NS).is_some(),
                    service: node.service.is_some(),
                    types: node.rrsets.iter().map(|s| s.rtype).collect(),
                    ..NameFacts::default()
                };
                out.push((wire.into_boxed_slice(), facts));
            }
        };
        super::in_parallel(&all, facts, &mut |batch| names.extend(batch));
        // Only a name under a cut or a wildcard has more to set: without
        // cuts, the wildcards alone (a copy of every key was a big zone's cost).
        let any_cut = names.values().any(|f| f.cut);
        let keys: Vec<Box<[u8]>> = names.keys().filter(|k| any_cut || k.starts_with(b"\x01*")).cloned().collect();
        for key in keys {
            let Some(w) = WireName::parse(&key) else { continue };
            let below_apex = w.labels() - labels_of(&apex);
            let under_cut = (0..below_apex).any(|k| names.get(w.suffix(k)).is_some_and(|f| f.cut));
            let wild = w.labels() > 0 && w.label(0) == b"\x01*";
            let parent = w.suffix(1.min(w.labels())).to_vec();
            if let Some(f) = names.get_mut(&key) {
                f.under_cut = under_cut;
            }
            if wild && key.len() > apex.len() {
                if let Some(p) = names.get_mut(&parent[..]) {
                    p.wildcard_child = true;
                }
            }
        }
        NameIndex { names, apex_len: apex.len() }
    }

    /// The facts of an existing name (lowercase wire).
    pub fn get(&self, wire: &[u8]) -> Option<&NameFacts> {
        self.names.get(wire)
    }

    /// RFC 1034 §4.3.2 step 3 for a lowercase name inside this zone: a
    /// delegation at or above it wins (except DS at the cut itself, which
    /// belongs to the parent side), then the name itself, then the wildcard
    /// child of its closest encloser (RFC 4592). `None`: not inside the zone.
    pub fn locate(&self, name: &WireName<'_>, qtype: RecordType) -> Option<Location<'_>> {
        let below = (0..=name.labels()).find(|&k| name.suffix(k).len() == self.apex_len)?;
        // The closest encloser: the longest suffix that exists (the apex does).
        let (j, facts) = (0..=below).find_map(|j| self.names.get(name.suffix(j)).map(|f| (j, f)))?;
        if facts.under_cut {
            // The highest cut wins; every ancestor of an existing name exists.
            for k in (j..below).rev() {
                let cut = self.names.get(name.suffix(k)).is_some_and(|f| f.cut);
                if cut && !(k == 0 && qtype == RecordType::DS) {
                    return Some(Location::Referral(k));
                }
            }
        }
        Some(match j {
            0 => Location::Exact(facts),
            _ if facts.wildcard_child => Location::Wildcard(j),
            _ => Location::NxDomain,
        })
    }
}

/// Labels of a wire name, root excluded.
fn labels_of(wire: &[u8]) -> usize {
    WireName::parse(wire).map_or(0, |w| w.labels())
}

/// Lowercase wire form of a name (every label counted, `*` included).
pub fn wire_name(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    // Length bytes (at most 63) are not letters: one pass over the whole,
    // not a byte at a time as it is copied (a big zone's load made the wire
    // form of every name three times).
    out.make_ascii_lowercase();
    out
}
