//! Per-worker query counts. Each answer worker counts into its own shard
//! (`QueryCounts`, owned by the worker: no thread-local), with plain loads and
//! stores of atomics only that worker writes: no lock, no read-modify-write and
//! no shared cache line per query. A scrape sums all shards (`super::merged`).
//! Shards of workers gone stay, so no count ever goes backwards.

use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{LabelTable, QueryObservation, DURATION_BUCKETS, RCODE_LABELS};

/// Query types below this code are counted in a plain array when the answer
/// names no service (the usual static answer): no hashing at all.
pub(super) const PLAIN_QTYPES: usize = 128;

/// Upper bounds of the duration buckets in nanoseconds (the last, +Inf, is implicit).
const BUCKET_NANOS: [u64; DURATION_BUCKETS.len()] = {
    let mut out = [0u64; DURATION_BUCKETS.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = (DURATION_BUCKETS[i] * 1e9 + 0.5) as u64;
        i += 1;
    }
    out
};

/// One answered query's labels when they are not plain, as ids of the label
/// table the worker follows. `rcode` and `qtype` are compared by address: the
/// same mnemonic at two addresses only makes two entries the scrape adds up.
#[derive(Clone, Copy)]
pub(super) struct Key {
    pub rcode: &'static str,
    pub qtype: &'static str,
    pub service: Option<u32>,
    pub region: Option<u32>,
    pub fail_open: bool,
}

impl Key {
    fn hash(&self) -> u64 {
        let mut h = FxHasher::default();
        let codes = self.rcode.as_ptr() as usize ^ (self.qtype.as_ptr() as usize).rotate_left(32);
        h.write_usize(codes ^ usize::from(self.fail_open));
        h.write_u64(u64::from(self.service.unwrap_or(u32::MAX)) << 32 | u64::from(self.region.unwrap_or(u32::MAX)));
        h.finish()
    }

    fn same(&self, other: &Key) -> bool {
        std::ptr::eq(self.rcode, other.rcode)
            && std::ptr::eq(self.qtype, other.qtype)
            && self.fail_open == other.fail_open
            && self.service == other.service
            && self.region == other.region
    }
}

/// One label set's count in one shard, by name (ids change meaning with the
/// label table; names do not).
pub(super) struct Count {
    pub rcode: &'static str,
    pub qtype: &'static str,
    pub fail_open: bool,
    pub service: Arc<str>,
    pub region: Arc<str>,
    pub n: AtomicU64,
}

impl Count {
    fn named_like(&self, other: &Count) -> bool {
        std::ptr::eq(self.rcode, other.rcode)
            && std::ptr::eq(self.qtype, other.qtype)
            && self.fail_open == other.fail_open
            && self.service == other.service
            && self.region == other.region
    }
}

/// What one worker counted.
pub(super) struct Shard {
    /// Plain answers (`QueryCounts::plain`) by rcode index and query type code.
    plain: [[AtomicU64; PLAIN_QTYPES]; RCODE_LABELS.len()],
    /// The other answers' counts, appended by the owning worker on a label
    /// set's first sighting there; locked only then and by scrapes.
    counts: Mutex<Vec<Arc<Count>>>,
    /// Answers per duration bucket, the last one +Inf.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            plain: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            counts: Mutex::default(),
            buckets: Default::default(),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl Shard {
    /// The nonzero plain counts: (rcode index, query type code, count).
    pub fn plain_counts(&self) -> impl Iterator<Item = (usize, u16, u64)> + '_ {
        self.plain.iter().enumerate().flat_map(|(r, row)| {
            row.iter().enumerate().map(move |(t, n)| (r, t as u16, n.load(Relaxed))).filter(|c| c.2 > 0)
        })
    }

    pub fn counts(&self) -> MutexGuard<'_, Vec<Arc<Count>>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers per bucket (not cumulative), and their total time in nanoseconds.
    pub fn durations(&self) -> ([u64; DURATION_BUCKETS.len() + 1], u64) {
        (self.buckets.each_ref().map(|b| b.load(Relaxed)), self.sum_nanos.load(Relaxed))
    }
}

/// Add to a counter only its worker writes: a load and a store, no locked
/// instruction. Readers see every value it passes through in order.
fn bump(a: &AtomicU64, by: u64) {
    a.store(a.load(Relaxed).wrapping_add(by), Relaxed);
}

/// A label set's count in one `QueryCounts`, for a caller that counts the
/// same label set again and again (a cached GSLB decision): counting is then
/// one load and one store, no lookup. Valid for the `QueryCounts` that made it
/// only (its counts are never removed, so it stays valid across label tables).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterId(u32);

/// One answer worker's shard of one `Metrics` and its index of label sets.
/// The only writer of its shard: `&mut self` for every count.
pub struct QueryCounts {
    shard: Arc<Shard>,
    /// The table the ids of `index` refer to (held, so its address is not reused).
    labels: LabelTable,
    /// Label set (ids of `labels`) → position in `counts`.
    index: HashTable<(Key, u32)>,
    /// This shard's counts in the order made (`CounterId` indexes it).
    counts: Vec<Arc<Count>>,
    /// The label table has changed at least once: a label set's first sighting
    /// looks for a count of the same names before making one.
    relabelled: bool,
}

impl std::fmt::Debug for QueryCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryCounts").field("label_sets", &self.counts.len()).finish_non_exhaustive()
    }
}

impl QueryCounts {
    pub(super) fn new(shard: Arc<Shard>) -> QueryCounts {
        QueryCounts {
            shard,
            labels: LabelTable::default(),
            index: HashTable::new(),
            counts: Vec::new(),
            relabelled: false,
        }
    }

