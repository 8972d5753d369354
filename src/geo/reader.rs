//! [`GeoDb`]: validated-at-open MaxMind database readers and the infallible lookup.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use maxminddb::{MaxMindDbError, Metadata, Reader};
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

use super::tree::{Tree, CLASSES};
use super::{GeoError, Location};

/// Addresses looked up and decoded at open, so a database whose records we
/// cannot decode is refused at (re)load rather than discovered per query.
const SAMPLE_ADDRESSES: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)),
    IpAddr::V4(Ipv4Addr::new(81, 2, 69, 142)),
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
];

/// A City/Country database plus an optional ASN database, both held in
/// memory (never mmapped: the file may be replaced under us on reload).
#[derive(Debug)]
pub struct GeoDb {
    geo: Db,
    asn: Option<Db>,
}

struct Db {
    reader: Reader<Vec<u8>>,
    path: PathBuf,
    /// A small search tree compiled for `GeoDb::class`.
    tree: Option<Tree>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db").field("path", &self.path).field("small_tree", &self.tree.is_some()).finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Geo,
    Asn,
}

impl GeoDb {
    /// Opens and fully validates the databases. Any problem (unreadable,
    /// truncated, corrupt, wrong kind of database) is an error naming the
    /// file; a database that opens here will not fail on the query path.
    pub fn open(city_or_country_path: &Path, asn_path: Option<&Path>) -> Result<GeoDb, GeoError> {
        let geo = Db::open(city_or_country_path, Role::Geo)?;
        let asn = asn_path.map(|p| Db::open(p, Role::Asn)).transpose()?;
        Ok(GeoDb { geo, asn })
    }

    /// Where `ip` is. Never fails: addresses the database does not cover, and
    /// (in theory unreachable after validation) undecodable records, give a
    /// [`Location`] with only `network` set.
    pub fn lookup(&self, ip: IpAddr) -> Location {
        // IPv4-mapped IPv6 (::ffff:a.b.c.d) is an IPv4 client: look it up as
        // such so IPv4-only databases work and the network is an IPv4 prefix.
        let ip = ip.to_canonical();
        let (network, record) = self.geo.find::<GeoRecord>(ip);
        let mut loc = match record {
            Some(r) => r.into_location(network),
            None => Location::empty(network),
        };
        if let Some(asn) = &self.asn {
            let (network, record) = asn.find::<AsnRecord>(ip);
            loc.asn_network = Some(network);
            loc.asn = record.and_then(|r| r.autonomous_system_number).and_then(Num::into_u32);
        }
        loc
    }

    /// The networks `lookup` would report for `ip` (city/country database,
    /// ASN database), without decoding any record: everything in one pair of
    /// networks has the same `Location` fields, so this is a cache key.
    pub fn networks(&self, ip: IpAddr) -> (IpNet, Option<IpNet>) {
        let ip = ip.to_canonical();
        (self.geo.network(ip), self.asn.as_ref().map(|a| a.network(ip)))
    }

    /// Where `ip` ends in the databases' search trees, as one number: equal
    /// for two addresses exactly when they end at the same records with the
    /// same network lengths, so their `Location`s differ at most in the
    /// networks' addresses (a cache key, like `networks`, but coarser and found
    /// by a few table reads). `None` when a tree is too big (see `Tree`).
    #[inline]
    pub fn class(&self, ip: IpAddr) -> Option<u32> {
        let geo = self.geo.tree.as_ref()?;
        let ip = ip.to_canonical();
        let asn = match &self.asn {
            None => 0,
            Some(a) => a.tree.as_ref()?.class(ip),
        };
        Some(geo.class(ip) | (asn * CLASSES))
    }

    /// Whether `class` answers (every tree is small).
    pub fn has_classes(&self) -> bool {
        self.geo.tree.is_some() && self.asn.as_ref().is_none_or(|a| a.tree.is_some())
    }

    /// Test helper: behave as if the trees were too big for classes.
    #[cfg(test)]
    pub(crate) fn without_classes(mut self) -> GeoDb {
        self.geo.tree = None;
        if let Some(a) = &mut self.asn {
            a.tree = None;
        }
        self
    }

    /// One line for logs and `meridian check`, e.g.
    /// `GeoIP2-City built 2024-05-01 (epoch 1714521600), 1234 nodes, IPv6 tree, file /x.mmdb`.
    pub fn describe(&self) -> String {
        match &self.asn {
            Some(asn) => format!("{}; ASN: {}", self.geo, asn),
            None => self.geo.to_string(),
        }
    }

