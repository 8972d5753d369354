//! UDP: one task per socket, answered inline (the work is CPU-only and short).

use std::net::SocketAddr;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::answer::{respond, Transport};
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

pub async fn run(sock: UdpSocket, state: SharedState, shutdown: CancellationToken) {
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
        if let Some(out) = respond(&snapshot, &buf[..len], src, Transport::Udp) {
            if let Err(e) = sock.send_to(&out, src).await {
                debug!(error = %e, %src, "udp send error");
            }
        }
    }
}
