//! `anycast.toml`: what `meridian anycast` checks and which prefixes it
//! announces. A file of its own (not a section of `meridian.toml`), so the
//! helper that ExaBGP runs never depends on the server's file being valid;
//! it can still take its default DNS address from the server's file.
//!
//! ```toml
//! check_name = "gslb.example.test."   # required: a name this node answers with AA
//! check_type = "SOA"
//! # dns = "127.0.0.1:53"               # default: first listen address of meridian_config
//! # meridian_config = "/etc/meridian/meridian.toml"
//! interval = "1s"
//! timeout = "500ms"
//! fall = 3
//! rise = 3
//! # min_regions_up = 1                 # also ask the admin API's /status
//! # admin_url = "http://127.0.0.1:8053/status"
//! local_as = 65001                      # needed by as_path_prepend
//!
//! [[prefixes]]
//! prefix = "192.0.2.53/32"
//! med = 100
//! communities = ["65000:53"]
//! as_path_prepend = 2                   # or a list of ASNs: [65001, 65001]
//! ```
//!
//! Errors name FILE:LINE:COL like every other Meridian configuration error.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{ConfigError, ServerConfig, Source, DEFAULT_LISTEN};

/// Where the admin API's status document is unless the file says otherwise.
pub const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:8053/status";
/// The file read when `--config` is not given.
pub const DEFAULT_FILE: &str = "anycast.toml";

/// The file as written (serde's view).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    dns: Option<SocketAddr>,
    #[serde(default)]
    meridian_config: Option<PathBuf>,
    check_name: String,
    #[serde(default = "default_type")]
    check_type: String,
    #[serde(default = "default_interval", deserialize_with = "duration")]
    interval: Duration,
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    timeout: Duration,
    #[serde(default = "default_count")]
    fall: u32,
    #[serde(default = "default_count")]
    rise: u32,
    #[serde(default)]
    min_regions_up: u32,
    #[serde(default)]
    admin_url: Option<String>,
    #[serde(default)]
    admin_token_file: Option<PathBuf>,
    #[serde(default)]
    local_as: Option<u32>,
    #[serde(default)]
    prefixes: Vec<Prefix>,
}

fn default_type() -> String {
    "SOA".into()
}
fn default_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_timeout() -> Duration {
    Duration::from_millis(500)
}
fn default_count() -> u32 {
    3
}

/// `"1s"`, `"500ms"`, `"1m 30s"` (humantime), or a number of milliseconds.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Ms(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Ms(ms) => Ok(Duration::from_millis(ms)),
        Raw::Text(t) => humantime::parse_duration(t.trim())
            .map_err(|e| serde::de::Error::custom(format!("bad duration {t:?} ({e}); write e.g. \"1s\" or \"500ms\""))),
    }
}

/// One `[[prefixes]]` entry: a route to announce while the node is healthy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prefix {
    pub prefix: ipnet::IpNet,
    /// `"self"` (the BGP session's local address) or an address.
    #[serde(default)]
    pub next_hop: NextHop,
    /// MULTI_EXIT_DISC: lower is preferred by the neighbouring AS.
    #[serde(default)]
    pub med: Option<u32>,
    #[serde(default)]
    pub communities: Vec<Community>,
    #[serde(default)]
    pub large_communities: Vec<LargeCommunity>,
    #[serde(default)]
    pub local_preference: Option<u32>,
    /// Make this site less preferred: a count of extra copies of `local_as`,
    /// or the list of ASNs to put in front of `local_as`.
    #[serde(default)]
    pub as_path_prepend: Prepend,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NextHop {
    #[default]
    SelfAddr,
    Addr(IpAddr),
}

impl<'de> Deserialize<'de> for NextHop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.eq_ignore_ascii_case("self") {
            return Ok(NextHop::SelfAddr);
        }
        s.parse()
            .map(NextHop::Addr)
            .map_err(|_| serde::de::Error::custom(format!("next_hop must be \"self\" or an address, not {s:?}")))
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::SelfAddr => f.write_str("self"),
            NextHop::Addr(a) => write!(f, "{a}"),
        }
    }
}

/// A standard community: `"65000:53"` or a well-known name (`"no-export"`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Community(pub String);

const WELL_KNOWN: [&str; 5] = ["no-export", "no-advertise", "no-export-subconfed", "nopeer", "blackhole"];

