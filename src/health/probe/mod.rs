//! Running one check. A probe only reports what it saw; the state machine
//! (`health::state`) decides what it means.

mod http;
mod tcp;

pub use http::{describe, HttpClients};

use std::time::{Duration, Instant};

use super::target::{ProbeKind, ProbeTarget};

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    pub ok: bool,
    pub rtt: Duration,
    /// Why it failed (or what it saw), for `/status`.
    pub detail: String,
}

/// Run `target` once, bounded by its timeout.
pub async fn run(target: &ProbeTarget, clients: &HttpClients) -> ProbeResult {
    let start = Instant::now();
    let outcome = tokio::time::timeout(target.timeout, async {
        match &target.kind {
            ProbeKind::Http(h) => http::check(h, clients).await,
            ProbeKind::Tcp(addr) => tcp::check(*addr).await,
        }
    })
    .await;
    let rtt = start.elapsed();
    match outcome {
        Ok(Ok(detail)) => ProbeResult { ok: true, rtt, detail },
        Ok(Err(detail)) => ProbeResult { ok: false, rtt, detail },
        Err(_) => ProbeResult { ok: false, rtt, detail: format!("timeout after {:?}", target.timeout) },
    }
}
