//! DNS over TLS (RFC 7858): TLS on TCP, ALPN `dot`, then the same framing,
//! limits and answer path as TCP (`tcp::connection`), with answers padded
//! when the query asks (`padding`). The certificate and key live in
//! `Certs`, shared with DNS over QUIC and swapped on SIGHUP: a new handshake
//! gets the new certificate; an established session keeps its keys.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tracing::{debug, info};

use super::tcp::TcpContext;

/// A certificate or key that cannot be used, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct CertError {
    pub path: PathBuf,
    pub message: String,
}

/// The served certificate chain and key, and where they are read from.
#[derive(Debug)]
pub struct Certs {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
}

impl Certs {
    /// Read both files; an unreadable or mismatched pair refuses the start.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Certs>, CertError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = read_pair(cert_path, key_path, &provider)?;
        Ok(Arc::new(Certs {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            provider,
            current: ArcSwap::from_pointee(key),
        }))
    }

    /// Read the files again; on error keep serving the old pair and say why.
    pub fn reload(&self) -> bool {
        match read_pair(&self.cert_path, &self.key_path, &self.provider) {
            Ok(key) => {
                self.current.store(Arc::new(key));
                info!(cert = %self.cert_path.display(), "reloaded TLS certificate");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate reload failed; still serving the previous one");
                false
            }
        }
    }

    /// A rustls server configuration offering `alpn`, resolving the current
    /// pair per handshake. QUIC is TLS 1.3 only (RFC 9001); DoT also takes 1.2.
    pub fn server_config(self: &Arc<Self>, alpn: &[u8], tls13_only: bool) -> Arc<rustls::ServerConfig> {
        let versions: &[_] =
            if tls13_only { &[&rustls::version::TLS13] } else { &[&rustls::version::TLS13, &rustls::version::TLS12] };
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(versions)
            .expect("the aws-lc-rs provider supports TLS 1.2 and 1.3");
        let mut cfg = builder.with_no_client_auth().with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        cfg.alpn_protocols = vec![alpn.to_vec()];
        Arc::new(cfg)
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn read_pair(cert_path: &Path, key_path: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, CertError> {
    let err = |path: &Path, message: String| CertError { path: path.to_path_buf(), message };
    // Read through config's reader: only regular files, bounded (a FIFO or
    // /dev/zero named as a certificate must refuse the start, not hang it).
    let cert_bytes = crate::config::files::read_bytes(cert_path).map_err(|e| err(cert_path, e))?;
    let chain = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(cert_path, format!("bad PEM certificate: {e}")))?;
    if chain.is_empty() {
        return Err(err(cert_path, "no certificate in the file".into()));
    }
    let key_bytes = crate::config::files::read_bytes(key_path).map_err(|e| err(key_path, e))?;
    let key =
        PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| err(key_path, format!("no usable private key: {e}")))?;
    // Checks that the key signs with the certificate's public key.
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| err(key_path, format!("key does not fit the certificate: {e}")))
}

/// Accept TLS connections on `listener` under `cx`'s caps and timeouts.
pub async fn run(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor, cx: TcpContext) {
    let TcpContext { shutdown, tracker, limits, conns, metrics, .. } = &cx;
    loop {
        let (stream, src) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    debug!(error = %e, "tls accept error");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let slot = match conns.admit(src.ip(), limits) {
            Ok(slot) => slot,
            Err(per_client) => {
                debug!(%src, per_client, "tls connection refused: cap reached");
                if let Some(m) = metrics {
                    m.encrypted_refused("tls", per_client);
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (cx, acceptor) = (cx.clone(), acceptor.clone());
        tracker.spawn(async move {
            let _open = Open::new(cx.metrics.clone(), "tls");
            // The handshake is bounded like a query's read; slow clients only hold their own slot.
            match tokio::time::timeout(cx.limits.read_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => super::tcp::connection(tls, src, &cx).await,
                Ok(Err(e)) => debug!(%src, error = %e, "tls handshake failed"),
                Err(_) => debug!(%src, "tls handshake timed out"),
            }
            drop(slot);
        });
    }
}

/// Counts an open encrypted connection in `/metrics` while it lives.
pub(super) struct Open {
    metrics: Option<Arc<crate::metrics::Metrics>>,
    transport: &'static str,
}

impl Open {
    pub(super) fn new(metrics: Option<Arc<crate::metrics::Metrics>>, transport: &'static str) -> Open {
        if let Some(m) = &metrics {
            m.encrypted_open(transport, true);
        }
        Open { metrics, transport }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(m) = &self.metrics {
            m.encrypted_open(self.transport, false);
        }
    }
}
