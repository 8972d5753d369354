//! A small search tree compiled into multibit tables, for the decision
//! cache's key.
//!
//! A GSLB decision depends only on which record a client's address ends at
//! and on the lengths of the networks around it (`Service::decided_by_networks`).
//! For a small database (the demo database is 3.5 KB; a private map of a
//! few hundred networks is as small), that pair can be found from a few table
//! reads that stay in cache, cheaper than one missed line of a table keyed
//! by exact clients. So at open such a tree is expanded into tables indexed
//! by 16 bits (the first level of each family) then 8 bits at a time, like a
//! router's FIB: an IPv4 /16 network is one read, an IPv6 /48 five. The
//! binary walk maxminddb does takes one dependent read per bit (48 for that
//! /48), which measured slower than the front table it was meant to replace.
//! Bigger databases (a GeoIP2 City tree is ~100 MB) keep the front table of
//! exact clients (`answer::decisions`).
//!
//! Node layouts and the IPv4 subtree follow the MaxMind DB spec, as
//! maxminddb's own lookup does; a test checks the two agree on every kind of
//! tree (24-, 28- and 32-bit records, IPv4 and IPv6 trees).

use maxminddb::Metadata;
use rustc_hash::FxHashMap;
use std::net::IpAddr;

/// Trees larger than this are not compiled: their tables would not stay in cache.
pub const SMALL_TREE_BYTES: usize = 64 * 1024;

/// Table entries at most (4 bytes each): beyond, the tree is treated as big.
const MAX_ENTRIES: usize = 1 << 22;

/// Bits indexed by a family's first table, and by every table under it.
/// 16 + 8k reaches both 32 and 128 exactly.
const ROOT_BITS: u32 = 16;
const NEXT_BITS: u32 = 8;

/// An entry with this bit is a leaf (an index into `leaves`); without it,
/// the start of the next table in `entries`.
const LEAF: u32 = 1 << 31;

/// Where an address ends in a tree: the terminal record (a data pointer, or
/// the node count for "no data") and the network's length in the address's
/// own family (as `GeoDb::networks` reports it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Leaf {
    pub record: u32,
    pub prefix: u8,
}

pub struct Tree {
    entries: Vec<u32>,
    leaves: Vec<Leaf>,
    /// The entry an IPv4 address starts from, and an IPv6 one (`None`: an
    /// IPv4 tree, where nothing is known about IPv6 addresses).
    v4: u32,
    v6: Option<u32>,
    /// The class of IPv6 addresses in an IPv4 tree.
    v6_unknown: u32,
}

/// Classes per tree at most (a tree with more is treated as big): so that
/// the classes of two databases pack into one 30-bit number (`GeoDb::class`).
/// A 64 KiB tree has about 11,000 leaves at most, so this never binds in practice.
pub const CLASSES: u32 = 1 << 15;

/// The binary tree being compiled.
struct Source<'a> {
    bytes: &'a [u8],
    node_count: u32,
    record_size: u16,
}

impl Source<'_> {
    fn read(&self, node: u32, bit: u32) -> u32 {
        let b = self.bytes;
        let (node, bit) = (node as usize, bit as usize);
        let word = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        match self.record_size {
            // Six bytes: left in 0..3, right in 3..6.
            24 => word(node * 6 + bit * 2) >> ((1 - bit) * 8) & 0x00ff_ffff,
            // Seven bytes: left in 0..3 plus the high nibble of byte 3, right
            // in the low nibble of byte 3 plus 4..7.
            28 => {
                let w = word(node * 7 + bit * 3);
                if bit == 0 {
                    (w >> 8) | ((w << 20) & 0x0f00_0000)
                } else {
                    w & 0x0fff_ffff
                }
            }
            _ => word(node * 8 + bit * 4),
        }
    }
}

/// A table being filled (build time only; the query path reads `entries`).
#[derive(Clone, Copy)]
struct Table {
    /// Its first entry in `entries`.
    start: usize,
    /// Bits it indexes.
    width: u32,
    /// Bits of the address above it.
    depth: u32,
    /// The address's length in bits (32 or 128).
    len: u32,
}

struct Builder<'a> {
    src: Source<'a>,
    tree: Tree,
    ids: FxHashMap<Leaf, u32>,
}