    /// Every network of the City/Country database that has a record, in
    /// tree order (`meridian map`'s default population). IPv4 networks of an
    /// IPv6 tree come as IPv4; the reader already skips the aliases that
    /// point at the IPv4 subtree, and `f` is not called for any network
    /// inside them either (some writers copy the subtree instead).
    pub fn each_network(&self, mut f: impl FnMut(IpNet)) -> Result<(), GeoError> {
        let invalid = |e: MaxMindDbError| GeoError::Invalid { path: self.geo.path.clone(), reason: e.to_string() };
        for item in self.geo.reader.networks(Default::default()).map_err(invalid)? {
            let n = item.map_err(invalid)?.network().map_err(invalid)?;
            let net = match n.network() {
                IpAddr::V4(a) => Ipv4Net::new(a, n.prefix()).map(IpNet::V4),
                IpAddr::V6(a) => Ipv6Net::new(a, n.prefix()).map(IpNet::V6),
            };
            let Ok(net) = net else { continue };
            if !is_ipv4_alias(&net) {
                f(net);
            }
        }
        Ok(())
    }

    /// Every network of the City/Country database in one family, in address
    /// order, with the `Location` `lookup` gives inside it (ASN fields
    /// unset; gaps in the tree come as empty locations): a partition of the
    /// family's space (`Runs`, the widest ECS scopes, is built from it).
    /// False, having called `f` for some, when there are more than `cap`
    /// networks, or for IPv6 in an IPv4 database.
    pub fn for_each_network(&self, v6: bool, cap: usize, mut f: impl FnMut(IpNet, &Location)) -> bool {
        let r = &self.geo.reader;
        let all: ipnetwork::IpNetwork = if v6 { "::/0" } else { "0.0.0.0/0" }.parse().expect("literal");
        let opts = maxminddb::WithinOptions::default().include_aliased_networks().include_networks_without_data();
        let Ok(iter) = r.within(all, opts) else { return false };
        // Many networks share a record: decode each record once.
        let mut decoded: rustc_hash::FxHashMap<usize, Location> = Default::default();
        for (n, item) in iter.enumerate() {
            let Ok(found) = item else { return false };
            let Ok(net) = found.network() else { return false };
            if n >= cap {
                return false;
            }
            let net = match IpNet::new(net.network(), net.prefix()) {
                Ok(net) => net.trunc(),
                Err(_) => return false,
            };
            let empty = Location::empty(net);
            let loc = match found.offset() {
                Some(off) => decoded.entry(off).or_insert_with(|| match found.decode::<GeoRecord>() {
                    Ok(Some(rec)) => rec.into_location(net),
                    _ => Location::empty(net),
                }),
                None => &empty,
            };
            f(net, loc);
        }
        true
    }

    /// Whether the City/Country database covers IPv6 (an IPv6 tree).
    pub fn is_v6(&self) -> bool {
        self.geo.reader.metadata().ip_version == 6
    }

    /// Paths of the City/Country and (if any) ASN database, for reload logic.
    pub fn paths(&self) -> (&Path, Option<&Path>) {
        (&self.geo.path, self.asn.as_ref().map(|a| a.path.as_path()))
    }
}

impl fmt::Display for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.reader.metadata();
        write!(
            f,
            "{} built {} (epoch {}), {} nodes, IPv{} tree, file {}",
            m.database_type,
            civil_date(m.build_epoch),
            m.build_epoch,
            m.node_count,
            m.ip_version,
            self.path.display()
        )
    }
}

/// The bytes of `path` if it is a regular file: a FIFO would hang the load
/// and a device such as /dev/zero would fill memory.
fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file (a directory, FIFO or device)"));
    }
    std::fs::read(path)
}

impl Db {
    fn open(path: &Path, role: Role) -> Result<Db, GeoError> {
        let invalid = |reason: String| GeoError::Invalid { path: path.to_path_buf(), reason };
        // Read into memory once: validation and lookups then see the same bytes
        // even if the file is replaced while we run.
        let buf = read_regular(path).map_err(|source| GeoError::Read { path: path.to_path_buf(), source })?;
        if buf.is_empty() {
            return Err(invalid("file is empty".into()));
        }
        // The reader is meant to return errors for corrupt input; the guard is
        // there so that a reader bug on a hostile file can never take the
        // server down during a reload.
        match catch_unwind(AssertUnwindSafe(|| validate(buf, role))) {
            Ok(Ok((reader, tree))) => Ok(Db { reader, path: path.to_path_buf(), tree }),
            Ok(Err(reason)) => Err(invalid(reason)),
            Err(panic) => Err(invalid(format!("reader panicked during validation: {}", panic_message(&*panic)))),
        }
    }

