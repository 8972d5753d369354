//! Overrides in etcd: one key per scope, `<prefix>/overrides/region/<name>`
//! or `<prefix>/overrides/endpoint/<name>/<addr>`, the value the override as
//! JSON (with its absolute expiry, so every node expires it at the same second).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use std::time::Duration;

use etcd_client::{ConnectOptions, DeleteOptions, EventType, GetOptions, PutOptions, WatchOptions, WatchResponse};

use super::{loads, verdicts, Cluster, ClusterError, WRITE_TIMEOUT};
use crate::health::{Monitor, Override, Scope, Verdict};

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
    put_json(c, key(c, &o.scope), o).await
}

/// Put `value` as JSON at `key`, or refuse once `WRITE_TIMEOUT` passes;
/// the etcd revision of the write.
pub(super) async fn put_json(c: &Cluster, key: String, value: &impl serde::Serialize) -> Result<i64, ClusterError> {
    let mut client = c.current_client().ok_or_else(|| c.unreachable("not connected"))?;
    let value = serde_json::to_vec(value).unwrap_or_default();
    let resp = tokio::time::timeout(WRITE_TIMEOUT, client.put(key, value, None))
        .await
        .map_err(|_| c.unreachable(format!("no answer within {WRITE_TIMEOUT:?}")))?
        .map_err(|e| c.unreachable(reason(&e)))?;
    Ok(resp.header().map_or(0, |h| h.revision()))
}

/// Delete the override on `scope`: whether one was there, and the revision.
pub async fn delete(c: &Cluster, scope: &Scope) -> Result<(bool, i64), ClusterError> {
    let mut client = c.current_client().ok_or_else(|| c.unreachable("not connected"))?;
    let resp = tokio::time::timeout(WRITE_TIMEOUT, client.delete(key(c, scope), None::<DeleteOptions>))
        .await
        .map_err(|_| c.unreachable(format!("no answer within {WRITE_TIMEOUT:?}")))?
        .map_err(|e| c.unreachable(reason(&e)))?;
    Ok((resp.deleted() > 0, resp.header().map_or(0, |h| h.revision())))
}

/// An etcd error in an operator's words: a gRPC status by its message
/// ("tcp connect error", "etcdserver: no leader"), not tonic's debug dump.
fn reason(e: &etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) if !s.message().is_empty() => s.message().to_string(),
        e => e.to_string(),
    }
}

fn decode(key: &[u8], value: &[u8]) -> Option<Override> {
    match serde_json::from_slice::<Override>(value) {
        // Held to the same bounds as the state file: no stored time may
        // break `/status` on every node.
        Ok(o) => match o.plausible() {
            Ok(()) => Some(o),
            Err(why) => {
                tracing::warn!(key = %String::from_utf8_lossy(key), %why, "ignoring an impossible override in etcd");
                None
            }
        },
        Err(e) => {
            tracing::warn!(key = %String::from_utf8_lossy(key), error = %e, "ignoring an undecodable override in etcd");
            None
        }
    }
}

