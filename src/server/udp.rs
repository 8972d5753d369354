//! UDP: plain threads blocking on their socket, each answering inline. The
//! work per packet is short and CPU-only, so an async reactor around every
//! datagram only adds cost (the profile showed tokio's wakeups as the largest
//! user-space share). On Linux each thread has its own socket and receives
//! and sends in batches (`udp_batch`): under load, two syscalls per batch
//! instead of two per query.

use smallvec::SmallVec;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
#[cfg(not(target_os = "linux"))]
use std::time::Duration;
use std::time::Instant;
use tracing::debug;

use super::Published;
#[cfg(not(target_os = "linux"))]
use crate::answer::look_ahead;
#[cfg(target_os = "linux")]
use crate::answer::look_ahead_into;
use crate::answer::Snapshot;
use crate::answer::{respond_observed_into, Ahead, Transport};
use crate::metrics::Metrics;
use crate::metrics::QueryObservation;
use crate::rrl::{self, Limiter};

/// How often a blocked receiver looks at the stop flag where it cannot be
/// woken (elsewhere than Linux; on Linux see `udp_wake`).
#[cfg(not(target_os = "linux"))]
const POLL_STOP: Duration = Duration::from_millis(200);

/// The sockets for `addr`, for `threads` receiver threads. On Linux, one per
/// thread in an SO_REUSEPORT group: the kernel spreads flows over them by a
/// hash of the addresses, so each thread has its own queue and a thread busy
/// answering finds a whole batch waiting rather than waking its sibling for
/// every datagram (as gdnsd does); the 4 MiB receive buffer is shared out
/// among them (at least 1 MiB each). Elsewhere, one socket all threads share.
/// A port another process holds still fails the first bind (only a socket that
/// also set SO_REUSEADDR, or SO_REUSEPORT as the same user, could share it, and
/// then the TCP bind fails).
pub fn bind_all(addr: SocketAddr, threads: usize) -> std::io::Result<Vec<UdpSocket>> {
    const RECV_BUF: usize = 4 << 20;
    let per_thread = cfg!(target_os = "linux") && threads > 1;
    let buf = if per_thread { (RECV_BUF / threads).max(1 << 20) } else { RECV_BUF };
    let first = bind(addr, per_thread, buf)?;
    // Port 0 picked a port: the others join that one.
    let bound = first.local_addr()?;
    let mut all = vec![first];
    while per_thread && all.len() < threads {
        all.push(bind(bound, true, buf)?);
    }
    Ok(all)
}

/// Bind with SO_REUSEADDR and, for IPv6, v6only so `[::]` and `0.0.0.0` can
/// coexist; ask for a receive buffer of `recv_buf` bytes.
fn bind(addr: SocketAddr, reuse_port: bool, recv_buf: usize) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    #[cfg(target_os = "linux")]
    socket.set_reuse_port(reuse_port)?;
    #[cfg(not(target_os = "linux"))]
    debug_assert!(!reuse_port);
    let _ = socket.set_recv_buffer_size(recv_buf);
    socket.bind(&addr.into())?;
    #[cfg(not(target_os = "linux"))]
    socket.set_read_timeout(Some(POLL_STOP))?;
    Ok(socket.into())
}

/// What the UDP receivers share.
#[derive(Clone)]
pub struct UdpContext {
    pub state: Arc<Published>,
    pub metrics: Option<Arc<Metrics>>,
    pub rrl: Option<Arc<Limiter>>,
    pub stop: Arc<AtomicBool>,
    /// Times each receive batch: the CPU's time-stamp counter where it is
    /// invariant, calibrated once at start (`quanta`), else the OS clock.
    /// Reading it costs a fraction of `Instant::now`, which was 5% of the
    /// user time of a batch.
    pub clock: quanta::Clock,
}

/// Datagrams taken per `recvmmsg`, and the receive buffer of each: the
/// largest datagram, so a padded query over 4,096 bytes is answered (as Knot
/// does), not cut short into FORMERR. Only the pages a datagram fills are
/// ever touched, so the slots cost address space, not memory.
#[cfg(target_os = "linux")]
const BATCH: usize = 32;
#[cfg(target_os = "linux")]
const SLOT: usize = 65_535;

