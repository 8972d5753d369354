//! TCP probe: the endpoint accepts a connection.

use std::net::{IpAddr, SocketAddr};

/// Connect to `addr`, from `source` (port chosen by the system) when given.
pub async fn check(addr: SocketAddr, source: Option<IpAddr>) -> Result<String, String> {
    let connected = match source {
        None => tokio::net::TcpStream::connect(addr).await,
        Some(ip) => async {
            let socket =
                if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
            socket.bind(SocketAddr::new(ip, 0))?;
            socket.connect(addr).await
        }
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("from {ip}: {e}"))),
    };
    match connected {
        Ok(_) => Ok("connected".into()),
        Err(e) => Err(format!("connect {addr}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    /// `probe_source`: the backend sees the configured source address.
    #[tokio::test]
    async fn probes_leave_from_the_source_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let source: std::net::IpAddr = "127.0.0.3".parse().unwrap();
        let (checked, accepted) = tokio::join!(super::check(addr, Some(source)), listener.accept());
        assert!(checked.is_ok(), "{checked:?}");
        assert_eq!(accepted.unwrap().1.ip(), source);
    }
}
