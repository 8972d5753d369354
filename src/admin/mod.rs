//! The admin HTTP API (axum): `/status`, `/metrics`, and overrides (drain,
//! force-up, force-down, clear) on regions and endpoints; plus the client
//! `meridian admin` uses. Cold path: never on the query path.
//!
//! Listens on loopback (`127.0.0.1:8053`) unless `admin_allow_remote = true`.
//! Mutations need `Authorization: Bearer <token>`, the token being read from
//! `admin_token_file` (default `<state_dir>/admin.token`, generated on first
//! start). See docs/health.md.

pub mod client;
mod error;
mod map_page;
mod map_view;
mod server;
mod status;
mod table;
pub mod token;

pub use error::AdminError;
pub use server::{router, serve, AdminCtx};
pub use status::build as status;

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::ServerConfig;

/// Where the admin API listens when neither flag nor file says.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:8053";
/// The token file's name inside the state directory.
pub const TOKEN_FILE: &str = "admin.token";
/// Largest request body accepted (mutations carry none).
pub const BODY_LIMIT: usize = 4096;

/// Where the admin API listens and how it authenticates.
#[derive(Debug, Clone)]
pub struct AdminSettings {
    /// `None`: disabled (`admin = "off"`).
    pub addr: Option<SocketAddr>,
    /// Chosen by the operator (flag or file) rather than defaulted: failing to
    /// bind it fails the start. The default is best effort (a warning).
    pub explicit: bool,
    pub allow_remote: bool,
    pub token_file: PathBuf,
    /// The token file was configured: it is read, never generated.
    pub token_configured: bool,
}

impl AdminSettings {
    /// From `--admin` (`flag`), then `admin` in meridian.toml, then the default.
    pub fn resolve(cfg: &ServerConfig, flag: Option<&str>) -> Result<AdminSettings, AdminError> {
        let (text, explicit) = match (flag, cfg.admin.as_deref()) {
            (Some(f), _) => (f, true),
            (None, Some(c)) => (c, true),
            (None, None) => (DEFAULT_ADMIN, false),
        };
        let addr = parse_addr(text)?;
        let (token_file, token_configured) = match &cfg.admin_token_file {
            Some(p) => (p.clone(), true),
            None => (cfg.state_dir.join(TOKEN_FILE), false),
        };
        Ok(AdminSettings { addr, explicit, allow_remote: cfg.admin_allow_remote, token_file, token_configured })
    }

    /// Refuse a non-loopback listening address unless remote access is allowed.
    pub fn check_bind_allowed(&self) -> Result<(), AdminError> {
        match self.addr {
            Some(a) if !a.ip().is_loopback() && !self.allow_remote => Err(AdminError::Remote(a)),
            _ => Ok(()),
        }
    }
}

/// `ADDR:PORT`, or `off` / `none` to disable the API.
pub fn parse_addr(text: &str) -> Result<Option<SocketAddr>, AdminError> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") || t.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    t.parse::<SocketAddr>().map(Some).map_err(|_| AdminError::Address(text.to_string()))
}

/// Times in `/status`: RFC 3339 UTC, milliseconds.
pub(crate) fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// An epoch second count as RFC 3339. Never panics: a time RFC 3339 cannot
/// write (past 9999, which humantime refuses with a panic) is written as the
/// number, so no stored value can break `/status`.
pub(crate) fn rfc3339_secs(epoch: u64) -> String {
    if epoch > crate::health::overrides::MAX_RFC3339_EPOCH {
        return format!("epoch {epoch} (past the year 9999)");
    }
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch)).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_past_the_year_9999_format_without_panic() {
        assert_eq!(super::rfc3339_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339_secs(253_402_300_799), "9999-12-31T23:59:59Z");
        assert!(super::rfc3339_secs(253_402_300_800).contains("past the year 9999"));
        assert!(super::rfc3339_secs(u64::MAX).contains("past the year 9999"));
    }
}
