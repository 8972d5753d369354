//! Builds the project's demo database (`geoip/demo.mmdb`) from a readable CSV.
//!
//! The output is a GeoIP2-City-compatible IPv6-tree database, so everything
//! that reads GeoIP2-City (including [`GeoDb`]) reads it; IPv4 networks live
//! at `::/96` with the usual IPv4-mapped aliases, as in MaxMind's files.

use std::collections::BTreeMap;
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
    let mut seen = DisjointNets::default();
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
        if !seen.insert(row.network) {
            // Rare path: a linear scan names the earliest line it overlaps.
            let overlaps = |r: &&DemoRow| r.network.contains(&row.network) || row.network.contains(&r.network);
            let prev = rows.iter().find(overlaps).expect("DisjointNets found an overlap");
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

/// Pairwise disjoint networks, keyed by (is IPv4, first address) with the
/// last address as value. Checking each new row against every earlier one
/// made `geoip build` quadratic (minutes for 300k rows); since accepted
/// networks never overlap, only the two neighbours of a new one can.
#[derive(Default)]
struct DisjointNets(BTreeMap<(bool, u128), u128>);

impl DisjointNets {
    /// Adds `net` unless it overlaps (contains or lies inside) one already held.
    fn insert(&mut self, net: IpNet) -> bool {
        let (v4, first, last) = match net {
            IpNet::V4(n) => (true, u128::from(u32::from(n.network())), u128::from(u32::from(n.broadcast()))),
            IpNet::V6(n) => (false, u128::from(n.network()), u128::from(n.broadcast())),
        };
        let before = self.0.range(..=(v4, first)).next_back();
        if before.is_some_and(|(&(fam, _), &end)| fam == v4 && end >= first) {
            return false;
        }
        if self.0.range((v4, first)..=(v4, last)).next().is_some() {
            return false;
        }
        self.0.insert((v4, first), last);
        true
    }
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
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

    /// A demo CSV of `n` disjoint networks: 3/4 IPv4 of /22 to /30, 1/4 IPv6
    /// of /40 to /64, with small gaps, cycling through 97 records so some
    /// neighbours share one (and the writer may merge them).
    fn synthetic_csv(n: usize) -> String {
        let mut out = HEADER.join(",") + "\n";
        let (mut v4, mut v6) = (u32::from(Ipv4Addr::new(1, 0, 0, 0)), u128::from(0x2400_u16) << 112);
        for i in 0..n {
            let place = i * 7 % 97;
            let (cont, cc) = [("EU", "DE"), ("NA", "US"), ("AS", "JP"), ("SA", "BR")][place % 4];
            let sub = if place % 3 == 0 { String::new() } else { format!("{cc}-{}", place % 50) };
            let rec = format!("{cont},{cc},{sub},{}.5,{}.25,Land {place}", place % 80, place % 170);
            if i % 4 == 3 {
                let plen = [40, 48, 56, 64][i % 7 % 4];
                let size = 1u128 << (128 - plen);
                v6 = v6.div_ceil(size) * size;
                out += &format!("{}/{plen},{rec}\n", Ipv6Addr::from(v6));
                v6 += size * if i % 11 == 0 { 2 } else { 1 };
            } else {
                let plen = 22 + (i * 5 % 9) as u32;
                let size = 1u32 << (32 - plen);
                v4 = v4.div_ceil(size) * size;
                out += &format!("{}/{plen},{rec}\n", Ipv4Addr::from(v4));
                v4 += size * if i % 13 == 0 { 2 } else { 1 };
            }
        }
        out
    }

    /// Every address range of every input row answers with that row's record,
    /// on a few thousand networks of mixed sizes and families.
    #[test]
    fn built_db_answers_every_input_network() {
        let (csv, out) = (temp("many.csv"), temp("many.mmdb"));
        fs::write(&csv, synthetic_csv(4000)).unwrap();
        let summary = build_demo(&csv, &out).unwrap();
        assert_eq!((summary.networks_v4, summary.networks_v6), (3000, 1000), "{summary}");
        let db = GeoDb::open(&out, None).unwrap();
        let rows = parse_csv(&csv).unwrap();
        for row in &rows {
            let (first, last) = match row.network {
                IpNet::V4(n) => (IpAddr::V4(n.network()), IpAddr::V4(n.broadcast())),
                IpNet::V6(n) => (IpAddr::V6(n.network()), IpAddr::V6(n.broadcast())),
            };
            for addr in [first, last] {
                let got = db.lookup(addr);
                assert!(row.matches(&got), "line {} {addr}: {got:?} want {:?}", row.line, row.expected());
            }
        }
        // The gaps between networks stay unknown.
        let gaps = rows.windows(2).filter_map(|w| match (w[0].network, w[1].network) {
            (IpNet::V4(a), IpNet::V4(b)) => {
                let after = u32::from(a.broadcast()) + 1;
                (after < u32::from(b.network())).then(|| IpAddr::V4(after.into()))
            }
            _ => None,
        });
        let mut checked = 0;
        for addr in gaps {
            assert!(db.lookup(addr).is_unknown(), "{addr}: {:?}", db.lookup(addr));
            checked += 1;
        }
        assert!(checked > 100, "only {checked} gaps");
        fs::remove_file(csv).ok();
        fs::remove_file(out).ok();
    }

    /// Validating 150,000 rows took minutes when each row was compared with
    /// every earlier one; now it takes about a second even in a debug build.
    #[test]
    fn overlap_check_scales_to_big_files() {
        let path = temp("big.csv");
        fs::write(&path, synthetic_csv(150_000)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || tx.send(parse_csv(&p).map(|rows| rows.len())));
        let got = rx.recv_timeout(std::time::Duration::from_secs(30));
        fs::remove_file(&path).ok();
        assert_eq!(got.expect("parse_csv of 150,000 rows took over 30 s").unwrap(), 150_000);
    }

    #[test]
    fn disjoint_nets_finds_overlaps_in_both_directions() {
        let mut seen = DisjointNets::default();
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        for ok in ["10.0.1.0/24", "10.0.3.0/24", "10.0.2.0/24", "::a00:0/104", "10.0.0.255/32", "10.0.4.0/22"] {
            assert!(seen.insert(net(ok)), "{ok}");
        }
        // Inside one, containing one, equal to one; the v6 /104 does not clash with 10/8 on v4.
        for clash in ["10.0.2.128/25", "10.0.0.0/16", "10.0.3.0/24", "10.0.7.255/32", "::a00:100/120"] {
            assert!(!seen.insert(net(clash)), "{clash}");
        }
        assert!(seen.insert(net("10.0.8.0/21")) && !seen.insert(net("0.0.0.0/0")));
    }

    #[test]
    fn overlap_error_names_the_earliest_line() {
        let h = "network,continent,country,subdivision,latitude,longitude,name\n";
        let body =
            format!("{h}10.2.0.0/16,EU,DE,,,,Germany\n10.1.0.0/16,EU,DE,,,,Germany\n10.0.0.0/8,EU,DE,,,,Germany\n");
        let got = csv_error(&body);
        assert!(got.starts_with("bad.csv:4: field \"network\": 10.0.0.0/8 overlaps 10.2.0.0/16 from line 2"), "{got}");
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