    /// The network that decides `ip`'s record, as `find` reports it (tree walk only).
    fn network(&self, ip: IpAddr) -> IpNet {
        match self.reader.lookup(ip) {
            Ok(r) => r.network().map(|n| to_ipnet(ip, n.network(), n.prefix())).unwrap_or_else(|_| host_net(ip)),
            Err(MaxMindDbError::InvalidInput { .. }) => family_net(ip, 0),
            Err(_) => host_net(ip),
        }
    }

    /// Looks `ip` up and decodes the record as `T`; returns the network that
    /// decided the answer and the record, if any. Errors are logged, not returned.
    fn find<'a, T: Deserialize<'a>>(&'a self, ip: IpAddr) -> (IpNet, Option<T>) {
        let result = match self.reader.lookup(ip) {
            Ok(r) => r,
            // Only an IPv6 address in an IPv4-only database gets here: the
            // whole IPv6 space is uncovered.
            Err(MaxMindDbError::InvalidInput { .. }) => return (family_net(ip, 0), None),
            Err(e) => {
                tracing::debug!(%ip, file = %self.path.display(), error = %e, "geo lookup failed");
                return (host_net(ip), None);
            }
        };
        let network = result.network().map(|n| to_ipnet(ip, n.network(), n.prefix())).unwrap_or_else(|_| host_net(ip));
        match result.decode::<T>() {
            Ok(record) => (network, record),
            Err(e) => {
                tracing::debug!(%ip, file = %self.path.display(), error = %e, "geo record decode failed");
                (network, None)
            }
        }
    }
}

/// Everything that must hold before a database may serve queries; and the
/// copy of its search tree when small (taken before the reader owns the bytes).
fn validate(buf: Vec<u8>, role: Role) -> Result<(Reader<Vec<u8>>, Option<Tree>), String> {
    let tree = Reader::from_source(buf.as_slice()).ok().and_then(|r| Tree::new(&buf, r.metadata()));
    let reader = Reader::from_source(buf).map_err(|e| e.to_string())?;
    check_metadata(reader.metadata(), role)?;
    // Walks the whole search tree and every data record it points to.
    reader.verify().map_err(|e| format!("verification failed: {e}"))?;
    // Exercise our own decoding too: a record of the wrong shape for this
    // role is refused here rather than silently yielding nothing per query.
    for ip in SAMPLE_ADDRESSES {
        if ip.is_ipv6() && reader.metadata().ip_version == 4 {
            continue;
        }
        let result = reader.lookup(ip).map_err(|e| format!("lookup of sample address {ip} failed: {e}"))?;
        result.network().map_err(|e| format!("lookup of sample address {ip} failed: {e}"))?;
        let decoded = match role {
            Role::Geo => result.decode::<GeoRecord>().map(drop),
            Role::Asn => result.decode::<AsnRecord>().map(drop),
        };
        decoded.map_err(|e| format!("record for sample address {ip} does not decode: {e}"))?;
    }
    Ok((reader, tree))
}

fn check_metadata(m: &Metadata, role: Role) -> Result<(), String> {
    if m.ip_version != 4 && m.ip_version != 6 {
        return Err(format!("ip_version is {}, expected 4 or 6", m.ip_version));
    }
    if !matches!(m.record_size, 24 | 28 | 32) {
        return Err(format!("record_size is {}, expected 24, 28 or 32", m.record_size));
    }
    if m.node_count == 0 {
        return Err("node_count is 0".into());
    }
    // Catch the two databases being swapped in the configuration.
    let kind = m.database_type.to_ascii_lowercase();
    match role {
        Role::Geo if kind.contains("asn") => {
            Err(format!("database_type {:?} is an ASN database; configure it as the ASN database", m.database_type))
        }
        Role::Asn if kind.contains("city") || kind.contains("country") => {
            Err(format!("database_type {:?} is a location database, not an ASN database", m.database_type))
        }
        _ => Ok(()),
    }
}

