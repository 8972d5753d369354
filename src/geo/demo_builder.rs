//! Builds the project's demo database (`geoip/demo.mmdb`) from a readable CSV.
//!
//! The output is a GeoIP2-City-compatible IPv6-tree database, so everything
//! that reads GeoIP2-City (including [`GeoDb`]) reads it; IPv4 networks live
//! at `::/96` with the usual IPv4-mapped aliases, as in MaxMind's files.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use ipnet::IpNet;
use mmdb_writer::{IpVersion, Writer};
use serde::Serialize;

use super::{GeoDb, GeoError, Location};

/// `database_type` written into the demo database's metadata.
pub const DEMO_DATABASE_TYPE: &str = "Meridian-Demo-City";

/// Fixed build time, so rebuilding an unchanged CSV gives identical bytes.
const DEMO_BUILD_EPOCH: u64 = 1_735_689_600; // 2025-01-01

const HEADER: [&str; 7] = ["network", "continent", "country", "subdivision", "latitude", "longitude", "name"];

const CONTINENTS: [(&str, &str); 7] = [
    ("AF", "Africa"),
    ("AN", "Antarctica"),
    ("AS", "Asia"),
    ("EU", "Europe"),
    ("NA", "North America"),
    ("OC", "Oceania"),
    ("SA", "South America"),
];

/// What [`build_demo`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSummary {
    pub networks_v4: usize,
    pub networks_v6: usize,
    pub node_count: u32,
    pub bytes: usize,
}

impl fmt::Display for BuildSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} networks ({} IPv4, {} IPv6), {} nodes, {} bytes",
            self.networks_v4 + self.networks_v6,
            self.networks_v4,
            self.networks_v6,
            self.node_count,
            self.bytes
        )
    }
}

/// Reads `csv` (see `geoip/demo.csv` for the format), writes `out`
/// atomically, and reads it back through [`GeoDb::open`] checking every row,
/// so a written database is always one the server accepts.
pub fn build_demo(csv: &Path, out: &Path) -> Result<BuildSummary, GeoError> {
    let rows = parse_csv(csv)?;
    let write_err = |reason: String| GeoError::Write { path: out.to_path_buf(), reason };

    let mut writer = Writer::builder(DEMO_DATABASE_TYPE)
        .description(&[("en", "Meridian demo database: documentation, private and test ranges only")])
        .ip_version(IpVersion::V6)
        .build_epoch(UNIX_EPOCH + Duration::from_secs(DEMO_BUILD_EPOCH))
        .build();
    for row in &rows {
        writer.insert(row.network, &row.record()).map_err(|e| GeoError::Csv {
            path: csv.to_path_buf(),
            line: row.line,
            reason: format!("field \"network\": {e}"),
        })?;
    }
    let bytes = writer.to_bytes().map_err(|e| write_err(e.to_string()))?;
    let node_count = maxminddb::Reader::from_source(bytes.as_slice())
        .map_err(|e| write_err(format!("writer produced an unreadable database: {e}")))?
        .metadata()
        .node_count;

    // Write beside the target and rename, so a server reloading `out` never
    // sees a half-written file; validate before the rename.
    let tmp = tmp_path(out);
    fs::write(&tmp, &bytes).map_err(|e| write_err(e.to_string()))?;
    let checked = GeoDb::open(&tmp, None).and_then(|db| {
        rows.iter().try_for_each(|row| {
            let got = db.lookup(row.network.network());
            if row.matches(&got) {
                Ok(())
            } else {
                Err(write_err(format!("read-back of {} gave {got:?}", row.network)))
            }
        })
    });
    if let Err(e) = checked.and_then(|()| fs::rename(&tmp, out).map_err(|e| write_err(e.to_string()))) {
        fs::remove_file(&tmp).ok();
        return Err(e);
    }

    let networks_v4 = rows.iter().filter(|r| matches!(r.network, IpNet::V4(_))).count();
    Ok(BuildSummary { networks_v4, networks_v6: rows.len() - networks_v4, node_count, bytes: bytes.len() })
}

fn tmp_path(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    out.with_file_name(format!(".{name}.tmp"))
}

/// One data line of the CSV, validated.
#[derive(Debug)]
pub(crate) struct DemoRow {
    pub(crate) line: usize,
    pub(crate) network: IpNet,
    continent: &'static str,
    country: String,
    /// The subdivision's own code ("CA" of "US-CA"), as GeoIP2 stores it.
    subdivision: Option<String>,
    coords: Option<(f64, f64)>,
    name: String,
}

