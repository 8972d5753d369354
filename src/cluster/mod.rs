//! Several nodes, one answer: operator overrides, probe verdicts and pushed
//! loads shared through etcd v3.
//!
//! etcd holds the truth (`<prefix>/overrides/...`); every node watches it and
//! hands the whole set to its health monitor, which keeps `overrides.json` as
//! a cache (a node restarted while etcd is down serves the last set it knew).
//! The DNS data plane never waits on etcd: only admin writes and the start-up
//! wait (bounded by `first_sync_secs`) do. A write that etcd does not take is
//! refused, never applied to one node alone.

mod client;
mod loads;
mod overrides;
mod verdicts;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::cluster_file::ClusterFile;
use crate::health::{Monitor, Override, Scope};

/// How long an admin write may wait for etcd before it is refused.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a shared change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "etcd ({endpoints}) did not take the change: {reason}; nothing was changed on any node \
         (Meridian keeps answering from the last shared state; retry when etcd is reachable)"
    )]
    Unreachable { endpoints: String, reason: String },
    #[error("cannot read {what} {}: {source}", .file.display())]
    File { what: &'static str, file: std::path::PathBuf, source: std::io::Error },
}

/// This node's link to the shared state.
pub struct Cluster {
    cfg: ClusterFile,
    /// The client of the last successful connection (writes use it).
    client: Mutex<Option<etcd_client::Client>>,
    connected: AtomicBool,
    /// etcd revision of the last change applied to the monitor.
    applied: AtomicI64,
    /// For `/status`: each target's verdict per live node, and the cluster's.
    verdicts: Mutex<serde_json::Value>,
    live_nodes: std::sync::atomic::AtomicUsize,
}

