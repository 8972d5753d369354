//! Operator overrides (drain, force-up, force-down) and the file that keeps
//! them across restarts. An override change that cannot be written is an
//! error, not a change: a drain that silently vanishes at the next restart is
//! worse than one refused now.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tracing::{error, info, warn};

/// The longest override expiry accepted. Longer is almost surely a typo
/// (`999999999h`), and bounded times always format (RFC 3339 stops at 9999).
pub const MAX_OVERRIDE_FOR: Duration = Duration::from_secs(366 * 24 * 3600);

/// The last second RFC 3339 can write (9999-12-31T23:59:59Z).
pub const MAX_RFC3339_EPOCH: u64 = 253_402_300_799;

/// The file, inside the state directory.
pub const OVERRIDES_FILE: &str = "overrides.json";

/// What an operator imposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverrideKind {
    ForceUp,
    ForceDown,
    /// Take out of service on purpose (maintenance): no new answers.
    Drain,
}

/// What an override applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Region(String),
    Endpoint(String, IpAddr),
}

/// For logs: `region sjc`, `endpoint 192.0.2.1 of region sjc`.
impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Region(r) => write!(f, "region {r}"),
            Scope::Endpoint(r, a) => write!(f, "endpoint {a} of region {r}"),
        }
    }
}

/// As the admin API and CLI name them: `drain`, `force-up`, `force-down`.
impl std::fmt::Display for OverrideKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OverrideKind::ForceUp => "force-up",
            OverrideKind::ForceDown => "force-down",
            OverrideKind::Drain => "drain",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub scope: Scope,
    pub kind: OverrideKind,
    /// Seconds since the epoch at which it clears itself.
    pub until: Option<u64>,
    pub set_at: u64,
}

/// Why an override change was refused.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    #[error("an override lasts at most {} (asked for {})", humantime::format_duration(MAX_OVERRIDE_FOR), humantime::format_duration(*.0))]
    TooLong(Duration),
    #[error("cannot save overrides to {}: {source}; nothing was changed (is the state directory writable?)", .file.display())]
    Persist { file: PathBuf, source: std::io::Error },
}

impl Override {
    /// A new override set at `now`, lasting `for_` (bounded by `MAX_OVERRIDE_FOR`).
    pub fn new(
        scope: Scope,
        kind: OverrideKind,
        for_: Option<Duration>,
        now: SystemTime,
    ) -> Result<Override, OverrideError> {
        let set_at = epoch_secs(now);
        let until = match for_ {
            Some(d) if d > MAX_OVERRIDE_FOR => return Err(OverrideError::TooLong(d)),
            // Round up: an override never ends before the time asked for.
            Some(d) => Some(set_at + d.as_secs() + u64::from(d.subsec_nanos() > 0)),
            None => None,
        };
        Ok(Override { scope, kind, until, set_at })
    }

    pub fn expired(&self, now: SystemTime) -> bool {
        self.until.is_some_and(|u| epoch_secs(now) >= u)
    }

    /// Whether a stored override is one this version could have set: its
    /// times formattable and its expiry within the bound of its setting.
    pub fn plausible(&self) -> Result<(), String> {
        if self.set_at > MAX_RFC3339_EPOCH {
            return Err(format!("set_at {} is past the year 9999", self.set_at));
        }
        match self.until {
            Some(u) if u.saturating_sub(self.set_at) > MAX_OVERRIDE_FOR.as_secs() => Err(format!(
                "until {u} is more than {} after set_at {}",
                humantime::format_duration(MAX_OVERRIDE_FOR),
                self.set_at
            )),
            _ => Ok(()),
        }
    }
}

pub fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The overrides kept in `path`. A missing file is none; an unreadable or
/// undecodable one is logged as an error naming it, and moved aside so the
/// next change does not overwrite what an operator may want to recover.
/// Entries no version of Meridian could have set are dropped with a warning.
pub fn load(path: &Path) -> Vec<Override> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            error!(file = %path.display(), error = %e, "cannot read the overrides file: starting WITHOUT the drains and forces it may hold");
            return Vec::new();
        }
    };
    let entries = match serde_json::from_slice::<Vec<serde_json::Value>>(&bytes) {
        Ok(v) => v,
        Err(e) => {
            let aside = set_aside(path);
            error!(file = %path.display(), error = %e, moved_to = %aside, "the overrides file is not a JSON list of overrides: starting WITHOUT the drains and forces it may hold");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let o = serde_json::from_value::<Override>(entry)
            .map_err(|e| e.to_string())
            .and_then(|o| o.plausible().map(|()| o));
        match o {
            Ok(o) => out.push(o),
            Err(why) => warn!(file = %path.display(), entry = i, %why, "ignoring an override entry"),
        }
    }
    info!(file = %path.display(), count = out.len(), "overrides restored");
    out
}

