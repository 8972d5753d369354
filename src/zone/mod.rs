//! Authoritative data and the lookup rules of RFC 1034 §4.3.2 (with RFC 4592
//! wildcards, CNAME chains and referrals at delegation points).

mod build;
mod lookup;
mod master;
mod master_lines;
mod names;
mod parallel;
mod rdata;
mod services;
mod shared_regions;
mod signed;

pub use build::{build_zone, load_zones};
pub use lookup::{lookup, Denial, Lookup, ServiceAnswer};
pub use names::{wire_name, Held, Location, NameFacts, NameIndex, WireName};
pub use parallel::in_parallel;
pub use rdata::Rdatas;
pub use services::{Expect, Labels};

/// Meridian's own plain master-file reader, for `bench/parsers` alone (not
/// an API): how many records it reads from `text`, or `None` when the text
/// is not plain enough for it (hickory's parser then reads it).
#[doc(hidden)]
pub fn read_plain_count(text: &str, origin: &hickory_proto::rr::Name, ttl: u32) -> Option<usize> {
    master::read_plain(text, origin, ttl).map(|records| records.count())
}

use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::path::PathBuf;
use std::sync::Arc;

use crate::policy::{Region, Service};

/// All records of one type at one owner name: only their RDATA is kept (the
/// owner is the node's name, the TTL the set's), compactly for the common
/// types, so a big zone does not hold a whole hickory `Record` per record
/// (issue 26).
#[derive(Debug, Clone)]
pub struct RRset {
    pub rtype: RecordType,
    pub ttl: u32,
    pub rdata: Rdatas,
}

impl RRset {
    /// The set as records owned by `owner` (the name as asked, or the name a
    /// wildcard was expanded for).
    pub fn records(&self, owner: &Name) -> Vec<Record> {
        self.rdata.iter().map(|d| Record::from_rdata(owner.clone(), self.ttl, d.clone())).collect()
    }
}

/// One owner name. An empty node is an empty non-terminal (RFC 8020): it
/// exists, so names below it are not NXDOMAIN at its level.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub rrsets: Vec<RRset>,
    /// A GSLB service answering A/AAAA at this name.
    pub service: Option<Arc<Service>>,
}

impl Node {
    pub fn get(&self, rtype: RecordType) -> Option<&RRset> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }
}

/// Every owner name of a zone → its node. Fx, not SipHash: hickory hashes a
/// name a byte at a time, and the names are the operator's, not an
/// attacker's (SipHash of the keys was 6 % of a big zone's load).
pub type Nodes = rustc_hash::FxHashMap<Name, Node>;

/// One zone: apex, SOA and every owner name in it (lowercase keys).
#[derive(Debug, Clone)]
pub struct Zone {
    pub origin: Name,
    pub soa: Record,
    pub nodes: Nodes,
    /// Where each name leads (built from `nodes`; read by lookup and the
    /// fast path's negative answers).
    pub names: Arc<NameIndex>,
    /// Datacenters this zone's services choose among.
    pub regions: Vec<Region>,
    /// `[[expect]]` cases for `meridian check`.
    pub expects: Vec<Expect>,
    /// The file it came from, for logs and `check`.
    pub file: PathBuf,
    /// What `check` prints and `serve` logs as warnings (`FILE:LINE:COL: warning: …`).
    pub warnings: Vec<String>,
    /// Its keys and signature cache when the zone is signed (`[dnssec]`).
    pub signer: Option<Arc<crate::dnssec::Signer>>,
}

impl Zone {
    /// TTL of the SOA in negative answers: min(SOA TTL, SOA MINIMUM) (RFC 2308 §5).
    pub fn negative_soa(&self) -> Record {
        let mut soa = self.soa.clone();
        if let RData::SOA(s) = &soa.data {
            soa.ttl = soa.ttl.min(s.minimum);
        }
        soa
    }

    /// Every service with its owner name.
    pub fn services(&self) -> impl Iterator<Item = (&Name, &Arc<Service>)> {
        self.nodes.iter().filter_map(|(n, node)| node.service.as_ref().map(|s| (n, s)))
    }

    pub fn record_count(&self) -> usize {
        self.nodes.values().flat_map(|n| &n.rrsets).map(|s| s.rdata.len()).sum()
    }
}

/// Every zone served, found by longest matching origin.
#[derive(Debug, Clone, Default)]
pub struct Zones {
    pub zones: Vec<Zone>,
    /// Metric label names by service and region id (`Labels`).
    pub labels: Arc<[Arc<str>]>,
}

impl Zones {
    /// Every region once: region names name datacenters across zones, and the
    /// first definition (in file order) is the one health and status use.
    pub fn distinct_regions(&self) -> impl Iterator<Item = &Region> {
        let mut seen: Vec<&str> = Vec::new();
        self.zones.iter().flat_map(|z| &z.regions).filter(move |r| {
            let first = !seen.contains(&r.name.as_str());
            if first {
                seen.push(&r.name);
            }
            first
        })
    }

    /// The zone with the longest origin that contains `name`.
    pub fn find(&self, name: &Name) -> Option<&Zone> {
        self.zones.iter().filter(|z| z.origin.zone_of(name)).max_by_key(|z| z.origin.num_labels())
    }
}

impl Zone {
    /// The zone as an RFC 1035 master file (SOA first), for peers such as Knot
    /// in differential tests and for operators who want to see what was loaded.
    pub fn to_master_file(&self) -> String {
        let mut out = format!("$ORIGIN {}\n{}\n", self.origin, self.soa);
        let mut names: Vec<&Name> = self.nodes.keys().collect();
        names.sort();
        for name in names {
            for set in &self.nodes[name].rrsets {
                if set.rtype == RecordType::SOA {
                    continue;
                }
                for r in &set.records(name) {
                    match &r.data {
                        // hickory's TXT Display drops the quotes; write character-strings.
                        RData::TXT(txt) => {
                            let strings: Vec<String> = txt.txt_data.iter().map(|s| quote_character_string(s)).collect();
                            out.push_str(&format!("{} {} IN TXT {}\n", r.name, r.ttl, strings.join(" ")));
                        }
                        _ => out.push_str(&format!("{r}\n")),
                    }
                }
            }
        }
        out
    }
}

/// RFC 1035 §5.1 quoted character-string.
fn quote_character_string(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(b as char);
            }
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\{b:03}")),
        }
    }
    s.push('"');
    s
}