    /// Ids are the snapshot's: a new table makes the index start over (the
    /// counts stay, found again by name).
    #[inline]
    fn follow(&mut self, labels: &LabelTable) {
        if !Arc::ptr_eq(&self.labels, labels) {
            self.relabel(labels);
        }
    }

    #[cold]
    fn relabel(&mut self, labels: &LabelTable) {
        self.labels = Arc::clone(labels);
        self.index.clear();
        self.relabelled |= !self.counts.is_empty();
    }

    /// Count each of `observed` (unless already `counted`), ids read in
    /// `labels`, and observe `n` answers that took `total_nanos` together,
    /// each at the mean: the UDP receiver times a whole batch with two clock
    /// reads (a read costs about as much as a static answer's own work); a
    /// batch of one is exact.
    #[inline]
    pub fn count_batch(&mut self, labels: &LabelTable, observed: &[QueryObservation], n: u64, total_nanos: u64) {
        for obs in observed {
            self.count(labels, obs);
        }
        if n > 0 {
            self.observe(n, total_nanos);
        }
    }

    #[inline]
    fn count(&mut self, labels: &LabelTable, obs: &QueryObservation) {
        if obs.counted {
            return;
        }
        let plain = obs.service.is_none() && obs.region.is_none() && !obs.fail_open;
        match (obs.rcode, obs.qtype.map(|t| usize::from(u16::from(t)))) {
            (None, _) => {}
            (Some(rcode), Some(t)) if plain && t < PLAIN_QTYPES => {
                bump(&self.shard.plain[super::rcode_index(rcode)][t], 1)
            }
            (Some(rcode), _) => self.count_named(labels, &super::named_key(rcode, obs)),
        }
    }

    /// Any other answer. Out of line: keeps the plain path's frame small.
    #[inline(never)]
    fn count_named(&mut self, labels: &LabelTable, key: &Key) {
        let i = self.entry(labels, key);
        bump(&self.counts[i].n, 1);
    }

    /// A counter of answers labelled like `obs` (ids in `labels`), for a
    /// caller that gives many answers with the same labels (a cached GSLB
    /// decision). `None` if `obs` sent nothing or names no service (those
    /// are counted plainly).
    pub fn counter(&mut self, labels: &LabelTable, obs: &QueryObservation) -> Option<CounterId> {
        let rcode = obs.rcode?;
        obs.service?;
        let i = self.entry(labels, &super::named_key(rcode, obs));
        Some(CounterId(u32::try_from(i).expect("fewer than 2^32 label sets")))
    }

    /// One more answer on `c`.
    #[inline]
    pub fn add_one(&self, c: CounterId) {
        bump(&self.counts[c.0 as usize].n, 1);
    }

    /// Whether `c` counts answers labelled like `obs`, ids in `labels` (for assertions).
    pub fn counts(&self, c: CounterId, labels: &LabelTable, obs: &QueryObservation) -> bool {
        let Some(rcode) = obs.rcode else { return false };
        let want = named(&super::named_key(rcode, obs), labels);
        self.counts.get(c.0 as usize).is_some_and(|have| have.named_like(&want))
    }

    /// The position in `counts` of `key`'s count, made (at zero) on its first sighting.
    fn entry(&mut self, labels: &LabelTable, key: &Key) -> usize {
        self.follow(labels);
        let hash = key.hash();
        let (shard, counts, relabelled) = (&self.shard, &mut self.counts, self.relabelled);
        let (_, i) = *self
            .index
            .entry(hash, |(k, _)| k.same(key), |(k, _)| k.hash())
            .or_insert_with(|| {
                let c = named(key, labels);
                let known = if relabelled { counts.iter().position(|have| have.named_like(&c)) } else { None };
                let i = known.unwrap_or_else(|| {
                    let c = Arc::new(c);
                    shard.counts().push(Arc::clone(&c));
                    counts.push(c);
                    counts.len() - 1
                });
                (*key, u32::try_from(i).expect("fewer than 2^32 label sets"))
            })
            .get();
        i as usize
    }

    /// `n` answers that took `total_nanos` together: each is put in the bucket of the mean.
    pub fn observe(&mut self, n: u64, total_nanos: u64) {
        let i = BUCKET_NANOS.partition_point(|&b| b < total_nanos / n);
        bump(&self.shard.buckets[i], n);
        bump(&self.shard.sum_nanos, total_nanos);
    }
}

/// A count of `key`'s labels, at zero (an id missing from `labels` reads as no name).
fn named(key: &Key, labels: &LabelTable) -> Count {
    let name = |id: Option<u32>| id.and_then(|i| labels.get(i as usize)).map_or_else(|| Arc::from(""), Arc::clone);
    Count {
        rcode: key.rcode,
        qtype: key.qtype,
        fail_open: key.fail_open,
        service: name(key.service),
        region: name(key.region),
        n: AtomicU64::new(0),
    }
}

/// Every worker's shard of one `Metrics`.
#[derive(Default)]
pub(super) struct Shards {
    all: Mutex<Vec<Arc<Shard>>>,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards").finish_non_exhaustive()
    }
}

impl Shards {
    /// A new shard, registered for scrapes, and its writer.
    pub fn add(&self) -> QueryCounts {
        let shard = Arc::new(Shard::default());
        self.all.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::clone(&shard));
        QueryCounts::new(shard)
    }

    /// The shards so far.
    pub fn all(&self) -> Vec<Arc<Shard>> {
        self.all.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