/// Inside one of the IPv6 ranges where MaxMind trees repeat the IPv4 space:
/// IPv4-mapped (`::ffff:0:0/96`), 6to4 (`2002::/16`) and Teredo (`2001::/32`).
fn is_ipv4_alias(net: &IpNet) -> bool {
    const ALIASES: [(u128, u8); 3] = [(0xffff_0000_0000, 96), (0x2002 << 112, 16), (0x2001_0000 << 96, 32)];
    let IpNet::V6(n) = net else { return false };
    let bits = u128::from(n.network());
    ALIASES.iter().any(|&(base, len)| n.prefix_len() >= len && bits >> (128 - len) == base >> (128 - len))
}

/// Converts the reader's network to the looked-up address's family. The
/// reader already gives IPv4 prefixes for IPv4 addresses in IPv6 databases
/// with an IPv4 subtree; this covers databases without one.
fn to_ipnet(ip: IpAddr, addr: IpAddr, prefix: u8) -> IpNet {
    match (ip, addr) {
        (IpAddr::V4(_), IpAddr::V6(v6)) if prefix >= 96 => {
            let v4 = Ipv4Addr::from((u128::from(v6) & 0xffff_ffff) as u32);
            Ipv4Net::new(v4, prefix - 96).map_or_else(|_| host_net(ip), IpNet::V4)
        }
        (IpAddr::V4(_), IpAddr::V6(_)) => family_net(ip, 0),
        _ => IpNet::new(addr, prefix).map_or_else(|_| host_net(ip), |n| n.trunc()),
    }
}

fn family_net(ip: IpAddr, prefix: u8) -> IpNet {
    match ip {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::new(a, prefix).expect("prefix <= 32").trunc()),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, prefix).expect("prefix <= 128").trunc()),
    }
}

/// The narrowest network: used when the database could not say anything.
fn host_net(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// `YYYY-MM-DD` (UTC) for a Unix time; days-to-civil after H. Hinnant.
fn civil_date(epoch: u64) -> String {
    let z = (epoch / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

// ---- The few fields we decode. Borrowed strings: no allocation per lookup
// beyond the owned strings in `Location`. Unknown fields are skipped without
// being decoded.

/// City/Country record: GeoIP2, GeoLite2 and DB-IP lite share this layout.
#[derive(Deserialize)]
struct GeoRecord<'a> {
    #[serde(borrow)]
    country: Option<Iso<'a>>,
    #[serde(borrow)]
    registered_country: Option<Iso<'a>>,
    #[serde(borrow)]
    continent: Option<Continent<'a>>,
    #[serde(borrow, default, deserialize_with = "first_subdivision")]
    subdivisions: Option<Iso<'a>>,
    location: Option<Coordinates>,
}

#[derive(Deserialize)]
struct Iso<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Continent<'a> {
    #[serde(borrow)]
    code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Coordinates {
    latitude: Option<Num>,
    longitude: Option<Num>,
}

#[derive(Deserialize)]
struct AsnRecord {
    autonomous_system_number: Option<Num>,
}

impl GeoRecord<'_> {
    fn into_location(self, network: IpNet) -> Location {
        let code = |c: Option<&str>| c.filter(|s| !s.is_empty()).map(str::to_owned);
        // Physical country first; registered country only when there is none
        // (e.g. anycast or satellite networks).
        let country = code(self.country.and_then(|c| c.iso_code))
            .or_else(|| code(self.registered_country.and_then(|c| c.iso_code)));
        let subdivision = match (&country, code(self.subdivisions.and_then(|s| s.iso_code))) {
            (Some(cc), Some(sub)) => Some(format!("{cc}-{sub}")),
            _ => None,
        };
        let coords = self.location.and_then(|l| match (l.latitude, l.longitude) {
            (Some(Num(lat)), Some(Num(lon))) if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) => {
                Some((lat, lon))
            }
            _ => None,
        });
        Location {
            network,
            country,
            continent: code(self.continent.and_then(|c| c.code)),
            subdivision,
            coords,
            asn: None,
            asn_network: None,
        }
    }
}

/// Keeps the first subdivision (the largest one) and skips the rest.
fn first_subdivision<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Iso<'de>>, D::Error> {
    struct First;
    impl<'de> Visitor<'de> for First {
        type Value = Option<Iso<'de>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of subdivisions")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let first = seq.next_element()?;
            // The decoder is sequential: the rest must be consumed to stay aligned.
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(first)
        }
    }
    d.deserialize_seq(First)
}

