//! `[cluster]` in meridian.toml: the etcd this node shares overrides through.
//! Without it a node is alone, as before.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// This node's name: unique in the cluster, no `/`.
    pub node: String,
    /// etcd v3 client URLs (`http://127.0.0.1:2379`, `https://...` with TLS).
    pub endpoints: Vec<String>,
    /// Key prefix, so several Meridian clusters can share one etcd.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Seconds to wait at start for the first etcd sync before answering
    /// (then the local cache is served).
    #[serde(default = "default_first_sync")]
    pub first_sync_secs: u64,
    /// PEM CA bundle to verify etcd's certificate (https endpoints).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for etcd's `--client-cert-auth`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// etcd user (with `password_file`), when etcd has auth enabled.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

fn default_prefix() -> String {
    "/meridian".into()
}
fn default_first_sync() -> u64 {
    3
}

/// The longest start-up wait accepted: the data plane must come up.
pub const MAX_FIRST_SYNC_SECS: u64 = 60;

impl ClusterFile {
    /// What is wrong with it, if anything: (the key to point at, the message).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if self.node.is_empty() || self.node.contains('/') || self.node.chars().any(char::is_whitespace) {
            return Some(("node", format!("node {:?} must be a non-empty name without '/' or spaces", self.node)));
        }
        if self.endpoints.is_empty() {
            return Some(("endpoints", "endpoints must name at least one etcd URL".into()));
        }
        if let Some(e) = self.endpoints.iter().find(|e| !e.starts_with("http://") && !e.starts_with("https://")) {
            return Some(("endpoints", format!("etcd endpoint {e:?} must start with http:// or https://")));
        }
        if !self.prefix.starts_with('/') {
            return Some(("prefix", format!("prefix {:?} must start with '/'", self.prefix)));
        }
        if self.first_sync_secs > MAX_FIRST_SYNC_SECS {
            return Some((
                "first_sync_secs",
                format!("first_sync_secs is at most {MAX_FIRST_SYNC_SECS} (got {})", self.first_sync_secs),
            ));
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Some(("cert_file", "cert_file and key_file go together".into()));
        }
        if self.user.is_some() != self.password_file.is_some() {
            return Some(("user", "user and password_file go together".into()));
        }
        None
    }

    pub fn rebase(&mut self, base: &std::path::Path) {
        for p in
            [&mut self.ca_file, &mut self.cert_file, &mut self.key_file, &mut self.password_file].into_iter().flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::ServerConfig;

    fn load(text: &str) -> Result<ServerConfig, String> {
        let dir = std::env::temp_dir().join(format!("meridian-cluster-cfg-{}-{}", std::process::id(), text.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("meridian.toml");
        std::fs::write(&file, text).unwrap();
        let got = ServerConfig::load(&file).map_err(|e| e.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        got
    }

    #[test]
    fn cluster_section_parses_with_defaults_and_rebased_files() {
        let cfg = load(
            "probe_source = \"127.0.0.2\"\n[cluster]\nnode = \"a\"\nendpoints = [\"http://127.0.0.1:2379\"]\n\
             ca_file = \"ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(cfg.probe_source, Some("127.0.0.2".parse().unwrap()));
        let c = cfg.cluster.unwrap();
        assert_eq!((c.prefix.as_str(), c.first_sync_secs), ("/meridian", 3));
        assert!(c.ca_file.unwrap().is_absolute(), "relative to the file's directory");
    }

    #[test]
    fn bad_cluster_settings_are_errors_at_their_line() {
        let e = load("[cluster]\nendpoints = [\"http://127.0.0.1:2379\"]\nnode = \"a/b\"\n").unwrap_err();
        assert!(e.contains(":3:1:") && e.contains("without '/'"), "{e}");
        let e = load("[cluster]\nnode = \"a\"\nendpoints = [\"127.0.0.1:2379\"]\n").unwrap_err();
        assert!(e.contains(":3:1:") && e.contains("http://"), "{e}");
        let e = load("[cluster]\nnode = \"a\"\nendpoints = [\"http://x:1\"]\ncert_file = \"c.pem\"\n").unwrap_err();
        assert!(e.contains(":4:1:") && e.contains("key_file"), "{e}");
        let e = load("[cluster]\nnode = \"a\"\nendpoints = [\"http://x:1\"]\nquorum = 2\n").unwrap_err();
        assert!(e.contains("quorum"), "{e}");
    }
}