impl<'de> Deserialize<'de> for Community {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let lower = s.trim().to_ascii_lowercase();
        if WELL_KNOWN.contains(&lower.as_str()) {
            return Ok(Community(lower));
        }
        let ok = match lower.split_once(':') {
            Some((a, b)) => a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok(),
            None => false,
        };
        if ok {
            Ok(Community(lower))
        } else {
            Err(serde::de::Error::custom(format!(
                "community {s:?} is not ASN:VALUE (two numbers up to 65535) nor one of {}",
                WELL_KNOWN.join(", ")
            )))
        }
    }
}

/// A large community `"ASN:DATA1:DATA2"` (three 32-bit numbers, RFC 8092).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LargeCommunity(pub String);

impl<'de> Deserialize<'de> for LargeCommunity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let parts: Vec<&str> = s.trim().split(':').collect();
        if parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()) {
            Ok(LargeCommunity(s.trim().to_string()))
        } else {
            Err(serde::de::Error::custom(format!("large community {s:?} is not ASN:DATA1:DATA2")))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Prepend {
    Count(u32),
    List(Vec<u32>),
}

impl Default for Prepend {
    fn default() -> Self {
        Prepend::Count(0)
    }
}

impl Prepend {
    fn is_empty(&self) -> bool {
        matches!(self, Prepend::Count(0)) || matches!(self, Prepend::List(l) if l.is_empty())
    }
}

/// The validated settings `meridian anycast` runs with.
#[derive(Debug, Clone)]
pub struct AnycastConfig {
    pub file: PathBuf,
    /// Where the local Meridian is asked.
    pub dns: SocketAddr,
    pub check_name: hickory_proto::rr::Name,
    pub check_type: hickory_proto::rr::RecordType,
    pub interval: Duration,
    pub timeout: Duration,
    pub fall: u32,
    pub rise: u32,
    /// 0: the admin API is not asked.
    pub min_regions_up: u32,
    pub admin_url: String,
    pub admin_token_file: Option<PathBuf>,
    pub local_as: Option<u32>,
    pub prefixes: Vec<Prefix>,
}

impl AnycastConfig {
    /// Read and validate a file; relative paths in it are relative to its directory.
    pub fn load(path: &Path) -> Result<AnycastConfig, ConfigError> {
        Self::parse(Source::read(path)?)
    }

    pub fn parse(source: Source) -> Result<AnycastConfig, ConfigError> {
        let f: File =
            toml::from_str(&source.text).map_err(|e| source.error(e.span().unwrap_or(0..0), e.message().trim()))?;
        let whole = |msg: String| ConfigError { file: source.path.clone(), line: 0, col: 0, message: msg };
        let at_key = |key: &str, msg: String| {
            // Point at the key's line when it is there, else at the file.
            match find_key(&source.text, key) {
                Some(off) => source.error(off..off, msg),
                None => whole(msg),
            }
        };
        let base = source.path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let rebase = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };

        let mut check_name = hickory_proto::rr::Name::from_ascii(f.check_name.trim())
            .map_err(|e| at_key("check_name", format!("bad check_name {:?}: {e}", f.check_name)))?;
        check_name.set_fqdn(true);
        let check_type: hickory_proto::rr::RecordType = f
            .check_type
            .trim()
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| at_key("check_type", format!("unknown check_type {:?}", f.check_type)))?;
        if f.fall == 0 {
            return Err(at_key("fall", "fall must be at least 1".into()));
        }
        if f.rise == 0 {
            return Err(at_key("rise", "rise must be at least 1".into()));
        }
        if f.interval.is_zero() {
            return Err(at_key("interval", "interval must be more than zero".into()));
        }
        if f.timeout.is_zero() || f.timeout >= f.interval {
            return Err(at_key(
                "timeout",
                format!(
                    "timeout ({}) must be more than zero and shorter than interval ({})",
                    humantime::format_duration(f.timeout),
                    humantime::format_duration(f.interval)
                ),
            ));
        }
        if f.prefixes.is_empty() {
            return Err(whole("no [[prefixes]]: nothing to announce".into()));
        }
        for p in &f.prefixes {
            if !p.as_path_prepend.is_empty() && f.local_as.is_none() {
                return Err(at_key(
                    "as_path_prepend",
                    format!("{}: as_path_prepend needs local_as (the AS ExaBGP speaks for)", p.prefix),
                ));
            }
            if p.prefix != p.prefix.trunc() {
                return Err(at_key(
                    "prefix",
                    format!("prefix {} has host bits set (did you mean {}?)", p.prefix, p.prefix.trunc()),
                ));
            }
        }
        let meridian_config = f.meridian_config.map(rebase);
        let dns = match (f.dns, &meridian_config) {
            (Some(a), _) => a,
            (None, Some(path)) => {
                let server = ServerConfig::load(path)?;
                let first = *server
                    .listen_addrs()
                    .first()
                    .ok_or_else(|| whole(format!("{}: no listen address", path.display())))?;
                first
            }
            (None, None) => DEFAULT_LISTEN[0].parse().expect("valid default"),
        };
        Ok(AnycastConfig {
            file: source.path.clone(),
            dns: reachable(dns),
            check_name,
            check_type,
            interval: f.interval,
            timeout: f.timeout,
            fall: f.fall,
            rise: f.rise,
            min_regions_up: f.min_regions_up,
            admin_url: f.admin_url.unwrap_or_else(|| DEFAULT_ADMIN_URL.into()),
            admin_token_file: f.admin_token_file.map(rebase),
            local_as: f.local_as,
            prefixes: f.prefixes,
        })
    }

    /// The ExaBGP API line that announces `p`.
    pub fn announce_line(&self, p: &Prefix) -> String {
        let mut s = format!("announce route {} next-hop {}", p.prefix, p.next_hop);
        if let Some(m) = p.med {
            s.push_str(&format!(" med {m}"));
        }
        if let Some(lp) = p.local_preference {
            s.push_str(&format!(" local-preference {lp}"));
        }
        if !p.communities.is_empty() {
            let list: Vec<&str> = p.communities.iter().map(|c| c.0.as_str()).collect();
            s.push_str(&format!(" community [ {} ]", list.join(" ")));
        }
        if !p.large_communities.is_empty() {
            let list: Vec<&str> = p.large_communities.iter().map(|c| c.0.as_str()).collect();
            s.push_str(&format!(" large-community [ {} ]", list.join(" ")));
        }
        if let (false, Some(local)) = (p.as_path_prepend.is_empty(), self.local_as) {
            // ExaBGP sends an explicit as-path as given (it adds its own AS
            // only when none is given), so the local AS ends the list.
            let mut path: Vec<u32> = match &p.as_path_prepend {
                Prepend::Count(n) => vec![local; *n as usize],
                Prepend::List(l) => l.clone(),
            };
            path.push(local);
            let path: Vec<String> = path.iter().map(u32::to_string).collect();
            s.push_str(&format!(" as-path [ {} ]", path.join(" ")));
        }
        s
    }

    /// The ExaBGP API line that withdraws `p` (the prefix is enough to match).
    pub fn withdraw_line(&self, p: &Prefix) -> String {
        format!("withdraw route {}", p.prefix)
    }

    pub fn announce_lines(&self) -> Vec<String> {
        self.prefixes.iter().map(|p| self.announce_line(p)).collect()
    }

    pub fn withdraw_lines(&self) -> Vec<String> {
        self.prefixes.iter().map(|p| self.withdraw_line(p)).collect()
    }

    /// The prefixes, for log lines.
    pub fn prefix_list(&self) -> String {
        self.prefixes.iter().map(|p| p.prefix.to_string()).collect::<Vec<_>>().join(", ")
    }
}

