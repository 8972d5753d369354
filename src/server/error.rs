//! Why serving could not start.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// `proto` is "UDP", "TCP", "TLS" or "QUIC".
    #[error("cannot bind {proto} {addr}: {source}")]
    Bind { proto: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("cannot install the UDP wake-up signal handler: {0}")]
    WakeSignal(std::io::Error),
    #[error("cannot start UDP receiver {index} on {addr}: {source}")]
    Receiver { addr: SocketAddr, index: usize, source: std::io::Error },
    #[error("cannot read the address of a bound socket: {0}")]
    LocalAddr(std::io::Error),
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
