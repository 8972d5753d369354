//! TCP probe: the endpoint accepts a connection.

use std::net::SocketAddr;

pub async fn check(addr: SocketAddr) -> Result<String, String> {
    match tokio::net::TcpStream::connect(addr).await {
        Ok(_) => Ok("connected".into()),
        Err(e) => Err(format!("connect {addr}: {e}")),
    }
}
