//! `[cluster]` in meridian.toml: the etcd this node shares overrides through.
//! Without it a node is alone, as before.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// This node's name: unique in the cluster, no `/` (default: the
    /// server file's `node_id`, so NSID and the cluster name the node alike).
    #[serde(default)]
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
    /// When the cluster calls a target down: `"majority"` (default), `"all"`,
    /// or a number of nodes. Every node must use the same rule.
    #[serde(default)]
    pub quorum: QuorumSetting,
}

/// `quorum` as written: a rule's name or a number of nodes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum QuorumSetting {
    Name(String),
    Count(i64),
}

impl Default for QuorumSetting {
    fn default() -> Self {
        QuorumSetting::Name("majority".into())
    }
}

/// When a target is down for the cluster, counting the live nodes that have
/// a verdict on it (up or down) and those of them that say down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    /// More than half say down (a tie keeps it up).
    Majority,
    /// Every one says down.
    All,
    /// At least this many say down (all of them, when fewer have a verdict).
    AtLeast(usize),
}

impl Quorum {
    /// Whether `down` of `judging` nodes saying down makes the target down.
    pub fn is_down(self, down: usize, judging: usize) -> bool {
        down > 0
            && match self {
                Quorum::Majority => down * 2 > judging,
                Quorum::All => down == judging,
                Quorum::AtLeast(n) => down >= n.min(judging),
            }
    }
}

impl std::fmt::Display for Quorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quorum::Majority => f.write_str("a majority of live nodes says down"),
            Quorum::All => f.write_str("every live node says down"),
            Quorum::AtLeast(n) => write!(f, "at least {n} live node(s) say down"),
        }
    }
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
    /// The quorum rule, or what is wrong with `quorum`.
    pub fn quorum(&self) -> Result<Quorum, String> {
        match &self.quorum {
            QuorumSetting::Name(n) if n == "majority" => Ok(Quorum::Majority),
            QuorumSetting::Name(n) if n == "all" => Ok(Quorum::All),
            QuorumSetting::Count(n) if *n >= 1 => Ok(Quorum::AtLeast(usize::try_from(*n).unwrap_or(usize::MAX))),
            QuorumSetting::Name(n) => Err(format!("quorum {n:?} must be \"majority\", \"all\" or a number of nodes")),
            QuorumSetting::Count(n) => Err(format!("quorum {n} must be at least 1 node")),
        }
    }

    /// What is wrong with it, if anything: (the key to point at, the message).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if let Err(e) = self.quorum() {
            return Some(("quorum", e));
        }
        if self.node.is_empty() || self.node.contains('/') || self.node.chars().any(char::is_whitespace) {
            return Some((
                "node",
                format!("node {:?} must be a non-empty name without '/' or spaces (set it, or node_id)", self.node),
            ));
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
        // One directory per call: tests run in parallel, and two texts of one
        // length used to share (and delete) a directory.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("meridian-cluster-cfg-{}-{n}", std::process::id()));
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
    fn the_cluster_node_defaults_to_node_id() {
        let c = load("node_id = \"fra-1\"\n[cluster]\nendpoints = [\"http://x:1\"]\n").unwrap().cluster.unwrap();
        assert_eq!(c.node, "fra-1");
        let c = load("node_id = \"fra-1\"\n[cluster]\nnode = \"b\"\nendpoints = [\"http://x:1\"]\n").unwrap();
        assert_eq!(c.cluster.unwrap().node, "b", "an explicit node wins");
        let e = load("[cluster]\nendpoints = [\"http://x:1\"]\n").unwrap_err();
        assert!(e.contains("set it, or node_id"), "neither: {e}");
    }

    #[test]
    fn bad_cluster_settings_are_errors_at_their_line() {
        let e = load("[cluster]\nendpoints = [\"http://127.0.0.1:2379\"]\nnode = \"a/b\"\n").unwrap_err();
        assert!(e.contains(":3:1:") && e.contains("without '/'"), "{e}");
        let e = load("[cluster]\nnode = \"a\"\nendpoints = [\"127.0.0.1:2379\"]\n").unwrap_err();
        assert!(e.contains(":3:1:") && e.contains("http://"), "{e}");
        let e = load("[cluster]\nnode = \"a\"\nendpoints = [\"http://x:1\"]\ncert_file = \"c.pem\"\n").unwrap_err();
        assert!(e.contains(":4:1:") && e.contains("key_file"), "{e}");
        let e = load("[cluster]\nnode = \"a\"\nendpoints = [\"http://x:1\"]\nquorom = 2\n").unwrap_err();
        assert!(e.contains("quorom"), "unknown keys are refused: {e}");
        let e = load("[cluster]\nnode = \"a\"\nendpoints = [\"http://x:1\"]\nquorum = \"most\"\n").unwrap_err();
        assert!(e.contains(":4:1:") && e.contains("\"majority\", \"all\" or a number"), "{e}");
        let e = load("[cluster]\nnode = \"a\"\nendpoints = [\"http://x:1\"]\nquorum = 0\n").unwrap_err();
        assert!(e.contains(":4:1:") && e.contains("at least 1"), "{e}");
    }

    #[test]
    fn quorum_rules() {
        use super::Quorum;
        let q = |text: &str| {
            load(&format!("[cluster]\nnode = \"a\"\nendpoints = [\"http://x:1\"]\n{text}"))
                .unwrap()
                .cluster
                .unwrap()
                .quorum()
                .unwrap()
        };
        assert_eq!(q(""), Quorum::Majority);
        assert_eq!(q("quorum = \"all\"\n"), Quorum::All);
        assert_eq!(q("quorum = 2\n"), Quorum::AtLeast(2));
        // (down, judging) → down?
        assert!(!Quorum::Majority.is_down(1, 2) && Quorum::Majority.is_down(2, 3));
        assert!(!Quorum::All.is_down(2, 3) && Quorum::All.is_down(3, 3));
        assert!(Quorum::AtLeast(1).is_down(1, 3), "1: any node saying down");
        assert!(!Quorum::AtLeast(2).is_down(1, 3) && Quorum::AtLeast(2).is_down(2, 3));
        assert!(Quorum::AtLeast(2).is_down(1, 1), "fewer judging than the count: all of them");
        assert!(!Quorum::All.is_down(0, 0) && !Quorum::AtLeast(1).is_down(0, 2));
    }
}
