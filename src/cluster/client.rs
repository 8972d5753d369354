//! etcd connection settings from `[cluster]`: timeouts that keep a dead etcd
//! from holding anything up, TLS and user/password when configured.

use std::time::Duration;

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};

use super::ClusterError;
use crate::config::cluster_file::ClusterFile;

fn read(what: &'static str, file: &std::path::Path) -> Result<Vec<u8>, ClusterError> {
    std::fs::read(file).map_err(|source| ClusterError::File { what, file: file.to_path_buf(), source })
}

pub fn options(cfg: &ClusterFile) -> Result<ConnectOptions, ClusterError> {
    let mut o = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(1))
        .with_timeout(super::WRITE_TIMEOUT)
        // A watch on a half-dead connection must fail, not hang.
        .with_keep_alive(Duration::from_secs(1), Duration::from_secs(1))
        .with_keep_alive_while_idle(true)
        // A member cut off from etcd's quorum must fail our watches, not
        // leave them silently stale (split brain: behave as "etcd down").
        .with_require_leader(true);
    let tls = cfg.ca_file.is_some() || cfg.cert_file.is_some() || cfg.endpoints.iter().any(|e| e.starts_with("https"));
    if tls {
        let mut t = TlsOptions::new();
        if let Some(ca) = &cfg.ca_file {
            t = t.ca_certificate(Certificate::from_pem(read("the etcd CA file", ca)?));
        }
        if let (Some(cert), Some(key)) = (&cfg.cert_file, &cfg.key_file) {
            t = t.identity(Identity::from_pem(
                read("the etcd client certificate", cert)?,
                read("the etcd client key", key)?,
            ));
        }
        o = o.with_tls(t);
    }
    if let (Some(user), Some(pw)) = (&cfg.user, &cfg.password_file) {
        let password = String::from_utf8_lossy(&read("the etcd password file", pw)?).trim().to_string();
        o = o.with_user(user.clone(), password);
    }
    Ok(o)
}