/// A number stored as any MMDB numeric type: MaxMind uses double for
/// coordinates and uint32 for ASNs, other writers are less consistent.
struct Num(f64);

impl Num {
    fn into_u32(self) -> Option<u32> {
        (self.0.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&self.0)).then_some(self.0 as u32)
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Num, E> {
                Ok(Num(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv6 ranges that repeat the IPv4 space are left out of the
    /// population (else every IPv4 client would count twice more as IPv6).
    #[test]
    fn ipv4_aliases_are_recognised() {
        for alias in
            ["::ffff:0:0/96", "::ffff:10.0.0.0/104", "2002::/16", "2002:a00::/24", "2001::/32", "2001:0:a00::/40"]
        {
            assert!(is_ipv4_alias(&alias.parse().unwrap()), "{alias}");
        }
        for real in ["2001:db8::/32", "2001:218::/32", "2000::/3", "2001::/16", "::/96", "10.0.0.0/8", "2003::/16"] {
            assert!(!is_ipv4_alias(&real.parse().unwrap()), "{real}");
        }
    }
    use std::fs;

    /// MaxMind's test databases, kept in the repository (tests/data/geoip/README.md).
    fn test_dir(sub: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/geoip").join(sub);
        assert!(dir.is_dir(), "{} missing: MaxMind's test databases travel with the repository", dir.display());
        dir
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("meridian-geo-{}-{name}", std::process::id()));
        fs::write(&path, contents).unwrap();
        path
    }

    #[track_caller]
    fn assert_geo(loc: &Location, network: &str, country: &str, continent: &str, sub: Option<&str>) {
        assert_eq!(loc.network, net(network), "{loc:?}");
        assert_eq!(loc.country.as_deref(), Some(country), "{loc:?}");
        assert_eq!(loc.continent.as_deref(), Some(continent), "{loc:?}");
        assert_eq!(loc.subdivision.as_deref(), sub, "{loc:?}");
    }

    #[test]
    fn maxmind_city_test_db() {
        let dir = test_dir("maxmind-test");
        let db = GeoDb::open(&dir.join("GeoIP2-City-Test.mmdb"), None).unwrap();
        // Networks and values from GeoIP2-City-Test.json.
        let l = db.lookup(ip("81.2.69.142"));
        assert_geo(&l, "81.2.69.142/31", "GB", "EU", Some("GB-ENG"));
        assert_eq!(l.coords, Some((51.5142, -0.0931)));
        assert_eq!((l.asn, l.asn_network), (None, None));
        assert_geo(&db.lookup(ip("89.160.20.112")), "89.160.20.112/28", "SE", "EU", Some("SE-E"));
        assert_geo(&db.lookup(ip("2.2.3.0")), "2.2.3.0/24", "GB", "EU", Some("GB-ENG"));
        let l = db.lookup(ip("216.160.83.56"));
        assert_geo(&l, "216.160.83.56/29", "US", "NA", Some("US-WA"));
        assert_eq!(l.coords, Some((47.2513, -122.3149)));
        assert_geo(&db.lookup(ip("214.78.124.0")), "214.78.124.0/24", "US", "NA", Some("US-CA"));
        assert_geo(&db.lookup(ip("2001:218::1")), "2001:218::/32", "JP", "AS", None);
        assert_geo(&db.lookup(ip("175.16.199.0")), "175.16.199.0/24", "CN", "AS", Some("CN-22"));
        // IPv4-mapped IPv6 is treated as the IPv4 client.
        assert_geo(&db.lookup(ip("::ffff:2.2.3.1")), "2.2.3.0/24", "GB", "EU", Some("GB-ENG"));

        // Records with missing fields: only traits; only continent.
        let l = db.lookup(ip("214.1.1.1"));
        assert_eq!(l, Location::empty(net("214.1.1.0/24")));
        let l = db.lookup(ip("2.3.3.1"));
        assert_eq!((l.country, l.continent.as_deref(), l.coords), (None, Some("EU"), None));

        // Misses report the empty network, all fields None, family preserved.
        let l = db.lookup(ip("127.0.0.1"));
        assert!(l.is_unknown() && l.network.contains(&ip("127.0.0.1")), "{l:?}");
        assert!(matches!(l.network, IpNet::V4(_)) && l.network.prefix_len() <= 8, "{l:?}");
        let l = db.lookup(ip("fe80::1"));
        assert!(l.is_unknown() && l.network.contains(&ip("fe80::1")), "{l:?}");

        assert!(db.describe().contains("GeoIP2-City"), "{}", db.describe());
        assert!(db.describe().contains("GeoIP2-City-Test.mmdb"), "{}", db.describe());
    }

    /// `networks` (the decision cache's key) reports exactly the networks
    /// `lookup` does, hits and misses, both families, IPv4-mapped included.
    #[test]
    fn networks_agree_with_lookup() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut dbs = vec![GeoDb::open(&root.join("geoip/demo.mmdb"), None).unwrap()];
        {
            let dir = test_dir("maxmind-test");
            let asn = dir.join("GeoLite2-ASN-Test.mmdb");
            dbs.push(GeoDb::open(&dir.join("GeoIP2-City-Test.mmdb"), Some(&asn)).unwrap());
            dbs.push(GeoDb::open(&dir.join("MaxMind-DB-test-ipv4-24.mmdb"), None).unwrap());
        }
        let mut addrs: Vec<IpAddr> = Vec::new();
        for a in 0..=255u8 {
            for b in [0u8, 1, 2, 3, 5, 7, 69, 128, 160, 255] {
                addrs.push(IpAddr::from([a, b, a ^ b, 7]));
            }
        }
        for s in ["2001:db8:3::1", "2001:db8:7::9", "2001:218::1", "fe80::1", "::ffff:10.3.0.1", "::ffff:2.2.3.1"] {
            addrs.push(ip(s));
        }
        for db in &dbs {
            for a in &addrs {
                let l = db.lookup(*a);
                assert_eq!(db.networks(*a), (l.network, l.asn_network), "{a} in {}", db.describe());
            }
        }
    }

    /// Our tables of a small tree (`GeoDb::class`) end where the reader's
    /// lookup does: the same network length and the same data record (or
    /// none), for the first and last address of every network in the tree
    /// and a spread of others, in 24-, 28- and 32-bit trees, IPv4 and IPv6.
    #[test]
    fn network_classes_agree_with_the_reader() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut dbs = vec![root.join("geoip/demo.mmdb")];
        {
            let dir = test_dir("maxmind-test");
            for f in [
                "GeoIP2-City-Test.mmdb",
                "GeoLite2-ASN-Test.mmdb",
                "GeoLite2-Country-Test.mmdb",
                "MaxMind-DB-test-ipv4-24.mmdb",
                "MaxMind-DB-test-mixed-32.mmdb",
            ] {
                dbs.push(dir.join(f));
            }
        }
        let mut sizes = std::collections::BTreeSet::new();
        for path in &dbs {
            let role = if path.to_string_lossy().contains("ASN") { Role::Asn } else { Role::Geo };
            let db = Db::open(path, role).unwrap();
            let tree = db.tree.as_ref().unwrap_or_else(|| panic!("{} has a small tree", path.display()));
            let m = db.reader.metadata();
            sizes.insert((m.record_size, m.ip_version));
            let mut addrs: Vec<IpAddr> = Vec::new();
            for n in db.reader.networks(Default::default()).unwrap().take(20_000) {
                let n = n.unwrap().network().unwrap();
                addrs.push(n.network());
                addrs.push(n.broadcast());
            }
            for a in 0..=255u8 {
                for b in [0u8, 1, 2, 3, 5, 7, 69, 128, 160, 255] {
                    addrs.push(IpAddr::from([a, b, a ^ b, 7]));
                    addrs.push(IpAddr::from([0x2001, 0xdb8, u16::from(a), u16::from(b), 0, 0, 0, 1]));
                }
            }
            for s in ["::", "::1", "2001:218::1", "2a02:cf40::1", "fe80::1", "ffff::1", "::1.1.1.1", "::ffff:1.1.1.1"] {
                addrs.push(ip(s));
            }
            assert!(addrs.len() > 5000, "{}", path.display());
            for a in addrs {
                let a = a.to_canonical();
                let leaf = tree.leaf(a);
                assert_eq!(leaf.prefix, db.network(a).prefix_len(), "{a} in {}", path.display());
                let offset = match db.reader.lookup(a) {
                    Ok(r) => r.offset(),
                    Err(_) => None, // IPv6 in an IPv4 tree
                };
                let ours = leaf.record.checked_sub(m.node_count + 16).map(|o| o as usize);
                assert_eq!(ours, offset, "{a} in {}: record {}", path.display(), leaf.record);
            }
        }
        if dbs.len() > 1 {
            let want = [(24, 4), (24, 6), (28, 6), (32, 6)];
            assert!(want.iter().all(|k| sizes.contains(k)), "tree kinds covered: {sizes:?}");
        }
    }