/// Move an undecodable file to `<file>.unreadable`; returns where it went.
fn set_aside(path: &Path) -> String {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".unreadable");
    let aside = PathBuf::from(aside);
    match std::fs::rename(path, &aside) {
        Ok(()) => aside.display().to_string(),
        Err(e) => format!("(not moved: {e})"),
    }
}

/// Write every override to `path`, atomically.
pub fn save(path: &Path, overrides: &[Override]) -> Result<(), OverrideError> {
    let bytes = serde_json::to_vec_pretty(overrides).unwrap_or_default();
    write_atomic(path, &bytes).map_err(|source| OverrideError::Persist { file: path.to_path_buf(), source })
}

/// Write to a temporary file beside `path`, then rename: never a torn file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logs say `region eu`, `drain`, not `Region("eu")`, `Drain`.
    #[test]
    fn scopes_and_kinds_read_as_words() {
        assert_eq!(Scope::Region("eu".into()).to_string(), "region eu");
        assert_eq!(
            Scope::Endpoint("eu".into(), "192.0.2.1".parse().unwrap()).to_string(),
            "endpoint 192.0.2.1 of region eu"
        );
        assert_eq!(OverrideKind::ForceDown.to_string(), "force-down");
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn expiry() {
        let o = Override { scope: Scope::Region("eu".into()), kind: OverrideKind::Drain, until: Some(100), set_at: 0 };
        assert!(!o.expired(at(99)));
        assert!(o.expired(at(100)));
    }

    #[test]
    fn durations_past_the_bound_are_refused_without_overflow() {
        let eu = || Scope::Region("eu".into());
        for d in [Duration::from_secs(999_999_999 * 3600), Duration::from_secs(u64::MAX), Duration::MAX] {
            let e = Override::new(eu(), OverrideKind::Drain, Some(d), SystemTime::now()).unwrap_err();
            assert!(e.to_string().contains("at most"), "{e}");
        }
        let o = Override::new(eu(), OverrideKind::Drain, Some(MAX_OVERRIDE_FOR), at(1_000)).unwrap();
        assert_eq!(o.until, Some(1_000 + MAX_OVERRIDE_FOR.as_secs()));
        let o = Override::new(eu(), OverrideKind::Drain, Some(Duration::from_millis(1500)), at(1_000)).unwrap();
        assert_eq!(o.until, Some(1_002), "rounded up");
    }

    #[test]
    fn implausible_stored_entries_are_dropped_and_the_rest_kept() {
        let dir = std::env::temp_dir().join(format!("meridian-overrides-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(OVERRIDES_FILE);
        let good = r#"{"scope":{"region":"eu"},"kind":"drain","until":null,"set_at":1000}"#;
        let far = r#"{"scope":{"region":"us"},"kind":"drain","until":3600000000000,"set_at":1000}"#;
        let late = r#"{"scope":{"region":"ap"},"kind":"drain","until":null,"set_at":18446744073709551615}"#;
        std::fs::write(&file, format!("[{good},{far},{late},{{\"nonsense\":1}}]")).unwrap();
        let got = load(&file);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].scope, Scope::Region("eu".into()));

        std::fs::write(&file, "not json").unwrap();
        assert!(load(&file).is_empty());
        assert!(!file.exists(), "moved aside");
        assert_eq!(std::fs::read_to_string(dir.join("overrides.json.unreadable")).unwrap(), "not json");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn saving_where_no_directory_can_be_made_is_an_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("meridian-overrides-blocked-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A file where the state directory should be: not even root can write below it.
        std::fs::write(dir.join("state"), "").unwrap();
        let file = dir.join("state").join(OVERRIDES_FILE);
        let e = save(&file, &[]).unwrap_err();
        assert!(e.to_string().contains(&file.display().to_string()), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
