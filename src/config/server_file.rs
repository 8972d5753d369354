//! `meridian.toml`: where the zones and databases are and where to listen.
//! Command-line flags override it; without it the defaults serve the demo.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{ConfigError, Source};

/// Listening addresses when neither flags nor file say otherwise.
pub const DEFAULT_LISTEN: [&str; 2] = ["127.0.0.1:5353", "[::1]:5353"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_zones")]
    pub zones: PathBuf,
    /// GeoIP database; when not set, `geoip/demo.mmdb` is used if it exists.
    #[serde(default)]
    pub geoip: Option<PathBuf>,
    /// Optional second database for autonomous system numbers.
    #[serde(default)]
    pub geoip_asn: Option<PathBuf>,
    #[serde(default)]
    pub listen: Vec<SocketAddr>,
    /// DNS over TLS (RFC 7858) addresses, conventionally port 853; needs `tls_cert` and `tls_key`.
    #[serde(default)]
    pub listen_tls: Vec<SocketAddr>,
    /// DNS over QUIC (RFC 9250) addresses (UDP), conventionally port 853.
    #[serde(default)]
    pub listen_quic: Vec<SocketAddr>,
    /// PEM certificate chain and private key for TLS and QUIC, re-read on SIGHUP.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Idle timeout of a TCP connection between queries (RFC 7766 §6.2.3).
    #[serde(default = "default_tcp_idle")]
    pub tcp_idle_timeout_secs: u64,
    /// How often zone files and GeoIP databases are checked for changes; 0 = SIGHUP only.
    #[serde(default = "default_watch")]
    pub watch_interval_ms: u64,
    /// Where state that survives a restart lives (overrides, the admin token).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    #[serde(default)]
    pub health: HealthFile,
    /// Response rate limiting (off by default).
    #[serde(default)]
    pub rrl: crate::rrl::RrlConfig,
    #[serde(default)]
    pub tcp: TcpFile,
    /// Admin HTTP API address (`"off"` disables it); default 127.0.0.1:8053.
    #[serde(default)]
    pub admin: Option<String>,
    /// Allow the admin API on a non-loopback address.
    #[serde(default)]
    pub admin_allow_remote: bool,
    /// File holding the admin bearer token; default `<state_dir>/admin.token` (generated).
    #[serde(default)]
    pub admin_token_file: Option<PathBuf>,
    /// Source address of this node's health probes (HTTP and TCP).
    #[serde(default)]
    pub probe_source: Option<std::net::IpAddr>,
    /// Shared overrides through etcd; absent: this node is alone.
    #[serde(default)]
    pub cluster: Option<super::cluster_file::ClusterFile>,
    /// This node's name in NSID and CH TXT `id.server`/`hostname.bind`
    /// (default: the host name; `""` turns both off). At most 255 bytes.
    #[serde(default)]
    pub node_id: Option<String>,
    /// CH TXT `version.bind`/`version.server`: `false` (default, REFUSED),
    /// `true` ("Meridian <version>") or the text to answer.
    #[serde(default)]
    pub version_bind: VersionBind,
    /// DNS server cookies (RFC 7873/9018).
    #[serde(default)]
    pub cookies: CookiesFile,
}

/// `[cookies]` in meridian.toml: the secret server cookies are made with,
/// the same on every node of an anycast set (absent: random per start).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookiesFile {
    #[serde(default)]
    pub secret: Option<crate::wire::server_cookie::Secret>,
    /// The secret before the last rollover: its cookies are still accepted.
    #[serde(default)]
    pub previous_secret: Option<crate::wire::server_cookie::Secret>,
}

/// `version_bind` in meridian.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum VersionBind {
    #[default]
    Off,
    /// Meridian's own name and version.
    Default,
    Text(String),
}

impl<'de> Deserialize<'de> for VersionBind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = VersionBind;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or the text to answer")
            }
            fn visit_bool<E>(self, on: bool) -> Result<VersionBind, E> {
                Ok(if on { VersionBind::Default } else { VersionBind::Off })
            }
            fn visit_str<E: serde::de::Error>(self, t: &str) -> Result<VersionBind, E> {
                if t.len() > 255 {
                    return Err(E::custom("version_bind is longer than a TXT string's 255 bytes"));
                }
                Ok(VersionBind::Text(t.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// systemd's `$STATE_DIRECTORY` (set by `StateDirectory=`; the first of a
/// colon-separated list), else `state` beside the config: under
/// `ProtectSystem=strict` only the former is writable.
fn default_state_dir() -> PathBuf {
    state_dir_from(std::env::var_os("STATE_DIRECTORY"))
}

fn state_dir_from(env: Option<std::ffi::OsString>) -> PathBuf {
    let first = env.as_ref().and_then(|v| v.to_str()).and_then(|v| v.split(':').next()).filter(|d| !d.is_empty());
    PathBuf::from(first.unwrap_or("state"))
}

/// `[tcp]` in meridian.toml: limits that keep idle or slow clients from
/// exhausting the server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpFile {
    /// Open connections at once, over all clients.
    #[serde(default = "default_tcp_max")]
    pub max_connections: usize,
    /// Open connections at once from one client address.
    #[serde(default = "default_tcp_per_client")]
    pub max_connections_per_client: usize,
    /// Seconds to receive the rest of a query once it has started.
    #[serde(default = "default_tcp_read")]
    pub read_timeout_secs: u64,
}

impl Default for TcpFile {
    fn default() -> Self {
        TcpFile {
            max_connections: default_tcp_max(),
            max_connections_per_client: default_tcp_per_client(),
            read_timeout_secs: default_tcp_read(),
        }
    }
}

fn default_tcp_max() -> usize {
    1024
}
fn default_tcp_per_client() -> usize {
    32
}
fn default_tcp_read() -> u64 {
    5
}

/// `[health]` in meridian.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthFile {
    /// How an endpoint counts before its first verdict: "up" (default) or "down".
    #[serde(default = "default_cold_start")]
    pub cold_start: String,
    /// Probes in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

impl Default for HealthFile {
    fn default() -> Self {
        HealthFile { cold_start: default_cold_start(), concurrency: default_concurrency() }
    }
}

fn default_cold_start() -> String {
    "up".into()
}
fn default_concurrency() -> usize {
    256
}

fn default_watch() -> u64 {
    2000
}

fn default_zones() -> PathBuf {
    PathBuf::from("zones")
}
/// The demo database, used when no database is configured and it exists.
pub const DEFAULT_GEOIP: &str = "geoip/demo.mmdb";
fn default_tcp_idle() -> u64 {
    10
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            zones: default_zones(),
            geoip: None,
            geoip_asn: None,
            listen: Vec::new(),
            listen_tls: Vec::new(),
            listen_quic: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tcp_idle_timeout_secs: default_tcp_idle(),
            watch_interval_ms: default_watch(),
            state_dir: default_state_dir(),
            health: HealthFile::default(),
            rrl: crate::rrl::RrlConfig::default(),
            tcp: TcpFile::default(),
            admin: None,
            admin_allow_remote: false,
            admin_token_file: None,
            probe_source: None,
            cluster: None,
            node_id: None,
            version_bind: VersionBind::Off,
            cookies: CookiesFile::default(),
        }
    }
}