    #[test]
    fn maxmind_country_lite_and_asn_dbs() {
        let dir = test_dir("maxmind-test");
        let asn = dir.join("GeoLite2-ASN-Test.mmdb");
        let db = GeoDb::open(&dir.join("GeoIP2-Country-Test.mmdb"), Some(&asn)).unwrap();
        let l = db.lookup(ip("81.2.69.142"));
        assert_eq!((l.country.as_deref(), l.continent.as_deref()), (Some("GB"), Some("EU")));
        assert_eq!((l.subdivision.as_ref(), l.coords), (None, None)); // Country dbs have neither
        let l = db.lookup(ip("1.128.0.1"));
        assert_eq!(l.asn, Some(1221), "{l:?}");
        assert_eq!(l.asn_network, Some(net("1.128.0.0/11")), "{l:?}");
        let l = db.lookup(ip("127.0.0.1"));
        assert_eq!(l.asn, None);
        assert!(l.asn_network.unwrap().contains(&ip("127.0.0.1")));
        assert!(db.describe().contains("ASN: GeoLite2-ASN"), "{}", db.describe());

        for lite in ["GeoLite2-City-Test.mmdb", "GeoLite2-Country-Test.mmdb"] {
            let db = GeoDb::open(&dir.join(lite), None).unwrap();
            let l = db.lookup(ip("89.160.20.112"));
            assert_eq!(l.country.as_deref(), Some("SE"), "{lite}: {l:?}");
            assert_eq!(l.continent.as_deref(), Some("EU"), "{lite}: {l:?}");
        }
    }

