//! Per-thread query counts. Each answering thread counts into its own shard,
//! found through a thread-local, with plain loads and stores of atomics only
//! that thread writes: no lock, no read-modify-write and no shared cache line
//! per query. A scrape sums all shards (`super::merged`). Shards of exited
//! threads stay, so no count ever goes backwards.

use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::cell::RefCell;
use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Label, DURATION_BUCKETS, RCODE_LABELS};

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

/// One answered query's labels when they are not plain (see `Shards::plain`).
/// `rcode` and `qtype` are compared by address: the same mnemonic at two
/// addresses only makes two entries the scrape adds up.
#[derive(Clone, Copy)]
pub(super) struct Key {
    pub rcode: &'static str,
    pub qtype: &'static str,
    pub service: Option<Label>,
    pub region: Option<Label>,
    pub fail_open: bool,
}

impl Key {
    fn hash(&self) -> u64 {
        let mut h = FxHasher::default();
        let codes = self.rcode.as_ptr() as usize ^ (self.qtype.as_ptr() as usize).rotate_left(32);
        h.write_usize(codes ^ usize::from(self.fail_open));
        h.write_u64(u64::from(label_id(self.service)) << 32 | u64::from(label_id(self.region)));
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

fn label_id(l: Option<Label>) -> u32 {
    l.map_or(u32::MAX, Label::id)
}

/// One label set's count in one shard; its names are copied once, when the
/// thread first counts that label set.
pub(super) struct Count {
    pub key: Key,
    pub service: Arc<str>,
    pub region: Arc<str>,
    pub n: AtomicU64,
}

/// What one thread counted.
pub(super) struct Shard {
    /// Plain answers (`Shards::plain`) by rcode index and query type code.
    plain: [[AtomicU64; PLAIN_QTYPES]; RCODE_LABELS.len()],
    /// The other answers' counts, appended by the owning thread on a label
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

/// Add to a counter only this thread writes: a load and a store, no locked
/// instruction. Readers see every value it passes through in order.
fn bump(a: &AtomicU64, by: u64) {
    a.store(a.load(Relaxed).wrapping_add(by), Relaxed);
}

/// One label set's count in this thread's shard of one `Metrics`, held by a
/// caller that counts the same label set again and again (a cached GSLB
/// decision): counting is then one load and one store, no lookup. Not `Send`:
/// only the shard's own thread may write its counts.
pub struct LocalCounter {
    owner: u64,
    count: Arc<Count>,
    _this_thread: std::marker::PhantomData<*const ()>,
}

impl LocalCounter {
    #[inline]
    pub fn add_one(&self) {
        bump(&self.count.n, 1);
    }

    pub(super) fn is_for(&self, key: &Key) -> bool {
        self.count.key.same(key)
    }

    /// Whether it counts into `shards` (tests make several `Metrics`).
    #[inline]
    pub(super) fn counts_into(&self, shards: &Shards) -> bool {
        self.owner == shards.id
    }
}

/// This thread's shard of one `Metrics`, and its index of label sets.
pub(super) struct Local {
    owner: u64,
    shard: Arc<Shard>,
    index: HashTable<Arc<Count>>,
}

impl Local {
    /// An answer with no service, region or fail-open (the usual static
    /// answer): `rcode` indexes `RCODE_LABELS`, `qtype` is below `PLAIN_QTYPES`.
    #[inline]
    pub fn plain(&self, rcode: usize, qtype: usize) {
        bump(&self.shard.plain[rcode][qtype], 1);
    }

    /// Any other answer. Out of line: keeps the plain path's frame small.
    #[inline(never)]
    pub fn count(&mut self, key: &Key) {
        bump(&self.entry(key).n, 1);
    }

    /// The count of `key`, made (at zero) on its first sighting.
    fn entry(&mut self, key: &Key) -> &Arc<Count> {
        let hash = key.hash();
        let name = |l: Option<Label>| l.map_or_else(|| Arc::from(""), Label::name);
        let shard = &self.shard;
        self.index
            .entry(hash, |c| c.key.same(key), |c| c.key.hash())
            .or_insert_with(|| {
                let c = Count { key: *key, service: name(key.service), region: name(key.region), n: AtomicU64::new(0) };
                let c = Arc::new(c);
                shard.counts().push(Arc::clone(&c));
                c
            })
            .into_mut()
    }

    /// `n` answers that took `total_nanos` together: each is put in the bucket of the mean.
    pub fn observe(&self, n: u64, total_nanos: u64) {
        let i = BUCKET_NANOS.partition_point(|&b| b < total_nanos / n);
        bump(&self.shard.buckets[i], n);
        bump(&self.shard.sum_nanos, total_nanos);
    }
}

thread_local! {
    /// One entry per `Metrics` this thread has counted into (tests make several).
    static LOCAL: RefCell<Vec<Local>> = const { RefCell::new(Vec::new()) };
}

/// Every thread's shard of one `Metrics`.
pub(super) struct Shards {
    /// Tells this `Metrics`'s thread-local shards from another's.
    id: u64,
    all: Mutex<Vec<Arc<Shard>>>,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Shards {
    pub fn new() -> Shards {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Shards { id: NEXT_ID.fetch_add(1, Relaxed), all: Mutex::new(Vec::new()) }
    }

    /// A counter of `key` on this thread (`None` while the thread is exiting).
    pub fn counter(&self, key: &Key) -> Option<LocalCounter> {
        self.with_local(|l| LocalCounter {
            owner: self.id,
            count: Arc::clone(l.entry(key)),
            _this_thread: std::marker::PhantomData,
        })
    }

    /// `f` on this thread's shard (`None` while the thread exits, when it answers nothing).
    #[inline]
    pub fn with_local<R>(&self, f: impl FnOnce(&mut Local) -> R) -> Option<R> {
        // Fails only while this thread's locals are being destroyed, when it answers nothing.
        LOCAL
            .try_with(|locals| {
                let mut locals = locals.borrow_mut();
                let local = match locals.iter().position(|l| l.owner == self.id) {
                    Some(i) => &mut locals[i],
                    None => self.add_local(&mut locals),
                };
                f(local)
            })
            .ok()
    }

    /// Give this thread a shard, registered for scrapes.
    #[cold]
    fn add_local<'l>(&self, locals: &'l mut Vec<Local>) -> &'l mut Local {
        // Drop the shards of `Metrics` gone since (only this thread still holds them).
        locals.retain(|l| Arc::strong_count(&l.shard) > 1);
        let shard = Arc::new(Shard::default());
        self.all.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::clone(&shard));
        locals.push(Local { owner: self.id, shard, index: HashTable::new() });
        locals.last_mut().expect("just pushed")
    }

    /// The shards so far.
    pub fn all(&self) -> Vec<Arc<Shard>> {
        self.all.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