impl DemoRow {
    /// The [`Location`] a lookup inside this row's network must return.
    pub(crate) fn expected(&self) -> Location {
        Location {
            network: self.network,
            country: Some(self.country.clone()),
            continent: Some(self.continent.to_string()),
            subdivision: self.subdivision.as_ref().map(|s| format!("{}-{s}", self.country)),
            coords: self.coords,
            asn: None,
            asn_network: None,
        }
    }

    /// Whether `got` is this row's answer. The network may be larger than the
    /// row's when identical neighbouring records were merged by the writer.
    pub(crate) fn matches(&self, got: &Location) -> bool {
        got.network.contains(&self.network) && Location { network: got.network, ..self.expected() } == *got
    }

    fn record(&self) -> CityRecord<'_> {
        let continent_name = CONTINENTS.iter().find(|(c, _)| *c == self.continent).map_or("", |(_, n)| n);
        CityRecord {
            continent: ContinentRec { code: self.continent, names: Names { en: continent_name } },
            country: IsoRec { iso_code: &self.country, names: Names { en: &self.name } },
            // The demo has no subdivision names; the code stands in for one.
            subdivisions: self.subdivision.as_deref().map(|s| vec![IsoRec { iso_code: s, names: Names { en: s } }]),
            location: self.coords.map(|(latitude, longitude)| LocationRec { latitude, longitude }),
        }
    }
}

// GeoIP2-City record layout (the subset the demo fills in).
#[derive(Serialize)]
struct CityRecord<'a> {
    continent: ContinentRec<'a>,
    country: IsoRec<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subdivisions: Option<Vec<IsoRec<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<LocationRec>,
}

#[derive(Serialize)]
struct ContinentRec<'a> {
    code: &'a str,
    names: Names<'a>,
}

#[derive(Serialize)]
struct IsoRec<'a> {
    iso_code: &'a str,
    names: Names<'a>,
}

#[derive(Serialize)]
struct Names<'a> {
    en: &'a str,
}

#[derive(Serialize)]
struct LocationRec {
    latitude: f64,
    longitude: f64,
}

/// Parses and validates the whole CSV; errors name file, line and field.
pub(crate) fn parse_csv(path: &Path) -> Result<Vec<DemoRow>, GeoError> {
    let text = fs::read_to_string(path).map_err(|source| GeoError::Read { path: path.to_path_buf(), source })?;
    let err = |line: usize, reason: String| GeoError::Csv { path: path.to_path_buf(), line, reason };
    let mut rows: Vec<DemoRow> = Vec::new();
    let mut seen_header = false;
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        // `name` is last so it may contain commas.
        let fields: Vec<&str> = raw.splitn(HEADER.len(), ',').map(str::trim).collect();
        if !seen_header {
            if fields != HEADER {
                return Err(err(line, format!("expected header line \"{}\"", HEADER.join(","))));
            }
            seen_header = true;
            continue;
        }
        if fields.len() != HEADER.len() {
            return Err(err(line, format!("expected {} comma-separated fields, found {}", HEADER.len(), fields.len())));
        }
        let row =
            parse_row(line, &fields).map_err(|(field, reason)| err(line, format!("field \"{field}\": {reason}")))?;
        if let Some(prev) = rows.iter().find(|r| r.network.contains(&row.network) || row.network.contains(&r.network)) {
            return Err(err(
                line,
                format!("field \"network\": {} overlaps {} from line {}", row.network, prev.network, prev.line),
            ));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(err(text.lines().count(), "no networks in file".into()));
    }
    Ok(rows)
}