impl Cluster {
    /// Start syncing overrides into `monitor` in the background and wait up
    /// to `first_sync_secs` for the first sync; after that the node serves
    /// from its cache and catches up when etcd answers.
    pub async fn start(cfg: ClusterFile, monitor: Arc<Monitor>) -> Result<Arc<Cluster>, ClusterError> {
        let options = client::options(&cfg)?;
        let wait = Duration::from_secs(cfg.first_sync_secs);
        let cluster = Arc::new(Cluster {
            cfg,
            client: Mutex::new(None),
            connected: AtomicBool::new(false),
            applied: AtomicI64::new(0),
            verdicts: Mutex::new(serde_json::Value::Null),
            live_nodes: Default::default(),
        });
        let (first_tx, mut first_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(Arc::clone(&cluster).sync_forever(monitor, options, first_tx));
        if tokio::time::timeout(wait, first_rx.wait_for(|synced| *synced)).await.is_err() {
            tracing::warn!(
                endpoints = %cluster.endpoints(),
                waited = ?wait,
                "no first sync from etcd: answering from the local override cache"
            );
        }
        Ok(cluster)
    }

    /// The quorum rule (checked when the configuration was loaded).
    pub fn quorum(&self) -> crate::config::cluster_file::Quorum {
        self.cfg.quorum().unwrap_or(crate::config::cluster_file::Quorum::Majority)
    }

    pub fn node(&self) -> &str {
        &self.cfg.node
    }

    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn endpoints(&self) -> String {
        self.cfg.endpoints.join(",")
    }

    fn unreachable(&self, reason: impl std::fmt::Display) -> ClusterError {
        ClusterError::Unreachable { endpoints: self.endpoints(), reason: reason.to_string() }
    }

    fn current_client(&self) -> Option<etcd_client::Client> {
        self.client.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Write `o` to etcd; returns once this node has applied it (or after
    /// `WRITE_TIMEOUT`: etcd has it, the watch will bring it).
    pub async fn set_override(&self, o: &Override) -> Result<(), ClusterError> {
        let rev = overrides::put(self, o).await?;
        self.wait_applied(rev).await;
        Ok(())
    }

    /// Remove the override on `scope` from etcd; whether there was one.
    pub async fn clear_override(&self, scope: &Scope) -> Result<bool, ClusterError> {
        let (removed, rev) = overrides::delete(self, scope).await?;
        self.wait_applied(rev).await;
        Ok(removed)
    }

    /// Share a load report (`meridian admin load`) through etcd; returns
    /// once this node has applied it (or after `WRITE_TIMEOUT`).
    pub async fn report_load(
        &self,
        region: &str,
        addr: Option<std::net::IpAddr>,
        value: f64,
    ) -> Result<(), ClusterError> {
        let rev = loads::put(self, region, addr, value).await?;
        self.wait_applied(rev).await;
        Ok(())
    }

    async fn wait_applied(&self, rev: i64) {
        let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
        while self.applied.load(Ordering::Acquire) < rev && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Connect, load, watch; on any failure mark the node disconnected and
    /// start over (bounded back-off). Runs for the life of the process.
    async fn sync_forever(
        self: Arc<Self>,
        monitor: Arc<Monitor>,
        options: etcd_client::ConnectOptions,
        first: tokio::sync::watch::Sender<bool>,
    ) {
        let mut first_attempt = true; // its failure is logged, as is each loss of a connection
        loop {
            let err = overrides::sync_once(&self, &monitor, &options, &first).await;
            let was_connected = self.connected.swap(false, Ordering::Relaxed);
            // Cut off: this node's own probes decide again.
            monitor.set_shared_verdicts(None);
            tracing::debug!(error = %err, "etcd sync attempt failed");
            if was_connected {
                tracing::warn!(endpoints = %self.endpoints(), error = %err, "lost etcd: answering from the last shared state; override changes are refused until it returns");
            } else if first_attempt {
                tracing::warn!(endpoints = %self.endpoints(), error = %err, "cannot reach etcd: answering from the local override cache; override changes are refused until it answers");
            }
            first_attempt = false;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    fn set_connected(&self, client: etcd_client::Client) {
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(client);
        if !self.connected.swap(true, Ordering::Relaxed) {
            tracing::info!(endpoints = %self.endpoints(), node = %self.cfg.node, "etcd connected: overrides are shared");
        }
    }

    fn set_reports(
        &self,
        reports: &verdicts::Reports,
        agreed: &std::collections::HashMap<String, crate::health::Verdict>,
    ) {
        let mut by_target: std::collections::BTreeMap<&str, serde_json::Map<String, serde_json::Value>> =
            Default::default();
        let mut nodes: Vec<&str> = Vec::new();
        for (node, r) in reports.values() {
            by_target.entry(&r.target).or_default().insert(node.clone(), serde_json::json!(r.verdict));
            if !nodes.contains(&node.as_str()) {
                nodes.push(node);
            }
        }
        let json: serde_json::Map<String, serde_json::Value> = by_target
            .into_iter()
            .map(|(t, nodes)| (t.to_string(), serde_json::json!({ "nodes": nodes, "cluster": agreed.get(t) })))
            .collect();
        self.live_nodes.store(nodes.len(), Ordering::Relaxed);
        *self.verdicts.lock().unwrap_or_else(|e| e.into_inner()) = serde_json::Value::Object(json);
    }

    /// Nodes with live verdict reports (0 while cut off).
    pub fn live_nodes(&self) -> usize {
        if self.connected() {
            self.live_nodes.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// For `/status`: connection, live nodes, and per target each node's
    /// verdict and the cluster's (while cut off, own probes decide).
    pub fn status_json(&self) -> serde_json::Value {
        let connected = self.connected();
        serde_json::json!({
            "node": self.cfg.node,
            "endpoints": self.cfg.endpoints,
            "prefix": self.cfg.prefix,
            "connected": connected,
            "verdicts_from": if connected { "cluster quorum" } else { "own probes (cut off from etcd)" },
            "quorum": format!("down when {}", self.quorum()),
            "live_nodes": self.live_nodes(),
            "targets": if connected { self.verdicts.lock().unwrap_or_else(|e| e.into_inner()).clone() } else { serde_json::Value::Null },
        })
    }
}