impl Tree {
    /// The tables for the database in `db`, if its tree is small. `None`
    /// also when the metadata does not describe a tree inside `db` (the
    /// reader's validation refuses such a database anyway).
    pub fn new(db: &[u8], m: &Metadata) -> Option<Tree> {
        let len = usize::try_from(m.node_count).ok()?.checked_mul(usize::from(m.record_size) / 4)?;
        if len > SMALL_TREE_BYTES || len > db.len() || !matches!(m.record_size, 24 | 28 | 32) {
            return None;
        }
        let src = Source { bytes: &db[..len], node_count: m.node_count, record_size: m.record_size };
        let tree = Tree { entries: Vec::new(), leaves: Vec::new(), v4: 0, v6: None, v6_unknown: 0 };
        let mut b = Builder { src, tree, ids: FxHashMap::default() };
        let v4_start = if m.ip_version == 6 {
            b.tree.v6 = Some(b.entry(0, 0, 128)?);
            // IPv4 addresses start 96 zero bits down (the spec's IPv4 subtree).
            let mut node = 0;
            for _ in 0..96 {
                if node >= b.src.node_count {
                    break;
                }
                node = b.src.read(node, 0);
            }
            node
        } else {
            0
        };
        b.tree.v4 = b.entry(v4_start, 0, 32)?;
        b.tree.v6_unknown = b.leaf(m.node_count, 0) & !LEAF;
        if b.tree.leaves.len() > CLASSES as usize {
            return None;
        }
        b.tree.entries.shrink_to_fit();
        Some(b.tree)
    }

    /// Where `ip` ends (the query path needs only `class`).
    #[cfg(test)]
    pub fn leaf(&self, ip: IpAddr) -> Leaf {
        self.leaves[self.class(ip) as usize]
    }

    /// Where `ip` ends, as a number below `CLASSES`: equal for two addresses
    /// exactly when their leaves are. A few table reads.
    #[inline]
    pub fn class(&self, ip: IpAddr) -> u32 {
        // The address left-aligned in 128 bits, and where it starts.
        let (bits, mut e) = match (ip, self.v6) {
            (IpAddr::V4(a), _) => (u128::from(a.to_bits()) << 96, self.v4),
            (IpAddr::V6(a), Some(v6)) => (a.to_bits(), v6),
            (IpAddr::V6(_), None) => return self.v6_unknown,
        };
        let (mut used, mut width) = (0, ROOT_BITS);
        while e & LEAF == 0 {
            // Tables end exactly at the family's last bit, so used + width <= 128.
            let index = (bits >> (128 - used - width)) as usize & ((1 << width) - 1);
            e = self.entries[e as usize + index];
            used += width;
            width = NEXT_BITS;
        }
        e & !LEAF
    }
}

impl Builder<'_> {
    /// The entry for tree node `node` at `depth` bits into an address of
    /// `len` bits: a leaf, or a new table (with everything under it).
    fn entry(&mut self, node: u32, depth: u32, len: u32) -> Option<u32> {
        if node >= self.src.node_count {
            return Some(self.leaf(node, depth));
        }
        if depth == len {
            // Bits ran out on an inner node: the reader calls that "no data".
            return Some(self.leaf(self.src.node_count, len));
        }
        let width = if depth == 0 { ROOT_BITS } else { NEXT_BITS };
        let start = self.tree.entries.len();
        if start + (1 << width) > MAX_ENTRIES {
            return None;
        }
        self.tree.entries.resize(start + (1 << width), 0);
        self.fill(Table { start, width, depth, len }, node, 0, 0)?;
        Some(start as u32)
    }

    /// Fill the entries of table `t` under `node`, which is `k` bits below
    /// the table's top and reached by the `k` bits `path`.
    fn fill(&mut self, t: Table, node: u32, k: u32, path: usize) -> Option<()> {
        if node >= self.src.node_count {
            // A leaf above the table's last bit covers a run of entries.
            let e = self.leaf(node, t.depth + k);
            let run = 1 << (t.width - k);
            self.tree.entries[t.start + path * run..t.start + (path + 1) * run].fill(e);
            return Some(());
        }
        if k == t.width {
            let e = self.entry(node, t.depth + t.width, t.len)?;
            self.tree.entries[t.start + path] = e;
            return Some(());
        }
        for bit in 0..2 {
            let child = self.src.read(node, bit);
            self.fill(t, child, k + 1, path * 2 + bit as usize)?;
        }
        Some(())
    }

    /// The leaf entry for terminal record `record` at `prefix` bits.
    fn leaf(&mut self, record: u32, prefix: u32) -> u32 {
        let leaf = Leaf { record, prefix: prefix as u8 };
        let next = self.tree.leaves.len() as u32;
        let id = *self.ids.entry(leaf).or_insert(next);
        if id == next {
            self.tree.leaves.push(leaf);
        }
        LEAF | id
    }
}