fn parse_row(line: usize, f: &[&str]) -> Result<DemoRow, (&'static str, String)> {
    let network: IpNet = f[0].parse().map_err(|_| ("network", format!("invalid CIDR {:?}", f[0])))?;
    if network.trunc() != network {
        return Err(("network", format!("{:?} has host bits set (did you mean {}?)", f[0], network.trunc())));
    }
    let continent = CONTINENTS.iter().map(|(c, _)| *c).find(|c| *c == f[1]).ok_or_else(|| {
        ("continent", format!("unknown continent code {:?} (expected one of AF, AN, AS, EU, NA, OC, SA)", f[1]))
    })?;
    let country = f[2];
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(("country", format!("{country:?} is not an ISO 3166-1 alpha-2 code like \"DE\"")));
    }
    let subdivision = match f[3] {
        "" => None,
        s => {
            let code = s
                .strip_prefix(country)
                .and_then(|r| r.strip_prefix('-'))
                .filter(|c| {
                    (1..=3).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                })
                .ok_or_else(|| ("subdivision", format!("{s:?} is not of the form \"{country}-XX\"")))?;
            Some(code.to_string())
        }
    };
    let coord = |field: &'static str, s: &str, max: f64| -> Result<Option<f64>, (&'static str, String)> {
        if s.is_empty() {
            return Ok(None);
        }
        match s.parse::<f64>() {
            Ok(v) if (-max..=max).contains(&v) => Ok(Some(v)),
            _ => Err((field, format!("{s:?} is not a number between -{max} and {max}"))),
        }
    };
    let coords = match (coord("latitude", f[4], 90.0)?, coord("longitude", f[5], 180.0)?) {
        (Some(lat), Some(lon)) => Some((lat, lon)),
        (None, None) => None,
        (Some(_), None) => return Err(("longitude", "missing while latitude is given".into())),
        (None, Some(_)) => return Err(("latitude", "missing while longitude is given".into())),
    };
    if f[6].is_empty() {
        return Err(("name", "empty (give the country's English name)".into()));
    }
    Ok(DemoRow { line, network, continent, country: country.to_string(), subdivision, coords, name: f[6].to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn manifest(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("meridian-demo-{}-{name}", std::process::id()))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Rewrites the committed geoip/demo.mmdb from geoip/demo.csv.
    #[test]
    #[ignore = "writes geoip/demo.mmdb; run after editing geoip/demo.csv"]
    fn regenerate_demo_db() {
        let summary = build_demo(&manifest("geoip/demo.csv"), &manifest("geoip/demo.mmdb")).unwrap();
        eprintln!("wrote geoip/demo.mmdb: {summary}");
    }

    /// The committed demo.mmdb must answer exactly like a fresh build of
    /// demo.csv: fails when the CSV was edited without regenerating.
    #[test]
    fn demo_db_is_fresh() {
        let csv = manifest("geoip/demo.csv");
        let fresh_path = temp("fresh.mmdb");
        build_demo(&csv, &fresh_path).unwrap();
        let fresh = GeoDb::open(&fresh_path, None).unwrap();
        let committed = GeoDb::open(&manifest("geoip/demo.mmdb"), None).unwrap();
        let stale = "geoip/demo.mmdb is stale: run `cargo test --lib regenerate_demo_db -- --ignored`";
        for row in parse_csv(&csv).unwrap() {
            let (first, last) = match row.network {
                IpNet::V4(n) => (IpAddr::V4(n.network()), IpAddr::V4(n.broadcast())),
                IpNet::V6(n) => (IpAddr::V6(n.network()), IpAddr::V6(n.broadcast())),
            };
            for addr in [first, last] {
                let got = committed.lookup(addr);
                assert_eq!(got, fresh.lookup(addr), "{stale} (line {}, {addr})", row.line);
                assert!(row.matches(&got), "{stale} (line {}, {addr}): {got:?}", row.line);
            }
        }
        for addr in ["127.0.0.1", "::1", "8.8.8.8"] {
            assert_eq!(committed.lookup(ip(addr)), fresh.lookup(ip(addr)), "{stale} ({addr})");
        }
        fs::remove_file(fresh_path).ok();
    }

    #[test]
    fn demo_db_lookups() {
        let db = GeoDb::open(&manifest("geoip/demo.mmdb"), None).unwrap();
        assert!(db.describe().starts_with("Meridian-Demo-City built 2025-01-01"), "{}", db.describe());
        let cases = [
            ("192.0.2.1", "192.0.2.0/24", "US", "NA", Some("US-VA")),
            ("198.51.100.200", "198.51.100.0/24", "DE", "EU", None),
            ("203.0.113.9", "203.0.113.0/24", "JP", "AS", None),
            ("10.1.2.3", "10.1.0.0/16", "US", "NA", Some("US-CA")),
            ("10.2.0.1", "10.2.0.0/16", "BR", "SA", None),
            ("10.4.255.255", "10.4.0.0/16", "ZA", "AF", None),
            ("10.6.1.1", "10.6.0.0/16", "AU", "OC", None),
            ("10.7.0.1", "10.7.0.0/16", "AQ", "AN", None),
            ("::ffff:10.3.0.1", "10.3.0.0/16", "GB", "EU", None),
            ("2001:db8:1::1", "2001:db8:1::/48", "US", "NA", Some("US-VA")),
            ("2001:db8:2:ffff::1", "2001:db8:2::/48", "BR", "SA", None),
            ("2001:db8:7::53", "2001:db8:7::/48", "AQ", "AN", None),
            ("2001:db8:8::1", "2001:db8:8::/48", "DE", "EU", None),
        ];
        for (addr, network, country, continent, sub) in cases {
            let l = db.lookup(ip(addr));
            assert_eq!(l.network, network.parse::<IpNet>().unwrap(), "{addr}: {l:?}");
            assert_eq!(
                (l.country.as_deref(), l.continent.as_deref(), l.subdivision.as_deref()),
                (Some(country), Some(continent), sub),
                "{addr}"
            );
            assert!(l.coords.is_some() && l.asn.is_none() && l.asn_network.is_none(), "{addr}: {l:?}");
        }
        assert_eq!(db.lookup(ip("10.1.0.1")).coords, Some((37.7749, -122.4194)));
        assert_eq!(db.lookup(ip("10.8.0.1")).coords, Some((50.1109, 8.6821)));

        // Loopback and other uncovered space: no location (tests rely on it).
        for addr in ["127.0.0.1", "::1", "8.8.8.8", "2001:db8:ffff::1"] {
            let l = db.lookup(ip(addr));
            assert!(l.is_unknown() && l.network.contains(&ip(addr)), "{addr}: {l:?}");
            assert_eq!(l.network.addr().is_ipv4(), ip(addr).is_ipv4(), "{addr}: {l:?}");
        }
        assert!(db.lookup(ip("127.0.0.1")).network.prefix_len() <= 8);
    }

    #[test]
    fn demo_covers_every_continent_on_both_families() {
        let rows = parse_csv(&manifest("geoip/demo.csv")).unwrap();
        for (cont, _) in CONTINENTS {
            for v4 in [true, false] {
                assert!(
                    rows.iter().any(|r| r.continent == cont && matches!(r.network, IpNet::V4(_)) == v4),
                    "no {} network on {cont}",
                    if v4 { "IPv4" } else { "IPv6" }
                );
            }
        }
    }

    #[track_caller]
    fn csv_error(body: &str) -> String {
        let path = temp("bad.csv");
        fs::write(&path, body).unwrap();
        let e = build_demo(&path, &temp("bad.mmdb")).unwrap_err().to_string();
        fs::remove_file(&path).ok();
        e.replace(&path.display().to_string(), "bad.csv")
    }

    #[test]
    fn csv_errors_name_line_and_field() {
        let h = "# demo\nnetwork,continent,country,subdivision,latitude,longitude,name\n";
        let cases = [
            (format!("{h}10.0.0/8,EU,DE,,,,Germany\n"), "bad.csv:3: field \"network\": invalid CIDR \"10.0.0/8\""),
            (
                format!("{h}10.0.0.1/8,EU,DE,,,,Germany\n"),
                "bad.csv:3: field \"network\": \"10.0.0.1/8\" has host bits set (did you mean 10.0.0.0/8?)",
            ),
            (
                format!("{h}10.0.0.0/8,XX,DE,,,,Germany\n"),
                "bad.csv:3: field \"continent\": unknown continent code \"XX\"",
            ),
            (format!("{h}10.0.0.0/8,EU,de,,,,Germany\n"), "bad.csv:3: field \"country\": \"de\" is not"),
            (
                format!("{h}10.0.0.0/8,NA,US,CA,,,United States\n"),
                "bad.csv:3: field \"subdivision\": \"CA\" is not of the form \"US-XX\"",
            ),
            (format!("{h}10.0.0.0/8,EU,DE,,91,8,Germany\n"), "bad.csv:3: field \"latitude\": \"91\" is not a number"),
            (format!("{h}10.0.0.0/8,EU,DE,,50,,Germany\n"), "bad.csv:3: field \"longitude\": missing"),
            (format!("{h}10.0.0.0/8,EU,DE,,,,\n"), "bad.csv:3: field \"name\": empty"),
            (format!("{h}10.0.0.0/8,EU,DE\n"), "bad.csv:3: expected 7 comma-separated fields, found 3"),
            (
                format!("{h}10.0.0.0/8,EU,DE,,,,Germany\n\n10.1.0.0/16,EU,DE,,,,Germany\n"),
                "bad.csv:5: field \"network\": 10.1.0.0/16 overlaps 10.0.0.0/8 from line 3",
            ),
            (
                format!("{h}::ffff:0:0/96,EU,DE,,,,Germany\n"),
                "bad.csv:3: field \"network\": cannot insert into aliased network",
            ),
            ("10.0.0.0/8,EU,DE,,,,Germany\n".to_string(), "bad.csv:1: expected header line"),
            (h.to_string(), "bad.csv:2: no networks in file"),
        ];
        for (body, want) in cases {
            let got = csv_error(&body);
            assert!(got.starts_with(want), "got {got:?}\nwant {want:?}");
        }
        assert!(!temp("bad.mmdb").exists() && !tmp_path(&temp("bad.mmdb")).exists());
    }
}
