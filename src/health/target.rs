//! What to probe: one `ProbeTarget` per distinct check, however many
//! regions, services or zones share it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// HTTP or HTTPS GET (or another method) of a URL.
    Http(HttpProbe),
    /// A TCP connect.
    Tcp(SocketAddr),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpProbe {
    /// With `{addr}` already replaced by the probed address.
    pub url: String,
    pub method: String,
    pub host: Option<String>,
    /// Accepted status codes, inclusive.
    pub status: (u16, u16),
    /// A substring the body must contain.
    pub body: Option<String>,
    /// Bytes of body read at most (the rest is ignored).
    pub body_limit: usize,
    pub verify_tls: bool,
    /// PEM file of the CA to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Where a successful response reports the backend's load, if anywhere.
    pub load: Option<LoadSource>,
}

/// Where an HTTP probe finds a load report in the response.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LoadSource {
    /// A response header holding a number.
    Header(String),
    /// A JSON body field, `a.b.c` for nested objects.
    Json(String),
}

/// A check and its timing; equal targets are probed once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeTarget {
    pub kind: ProbeKind,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failures that mark an endpoint down.
    pub fall: u32,
    /// Consecutive successes that mark it up again.
    pub rise: u32,
}

impl ProbeTarget {
    /// A short stable name for logs, `/status` and metrics labels.
    pub fn label(&self) -> String {
        match &self.kind {
            ProbeKind::Http(h) => format!("{} {}", h.method, h.url),
            ProbeKind::Tcp(a) => format!("tcp {a}"),
        }
    }
}

/// The probing attached to one answered address of a region.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub addr: std::net::IpAddr,
    pub target: Option<std::sync::Arc<ProbeTarget>>,
}

/// One region as health judges it: its endpoints and how many must be up.
/// The server hands these over (`Monitor::sync`), so health reads no zones.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionTargets {
    pub name: String,
    /// One per answered address, in the region's order.
    pub endpoints: Vec<Endpoint>,
    /// Healthy endpoints needed for the region to be up.
    pub min_healthy: usize,
    /// Ramp a returning region up over this long.
    pub slow_start: Option<std::time::Duration>,
}