/// Datagram `i` of the batch, looked at (`look_ahead`) and waiting for its
/// answer: its bytes, and its source converted once from the kernel's form.
#[cfg(target_os = "linux")]
struct Pending<'s, 'p> {
    i: usize,
    data: &'p [u8],
    src: SocketAddr,
    ahead: Option<Ahead<'s, 'p>>,
}

/// Receive and answer until `stop` is set: one `recvmmsg` takes every queued
/// query (up to `BATCH`), one `sendmmsg` sends their answers.
///
/// What a query leaves for later (its look-ahead, its observation) is written
/// in place, where it is kept, and read back by reference: moving such a
/// value right after writing it reads its freshly stored fields in wider
/// pieces than they were written, and each such load waits for the stores to
/// reach the cache (a store-forwarding stall) instead of taking the data from
/// the store buffer.
#[cfg(target_os = "linux")]
pub fn run(sock: UdpSocket, cx: UdpContext) {
    let mut name_buf = [0u8; 256];
    let mut batch = super::udp_batch::Batch::new(BATCH, SLOT);
    // This thread's own reference to the current snapshot: checking it is
    // still current is one atomic load, where `ArcSwap::load` takes and
    // returns a debt slot (3-4 % of the user time of an ECS answer).
    let mut current = cx.state.cache();
    loop {
        let received = batch.recv(&sock);
        // Stop shuts the socket down, so every receive after it returns at once.
        if cx.stop.load(Ordering::Relaxed) {
            break;
        }
        let n = match received {
            Ok(n) => n,
            Err(e) if is_timeout(&e) => {
                // Poked while idle (`udp_wake`): let go of a replaced snapshot.
                current.load();
                continue;
            }
            Err(e) => {
                debug!(error = %e, "udp receive error");
                continue;
            }
        };
        // One snapshot and two clock reads per batch, not per answer: a
        // reload takes effect at the next batch, and each answer is timed
        // at the batch's mean (`Metrics::count_batch`).
        let started = cx.clock.raw();
        let snapshot: &Snapshot = current.load();
        let (rx, tx) = batch.split();
        // Every query of the batch is looked at before any is answered, so
        // the cache misses of their decisions overlap (`look_ahead`).
        let mut pending: SmallVec<[Pending; BATCH]> = SmallVec::new();
        for i in 0..n {
            let Some(d) = rx.datagram(i) else { continue };
            if d.truncated {
                debug!(src = %d.src, "udp datagram larger than {SLOT} bytes: answering from its start");
            }
            pending.push(Pending { i, data: d.data, src: d.src, ahead: None });
            let p = pending.last_mut().expect("just pushed");
            if guarded(&p.src, p.data, || look_ahead_into(snapshot, p.data, &p.src, &mut p.ahead)).is_none() {
                pending.pop();
            }
        }
        let answered = pending.len() as u64;
        let mut observed: SmallVec<[QueryObservation; BATCH]> = SmallVec::new();
        let mut unobserved = QueryObservation::default();
        for p in &pending {
            let obs = if cx.metrics.is_some() {
                observed.push(QueryObservation::default());
                observed.last_mut().expect("just pushed")
            } else {
                &mut unobserved
            };
            let out = tx.buffer();
            if answer_guarded(&cx, snapshot, p.data, p.ahead.as_ref(), &p.src, out, &mut name_buf, obs) {
                tx.send(rx, p.i);
            }
        }
        if let Some(m) = &cx.metrics {
            m.count_batch(&observed, answered, cx.clock.delta(started, cx.clock.raw()));
        }
        tx.flush(&sock);
    }
}