/// Connect, load every override and every live verdict, hand them to
/// `monitor`, then apply each watched change and publish this node's
/// verdicts (on a lease kept alive here) until the connection fails:
/// returns why.
pub async fn sync_once(
    c: &Arc<Cluster>,
    monitor: &Monitor,
    options: &ConnectOptions,
    first: &tokio::sync::watch::Sender<bool>,
) -> etcd_client::Error {
    let run = async {
        let mut client = etcd_client::Client::connect(&c.cfg.endpoints, Some(options.clone())).await?;
        let prefix = dir(c);
        let (mut all, rev) = read_all(&mut client, &prefix, decode).await?;
        let mut stream =
            client.watch(prefix, Some(WatchOptions::new().with_prefix().with_start_revision(rev + 1))).await?;
        monitor.replace_overrides(all.values().cloned().collect());
        c.applied.store(rev, Ordering::Release);

        let vprefix = verdicts::dir(&c.cfg.prefix);
        let lease = client.lease_grant(verdicts::LEASE_TTL_SECS, None).await?.id();
        let (mut keeper, mut keep_stream) = client.lease_keep_alive(lease).await?;
        let resp = client.get(vprefix.clone(), Some(GetOptions::new().with_prefix())).await?;
        let vrev = resp.header().map_or(0, |h| h.revision());
        let mut reports = verdicts::Reports::new();
        for kv in resp.kvs() {
            report(c, &mut reports, kv.key(), Some(kv.value()));
        }
        let mut vstream =
            client.watch(vprefix, Some(WatchOptions::new().with_prefix().with_start_revision(vrev + 1))).await?;

        // Pushed loads: every node's `admin load`, the same set on every node.
        let lprefix = loads::dir(&c.cfg.prefix);
        let (mut pushed, lrev) = read_all(&mut client, &lprefix, loads::decode).await?;
        monitor.replace_pushed_loads(loads::for_monitor(&pushed));
        c.applied.fetch_max(lrev, Ordering::Release);
        let mut lstream =
            client.watch(lprefix, Some(WatchOptions::new().with_prefix().with_start_revision(lrev + 1))).await?;
        c.set_connected(client.clone());
        first.send_replace(true);

        let mut published: HashMap<String, Verdict> = HashMap::new();
        let mut tick = tokio::time::interval(verdicts::PUBLISH_EVERY);
        let mut last_keep = tokio::time::Instant::now();
        loop {
            tokio::select! {
                msg = stream.message() => {
                    let resp = watched(msg)?;
                    apply(&mut all, &resp, decode);
                    monitor.replace_overrides(all.values().cloned().collect());
                    if let Some(h) = resp.header() {
                        c.applied.fetch_max(h.revision(), Ordering::Release);
                    }
                }
                msg = lstream.message() => {
                    let resp = watched(msg)?;
                    apply(&mut pushed, &resp, loads::decode);
                    monitor.replace_pushed_loads(loads::for_monitor(&pushed));
                    if let Some(h) = resp.header() {
                        c.applied.fetch_max(h.revision(), Ordering::Release);
                    }
                }
                msg = vstream.message() => {
                    let resp = watched(msg)?;
                    for ev in resp.events() {
                        let Some(kv) = ev.kv() else { continue };
                        let value = (ev.event_type() == EventType::Put).then(|| kv.value());
                        report(c, &mut reports, kv.key(), value);
                    }
                }
                keep = keep_stream.message() => {
                    match keep? {
                        Some(k) if k.ttl() > 0 => {}
                        _ => return Err(etcd_client::Error::LeaseKeepAliveError("the lease ran out".into())),
                    }
                }
                _ = tick.tick() => {
                    if last_keep.elapsed() >= Duration::from_secs(1) {
                        keeper.keep_alive().await?;
                        last_keep = tokio::time::Instant::now();
                    }
                    let mine: HashMap<String, Verdict> =
                        monitor.target_states().into_iter().map(|(t, s)| (t.label(), s.verdict())).collect();
                    for (target, verdict) in &mine {
                        if published.get(target) != Some(verdict) {
                            let r = verdicts::Report { target: target.clone(), verdict: *verdict };
                            let key = verdicts::key(&c.cfg.prefix, &c.cfg.node, target);
                            let value = serde_json::to_vec(&r).unwrap_or_default();
                            client.put(key, value, Some(PutOptions::new().with_lease(lease))).await?;
                        }
                    }
                    for gone in published.keys().filter(|t| !mine.contains_key(*t)) {
                        client.delete(verdicts::key(&c.cfg.prefix, &c.cfg.node, gone), None).await?;
                    }
                    published = mine;
                }
            }
            let agreed = verdicts::cluster_verdicts(&reports, c.quorum());
            c.set_reports(&reports, &agreed);
            monitor.set_shared_verdicts(Some(agreed));
        }
    };
    match run.await {
        Ok(()) => etcd_client::Error::WatchError("stopped".into()),
        Err(e) => e,
    }
}

/// Every value under `prefix` that decodes, by key, and the revision read.
async fn read_all<T>(
    client: &mut etcd_client::Client,
    prefix: &str,
    decode: impl Fn(&[u8], &[u8]) -> Option<T>,
) -> Result<(BTreeMap<Vec<u8>, T>, i64), etcd_client::Error> {
    let resp = client.get(prefix, Some(GetOptions::new().with_prefix())).await?;
    let all = resp.kvs().iter().filter_map(|kv| Some((kv.key().to_vec(), decode(kv.key(), kv.value())?))).collect();
    Ok((all, resp.header().map_or(0, |h| h.revision())))
}

/// A watch stream's next response, or why the stream is over.
fn watched(msg: Result<Option<WatchResponse>, etcd_client::Error>) -> Result<WatchResponse, etcd_client::Error> {
    let resp = msg?.ok_or_else(|| etcd_client::Error::WatchError("watch stream ended".into()))?;
    if resp.canceled() {
        return Err(etcd_client::Error::WatchError(format!("watch cancelled: {}", resp.cancel_reason())));
    }
    Ok(resp)
}

/// A watch response's puts and deletes applied to `all`, keyed by etcd key;
/// a value that does not decode removes its key (`decode` warns).
fn apply<T>(all: &mut BTreeMap<Vec<u8>, T>, resp: &WatchResponse, decode: impl Fn(&[u8], &[u8]) -> Option<T>) {
    for ev in resp.events() {
        let Some(kv) = ev.kv() else { continue };
        let value = match ev.event_type() {
            EventType::Put => decode(kv.key(), kv.value()),
            EventType::Delete => None,
        };
        match value {
            Some(v) => all.insert(kv.key().to_vec(), v),
            None => all.remove(kv.key()),
        };
    }
}

/// Apply one verdict key's new value (`None`: deleted or expired).
fn report(c: &Cluster, reports: &mut verdicts::Reports, key: &[u8], value: Option<&[u8]>) {
    let key = String::from_utf8_lossy(key).to_string();
    let Some(node) = verdicts::node_of(&c.cfg.prefix, &key).map(str::to_string) else { return };
    match value.map(serde_json::from_slice::<verdicts::Report>) {
        Some(Ok(r)) => {
            reports.insert(key, (node, r));
        }
        Some(Err(e)) => {
            tracing::warn!(%key, error = %e, "ignoring an undecodable verdict in etcd");
            reports.remove(&key);
        }
        None => {
            reports.remove(&key);
        }
    }
}