    #[test]
    fn non_geo_test_dbs_open_and_lookup_without_panic() {
        let dir = test_dir("maxmind-test");
        // IPv4-only tree: IPv6 lookups cover nothing, IPv4 ones decode to no fields.
        let db = GeoDb::open(&dir.join("MaxMind-DB-test-ipv4-24.mmdb"), None).unwrap();
        assert_eq!(db.lookup(ip("2001:db8::1")), Location::empty(net("::/0")));
        assert_eq!(db.lookup(ip("1.1.1.1")), Location::empty(net("1.1.1.1/32")));
        let db = GeoDb::open(&dir.join("MaxMind-DB-test-mixed-32.mmdb"), None).unwrap();
        assert_eq!(db.lookup(ip("1.1.1.3")).network, net("1.1.1.2/31"));
    }

    #[test]
    fn swapped_databases_are_refused() {
        let dir = test_dir("maxmind-test");
        let city = dir.join("GeoIP2-City-Test.mmdb");
        let asn = dir.join("GeoLite2-ASN-Test.mmdb");
        let e = GeoDb::open(&asn, None).unwrap_err().to_string();
        assert!(e.contains("GeoLite2-ASN-Test.mmdb") && e.contains("ASN database"), "{e}");
        let e = GeoDb::open(&city, Some(&city)).unwrap_err().to_string();
        assert!(e.contains("not an ASN database"), "{e}");
    }

