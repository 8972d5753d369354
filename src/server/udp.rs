//! UDP: plain threads blocking on their socket, each answering inline. The
//! work per packet is short and CPU-only, so an async reactor around every
//! datagram only adds cost (the profile showed tokio's wakeups as the largest
//! user-space share). On Linux each thread has its own socket and receives
//! and sends in batches (`udp_batch`): under load, two syscalls per batch
//! instead of two per query.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
#[cfg(not(target_os = "linux"))]
use std::time::Duration;
use std::time::Instant;
use tracing::debug;

use super::Published;
#[cfg(target_os = "linux")]
use crate::answer::Snapshot;
#[cfg(not(target_os = "linux"))]
use crate::answer::Transport;
use crate::answer::Worker;
use crate::answer::{Incoming, Outbox};
use crate::metrics::Metrics;
use crate::rrl::{self, Limiter};
use crate::wire::server_cookie::Cookies;

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
    let socket = super::socket_for(addr, socket2::Type::DGRAM, socket2::Protocol::UDP)?;
    socket.set_reuse_address(true)?;
    #[cfg(target_os = "linux")]
    socket.set_reuse_port(reuse_port)?;
    #[cfg(not(target_os = "linux"))]
    debug_assert!(!reuse_port);
    let _ = socket.set_recv_buffer_size(recv_buf);
    #[cfg(target_os = "linux")]
    if addr.ip().is_unspecified() {
        enable_pktinfo(&socket, addr.is_ipv6())?;
    }
    socket.bind(&addr.into())?;
    #[cfg(not(target_os = "linux"))]
    socket.set_read_timeout(Some(POLL_STOP))?;
    Ok(socket.into())
}

/// Ask for each datagram's destination address (IP_PKTINFO, IPV6_RECVPKTINFO)
/// on a wildcard socket, so its answer is sent from that address: a host
/// with several addresses (an anycast address on `lo`) would otherwise answer
/// from the one routing picks, and the resolver would drop the answer.
#[cfg(target_os = "linux")]
pub(super) fn enable_pktinfo(socket: &socket2::Socket, v6: bool) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (level, name) =
        if v6 { (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO) } else { (libc::IPPROTO_IP, libc::IP_PKTINFO) };
    let on: libc::c_int = 1;
    // SAFETY: a valid socket, and a pointer to a c_int with its length.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// What the UDP receivers share.
#[derive(Clone)]
pub struct UdpContext {
    pub state: Arc<Published>,
    pub metrics: Option<Arc<Metrics>>,
    pub rrl: Option<Arc<Limiter>>,
    pub stop: Arc<AtomicBool>,
}

/// Datagrams taken per `recvmmsg`, and the receive buffer of each: the
/// largest datagram, so a padded query over 4,096 bytes is answered (as Knot
/// does), not cut short into FORMERR. Only the pages a datagram fills are
/// ever touched, so the slots cost address space, not memory.
#[cfg(target_os = "linux")]
const BATCH: usize = 32;
#[cfg(target_os = "linux")]
const SLOT: usize = 65_535;

/// Receive and answer until `stop` is set: one `recvmmsg` takes every queued
/// query (up to `BATCH`), the thread's own answer `Worker` answers them as a
/// batch, one `sendmmsg` sends their answers.
#[cfg(target_os = "linux")]
pub fn run(sock: UdpSocket, cx: UdpContext) {
    let mut name_buf = [0u8; 256];
    // Bound to a wildcard address: answer from each query's destination.
    let pktinfo = sock.local_addr().is_ok_and(|a| a.ip().is_unspecified());
    let mut batch = super::udp_batch::Batch::new(BATCH, SLOT, pktinfo);
    // This thread's answer worker: its decision cache and metric shard stay
    // warm from batch to batch, touched by no other thread.
    let mut worker = Worker::new(cx.metrics.as_deref());
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
        // One snapshot per batch, not per answer: a reload takes effect at the next batch.
        let snapshot: &Snapshot = current.load();
        let (rx, tx) = batch.split();
        let queries = (0..n).filter_map(|i| {
            let d = rx.datagram(i)?;
            if d.truncated {
                debug!(src = %d.src, "udp datagram larger than {SLOT} bytes: answering from its start");
            }
            Some(Incoming { tag: i, packet: d.data, src: d.src })
        });
        let mut outbox = Limited { cx: &cx, cookies: &snapshot.cookies, tx, name_buf: &mut name_buf };
        worker.answer_batch(snapshot, queries, &mut outbox);
        outbox.tx.flush(&sock);
    }
}

/// The answers of one receive batch, rate limited on their way out.
#[cfg(target_os = "linux")]
struct Limited<'a, 'b> {
    cx: &'a UdpContext,
    cookies: &'a Cookies,
    tx: super::udp_batch::Replies<'b>,
    name_buf: &'a mut [u8; 256],
}

#[cfg(target_os = "linux")]
impl Outbox for Limited<'_, '_> {
    #[inline]
    fn reply(&mut self, query: &Incoming<'_>, write: impl FnOnce(&mut Vec<u8>) -> bool) {
        let out = self.tx.buffer();
        if write(out) && rate_limit(self.cx, self.cookies, query.packet, &query.src, out, self.name_buf) {
            self.tx.send(query.tag);
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn run(sock: UdpSocket, cx: UdpContext) {
    let (mut out, mut name_buf) = (Vec::with_capacity(4096), [0u8; 256]);
    let mut buf = vec![0u8; 65535];
    let mut worker = Worker::new(cx.metrics.as_deref());
    while !cx.stop.load(Ordering::Relaxed) {
        let (len, src) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if is_timeout(&e) => continue,
            Err(e) => {
                debug!(error = %e, "udp receive error");
                continue;
            }
        };
        let (snapshot, packet) = (cx.state.load(), &buf[..len]);
        let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            worker.answer(&snapshot, packet, src, Transport::Udp, &mut out)
        }));
        let Ok(sent) = answered else {
            tracing::error!(%src, len, "answering a datagram panicked; it was dropped");
            continue;
        };
        if sent && rate_limit(&cx, &snapshot.cookies, packet, &src, &mut out, &mut name_buf) {
            if let Err(e) = sock.send_to(&out, src) {
                debug!(error = %e, %src, "udp send error");
            }
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), WouldBlock | TimedOut | Interrupted)
}

/// Response rate limiting of the answer in `out` to `packet` from `src`: a
/// slipped answer is replaced by its truncated form. Whether to send `out`.
/// A query carrying a valid server cookie of ours is never limited: its
/// source address is proven (RFC 7873 §5.3), so it cannot be a spoofed
/// victim's. It is checked only once the bucket says limit (a hash).
fn rate_limit(
    cx: &UdpContext,
    cookies: &Cookies,
    packet: &[u8],
    src: &SocketAddr,
    out: &mut Vec<u8>,
    name_buf: &mut [u8; 256],
) -> bool {
    let Some(limiter) = cx.rrl.as_deref().filter(|l| l.enabled()) else { return true };
    let has_ecs = crate::wire::ecs::has_ecs(packet);
    let kind = rrl::kind_of(out, name_buf);
    let proven = || crate::wire::cookie::option(packet).is_some_and(|c| cookies.valid(c, src.ip(), cookies.now()));
    match limiter.check(src.ip(), has_ecs, kind, Instant::now()) {
        rrl::Treatment::Send => true,
        _ if proven() => true,
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
