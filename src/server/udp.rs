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
use std::time::{Duration, Instant};
use tracing::debug;

use crate::answer::{look_ahead, respond_observed_into, Ahead, Transport};
use crate::metrics::Metrics;
use crate::metrics::QueryObservation;
use crate::rrl::{self, Limiter};
use crate::state::{SharedState, State};

/// How often a blocked receiver looks at the stop flag.
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
    socket.set_read_timeout(Some(POLL_STOP))?;
    Ok(socket.into())
}

/// What the UDP receivers share.
#[derive(Clone)]
pub struct UdpContext {
    pub state: SharedState,
    pub metrics: Option<Arc<Metrics>>,
    pub rrl: Option<Arc<Limiter>>,
    pub stop: Arc<AtomicBool>,
}

/// Datagrams taken per `recvmmsg`, and the receive buffer of each. A DNS query
/// is far smaller than 4096 bytes; a larger datagram is answered from its first
/// 4096 bytes (trailing junk is ignored as before, a record cut short makes it FORMERR).
#[cfg(target_os = "linux")]
const BATCH: usize = 32;
#[cfg(target_os = "linux")]
const SLOT: usize = 4096;

/// Receive and answer until `stop` is set: one `recvmmsg` takes every queued
/// query (up to `BATCH`), one `sendmmsg` sends their answers.
#[cfg(target_os = "linux")]
pub fn run(sock: UdpSocket, cx: UdpContext) {
    let mut scratch = Scratch::default();
    let mut batch = super::udp_batch::Batch::new(BATCH, SLOT);
    while !cx.stop.load(Ordering::Relaxed) {
        let n = match batch.recv(&sock) {
            Ok(n) => n,
            Err(e) if is_timeout(&e) => continue,
            Err(e) => {
                debug!(error = %e, "udp receive error");
                continue;
            }
        };
        // One snapshot and two clock reads per batch, not per answer: a
        // reload takes effect at the next batch, and each answer is timed
        // at the batch's mean (`Metrics::count_batch`).
        let started = Instant::now();
        let snapshot = cx.state.load();
        let (rx, tx) = batch.split();
        // Every query of the batch is looked at before any is answered, so
        // the cache misses of their decisions overlap (`look_ahead`).
        let mut queries: SmallVec<[_; BATCH]> = SmallVec::new();
        for i in 0..n {
            let Some(d) = rx.datagram(i) else { continue };
            if d.truncated {
                debug!(src = %d.src, "udp datagram larger than {SLOT} bytes: answering from its start");
            }
            if let Some(ahead) = guarded(d.src, d.data, || look_ahead(&snapshot, d.data, d.src)) {
                queries.push((i, d, ahead));
            }
        }
        let answered = queries.len() as u64;
        let mut observed: SmallVec<[QueryObservation; BATCH]> = SmallVec::new();
        for (i, d, ahead) in &queries {
            let mut obs = QueryObservation::default();
            if let Some(out) = answer_guarded(&cx, &snapshot, d.data, ahead.as_ref(), d.src, &mut scratch, &mut obs) {
                tx.reply(rx, *i, out);
            }
            if cx.metrics.is_some() {
                observed.push(obs);
            }
        }
        drop(queries); // they borrow the snapshot
        drop(snapshot);
        if let Some(m) = &cx.metrics {
            m.count_batch(&observed, answered, started.elapsed());
        }
        tx.flush(&sock);
    }
}

#[cfg(not(target_os = "linux"))]
pub fn run(sock: UdpSocket, cx: UdpContext) {
    let mut scratch = Scratch::default();
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
        let ahead = guarded(src, packet, || look_ahead(&snapshot, packet, src));
        let mut obs = QueryObservation::default();
        let sent = match ahead {
            Some(a) => answer_guarded(&cx, &snapshot, packet, a.as_ref(), src, &mut scratch, &mut obs),
            None => None,
        };
        if let Some(out) = sent {
            if let Err(e) = sock.send_to(out, src) {
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

/// The answer to send (after rate limiting), if any.
/// What a receiver thread reuses from one datagram to the next.
struct Scratch {
    out: Vec<u8>,
    /// A truncated copy when RRL slips an answer.
    slip: Vec<u8>,
    name_buf: [u8; 256],
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch { out: Vec::with_capacity(4096), slip: Vec::new(), name_buf: [0; 256] }
    }
}

/// `f`, but a panic in it (a bug: nothing on this path should panic) costs
/// the one datagram, not the receiver thread.
fn guarded<T>(src: SocketAddr, packet: &[u8], f: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(_) => {
            tracing::error!(%src, len = packet.len(), "answering a datagram panicked; it was dropped");
            None
        }
    }
}

/// `answer` under `guarded`: the buffer to send, if any. A panic leaves
/// `obs` empty (nothing counted for a datagram that got no answer).
fn answer_guarded<'s>(
    cx: &UdpContext,
    state: &State,
    packet: &[u8],
    ahead: Option<&Ahead<'_, '_>>,
    src: SocketAddr,
    s: &'s mut Scratch,
    obs: &mut QueryObservation,
) -> Option<&'s [u8]> {
    let Some(reply) = guarded(src, packet, || answer(cx, state, packet, ahead, src, s, obs)) else {
        *obs = QueryObservation::default();
        return None;
    };
    match reply {
        Some(Reply::Answer) => Some(&s.out),
        Some(Reply::Slip) => Some(&s.slip),
        None => None,
    }
}

/// Which buffer of the scratch to send.
enum Reply {
    Answer,
    Slip,
}

/// Answer into the scratch buffers (after rate limiting), described in `obs`.
fn answer(
    cx: &UdpContext,
    state: &State,
    packet: &[u8],
    ahead: Option<&Ahead<'_, '_>>,
    src: SocketAddr,
    s: &mut Scratch,
    obs: &mut QueryObservation,
) -> Option<Reply> {
    let metrics = cx.metrics.as_deref();
    let send = respond_observed_into(state, packet, ahead, src, Transport::Udp, metrics, obs, &mut s.out);
    if !send {
        return None;
    }
    let Some(limiter) = cx.rrl.as_deref().filter(|l| l.enabled()) else { return Some(Reply::Answer) };
    let has_ecs = crate::wire::ecs::has_ecs(packet);
    let kind = rrl::kind_of(&s.out, &mut s.name_buf);
    match limiter.check(src.ip(), has_ecs, kind, Instant::now()) {
        rrl::Verdict::Send => Some(Reply::Answer),
        rrl::Verdict::Slip => {
            if let Some(m) = &cx.metrics {
                m.rrl(true);
            }
            s.slip = rrl::truncated(&s.out);
            Some(Reply::Slip)
        }
        rrl::Verdict::Drop => {
            if let Some(m) = &cx.metrics {
                m.rrl(false);
            }
            None
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
