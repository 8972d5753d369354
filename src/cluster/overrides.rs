//! Overrides in etcd: one key per scope, `<prefix>/overrides/region/<name>`
//! or `<prefix>/overrides/endpoint/<name>/<addr>`, the value the override as
//! JSON (with its absolute expiry, so every node expires it at the same second).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use etcd_client::{ConnectOptions, DeleteOptions, EventType, GetOptions, WatchOptions};

use super::{Cluster, ClusterError, WRITE_TIMEOUT};
use crate::health::{Monitor, Override, Scope};

fn dir(c: &Cluster) -> String {
    format!("{}/overrides/", c.cfg.prefix.trim_end_matches('/'))
}

fn key(c: &Cluster, scope: &Scope) -> String {
    match scope {
        Scope::Region(r) => format!("{}region/{r}", dir(c)),
        Scope::Endpoint(r, ip) => format!("{}endpoint/{r}/{ip}", dir(c)),
    }
}

/// Put `o`; the etcd revision of the write.
pub async fn put(c: &Cluster, o: &Override) -> Result<i64, ClusterError> {
    let mut client = c.current_client().ok_or_else(|| c.unreachable("not connected"))?;
    let value = serde_json::to_vec(o).unwrap_or_default();
    let resp = tokio::time::timeout(WRITE_TIMEOUT, client.put(key(c, &o.scope), value, None))
        .await
        .map_err(|_| c.unreachable(format!("no answer within {WRITE_TIMEOUT:?}")))?
        .map_err(|e| c.unreachable(e))?;
    Ok(resp.header().map_or(0, |h| h.revision()))
}

/// Delete the override on `scope`: whether one was there, and the revision.
pub async fn delete(c: &Cluster, scope: &Scope) -> Result<(bool, i64), ClusterError> {
    let mut client = c.current_client().ok_or_else(|| c.unreachable("not connected"))?;
    let resp = tokio::time::timeout(WRITE_TIMEOUT, client.delete(key(c, scope), None::<DeleteOptions>))
        .await
        .map_err(|_| c.unreachable(format!("no answer within {WRITE_TIMEOUT:?}")))?
        .map_err(|e| c.unreachable(e))?;
    Ok((resp.deleted() > 0, resp.header().map_or(0, |h| h.revision())))
}

fn decode(key: &[u8], value: &[u8]) -> Option<Override> {
    match serde_json::from_slice::<Override>(value) {
        Ok(o) => Some(o),
        Err(e) => {
            tracing::warn!(key = %String::from_utf8_lossy(key), error = %e, "ignoring an undecodable override in etcd");
            None
        }
    }
}

/// Connect, load every override, hand them to `monitor`, then apply each
/// watched change until the connection fails: returns why.
pub async fn sync_once(
    c: &Arc<Cluster>,
    monitor: &Monitor,
    options: &ConnectOptions,
    first: &tokio::sync::watch::Sender<bool>,
) -> etcd_client::Error {
    let run = async {
        let mut client = etcd_client::Client::connect(&c.cfg.endpoints, Some(options.clone())).await?;
        let prefix = dir(c);
        let resp = client.get(prefix.clone(), Some(GetOptions::new().with_prefix())).await?;
        let rev = resp.header().map_or(0, |h| h.revision());
        let mut all: BTreeMap<Vec<u8>, Override> = BTreeMap::new();
        for kv in resp.kvs() {
            if let Some(o) = decode(kv.key(), kv.value()) {
                all.insert(kv.key().to_vec(), o);
            }
        }
        let mut stream =
            client.watch(prefix, Some(WatchOptions::new().with_prefix().with_start_revision(rev + 1))).await?;
        monitor.replace_overrides(all.values().cloned().collect());
        c.applied.store(rev, Ordering::Release);
        c.set_connected(client);
        first.send_replace(true);
        while let Some(resp) = stream.message().await? {
            if resp.canceled() {
                return Err(etcd_client::Error::WatchError(format!("watch cancelled: {}", resp.cancel_reason())));
            }
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                match ev.event_type() {
                    EventType::Put => match decode(kv.key(), kv.value()) {
                        Some(o) => all.insert(kv.key().to_vec(), o),
                        None => all.remove(kv.key()),
                    },
                    EventType::Delete => all.remove(kv.key()),
                };
            }
            monitor.replace_overrides(all.values().cloned().collect());
            if let Some(h) = resp.header() {
                c.applied.fetch_max(h.revision(), Ordering::Release);
            }
        }
        Err::<(), _>(etcd_client::Error::WatchError("watch stream ended".into()))
    };
    match run.await {
        Ok(()) => etcd_client::Error::WatchError("stopped".into()),
        Err(e) => e,
    }
}
