//! Why serving could not start.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// `proto` is "UDP", "TCP", "TLS" or "QUIC".
    #[error("cannot bind {proto} {addr}: {}", bind_reason(source))]
    Bind { proto: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("cannot install the UDP wake-up signal handler: {0}")]
    WakeSignal(std::io::Error),
    #[error("cannot start UDP receiver {index} on {addr}: {source}")]
    Receiver { addr: SocketAddr, index: usize, source: std::io::Error },
    #[error("cannot read the address of a bound socket: {0}")]
    LocalAddr(std::io::Error),
}

/// Binding a port below 1024 needs root or the capability: say so.
pub const PERMISSION_HINT: &str = "permission denied (ports below 1024 need CAP_NET_BIND_SERVICE: \
run under the packaged systemd unit, or `setcap cap_net_bind_service=+ep` on the binary, or use a port >= 1024)";

fn bind_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => PERMISSION_HINT.to_string(),
        _ => e.to_string(),
    }
}

impl ServeError {
    /// A bind failed because the host lacks the address or its family
    /// (no `::1`, IPv6 disabled), not because of a clash or a permission.
    pub fn is_missing_address(&self) -> bool {
        match self {
            ServeError::Bind { source, .. } => {
                source.kind() == std::io::ErrorKind::AddrNotAvailable
                    || source.raw_os_error() == Some(libc::EAFNOSUPPORT)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_hints_at_the_capability() {
        let addr: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let e = ServeError::Bind { proto: "UDP", addr, source: std::io::ErrorKind::PermissionDenied.into() };
        let text = e.to_string();
        assert!(text.starts_with("cannot bind UDP 192.0.2.1:53: permission denied"), "{text}");
        assert!(text.contains("CAP_NET_BIND_SERVICE"), "{text}");
        let e = ServeError::Bind { proto: "TCP", addr, source: std::io::ErrorKind::AddrInUse.into() };
        assert!(!e.to_string().contains("CAP_NET_BIND_SERVICE"));
    }
}