/// A wildcard listen address is asked on loopback.
fn reachable(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), a.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), a.port()),
        _ => a,
    }
}

/// Byte offset of the first line that sets `key`.
fn find_key(text: &str, key: &str) -> Option<usize> {
    let mut off = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix(key) {
            if rest.trim_start().starts_with('=') {
                return Some(off + (line.len() - t.len()));
            }
        }
        off += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AnycastConfig, ConfigError> {
        AnycastConfig::parse(Source { path: PathBuf::from("/etc/meridian/anycast.toml"), text: text.into() })
    }

    const MIN: &str = "check_name = \"gslb.example.test\"\n[[prefixes]]\nprefix = \"192.0.2.53/32\"\n";

    #[test]
    fn defaults() {
        let c = parse(MIN).unwrap();
        assert_eq!(c.dns, "127.0.0.1:5353".parse().unwrap());
        assert_eq!(c.check_name.to_string(), "gslb.example.test.");
        assert_eq!(c.check_type, hickory_proto::rr::RecordType::SOA);
        assert_eq!((c.interval, c.timeout, c.fall, c.rise), (Duration::from_secs(1), Duration::from_millis(500), 3, 3));
        assert_eq!(c.min_regions_up, 0);
        assert_eq!(c.admin_url, DEFAULT_ADMIN_URL);
        assert_eq!(c.announce_lines(), vec!["announce route 192.0.2.53/32 next-hop self"]);
        assert_eq!(c.withdraw_lines(), vec!["withdraw route 192.0.2.53/32"]);
    }

    #[test]
    fn full_announce_line() {
        let c = parse(
            r#"
check_name = "www.gslb.example.test."
check_type = "a"
dns = "0.0.0.0:53"
interval = "2s"
timeout = 300
local_as = 65001
[[prefixes]]
prefix = "192.0.2.53/32"
med = 200
communities = ["65000:53", "no-export"]
large_communities = ["65001:1:2"]
as_path_prepend = 2
[[prefixes]]
prefix = "2001:db8:53::/48"
next_hop = "2001:db8::1"
as_path_prepend = [64999]
"#,
        )
        .unwrap();
        assert_eq!(c.dns, "127.0.0.1:53".parse().unwrap(), "wildcard is asked on loopback");
        assert_eq!(c.timeout, Duration::from_millis(300));
        assert_eq!(c.interval, Duration::from_secs(2));
        assert_eq!(
            c.announce_lines(),
            vec![
                "announce route 192.0.2.53/32 next-hop self med 200 community [ 65000:53 no-export ] large-community [ 65001:1:2 ] as-path [ 65001 65001 65001 ]",
                "announce route 2001:db8:53::/48 next-hop 2001:db8::1 as-path [ 64999 65001 ]",
            ]
        );
    }

    #[test]
    fn errors_point_at_the_line() {
        let e = parse(
            "check_name = \"x.test\"\n[[prefixes]]\nprefix = \"192.0.2.53/32\"\ncommunities = [\"65000:99999\"]\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.to_string().contains("65000:99999"), "{e}");
        let e = parse(&format!("{MIN}as_path_prepend = 1\n")).unwrap_err();
        assert!(e.to_string().contains("needs local_as"), "{e}");
        assert_eq!(e.line, 4, "{e}");
        let e = parse(&format!("fall = 0\n{MIN}")).unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (1, "fall must be at least 1"));
        let e = parse(&format!("timeout = \"1s\"\n{MIN}")).unwrap_err();
        assert!(e.message.contains("shorter than interval"), "{e}");
        let e = parse(&format!("interval = \"soon\"\n{MIN}")).unwrap_err();
        assert!(e.message.contains("bad duration"), "{e}");
        let e = parse("check_name = \"x.test\"\n").unwrap_err();
        assert!(e.message.contains("no [[prefixes]]"), "{e}");
        let e = parse("[[prefixes]]\nprefix = \"192.0.2.53/32\"\n").unwrap_err();
        assert!(e.message.contains("check_name"), "{e}");
        let e = parse(&format!("{MIN}bogus = 1\n")).unwrap_err();
        assert!(e.message.contains("bogus"), "{e}");
        let e = parse("check_name = \"x.test\"\n[[prefixes]]\nprefix = \"192.0.2.1/24\"\n").unwrap_err();
        assert!(e.message.contains("host bits"), "{e}");
        let e = parse(&format!("check_type = \"NOPE\"\n{MIN}")).unwrap_err();
        assert!(e.message.contains("check_type"), "{e}");
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/anycast/anycast.toml");
        let c = AnycastConfig::load(&path).unwrap();
        assert_eq!(c.dns, "192.0.2.53:53".parse().unwrap());
        assert_eq!(
            c.announce_lines(),
            vec!["announce route 192.0.2.53/32 next-hop self med 100 community [ 65000:53 ]"]
        );
    }

    #[test]
    fn dns_defaults_to_the_servers_first_listen_address() {
        let dir = std::env::temp_dir().join(format!("meridian-anycast-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("meridian.toml"), "listen = [\"0.0.0.0:53\", \"[::1]:53\"]\n").unwrap();
        let text = format!("meridian_config = \"meridian.toml\"\n{MIN}");
        let c = AnycastConfig::parse(Source { path: dir.join("anycast.toml"), text }).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(c.dns, "127.0.0.1:53".parse().unwrap());
    }
}