    #[test]
    fn corrupt_databases_are_refused_at_open() {
        let bad = test_dir("maxmind-bad");
        let good = test_dir("maxmind-test");
        let mut files: Vec<PathBuf> = fs::read_dir(&bad)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "mmdb"))
            .collect();
        files.sort();
        assert!(files.len() >= 20, "expected the MaxMind bad-data set, found {files:?}");
        files.push(good.join("GeoIP2-City-Test-Broken-Double-Format.mmdb"));
        files.push(good.join("GeoIP2-City-Test-Invalid-Node-Count.mmdb"));
        for path in &files {
            let name = path.file_name().unwrap().to_str().unwrap();
            let result = catch_unwind(|| GeoDb::open(path, None));
            let Ok(result) = result else { panic!("{name}: GeoDb::open panicked") };
            // Structurally valid apart from an epoch too large for SystemTime;
            // the reader refuses it, but either outcome is acceptable.
            if name == "libmaxminddb-uint64-max-epoch.mmdb" {
                if let Ok(db) = &result {
                    let _ = db.lookup(ip("1.1.1.1"));
                }
                continue;
            }
            match result {
                Ok(db) => panic!("{name}: opened a corrupt database: {}", db.describe()),
                Err(e) => assert!(e.to_string().contains(name), "{name}: {e}"),
            }
        }
    }

    /// Most libmaxminddb files are refused first for their empty `description`
    /// metadata map. Give them one, so the real corruption must be caught too.
    #[test]
    fn corrupt_databases_are_refused_for_their_corruption() {
        let bad = test_dir("maxmind-bad");
        // Well-formed apart from what trips libmaxminddb: an empty array/map at
        // the end of the metadata, or (corrupt-search-tree) 99 unreachable
        // all-zero nodes behind a root whose records both point at valid data.
        // They serve consistent answers, so they may open.
        let benign = [
            "libmaxminddb-corrupt-search-tree.mmdb",
            "libmaxminddb-empty-array-last-in-metadata.mmdb",
            "libmaxminddb-empty-map-last-in-metadata.mmdb",
        ];
        let marker = b"\xab\xcd\xefMaxMind.com";
        let mut patched = 0;
        for entry in fs::read_dir(&bad).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let bytes = fs::read(&path).unwrap();
            let Some(meta) = bytes.windows(marker.len()).rposition(|w| w == marker) else {
                continue;
            };
            let (data, meta) = bytes.split_at(meta + marker.len());
            let empty = b"\x4bdescription\xe0"; // key "description", empty map
            let Some(at) = meta.windows(empty.len()).position(|w| w == empty) else {
                continue;
            };
            let mut fixed = data.to_vec();
            fixed.extend_from_slice(&meta[..at]);
            fixed.extend_from_slice(b"\x4bdescription\xe1\x42en\x41x"); // {"en": "x"}
            fixed.extend_from_slice(&meta[at + empty.len()..]);
            let tmp = temp_file(&name, &fixed);
            let result = catch_unwind(|| GeoDb::open(&tmp, None));
            fs::remove_file(&tmp).ok();
            let Ok(result) = result else { panic!("{name}: GeoDb::open panicked") };
            patched += 1;
            match result {
                Ok(db) if benign.contains(&name.as_str()) => {
                    let _ = db.lookup(ip("1.1.1.1"));
                }
                Ok(db) => panic!("{name}: opened a corrupt database: {}", db.describe()),
                Err(e) => assert!(!benign.contains(&name.as_str()), "{name}: {e}"),
            }
        }
        assert!(patched >= 10, "patched only {patched} files");
    }

    #[test]
    fn unreadable_truncated_and_foreign_files_are_refused() {
        let e = GeoDb::open(Path::new("/nonexistent/geo.mmdb"), None).unwrap_err();
        assert!(matches!(e, GeoError::Read { .. }), "{e}");
        assert!(e.to_string().starts_with("/nonexistent/geo.mmdb: cannot read"), "{e}");

        let empty = temp_file("empty.mmdb", b"");
        let e = GeoDb::open(&empty, None).unwrap_err().to_string();
        assert!(e.contains("empty.mmdb") && e.contains("file is empty"), "{e}");

        let text = temp_file("text.mmdb", b"network,country\n10.0.0.0/8,DE\n");
        let e = GeoDb::open(&text, None).unwrap_err().to_string();
        assert!(e.contains("text.mmdb") && e.contains("metadata"), "{e}");

        {
            let dir = test_dir("maxmind-test");
            let full = fs::read(dir.join("GeoIP2-City-Test.mmdb")).unwrap();
            // Cut inside the search tree and inside the metadata.
            for (i, len) in [full.len() / 2, full.len() - 20, 100].into_iter().enumerate() {
                let name = format!("truncated-{i}.mmdb");
                let path = temp_file(&name, &full[..len]);
                let e = GeoDb::open(&path, None).unwrap_err().to_string();
                assert!(e.contains(&name), "{e}");
                fs::remove_file(path).ok();
            }
        }
        fs::remove_file(empty).ok();
        fs::remove_file(text).ok();
    }

    #[test]
    fn geodb_can_be_shared_across_threads() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<GeoDb>();
    }

    #[test]
    fn civil_date_formats_epochs() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(1_735_689_600), "2025-01-01");
        assert_eq!(civil_date(951_782_400), "2000-02-29");
    }
}
