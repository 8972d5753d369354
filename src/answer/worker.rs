//! The answer worker: what answering reuses from one query to the next (the
//! GSLB decision cache, signed negative answers, this worker's shard of the
//! query metrics, the batch queues), owned by whoever answers, so nothing on the query path hides in a
//! thread-local. One per UDP receiver thread; TCP connections borrow one from
//! a pool for each query (`server/tcp.rs`).

use smallvec::SmallVec;
use std::net::SocketAddr;

use super::decisions::Decisions;
use super::fast::{self, Ahead};
use super::signed_negative::SignedNegatives;
use super::Snapshot;
use super::Transport;
use crate::metrics::{Metrics, QueryCounts, QueryObservation};

/// Queries of a batch kept inline (a UDP receive batch is at most this
/// large; a larger one still works, from the heap).
const BATCH: usize = 32;

/// Answers queries against a snapshot, keeping its caches warm between them.
pub struct Worker {
    pub(super) decisions: Decisions,
    /// Where this worker counts its queries (`None`: not counted).
    pub(super) counts: Option<QueryCounts>,
    /// Times answers: the CPU's time-stamp counter where it is invariant,
    /// calibrated once per process (`quanta`), else the OS clock. Reading it
    /// costs a fraction of `Instant::now`, which was 5% of the user time of a
    /// UDP batch.
    clock: quanta::Clock,
    /// Unix seconds the signed fast path judges its cached signatures'
    /// freshness by; `None`: the system clock (tests set a time).
    pub(super) signing_time: Option<u32>,
    /// Signed NXDOMAIN and NODATA answers, kept for the fast path.
    pub(super) negatives: SignedNegatives,
    /// The server cookies this worker made this second, by client cookie.
    pub(super) cookies: crate::wire::server_cookie::Memo,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("counts", &self.counts).finish_non_exhaustive()
    }
}

/// One query of a batch: its bytes, where it came from, and the caller's
/// tag for it (a receive slot), handed back with its answer (`Outbox`).
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'p> {
    pub tag: usize,
    pub packet: &'p [u8],
    pub src: SocketAddr,
}

/// Where the answers of a batch go (`Worker::answer_batch`).
pub trait Outbox {
    /// Hand `write` the buffer for the answer to `query`; when it returns
    /// true the buffer holds the answer, to be sent (or held back: rate
    /// limiting is the outbox's business).
    fn reply(&mut self, query: &Incoming<'_>, write: impl FnOnce(&mut Vec<u8>) -> bool);
}

/// A query of a batch, looked at and waiting for its answer.
struct Pending<'s, 'p> {
    query: Incoming<'p>,
    ahead: Option<Ahead<'s, 'p>>,
}

impl Worker {
    /// A worker with cold caches, counting into a new shard of `metrics`.
    pub fn new(metrics: Option<&Metrics>) -> Worker {
        Worker {
            decisions: Decisions::new(),
            counts: metrics.map(Metrics::query_counts),
            clock: quanta::Clock::new(),
            signing_time: None,
            negatives: SignedNegatives::default(),
            cookies: Default::default(),
        }
    }

    /// Now in Unix seconds, for signatures.
    pub(super) fn unix_now(&self) -> u32 {
        self.signing_time.unwrap_or_else(crate::dnssec::unix_now)
    }

    /// Answer one query from `snapshot` into `out` (cleared first), counted
    /// and timed. Whether to send `out` (nothing for responses and runts).
    pub fn answer(
        &mut self,
        snapshot: &Snapshot,
        packet: &[u8],
        src: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> bool {
        let started = self.clock.raw();
        let query = Incoming { tag: 0, packet, src };
        let mut ahead = None;
        fast::look_ahead_into(snapshot, &self.decisions, packet, &src, &mut ahead);
        let mut obs = QueryObservation::default();
        let sent = self.answer_one(snapshot, &query, ahead.as_ref(), transport, &mut obs, out);
        self.count(snapshot, std::slice::from_ref(&obs), 1, started);
        sent
    }

    /// Answer a batch of datagrams (UDP) from one snapshot, each into the
    /// buffer `outbox` gives for it. Every query is looked at first, so the
    /// cache misses of their decisions overlap, then each is answered; the
    /// batch is counted once and timed with two clock reads (each answer at
    /// the batch's mean). A query whose answering panics (a bug) costs that
    /// query only: nothing is sent or counted for it.
    ///
    /// What a query leaves for later (its look-ahead, its observation) is
    /// written in place, where it is kept, and read back by reference: moving
    /// such a value right after writing it reads its freshly stored fields in
    /// wider pieces than they were written, and each such load waits for the
    /// stores to reach the cache (a store-forwarding stall).
    pub fn answer_batch<'p>(
        &mut self,
        snapshot: &Snapshot,
        queries: impl IntoIterator<Item = Incoming<'p>>,
        outbox: &mut impl Outbox,
    ) {
        let started = self.clock.raw();
        let mut pending: SmallVec<[Pending; BATCH]> = SmallVec::new();
        for query in queries {
            pending.push(Pending { query, ahead: None });
            let p = pending.last_mut().expect("just pushed");
            let decisions = &self.decisions;
            let look = || fast::look_ahead_into(snapshot, decisions, p.query.packet, &p.query.src, &mut p.ahead);
            if guarded(&p.query, look).is_none() {
                pending.pop();
            }
        }
        let mut observed: SmallVec<[QueryObservation; BATCH]> = SmallVec::new();
        let mut unobserved = QueryObservation::default();
        let counting = self.counts.is_some();
        for p in &pending {
            let obs = if counting {
                observed.push(QueryObservation::default());
                observed.last_mut().expect("just pushed")
            } else {
                &mut unobserved
            };
            outbox.reply(&p.query, |out| {
                let answer = || self.answer_one(snapshot, &p.query, p.ahead.as_ref(), Transport::Udp, obs, out);
                match guarded(&p.query, answer) {
                    Some(sent) => sent,
                    None => {
                        *obs = QueryObservation::default();
                        false
                    }
                }
            });
        }
        self.count(snapshot, &observed, pending.len() as u64, started);
    }