impl ServerConfig {
    /// Read a server file; relative paths in it are relative to the file's directory.
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let source = Source::read(path)?;
        let mut cfg: ServerConfig =
            toml::from_str(&source.text).map_err(|e| source.error(e.span().unwrap_or(0..0), e.message().trim()))?;
        if !["up", "down"].contains(&cfg.health.cold_start.as_str()) {
            let at = source.text.find("cold_start").unwrap_or(0);
            return Err(
                source.error(at..at, format!("cold_start must be \"up\" or \"down\", not {:?}", cfg.health.cold_start))
            );
        }
        if let (Some(c), Some(id)) = (cfg.cluster.as_mut(), cfg.node_id.as_ref()) {
            if c.node.is_empty() {
                c.node = id.clone();
            }
        }
        if let Some((key, msg)) = cfg.cluster.as_ref().and_then(|c| c.problem()) {
            let at = source.text.find("[cluster]").map_or(0, |c| source.text[c..].find(key).map_or(c, |k| c + k));
            return Err(source.error(at..at, msg));
        }
        if cfg.node_id.as_ref().is_some_and(|id| id.len() > 255) {
            let at = source.text.find("node_id").unwrap_or(0);
            return Err(source.error(at..at, "node_id is longer than a TXT string's 255 bytes"));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(c) = cfg.cluster.as_mut() {
            c.rebase(base);
        }
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        rebase(&mut cfg.zones);
        rebase(&mut cfg.state_dir);
        if let Some(p) = cfg.geoip.as_mut() {
            rebase(p);
        }
        if let Some(p) = cfg.geoip_asn.as_mut() {
            rebase(p);
        }
        if let Some(p) = cfg.admin_token_file.as_mut() {
            rebase(p);
        }
        Ok(cfg)
    }

    /// The GeoIP database to open, and whether its absence is an error
    /// (configured explicitly) or only means "no locations" (the default).
    pub fn geoip_path(&self) -> (PathBuf, bool) {
        match &self.geoip {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_GEOIP), false),
        }
    }

    pub fn health_settings(&self) -> crate::health::HealthSettings {
        crate::health::HealthSettings {
            unknown_is_up: self.health.cold_start != "down",
            concurrency: self.health.concurrency,
            state_dir: Some(self.state_dir.clone()),
            probe_source: self.probe_source,
        }
    }

    /// The addresses to serve on: configured ones, else the defaults.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        if self.listen.is_empty() {
            DEFAULT_LISTEN.iter().map(|s| s.parse().expect("valid default")).collect()
        } else {
            self.listen.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_is_systemds_first_state_directory_else_state() {
        assert_eq!(state_dir_from(Some("/var/lib/meridian".into())), PathBuf::from("/var/lib/meridian"));
        assert_eq!(state_dir_from(Some("/var/lib/a:/var/lib/b".into())), PathBuf::from("/var/lib/a"));
        assert_eq!(state_dir_from(Some("".into())), PathBuf::from("state"));
        assert_eq!(state_dir_from(None), PathBuf::from("state"));
    }

    fn load_text(text: &str) -> Result<ServerConfig, ConfigError> {
        let dir = std::env::temp_dir().join(format!("meridian-server-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // One file per call: tests run in parallel, and two texts of one
        // length used to share (and overwrite) a file.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let path = dir.join(format!("{}.toml", CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        std::fs::write(&path, text).unwrap();
        let got = ServerConfig::load(&path);
        let _ = std::fs::remove_file(&path);
        got
    }

    #[test]
    fn version_bind_is_a_bool_or_a_short_string() {
        assert_eq!(load_text("version_bind = true\n").unwrap().version_bind, VersionBind::Default);
        assert_eq!(load_text("version_bind = false\n").unwrap().version_bind, VersionBind::Off);
        assert_eq!(load_text("version_bind = \"x\"\n").unwrap().version_bind, VersionBind::Text("x".into()));
        let e = load_text("version_bind = 3\n").unwrap_err().to_string();
        assert!(e.contains(":1:16") && e.contains("expected true, false or the text to answer"), "{e}");
        let e = load_text(&format!("version_bind = \"{}\"\n", "v".repeat(256))).unwrap_err().to_string();
        assert!(e.contains("longer than a TXT string's 255 bytes"), "{e}");
    }
}
