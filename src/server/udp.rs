//! UDP: plain threads blocking on the socket (several per socket), each
//! answering inline. The work per packet is short and CPU-only, so an async
//! reactor around every datagram only adds cost (the profile showed tokio's
//! wakeups as the largest user-space share).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::debug;

use crate::answer::{respond_metered, Transport};
use crate::metrics::Metrics;
use crate::rrl::{self, Limiter};
use crate::state::SharedState;

/// How often a blocked receiver looks at the stop flag.
const POLL_STOP: Duration = Duration::from_millis(200);

/// Bind with SO_REUSEADDR and, for IPv6, v6only so `[::]` and `0.0.0.0` can coexist.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    let _ = socket.set_recv_buffer_size(4 << 20);
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

/// Receive and answer until `stop` is set.
pub fn run(sock: UdpSocket, cx: UdpContext) {
    let mut name_buf = [0u8; 256];
    let mut buf = vec![0u8; 65535];
    while !cx.stop.load(Ordering::Relaxed) {
        let (len, src) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => {
                debug!(error = %e, "udp receive error");
                continue;
            }
        };
        if let Some(out) = answer(&cx, &buf[..len], src, &mut name_buf) {
            if let Err(e) = sock.send_to(&out, src) {
                debug!(error = %e, %src, "udp send error");
            }
        }
    }
}

/// The answer to send (after rate limiting), if any.
fn answer(cx: &UdpContext, packet: &[u8], src: SocketAddr, name_buf: &mut [u8; 256]) -> Option<Vec<u8>> {
    let snapshot = cx.state.load();
    let out = respond_metered(&snapshot, packet, src, Transport::Udp, cx.metrics.as_deref())?;
    let Some(limiter) = cx.rrl.as_deref().filter(|l| l.enabled()) else { return Some(out) };
    let has_ecs = crate::wire::ecs::has_ecs(packet);
    let kind = rrl::kind_of(&out, name_buf);
    match limiter.check(src.ip(), has_ecs, kind, Instant::now()) {
        rrl::Verdict::Send => Some(out),
        rrl::Verdict::Slip => {
            if let Some(m) = &cx.metrics {
                m.rrl(true);
            }
            Some(rrl::truncated(&out))
        }
        rrl::Verdict::Drop => {
            if let Some(m) = &cx.metrics {
                m.rrl(false);
            }
            None
        }
    }
}
