//! TCP (RFC 7766): length-prefixed queries, several per connection, answered
//! in order; an idle connection is closed after the idle timeout. On shutdown
//! a connection answers every query its client already sent, then closes
//! with FIN (never a reset that would lose answers in flight).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::Published;
use crate::answer::{Transport, Worker};
use crate::metrics::Metrics;

/// The answer workers TCP connections share. A connection borrows one for
/// each query and gives it back before awaiting anything, so there are never
/// more workers than queries being answered at once (at most the runtime's
/// threads) and their caches stay warm across connections. A worker per
/// connection would start cold on every connection (a TCP client often asks
/// one question), and one per runtime thread would need a thread-local. The
/// cost: a lock to take and one to return, around a `Vec` pop and push, per
/// TCP query, next to its reads, writes and buffers.
pub struct Workers {
    idle: Mutex<Vec<Worker>>,
    metrics: Option<Arc<Metrics>>,
}

impl Workers {
    pub fn new(metrics: Option<Arc<Metrics>>) -> Workers {
        Workers { idle: Mutex::default(), metrics }
    }

    /// Answer `msg` (see `Worker::answer`) with a worker from the pool, or a new one.
    pub(super) fn answer(&self, msg: &[u8], src: std::net::SocketAddr, state: &Published, out: &mut Vec<u8>) -> bool {
        let idle = || self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let taken = idle().pop();
        let mut worker = taken.unwrap_or_else(|| Worker::new(self.metrics.as_deref()));
        let sent = worker.answer(&state.load(), msg, src, Transport::Tcp, out);
        idle().push(worker);
        sent
    }
}

/// Caps on TCP clients. A connection handles one query at a time (answers
/// go out in order), so a client has at most one query in flight per connection.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_client: usize,
    /// Time allowed to receive the rest of a message once its first byte arrived.
    pub read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_connections: 1024, max_per_client: 32, read_timeout: Duration::from_secs(5) }
    }
}

/// Open connections, in total and per client address.
#[derive(Default)]
pub struct Connections {
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// Holds a connection's place; gives it back when dropped.
pub(super) struct Slot {
    conns: Arc<Connections>,
    ip: IpAddr,
}

impl Connections {
    /// Take a place for `ip`, or say which cap is full (`true`: per client).
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr, limits: &Limits) -> Result<Slot, bool> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= limits.max_connections {
            return Err(false);
        }
        let n = open.per_client.entry(ip).or_insert(0);
        if *n >= limits.max_per_client {
            return Err(true);
        }
        *n += 1;
        open.total += 1;
        Ok(Slot { conns: Arc::clone(self), ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.conns.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total -= 1;
        if let Some(n) = open.per_client.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.per_client.remove(&self.ip);
            }
        }
    }
}

/// What every TCP listener and connection shares.
#[derive(Clone)]
pub struct TcpContext {
    pub state: Arc<Published>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub idle: Duration,
    pub limits: Limits,
    pub conns: Arc<Connections>,
    pub workers: Arc<Workers>,
    pub metrics: Option<Arc<Metrics>>,
    /// Pad answers to queries that ask for it (encrypted transports, `super::padding`).
    pub pad: bool,
}

/// A listening socket on `addr` (plain TCP or TLS; IPv6-only for an IPv6
/// address, see `socket_for`).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = super::socket_for(addr, socket2::Type::STREAM, socket2::Protocol::TCP)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

pub async fn run(listener: TcpListener, cx: TcpContext) {
    let refused = |m: &Metrics, per_client: bool| m.tcp_refused(per_client);
    while let Some((stream, src, slot)) = accept(&listener, &cx, "tcp", refused).await {
        let conn_cx = cx.clone();
        cx.tracker.spawn(async move {
            connection(stream, src, &conn_cx).await;
            drop(slot);
        });
    }
}

/// The next connection admitted under `cx`'s caps (plain TCP and TLS alike),
/// set to no-delay; `None` once shutdown begins. A refused one is closed and
/// counted through `refused`.
pub(super) async fn accept(
    listener: &TcpListener,
    cx: &TcpContext,
    transport: &'static str,
    refused: impl Fn(&Metrics, bool),
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr, Slot)> {
    loop {
        let (stream, src) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    debug!(error = %e, transport, "accept error");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = cx.shutdown.cancelled() => return None,
        };
        match cx.conns.admit(src.ip(), &cx.limits) {
            Ok(slot) => {
                let _ = stream.set_nodelay(true);
                return Some((stream, src, slot));
            }
            Err(per_client) => {
                debug!(%src, per_client, transport, "connection refused: cap reached");
                if let Some(m) = &cx.metrics {
                    refused(m, per_client);
                }
            }
        }
    }
}

/// After shutdown, how long a connection waits for the next query its client
/// already sent (bytes still crossing loopback, or behind a full send buffer)
/// before it closes.
const STOP_LINGER: Duration = Duration::from_millis(200);

/// Serve one connection (plain TCP, or TLS once its handshake is done).
pub(super) async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    src: std::net::SocketAddr,
    cx: &TcpContext,
) {
    let (shutdown, idle, read_timeout) = (&cx.shutdown, cx.idle, cx.limits.read_timeout);
    let mut len_buf = [0u8; 2];
    let mut out = Vec::new();
    let mut stopping = false;
    loop {
        // Waiting for the next query: the idle timeout ends the connection;
        // shutdown ends it only once the queries already sent are answered.
        let first = if stopping {
            tokio::time::timeout(STOP_LINGER, stream.read_exact(&mut len_buf[..1])).await
        } else {
            tokio::select! {
                r = tokio::time::timeout(idle, stream.read_exact(&mut len_buf[..1])) => r,
                _ = shutdown.cancelled() => {
                    stopping = true;
                    continue;
                }
            }
        };
        if !matches!(first, Ok(Ok(_))) {
            break;
        }
        // From here on the query is in flight: finish it even during shutdown.
        let msg = tokio::time::timeout(read_timeout, async {
            stream.read_exact(&mut len_buf[1..]).await?;
            let len = u16::from_be_bytes(len_buf) as usize;
            let mut msg = vec![0u8; len];
            stream.read_exact(&mut msg).await?;
            Ok::<_, std::io::Error>(msg)
        })
        .await;
        let Ok(Ok(msg)) = msg else {
            debug!(%src, "tcp read timeout or error");
            break;
        };
        if !cx.workers.answer(&msg, src, &cx.state, &mut out) {
            break; // junk we do not answer: close rather than stall the client
        }
        if cx.pad {
            super::padding::pad_if_asked(&msg, &mut out);
        }
        // The answer path keeps TCP answers within 65,535 bytes; were one
        // longer, its length would not fit the prefix and the stream would
        // desynchronise: close instead.
        let Ok(len) = u16::try_from(out.len()) else {
            tracing::error!(%src, len = out.len(), "answer too long for TCP framing; closing the connection");
            break;
        };
        let mut framed = Vec::with_capacity(out.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&out);
        if tokio::time::timeout(read_timeout, stream.write_all(&framed)).await.is_err() {
            return;
        }
    }
    close(stream).await;
}

/// Close with FIN, not RST: the kernel resets a connection closed with
/// unread bytes, and a reset can discard answers the client has not read
/// yet. So shut our side, then read and drop until the client closes (briefly).
async fn close<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