    /// Fast path, else general path; the answer in `out`, described in `obs`
    /// (except what a cached decision counted itself). Whether to send it.
    fn answer_one<'s>(
        &mut self,
        snapshot: &'s Snapshot,
        query: &Incoming<'_>,
        ahead: Option<&Ahead<'s, '_>>,
        transport: Transport,
        obs: &mut QueryObservation,
        out: &mut Vec<u8>,
    ) -> bool {
        out.clear();
        if let Some(ahead) = ahead {
            if fast::try_answer(self, snapshot, ahead, &query.src, transport, obs, out).is_some() {
                return true;
            }
        }
        out.clear();
        match super::general(snapshot, Some(&mut self.decisions), query.packet, query.src, transport, obs) {
            Some(general) => {
                out.extend_from_slice(&general);
                true
            }
            None => false,
        }
    }

    /// Count `observed` and `n` answers timed since `started`, ids read in the snapshot's label table.
    #[inline]
    fn count(&mut self, snapshot: &Snapshot, observed: &[QueryObservation], n: u64, started: u64) {
        if let Some(counts) = &mut self.counts {
            let took = self.clock.delta(started, self.clock.raw());
            let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
            counts.count_batch(&snapshot.zones.labels, observed, n, nanos);
        }
    }
}

/// `f`, but a panic in it (a bug: nothing on this path should panic) costs
/// the one query, not the thread.
fn guarded<T>(query: &Incoming<'_>, f: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(_) => {
            tracing::error!(src = %query.src, len = query.packet.len(), "answering a query panicked; it was dropped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};

    fn query(name: &str) -> Vec<u8> {
        let mut m = Message::new(0x2b2b, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        m.to_vec().unwrap()
    }

    /// Collects what a batch sends, by tag.
    #[derive(Default)]
    struct Collect {
        sent: Vec<(usize, Vec<u8>)>,
    }

    impl Outbox for Collect {
        fn reply(&mut self, query: &Incoming<'_>, write: impl FnOnce(&mut Vec<u8>) -> bool) {
            let mut out = vec![0xee; 3]; // a used buffer: the worker clears it
            if write(&mut out) {
                self.sent.push((query.tag, out));
            }
        }
    }

    fn series(text: &str, rcode: &str, service: &str, region: &str) -> Option<u64> {
        let key =
            format!(r#"meridian_queries_total{{rcode="{rcode}",qtype="A",service="{service}",region="{region}"}} "#);
        text.lines().find_map(|l| l.strip_prefix(&key)).map(|n| n.parse().unwrap())
    }

    /// A batch answers each query with the bytes a single answer gives, skips
    /// what gets no answer, and counts every answer once in the worker's own
    /// metrics under the names of the snapshot it answered from, a reloaded
    /// snapshot (new ids, new label table) included.
    #[test]
    fn a_batch_answers_and_counts_like_single_answers() {
        let metrics = Metrics::new();
        let mut worker = Worker::new(Some(&metrics));
        let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let packets = [
            query("failover.gslb.example.test."),
            query("static.gslb.example.test."),
            vec![1, 2, 3], // a runt: no answer
            query("failover.gslb.example.test."),
            query("nx.gslb.example.test."),
            query("failover.gslb.example.test."),
        ];
        for round in 0..2 {
            // The second round answers from a reloaded snapshot: the same names under new ids.
            let state = crate::answer::snapshot::demo();
            let queries = packets.iter().enumerate().map(|(tag, p)| Incoming { tag, packet: p, src });
            let mut outbox = Collect::default();
            worker.answer_batch(&state, queries, &mut outbox);
            let tags: Vec<usize> = outbox.sent.iter().map(|(t, _)| *t).collect();
            assert_eq!(tags, [0, 1, 3, 4, 5]);
            for (tag, bytes) in &outbox.sent {
                let mut single = Vec::new();
                assert!(Worker::new(None).answer(&state, &packets[*tag], src, Transport::Udp, &mut single));
                assert_eq!(bytes, &single, "query {tag}");
            }
            let text = metrics.encode();
            let n = round + 1;
            assert_eq!(series(&text, "NOERROR", "failover.gslb.example.test.", "eu-west"), Some(3 * n), "{text}");
            assert_eq!(series(&text, "NOERROR", "", ""), Some(n), "{text}");
            assert_eq!(series(&text, "NXDOMAIN", "", ""), Some(n), "{text}");
            assert!(text.contains(&format!("meridian_answer_duration_seconds_count {}\n", 6 * n)), "{text}");
        }
    }
}
