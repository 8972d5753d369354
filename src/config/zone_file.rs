//! The zone TOML schema, exactly as an operator writes it (see docs/zone-format.md).
//!
//! Fields keep their byte spans so every later validation error can name the
//! line and column it is about.

use serde::Deserialize;
use toml::Spanned;

fn default_ttl() -> u32 {
    3600
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneFile {
    /// The zone apex, e.g. "gslb.example.test." (trailing dot optional).
    pub origin: Spanned<String>,
    /// Default TTL for records that do not set one.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    pub soa: Spanned<SoaSpec>,
    /// Apex NS names (shorthand for `[[records]] name="@" type="NS"`).
    #[serde(default)]
    pub ns: Vec<Spanned<String>>,
    /// RFC 1035 master files with more static records (a string or a list).
    #[serde(default)]
    pub include: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub records: Vec<Spanned<RecordSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoaSpec {
    pub mname: Spanned<String>,
    pub rname: Spanned<String>,
    pub serial: u32,
    #[serde(default = "soa_refresh")]
    pub refresh: i32,
    #[serde(default = "soa_retry")]
    pub retry: i32,
    #[serde(default = "soa_expire")]
    pub expire: i32,
    #[serde(default = "soa_minimum")]
    pub minimum: u32,
    pub ttl: Option<u32>,
}

fn soa_refresh() -> i32 {
    7200
}
fn soa_retry() -> i32 {
    3600
}
fn soa_expire() -> i32 {
    1_209_600
}
fn soa_minimum() -> u32 {
    300
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSpec {
    /// Owner: "@" for the apex, relative to the origin, or absolute with a trailing dot.
    pub name: Spanned<String>,
    #[serde(rename = "type")]
    pub rtype: Spanned<String>,
    pub ttl: Option<u32>,
    /// Presentation-format RDATA: one string or a list (one record each).
    pub data: Spanned<toml::Value>,
}
