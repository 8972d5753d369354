//! DNS over QUIC (RFC 9250), ALPN `doq`: one query per bidirectional stream,
//! each with a 2-byte length prefix like TCP, answered by the same workers
//! as TCP and padded when asked (`padding`). Caps and timeouts are TCP's:
//! connections are counted per client address (an Initial over the cap is
//! refused), and a connection that opens no stream for the idle timeout is
//! closed, even if its client keeps it alive with PINGs.

use std::net::SocketAddr;
use std::sync::Arc;

use quinn::crypto::rustls::QuicServerConfig;
use quinn::{Endpoint, VarInt};
use tracing::debug;

use super::tcp::TcpContext;
use super::tls::{Certs, Open};

/// RFC 9250 §8.4 error codes.
const DOQ_NO_ERROR: u32 = 0;
const DOQ_PROTOCOL_ERROR: u32 = 2;
/// Queries one connection may have in flight at once.
const STREAMS_PER_CONNECTION: u32 = 64;

/// Bind a DoQ endpoint on `addr` (so a port clash fails the start).
pub fn bind(addr: SocketAddr, certs: &Arc<Certs>, cx: &TcpContext) -> std::io::Result<Endpoint> {
    let crypto = QuicServerConfig::try_from(certs.server_config(b"doq", true))
        .map_err(|e| std::io::Error::other(format!("QUIC TLS configuration: {e}")))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(cx.idle).map_err(std::io::Error::other)?;
    transport.max_idle_timeout(Some(idle));
    transport.max_concurrent_bidi_streams(VarInt::from_u32(STREAMS_PER_CONNECTION));
    transport.max_concurrent_uni_streams(VarInt::from_u32(0)); // DoQ uses none
    server.transport_config(Arc::new(transport));
    let socket = super::socket_for(addr, socket2::Type::DGRAM, socket2::Protocol::UDP)?;
    socket.bind(&addr.into())?;
    let runtime = quinn::default_runtime().ok_or_else(|| std::io::Error::other("no async runtime for QUIC"))?;
    Endpoint::new(quinn::EndpointConfig::default(), Some(server), socket.into(), runtime)
}

pub async fn run(endpoint: Endpoint, cx: TcpContext) {
    let TcpContext { shutdown, tracker, limits, conns, metrics, .. } = &cx;
    loop {
        let incoming = tokio::select! {
            i = endpoint.accept() => match i {
                Some(i) => i,
                None => return,
            },
            _ = shutdown.cancelled() => break,
        };
        // Caps count client addresses, so first make the client prove its
        // address (a Retry round trip): else spoofed Initials could fill a
        // victim's share.
        if !incoming.remote_address_validated() {
            let _ = incoming.retry();
            continue;
        }
        let src = incoming.remote_address();
        let slot = match conns.admit(src.ip(), limits) {
            Ok(slot) => slot,
            Err(per_client) => {
                debug!(%src, per_client, "quic connection refused: cap reached");
                if let Some(m) = metrics {
                    m.encrypted_refused("quic", per_client);
                }
                incoming.refuse();
                continue;
            }
        };
        let cx = cx.clone();
        tracker.spawn(async move {
            let _open = Open::new(cx.metrics.clone(), "quic");
            match tokio::time::timeout(cx.limits.read_timeout, incoming).await {
                Ok(Ok(conn)) => connection(conn, src, &cx).await,
                Ok(Err(e)) => debug!(%src, error = %e, "quic handshake failed"),
                Err(_) => debug!(%src, "quic handshake timed out"),
            }
            drop(slot);
        });
    }
    // Connections finish the streams they have; new ones are refused.
    endpoint.set_server_config(None);
}

async fn connection(conn: quinn::Connection, src: SocketAddr, cx: &TcpContext) {
    let streams = tokio_util::task::TaskTracker::new();
    loop {
        let next = tokio::select! {
            r = tokio::time::timeout(cx.idle, conn.accept_bi()) => r,
            _ = cx.shutdown.cancelled() => break,
        };
        let (send, recv) = match next {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                debug!(%src, error = %e, "quic connection ended");
                return;
            }
            Err(_) => break, // idle: no query for the idle timeout
        };
        let cx = cx.clone();
        streams.spawn(async move { stream(send, recv, src, &cx).await });
    }
    // Answers already being written go out before the close.
    streams.close();
    let _ = tokio::time::timeout(cx.limits.read_timeout, streams.wait()).await;
    conn.close(VarInt::from_u32(DOQ_NO_ERROR), b"");
}

async fn stream(mut send: quinn::SendStream, mut recv: quinn::RecvStream, src: SocketAddr, cx: &TcpContext) {
    let read = tokio::time::timeout(cx.limits.read_timeout, recv.read_to_end(2 + usize::from(u16::MAX))).await;
    let Ok(Ok(bytes)) = read else {
        debug!(%src, "quic stream read timeout or error");
        let _ = send.reset(VarInt::from_u32(DOQ_PROTOCOL_ERROR));
        return;
    };
    // The whole stream is one length-prefixed message (RFC 9250 §4.2).
    let framed_ok = bytes.len() >= 2 && usize::from(u16::from_be_bytes([bytes[0], bytes[1]])) == bytes.len() - 2;
    let mut out = Vec::new();
    if !framed_ok || !cx.workers.answer(&bytes[2..], src, &cx.state, &mut out) {
        let _ = send.reset(VarInt::from_u32(DOQ_PROTOCOL_ERROR));
        return;
    }
    super::padding::pad_if_asked(&bytes[2..], &mut out);
    let Ok(len) = u16::try_from(out.len()) else {
        let _ = send.reset(VarInt::from_u32(DOQ_PROTOCOL_ERROR));
        return;
    };
    let mut framed = Vec::with_capacity(out.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(&out);
    let written = tokio::time::timeout(cx.limits.read_timeout, send.write_all(&framed)).await;
    if matches!(written, Ok(Ok(()))) {
        let _ = send.finish();
        // Let the answer reach the client before the stream is dropped.
        let _ = tokio::time::timeout(cx.limits.read_timeout, send.stopped()).await;
    }
}