#[cfg(not(target_os = "linux"))]
pub fn run(sock: UdpSocket, cx: UdpContext) {
    let (mut out, mut name_buf) = (Vec::with_capacity(4096), [0u8; 256]);
    let mut buf = vec![0u8; 65535];
    while !cx.stop.load(Ordering::Relaxed) {
        let (len, src) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if is_timeout(&e) => continue,
            Err(e) => {
                debug!(error = %e, "udp receive error");
                continue;
            }
        };
        let started = Instant::now();
        let (snapshot, packet) = (cx.state.load(), &buf[..len]);
        let ahead = guarded(&src, packet, || look_ahead(&snapshot, packet, src));
        let mut obs = QueryObservation::default();
        let sent = match ahead {
            Some(a) => answer_guarded(&cx, &snapshot, packet, a.as_ref(), &src, &mut out, &mut name_buf, &mut obs),
            None => false,
        };
        if sent {
            if let Err(e) = sock.send_to(&out, src) {
                debug!(error = %e, %src, "udp send error");
            }
        }
        if let Some(m) = &cx.metrics {
            m.count_batch(std::slice::from_ref(&obs), 1, started.elapsed());
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), WouldBlock | TimedOut | Interrupted)
}

/// `f`, but a panic in it (a bug: nothing on this path should panic) costs
/// the one datagram, not the receiver thread.
fn guarded<T>(src: &SocketAddr, packet: &[u8], f: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(_) => {
            tracing::error!(%src, len = packet.len(), "answering a datagram panicked; it was dropped");
            None
        }
    }
}

/// `answer` under `guarded`: whether to send `out`. A panic sends nothing
/// and leaves `obs` empty (nothing counted for a datagram that got no answer).
#[allow(clippy::too_many_arguments)]
fn answer_guarded(
    cx: &UdpContext,
    state: &Snapshot,
    packet: &[u8],
    ahead: Option<&Ahead<'_, '_>>,
    src: &SocketAddr,
    out: &mut Vec<u8>,
    name_buf: &mut [u8; 256],
    obs: &mut QueryObservation,
) -> bool {
    let sent = guarded(src, packet, || answer(cx, state, packet, ahead, src, out, name_buf, obs));
    if sent.is_none() {
        *obs = QueryObservation::default();
    }
    sent == Some(true)
}

/// Answer into `out` (after rate limiting: a slipped answer is replaced by
/// its truncated form), described in `obs`. Whether to send it.
#[allow(clippy::too_many_arguments)]
fn answer(
    cx: &UdpContext,
    state: &Snapshot,
    packet: &[u8],
    ahead: Option<&Ahead<'_, '_>>,
    src: &SocketAddr,
    out: &mut Vec<u8>,
    name_buf: &mut [u8; 256],
    obs: &mut QueryObservation,
) -> bool {
    let metrics = cx.metrics.as_deref();
    if !respond_observed_into(state, packet, ahead, src, Transport::Udp, metrics, obs, out) {
        return false;
    }
    let Some(limiter) = cx.rrl.as_deref().filter(|l| l.enabled()) else { return true };
    let has_ecs = crate::wire::ecs::has_ecs(packet);
    let kind = rrl::kind_of(out, name_buf);
    match limiter.check(src.ip(), has_ecs, kind, Instant::now()) {
        rrl::Treatment::Send => true,
        rrl::Treatment::Slip => {
            if let Some(m) = &cx.metrics {
                m.rrl(true);
            }
            let slipped = rrl::truncated(out);
            out.clear(); // keeps the buffer's capacity for the next batch
            out.extend_from_slice(&slipped);
            true
        }
        rrl::Treatment::Drop => {
            if let Some(m) = &cx.metrics {
                m.rrl(false);
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_socket_per_thread_on_one_port() {
        let all = bind_all("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        assert_eq!(all.len(), if cfg!(target_os = "linux") { 3 } else { 1 });
        let port = all[0].local_addr().unwrap().port();
        assert!(all.iter().all(|s| s.local_addr().unwrap().port() == port));
    }

    #[test]
    fn a_port_held_by_a_plain_socket_is_refused() {
        let held = UdpSocket::bind("127.0.0.1:0").unwrap();
        let e = bind_all(held.local_addr().unwrap(), 2).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    }
}
