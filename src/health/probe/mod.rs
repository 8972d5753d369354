//! Running one check. A probe only reports what it saw; the state machine
//! (`health::endpoint_state`) decides what it means.

mod http;
mod tcp;

pub use http::{describe, HttpClients};

use std::time::{Duration, Instant};

use super::target::{ProbeKind, ProbeTarget};

/// Logging directives that keep probe failures from flooding the log:
/// rustls-platform-verifier logs an ERROR for every certificate it rejects,
/// i.e. once per probe of a failing HTTPS target. The probe already reports
/// the reason, logged once at each state change and counted in
/// `meridian_probes_total{result="fail"}` and `/status`.
pub const QUIET_LOG_DIRECTIVES: &[&str] = &["rustls_platform_verifier=off"];

/// `filter` with `QUIET_LOG_DIRECTIVES` added, except for targets the
/// operator named in `configured` (e.g. `MERIDIAN_LOG`).
pub fn quiet_probe_logs(mut filter: tracing_subscriber::EnvFilter, configured: &str) -> tracing_subscriber::EnvFilter {
    for d in QUIET_LOG_DIRECTIVES {
        let target = d.split('=').next().unwrap_or(d);
        if !configured.contains(target) {
            if let Ok(directive) = d.parse() {
                filter = filter.add_directive(directive);
            }
        }
    }
    filter
}

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    pub ok: bool,
    pub rtt: Duration,
    /// Why it failed (or what it saw), for `/status`.
    pub detail: String,
    /// The load the backend reported (HTTP probes configured to read one).
    pub load: Option<f64>,
}

/// Run `target` once, bounded by its timeout.
pub async fn run(target: &ProbeTarget, clients: &HttpClients) -> ProbeResult {
    let start = Instant::now();
    let outcome = tokio::time::timeout(target.timeout, async {
        match &target.kind {
            ProbeKind::Http(h) => http::check(h, clients).await,
            ProbeKind::Tcp(addr) => tcp::check(*addr).await.map(|d| (d, None)),
        }
    })
    .await;
    let rtt = start.elapsed();
    match outcome {
        Ok(Ok((detail, load))) => ProbeResult { ok: true, rtt, detail, load },
        Ok(Err(detail)) => ProbeResult { ok: false, rtt, detail, load: None },
        Err(_) => ProbeResult { ok: false, rtt, detail: format!("timeout after {:?}", target.timeout), load: None },
    }
}
