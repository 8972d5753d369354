//! Reload: build a whole new snapshot off the query path, validate it, swap
//! it in; on error keep serving the old one and say why. Triggered by SIGHUP
//! and by a change to a zone file or GeoIP database (polled: cheap, and
//! works for editors and for `mv` of a new database into place alike), and
//! at each DNSSEC key event (a key's publish, activate, retire or remove
//! time: the zone's DNSKEY set and signers are those of its load).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::published::{health_targets, probe_owners, Published};
use super::reload_queue::{Outcome, ReloadQueue};
use crate::answer::Snapshot;
use crate::config::ServerConfig;

pub struct Reloader {
    pub cfg: ServerConfig,
    pub state: Arc<Published>,
    /// Re-synced after a reload: new targets start probing, gone ones stop.
    pub monitor: Option<Arc<crate::health::Monitor>>,
    /// Where reloads are counted.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// One reload at a time; requests during one coalesce into one more.
    pub queue: ReloadQueue,
}

impl Reloader {
    /// Reload now, or, when one is running, once more after it. False when
    /// the last reload this call ran failed (a coalesced request: true).
    pub fn reload(&self, why: &str) -> bool {
        let reason = std::cell::RefCell::new(why.to_string());
        let outcome = self.queue.request(
            || {
                let ok = self.load_and_swap(&reason.borrow());
                if let Some(m) = &self.metrics {
                    m.reload(ok);
                }
                ok
            },
            |n| {
                tracing::info!(requests = n, "reloading once more for the requests coalesced during the last reload");
                *reason.borrow_mut() = format!("{n} coalesced request(s)");
            },
        );
        match outcome {
            Outcome::Ran(ok) => ok,
            Outcome::Coalesced => {
                tracing::info!(reason = why, "a reload is running: coalesced into one more after it");
                true
            }
        }
    }

    fn load_and_swap(&self, why: &str) -> bool {
        let cfg = self.cfg.clone();
        let load = move || {
            let loaded = Snapshot::load(&cfg);
            super::trim::release_free_memory(); // the load's temporaries
            loaded
        };
        match super::trim::on_loader_thread(load) {
            Ok(loaded) => {
                let old = self.state.load_full();
                // Health is not configuration: keep whatever view is current.
                self.state.publish_config(&loaded);
                drop(loaded);
                tracing::info!(reason = why, "reloaded configuration");
                if let Some(m) = &self.metrics {
                    m.set_probe_owners(probe_owners(&self.state.load().zones));
                }
                if let Some(m) = &self.monitor {
                    // The regions of the snapshot current now (a later reload
                    // may have swapped in after this one), told here rather
                    // than from a task of its own, which could run after a
                    // later reload's. sync() spawns probers: it needs the
                    // runtime's context.
                    if let Ok(handle) = tokio::runtime::Handle::try_current() {
                        let _runtime = handle.enter();
                        m.sync(health_targets(&self.state.load().zones));
                    }
                }
                // The old snapshot goes once the query threads let go of it:
                // hand its memory back (see `trim`).
                let start = std::time::Instant::now();
                let alone = |o: &Arc<Snapshot>| {
                    Arc::strong_count(o) == 1 && Arc::strong_count(&o.zones) == 1 && Arc::strong_count(&o.fast) == 1
                };
                if super::trim::drop_on_loader(old, alone, Duration::from_secs(5)) {
                    let ms = start.elapsed().as_millis() as u64;
                    tracing::info!(after_ms = ms, "previous configuration freed and its memory released");
                } else {
                    tracing::warn!(
                        "previous configuration still in use 5 s after a reload: its memory is not released yet"
                    );
                }
                true
            }
            Err(e) => {
                tracing::error!(reason = why, error = %e, "reload failed; still serving the previous configuration");
                false
            }
        }
    }

    /// Every input file with its modification time and size.
    pub fn fingerprint(&self) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.cfg.zones)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.extend(crate::config::zone_inputs(&self.cfg.zones)); // `include`d and `$INCLUDE`d files
        files.push(self.cfg.geoip_path().0);
        if let Some(asn) = &self.cfg.geoip_asn {
            files.push(asn.clone());
        }
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let meta = std::fs::metadata(&p).ok();
                let mtime = meta.as_ref().and_then(|m| m.modified().ok());
                let len = meta.map_or(0, |m| m.len());
                (p, mtime, len)
            })
            .collect()
    }

    /// Poll the inputs; reload when any changed (once per change, even if the reload fails).
    pub async fn watch(self: Arc<Self>, every: Duration) {
        let mut last = self.fingerprint();
        loop {
            tokio::time::sleep(every).await;
            let now = self.fingerprint();
            if now != last {
                last = now;
                let this = Arc::clone(&self);
                let _ = tokio::task::spawn_blocking(move || this.reload("a configuration file changed")).await;
            }
        }
    }

    /// Reload when a signed zone's next key event has come (checked each
    /// second: one snapshot load), and when the fast path's prebuilt signed
    /// answers reach their signatures' renewal (`FastIndex::refresh_at`:
    /// until the reload, those names are signed by the general path). Each
    /// event is tried once: a failed reload keeps the old keys, logged,
    /// until the next reload succeeds.
    pub async fn key_events(self: Arc<Self>) {
        let mut last_tried = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let events = {
                let state = self.state.load();
                [next_key_event(&state.zones), state.fast.refresh_at()]
            };
            let Some(next) = events.into_iter().flatten().min() else { continue };
            if next > crate::dnssec::unix_now() || next <= last_tried {
                continue;
            }
            last_tried = next;
            let this = Arc::clone(&self);
            let what = if Some(next) == events[0] { "DNSSEC key event" } else { "DNSSEC signatures renewal" };
            let why = format!("{what} at {}", crate::dnssec::format_time(next));
            let _ = tokio::task::spawn_blocking(move || this.reload(&why)).await;
        }
    }
}

/// The earliest time a key of a signed zone changes state.
fn next_key_event(zones: &crate::zone::Zones) -> Option<u32> {
    zones.zones.iter().filter_map(|z| z.signer.as_ref()?.next_event()).min()
}
