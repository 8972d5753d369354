//! TCP (RFC 7766): length-prefixed queries, several per connection, answered
//! in order; an idle connection is closed after the idle timeout. On shutdown
//! a connection finishes the answer it is working on, then closes.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::answer::{respond, Transport};
use crate::state::SharedState;

/// Time allowed to receive the rest of a message once its first byte arrived.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(
    listener: TcpListener,
    state: SharedState,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    idle: Duration,
) {
    loop {
        let (stream, src) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => { debug!(error = %e, "tcp accept error"); continue; }
            },
            _ = shutdown.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        tracker.spawn(connection(stream, src, state.clone(), shutdown.clone(), idle));
    }
}

async fn connection(
    mut stream: TcpStream,
    src: std::net::SocketAddr,
    state: SharedState,
    shutdown: CancellationToken,
    idle: Duration,
) {
    let mut len_buf = [0u8; 2];
    loop {
        // Waiting for the next query: the idle timeout and shutdown both end the connection.
        let first = tokio::select! {
            r = tokio::time::timeout(idle, stream.read_exact(&mut len_buf[..1])) => r,
            _ = shutdown.cancelled() => return,
        };
        if !matches!(first, Ok(Ok(_))) {
            return;
        }
        // From here on the query is in flight: finish it even during shutdown.
        let msg = tokio::time::timeout(READ_TIMEOUT, async {
            stream.read_exact(&mut len_buf[1..]).await?;
            let len = u16::from_be_bytes(len_buf) as usize;
            let mut msg = vec![0u8; len];
            stream.read_exact(&mut msg).await?;
            Ok::<_, std::io::Error>(msg)
        })
        .await;
        let Ok(Ok(msg)) = msg else {
            debug!(%src, "tcp read timeout or error");
            return;
        };
        let out = respond(&state.load(), &msg, src, Transport::Tcp);
        let Some(out) = out else {
            return; // junk we do not answer: close rather than stall the client
        };
        let mut framed = Vec::with_capacity(out.len() + 2);
        framed.extend_from_slice(&(out.len() as u16).to_be_bytes());
        framed.extend_from_slice(&out);
        if tokio::time::timeout(READ_TIMEOUT, stream.write_all(&framed)).await.is_err() {
            return;
        }
    }
}
