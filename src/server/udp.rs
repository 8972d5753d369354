//! UDP: a few receiver tasks per socket, each answering inline (the work is
//! CPU-only and short).

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::answer::{respond_metered, Transport};
use crate::rrl::{self, Limiter};
use std::time::Instant;
use crate::metrics::Metrics;
use crate::state::SharedState;

/// Bind with SO_REUSEADDR and, for IPv6, v6only so `[::]` and `0.0.0.0` can coexist.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

pub async fn run(
    sock: Arc<UdpSocket>,
    state: SharedState,
    shutdown: CancellationToken,
    metrics: Option<Arc<Metrics>>,
    rrl: Option<Arc<Limiter>>,
) {
    let mut name_buf = [0u8; 256];
    let mut buf = vec![0u8; 65535];
    loop {
        let (len, src) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => { debug!(error = %e, "udp receive error"); continue; }
            },
            _ = shutdown.cancelled() => return,
        };
        let snapshot = state.load();
        if let Some(mut out) = respond_metered(&snapshot, &buf[..len], src, Transport::Udp, metrics.as_deref()) {
            if let Some(limiter) = rrl.as_deref().filter(|l| l.enabled()) {
                let has_ecs = crate::wire::ecs::has_ecs(&buf[..len]);
                let kind = rrl::kind_of(&out, &mut name_buf);
                match limiter.check(src.ip(), has_ecs, kind, Instant::now()) {
                    rrl::Verdict::Send => {}
                    rrl::Verdict::Slip => {
                        out = rrl::truncated(&out);
                        if let Some(m) = &metrics {
                            m.rrl(true);
                        }
                    }
                    rrl::Verdict::Drop => {
                        if let Some(m) = &metrics {
                            m.rrl(false);
                        }
                        continue;
                    }
                }
            }
            if let Err(e) = sock.send_to(&out, src).await {
                debug!(error = %e, %src, "udp send error");
            }
        }
    }
}
