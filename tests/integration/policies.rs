//! Issue "policies": GSLB services answered end to end by the real binary.
//! Every chain step of the demo zone from IPv4 and IPv6 clients (answer and
//! ECS scope), RFC 7871 errors, the weighted shares and sticky stability
//! measured over thousands of subnets, `meridian explain` and the
//! `[[expect]]` cases of `meridian check`.
//!
//! Expected regions are derived from `geoip/demo.csv` (continent, country,
//! coordinates, network) and the demo zone's rules, not from Meridian's code:
//! distances are computed here with the haversine formula.

use crate::common::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

const Z: &str = "gslb.example.test";
const ZONE_FILE: &str = "gslb.example.test.toml";

// ---------------------------------------------------------------------------
// The demo zone's regions and the demo GeoIP data, as the test knows them.

struct RegionInfo {
    name: &'static str,
    v4: &'static str,
    v6: &'static str,
    loc: (f64, f64),
    weight: u32,
}

/// `[[regions]]` of zones/gslb.example.test.toml, in config order.
const REGIONS: [RegionInfo; 3] = [
    RegionInfo { name: "us-east", v4: "192.0.2.10", v6: "2001:db8:10::10", loc: (39.0, -77.5), weight: 50 },
    RegionInfo { name: "eu-west", v4: "198.51.100.10", v6: "2001:db8:20::10", loc: (53.3, -6.3), weight: 30 },
    RegionInfo { name: "ap-northeast", v4: "203.0.113.10", v6: "2001:db8:30::10", loc: (35.7, 139.7), weight: 20 },
];

fn region(name: &str) -> &'static RegionInfo {
    REGIONS.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no region {name}"))
}

/// The region an answered address belongs to.
fn region_of(addr: &str) -> &'static str {
    REGIONS
        .iter()
        .find(|r| r.v4 == addr || r.v6 == addr)
        .unwrap_or_else(|| panic!("{addr} is no region's address"))
        .name
}

/// The address a region answers for A (`v6 == false`) or AAAA.
fn addr_of(region_name: &str, v6: bool) -> &'static str {
    let r = region(region_name);
    if v6 {
        r.v6
    } else {
        r.v4
    }
}

/// One line of geoip/demo.csv.
#[derive(Debug, Clone)]
struct DbNet {
    net: IpNet,
    continent: String,
    country: String,
    coords: (f64, f64),
}

fn demo_db() -> Vec<DbNet> {
    let text = std::fs::read_to_string(repo().join("geoip/demo.csv")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("network,"))
        .map(|l| {
            let f: Vec<&str> = l.splitn(7, ',').collect();
            DbNet {
                net: f[0].parse().unwrap(),
                continent: f[1].to_string(),
                country: f[2].to_string(),
                coords: (f[4].parse().unwrap(), f[5].parse().unwrap()),
            }
        })
        .collect()
}

/// The demo database line covering a client subnet (it must be covered).
fn located(client: &str) -> DbNet {
    let c: IpNet = client.parse().unwrap();
    demo_db()
        .into_iter()
        .find(|d| d.net.contains(&c.network()))
        .unwrap_or_else(|| panic!("{client} is not in geoip/demo.csv"))
}

/// The widest network around an uncovered client that holds no demo network:
/// what the database reports as the client's (empty) network.
fn uncovered_prefix(client: &str) -> u8 {
    let c: IpNet = client.parse().unwrap();
    let db = demo_db();
    (0..=c.prefix_len())
        .find(|p| {
            let n = IpNet::new(c.network(), *p).unwrap().trunc();
            !db.iter().any(|d| n.contains(&d.net) || d.net.contains(&n))
        })
        .expect("client is covered")
}

/// Great-circle distance in km (haversine, mean Earth radius).
fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (a.0.to_radians(), a.1.to_radians(), b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2) + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0088 * h.sqrt().asin()
}

/// Region names, nearest to `at` first.
fn by_distance(at: (f64, f64)) -> Vec<&'static str> {
    let mut v: Vec<(f64, &str)> = REGIONS.iter().map(|r| (distance_km(at, r.loc), r.name)).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v.into_iter().map(|(_, n)| n).collect()
}

/// Clients in every continent of the demo database, IPv4 and IPv6, as a
/// resolver would send them in ECS.
const CLIENTS: &[&str] = &[
    "192.0.2.0/24",    // US (Virginia)
    "198.51.100.0/24", // DE
    "203.0.113.0/24",  // JP
    "10.1.0.0/24",     // US (California)
    "10.2.0.0/24",     // BR
    "10.3.0.0/24",     // GB
    "10.4.7.0/24",     // ZA
    "10.5.0.0/24",     // JP
    "10.6.0.0/24",     // AU
    "10.7.0.0/24",     // AQ (Antarctica)
    "10.9.0.0/24",     // SG
    "10.10.0.0/24",    // CA
    "10.12.0.0/24",    // AR
    "10.13.0.0/24",    // EG
    "10.14.0.0/24",    // NZ
    "10.15.0.0/24",    // MX
    "172.17.0.0/24",   // FR
    "100.64.0.0/24",   // IN
    "2001:db8:1::/56", // US
    "2001:db8:2::/56", // BR
    "2001:db8:3::/56", // GB
    "2001:db8:4::/56", // ZA
    "2001:db8:5::/56", // JP
    "2001:db8:6::/56", // AU
    "2001:db8:7::/56", // AQ
    "2001:db8:9::/56", // SG
    "2001:db8:a::/56", // CA
    "fd00:2::/48",     // FR
    "fd00:3::/48",     // IN
];

// ---------------------------------------------------------------------------
// What the demo services should answer (the zone's rules, restated).

/// `www`: geo by continent, then nearest.
fn www_region(d: &DbNet) -> &'static str {
    match d.continent.as_str() {
        "NA" | "SA" => "us-east",
        "EU" | "AF" => "eu-west",
        "AS" | "OC" => "ap-northeast",
        _ => by_distance(d.coords)[0],
    }
}

/// `latency`: the table's lowest latency where it has a row, else nearest.
fn latency_region(d: &DbNet) -> &'static str {
    match (d.country.as_str(), d.continent.as_str()) {
        ("BR", _) => "us-east",      // us-east 120, eu-west 190
        (_, "EU") => "eu-west",      // 15 < 80 < 220
        (_, "AS") => "ap-northeast", // 30 < 160 < 210
        _ => by_distance(d.coords)[0],
    }
}

// ---------------------------------------------------------------------------
// Asking with dig.

fn ask(s: &Server, client: Option<&str>, service: &str, qtype: &str) -> Dig {
    let ecs = client.map(|c| format!("+subnet={c} ")).unwrap_or_default();
    let d = s.dig(&format!("{ecs}{service}.{Z} {qtype}"));
    assert_eq!(d.status, "NOERROR", "{service} {qtype} from {client:?}:\n{}", d.raw);
    d
}

/// Ask `service` from `client` for A and AAAA; each answer must be exactly
/// `want` (in order, for the family asked) and the ECS echo must name the
/// client with scope `scope`.
fn assert_answers(s: &Server, service: &str, client: &str, want: &[&str], scope: u8) {
    for (qtype, v6) in [("A", false), ("AAAA", true)] {
        let d = ask(s, Some(client), service, qtype);
        let want: Vec<&str> = want.iter().map(|r| addr_of(r, v6)).collect();
        assert_eq!(d.answers_of(qtype), want, "{service} {qtype} from {client}:\n{}", d.raw);
        assert!(d.answers_of(if v6 { "A" } else { "AAAA" }).is_empty(), "{}", d.raw);
        let echo = d.ecs.as_deref().unwrap_or_else(|| panic!("no ECS echo for {client}:\n{}", d.raw));
        assert!(echo.starts_with(&format!("{client}/")), "echo {echo:?} for {client}");
        assert_eq!(d.ecs_scope(), Some(scope), "{service} {qtype} from {client}: scope\n{}", d.raw);
    }
}

#[test]
fn www_maps_continents_to_regions_and_antarctica_to_the_nearest() {
    let s = Server::start();
    for client in CLIENTS {
        let d = located(client);
        assert_answers(&s, "www", client, &[www_region(&d)], d.net.prefix_len());
    }
    // Spelled out: the cases the issue names.
    assert_answers(&s, "www", "10.3.0.0/24", &["eu-west"], 16); // GB
    assert_answers(&s, "www", "10.4.7.0/24", &["eu-west"], 16); // ZA (AF)
    assert_answers(&s, "www", "198.51.100.0/24", &["eu-west"], 24); // DE
    assert_answers(&s, "www", "2001:db8:3::/56", &["eu-west"], 48); // GB
    assert_answers(&s, "www", "fd00:2::/48", &["eu-west"], 32); // FR
    assert_answers(&s, "www", "10.2.0.0/24", &["us-east"], 16); // BR (SA)
    assert_answers(&s, "www", "10.6.0.0/24", &["ap-northeast"], 16); // AU (OC)
                                                                     // McMurdo: Tokyo ~12,760 km, Ashburn ~14,830 km, Dublin ~17,270 km.
    assert_answers(&s, "www", "10.7.0.0/24", &["ap-northeast"], 16);
    assert_answers(&s, "www", "2001:db8:7::/56", &["ap-northeast"], 48);
}

#[test]
fn nearest_answers_the_closest_region_with_the_database_network_as_scope() {
    let s = Server::start();
    for client in CLIENTS {
        let d = located(client);
        assert_answers(&s, "nearest", client, &[by_distance(d.coords)[0]], d.net.prefix_len());
    }
    assert_answers(&s, "nearest", "10.13.0.0/24", &["eu-west"], 16); // Cairo
    assert_answers(&s, "nearest", "100.64.0.0/24", &["ap-northeast"], 16); // Mumbai
    assert_answers(&s, "nearest", "10.12.0.0/24", &["us-east"], 16); // Buenos Aires
    assert_answers(&s, "nearest", "fd00:3::/48", &["ap-northeast"], 32); // Mumbai
}

#[test]
fn nearest_from_an_uncovered_subnet_keeps_config_order_with_the_empty_network_as_scope() {
    let s = Server::start();
    // 192.168.0.0/16 is not in the demo database: no location, us-east first.
    let scope = uncovered_prefix("192.168.1.0/24");
    eprintln!("uncovered 192.168.1.0/24: empty network /{scope}");
    assert_answers(&s, "nearest", "192.168.1.0/24", &["us-east"], scope);
    assert_answers(&s, "www", "192.168.1.0/24", &["us-east"], scope);
}

#[test]
fn multi_answers_three_regions_nearest_first() {
    let s = Server::start();
    for client in CLIENTS {
        let d = located(client);
        let order = by_distance(d.coords);
        assert_answers(&s, "multi", client, &order, d.net.prefix_len());
    }
    assert_answers(&s, "multi", "10.1.0.0/24", &["us-east", "eu-west", "ap-northeast"], 16); // SF
    assert_answers(&s, "multi", "10.7.0.0/24", &["ap-northeast", "us-east", "eu-west"], 16); // McMurdo
    assert_answers(&s, "multi", "2001:db8:4::/56", &["eu-west", "us-east", "ap-northeast"], 48);
    // Johannesburg
}

#[test]
fn latency_follows_its_table_and_nearest_where_silent() {
    let s = Server::start();
    for client in CLIENTS {
        let d = located(client);
        assert_answers(&s, "latency", client, &[latency_region(&d)], d.net.prefix_len());
    }
    assert_answers(&s, "latency", "10.3.0.0/24", &["eu-west"], 16); // EU row
    assert_answers(&s, "latency", "10.9.0.0/24", &["ap-northeast"], 16); // AS row (SG)
    assert_answers(&s, "latency", "10.2.0.0/24", &["us-east"], 16); // BR row
    assert_answers(&s, "latency", "2001:db8:2::/56", &["us-east"], 48); // BR row
    assert_answers(&s, "latency", "10.4.7.0/24", &["eu-west"], 16); // ZA: no row, nearest
    assert_answers(&s, "latency", "10.14.0.0/24", &["ap-northeast"], 16); // NZ: no row, nearest
    assert_answers(&s, "latency", "10.15.0.0/24", &["us-east"], 16); // MX: no row, nearest
}

#[test]
fn failover_answers_eu_west_for_everyone_with_scope_zero() {
    let s = Server::start();
    for client in CLIENTS.iter().copied().chain(["192.168.1.0/24", "10.200.0.0/16"]) {
        assert_answers(&s, "failover", client, &["eu-west"], 0);
    }
}

#[test]
fn weighted_answers_one_region_with_scope_zero() {
    let s = Server::start();
    for client in CLIENTS {
        for (qtype, v6) in [("A", false), ("AAAA", true)] {
            let d = ask(&s, Some(client), "weighted", qtype);
            let got = d.answers_of(qtype);
            assert_eq!(got.len(), 1, "{}", d.raw);
            let r = region_of(&got[0]);
            assert_eq!(got[0], addr_of(r, v6));
            assert_eq!(d.ecs_scope(), Some(0), "weighted from {client}:\n{}", d.raw);
        }
    }
}

#[test]
fn sticky_scope_is_the_source_prefix_capped_at_24_and_56() {
    let s = Server::start();
    for (client, scope) in [
        ("10.1.2.0/24", 24),
        ("10.1.0.0/20", 20),
        ("10.1.2.128/25", 24),
        ("10.1.2.77/32", 24),
        ("192.168.1.0/24", 24),
        ("2001:db8:1::/48", 48),
        ("2001:db8:1::/56", 56),
        ("2001:db8:1:ab00::/64", 56),
        ("2001:db8:1:ab00::1/128", 56),
    ] {
        for (qtype, v6) in [("A", false), ("AAAA", true)] {
            let d = ask(&s, Some(client), "sticky", qtype);
            let got = d.answers_of(qtype);
            assert_eq!(got.len(), 1, "{}", d.raw);
            assert_eq!(got[0], addr_of(region_of(&got[0]), v6));
            assert_eq!(d.ecs_scope(), Some(scope), "sticky {qtype} from {client}:\n{}", d.raw);
        }
    }
    // Subnets inside one /24 (or /56) are one client.
    let region_for = |c: &str| region_of(&ask(&s, Some(c), "sticky", "A").answers_of("A")[0]);
    let r = region_for("10.1.2.0/24");
    for c in ["10.1.2.0/25", "10.1.2.128/25", "10.1.2.77/32"] {
        assert_eq!(region_for(c), r, "{c} is inside 10.1.2.0/24");
    }
    let r = region_for("2001:db8:1:ab00::/56");
    for c in ["2001:db8:1:ab00::/64", "2001:db8:1:abff::/64", "2001:db8:1:ab00::1/128"] {
        assert_eq!(region_for(c), r, "{c} is inside 2001:db8:1:ab00::/56");
    }
}

#[test]
fn without_ecs_the_source_address_decides_and_no_ecs_is_echoed() {
    let s = Server::start();
    // 127.0.0.1 is not in the demo database: no location, so nearest keeps
    // config order (us-east first); failover still answers eu-west.
    for (service, want) in [
        ("www", vec!["us-east"]),
        ("nearest", vec!["us-east"]),
        ("latency", vec!["us-east"]),
        ("failover", vec!["eu-west"]),
        ("multi", vec!["us-east", "eu-west", "ap-northeast"]),
    ] {
        for edns in ["", "+noedns "] {
            for (qtype, v6) in [("A", false), ("AAAA", true)] {
                let d = ask(&s, None, &format!("{edns}{service}"), qtype);
                let want: Vec<&str> = want.iter().map(|r| addr_of(r, v6)).collect();
                assert_eq!(d.answers_of(qtype), want, "{edns}{service} {qtype}:\n{}", d.raw);
                assert!(d.ecs.is_none(), "no ECS asked, none echoed:\n{}", d.raw);
                assert_eq!(d.edns.is_some(), edns.is_empty(), "OPT exactly when asked:\n{}", d.raw);
            }
        }
    }
}

#[test]
fn ecs_with_source_prefix_zero_is_answered_for_the_source_address_with_scope_zero() {
    let s = Server::start();
    for zero in ["0.0.0.0/0", "::/0"] {
        for (service, want) in
            [("www", "us-east"), ("nearest", "us-east"), ("latency", "us-east"), ("failover", "eu-west")]
        {
            for (qtype, v6) in [("A", false), ("AAAA", true)] {
                let d = ask(&s, Some(zero), service, qtype);
                assert_eq!(d.answers_of(qtype), vec![addr_of(want, v6)], "{service} from {zero}:\n{}", d.raw);
                assert_eq!(d.ecs.as_deref(), Some(format!("{zero}/0").as_str()), "{}", d.raw);
            }
        }
        // Sticky hashes the source address, exactly as without ECS.
        let with = ask(&s, Some(zero), "sticky", "A").answers_of("A");
        let without = ask(&s, None, "sticky", "A").answers_of("A");
        assert_eq!(with, without, "sticky from {zero} vs no ECS");
    }
}

#[test]
fn static_records_asked_with_ecs_get_scope_zero() {
    let s = Server::start();
    for (client, name, qtype, want) in [
        ("10.3.0.0/24", "static", "A", "192.0.2.1"),
        ("2001:db8:3::/56", "static", "AAAA", "2001:db8::1"),
        ("10.5.0.0/24", "alias", "A", "192.0.2.1"),
        ("198.51.100.0/24", "legacy", "A", "192.0.2.101"),
        ("2001:db8:7::/56", "mail", "A", "192.0.2.25"),
    ] {
        let d = ask(&s, Some(client), name, qtype);
        assert_eq!(d.answers_of(qtype), vec![want], "{name} {qtype}:\n{}", d.raw);
        assert_eq!(d.ecs_scope(), Some(0), "{name} {qtype} from {client}:\n{}", d.raw);
        assert!(d.ecs.as_deref().unwrap().starts_with(&format!("{client}/")), "{}", d.raw);
    }
    // Names the zone has no answer for are client-independent too.
    let d = s.dig(&format!("+subnet=10.3.0.0/24 nothing.{Z} A"));
    assert_eq!(d.status, "NXDOMAIN");
    assert_eq!(d.ecs_scope(), Some(0), "{}", d.raw);
}

// ---------------------------------------------------------------------------
// Raw packets: malformed ECS options dig will not send.

/// A query for `name`/`rtype` with an OPT record carrying one ECS option whose
/// data is `ecs` exactly as given (family, source, scope, address bytes).
fn query_with_raw_ecs(id: u16, name: &str, rtype: RecordType, ecs: &[u8]) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    let mut q = m.to_vec().unwrap();
    q[11] = 1; // ARCOUNT
    q.push(0); // root owner
    q.extend_from_slice(&41u16.to_be_bytes()); // OPT
    q.extend_from_slice(&1232u16.to_be_bytes()); // UDP payload size
    q.extend_from_slice(&[0, 0, 0, 0]); // extended rcode, version, flags
    q.extend_from_slice(&(4 + ecs.len() as u16).to_be_bytes()); // RDLENGTH
    q.extend_from_slice(&8u16.to_be_bytes()); // OPTION-CODE: ECS
    q.extend_from_slice(&(ecs.len() as u16).to_be_bytes());
    q.extend_from_slice(ecs);
    q
}

/// A well-formed query with an ECS option, built by hickory.
pub(crate) fn query_with_ecs(id: u16, name: &str, rtype: RecordType, subnet: IpNet) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::from(subnet)));
    m.set_edns(e);
    m.to_vec().unwrap()
}

/// One UDP exchange, retried a few times.
fn udp_exchange(server: SocketAddr, packet: &[u8]) -> Vec<u8> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 4096];
    for _ in 0..3 {
        sock.send_to(packet, server).unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            return buf[..n].to_vec();
        }
    }
    panic!("no answer from {server}");
}

fn rcode(reply: &[u8]) -> u8 {
    reply[3] & 0x0f
}

const FORMERR: u8 = 1;

#[test]
fn malformed_ecs_gets_formerr() {
    let s = Server::start();
    let www = format!("www.{Z}.");
    // Control: the hand-built packet is right when the option is (10.3.0.0/16).
    let ok = udp_exchange(s.addr, &query_with_raw_ecs(0x0101, &www, RecordType::A, &[0, 1, 16, 0, 10, 3]));
    assert_eq!(rcode(&ok), 0, "well-formed raw ECS: NOERROR");
    let m = Message::from_vec(&ok).unwrap();
    let Some(EdnsOption::Subnet(cs)) = m.edns.as_ref().and_then(|e| e.option(EdnsCode::Subnet)) else {
        panic!("no ECS echo: {m:?}")
    };
    assert_eq!((cs.source_prefix(), cs.scope_prefix()), (16, 16));

    let mut wrong = Vec::new();
    for (what, ecs) in [
        // 10.3.0.0/12: 0x03 has bits beyond the 12-bit prefix (dig masks them, so by hand).
        ("address bits beyond the source prefix (10.3/12)", vec![0, 1, 12, 0, 10, 3]),
        // 10.3.0.1/16 sent as-is: four address octets for a /16, the last bit set.
        ("10.3.0.1/16 as-is: too many address octets, bits beyond the prefix", vec![0, 1, 16, 0, 10, 3, 0, 1]),
        ("IPv6 bits beyond the prefix (2001:db8:3::/44)", vec![0, 2, 44, 0, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x03]),
        ("10.3.0.0/16 with four address octets (too many, zero-padded)", vec![0, 1, 16, 0, 10, 3, 0, 0]),
        ("10.3.0.0/24 with two address octets (too few)", vec![0, 1, 24, 0, 10, 3]),
        ("IPv4 source prefix 33", vec![0, 1, 33, 0, 10, 3, 0, 0, 0]),
        ("IPv4 source prefix 40", vec![0, 1, 40, 0, 10, 3, 0, 0, 0]),
        ("IPv6 source prefix 129", [vec![0, 2, 129, 0], vec![0; 17]].concat()),
        ("unknown family 3", vec![0, 3, 16, 0, 10, 3]),
        ("scope prefix set in a query", vec![0, 1, 16, 16, 10, 3]),
    ] {
        let q = query_with_raw_ecs(0x4d45, &www, RecordType::A, &ecs);
        let r = udp_exchange(s.addr, &q);
        assert_eq!(&r[0..2], &[0x4d, 0x45], "{what}: ID echoed");
        assert!(r[2] & 0x80 != 0, "{what}: QR set");
        if rcode(&r) != FORMERR {
            // Every case is tried, so one run reports all that are accepted.
            let answer = Message::from_vec(&r).map(|m| format!("{:?}", m.answers)).unwrap_or_default();
            wrong.push(format!("{what}: option {ecs:02x?} got rcode {} {answer}", rcode(&r)));
        }
    }
    assert!(wrong.is_empty(), "RFC 7871 §6 wants FORMERR for:\n{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------
// Many queries over one UDP socket.

/// Send every query (each with a distinct ID: its index) to `server`, a window
/// at a time, resending any unanswered after 500 ms; every one must be
/// answered. Replies are returned in query order.
pub(crate) fn exchange_all(server: SocketAddr, queries: &[Vec<u8>]) -> Vec<Message> {
    const WINDOW: usize = 64;
    assert!(queries.len() <= usize::from(u16::MAX) + 1);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut replies: Vec<Option<Message>> = (0..queries.len()).map(|_| None).collect();
    let mut in_flight: HashMap<usize, (Instant, u32)> = HashMap::new();
    let (mut next, mut answered, mut resent) = (0usize, 0usize, 0usize);
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut buf = [0u8; 4096];
    while answered < queries.len() {
        assert!(Instant::now() < deadline, "only {answered} of {} answered in time", queries.len());
        while in_flight.len() < WINDOW && next < queries.len() {
            sock.send_to(&queries[next], server).unwrap();
            in_flight.insert(next, (Instant::now(), 1));
            next += 1;
        }
        if let Ok(n) = sock.recv(&mut buf) {
            let m = Message::from_vec(&buf[..n]).expect("a parsable reply");
            let i = usize::from(m.metadata.id);
            if in_flight.remove(&i).is_some() {
                let q = Message::from_vec(&queries[i]).unwrap();
                assert_eq!(m.queries, q.queries, "reply {i} answers its own question");
                replies[i] = Some(m);
                answered += 1;
            }
        }
        for (i, (at, tries)) in in_flight.iter_mut() {
            if at.elapsed() > Duration::from_millis(500) {
                assert!(*tries < 10, "query {i} unanswered after {tries} tries");
                sock.send_to(&queries[*i], server).unwrap();
                *at = Instant::now();
                *tries += 1;
                resent += 1;
            }
        }
    }
    eprintln!("{} queries answered ({resent} resent)", queries.len());
    replies.into_iter().map(Option::unwrap).collect()
}

/// The single answered region and the ECS scope of a reply.
pub(crate) fn region_and_scope(m: &Message) -> (&'static str, u8) {
    assert_eq!(m.metadata.response_code, hickory_proto::op::ResponseCode::NoError, "{m:?}");
    let addrs = answer_addresses(m);
    assert_eq!(addrs.len(), 1, "one address: {m:?}");
    let scope = match m.edns.as_ref().and_then(|e| e.option(EdnsCode::Subnet)) {
        Some(EdnsOption::Subnet(cs)) => cs.scope_prefix(),
        other => panic!("no ECS echo: {other:?}"),
    };
    (region_of(&addrs[0]), scope)
}

/// Distinct /24s: 10.(base + i/256).(i%256).0/24.
fn v4_subnet(base: u8, i: usize) -> IpNet {
    IpNet::new(IpAddr::V4(Ipv4Addr::new(10, base + (i >> 8) as u8, i as u8, 0)), 24).unwrap()
}

/// Distinct /56s in 2001:db8:100::/40.
fn v6_subnet(i: usize) -> IpNet {
    let a = Ipv6Addr::new(0x2001, 0x0db8, 0x0100 | (i >> 8) as u16, ((i & 0xff) << 8) as u16, 0, 0, 0, 0);
    IpNet::new(IpAddr::V6(a), 56).unwrap()
}

fn shares(regions: &[&str]) -> HashMap<&'static str, f64> {
    REGIONS
        .iter()
        .map(|r| (r.name, regions.iter().filter(|x| **x == r.name).count() as f64 * 100.0 / regions.len() as f64))
        .collect()
}

#[test]
fn weighted_shares_follow_the_weights_within_three_points() {
    let s = Server::start();
    let n = 10_000;
    let name = format!("weighted.{Z}.");
    let queries: Vec<Vec<u8>> =
        (0..n).map(|i| query_with_ecs(i as u16, &name, RecordType::A, v4_subnet(0, i))).collect();
    let replies = exchange_all(s.addr, &queries);
    let mut got = Vec::new();
    for m in &replies {
        let (r, scope) = region_and_scope(m);
        assert_eq!(scope, 0, "weighted is client-independent");
        got.push(r);
    }
    let shares = shares(&got);
    let total: u32 = REGIONS.iter().map(|r| r.weight).sum();
    for r in &REGIONS {
        let want = f64::from(r.weight) * 100.0 / f64::from(total);
        eprintln!("weighted: {} {:.2}% (weight share {want:.0}%)", r.name, shares[r.name]);
    }
    for r in &REGIONS {
        let want = f64::from(r.weight) * 100.0 / f64::from(total);
        assert!((shares[r.name] - want).abs() <= 3.0, "{}: {:.2}% vs {want}%", r.name, shares[r.name]);
    }
}

/// Copy zones/ (the TOML and its included master file) into a temporary
/// directory, passing the demo zone's TOML text through `edit`.
pub(crate) fn zones_copy(edit: impl Fn(String) -> String) -> TempDir {
    let dir = TempDir::new("policies-zones");
    let to = dir.path().join("zones");
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(repo().join("zones")).unwrap() {
        let p = e.unwrap().path();
        let file = p.file_name().unwrap().to_owned();
        let mut text = std::fs::read_to_string(&p).unwrap();
        if file == ZONE_FILE {
            text = edit(text);
        }
        std::fs::write(to.join(file), text).unwrap();
    }
    dir
}

#[test]
fn sticky_keeps_each_subnet_and_moves_only_the_removed_regions_clients() {
    let s = Server::start();
    let name = format!("sticky.{Z}.");
    let (n4, n6) = (2_000, 1_000);
    let subnets: Vec<(IpNet, RecordType)> = (0..n4)
        .map(|i| (v4_subnet(100, i), RecordType::A))
        .chain((0..n6).map(|i| (v6_subnet(i), RecordType::AAAA)))
        .collect();
    let queries = |subnets: &[(IpNet, RecordType)], times: usize| -> Vec<Vec<u8>> {
        (0..subnets.len() * times)
            .map(|i| {
                let (net, t) = subnets[i % subnets.len()];
                query_with_ecs(i as u16, &name, t, net)
            })
            .collect()
    };

    // Every subnet twice: the same region both times, scope /24 or /56.
    let replies = exchange_all(s.addr, &queries(&subnets, 2));
    let first: Vec<&str> = (0..subnets.len())
        .map(|i| {
            let (a, sa) = region_and_scope(&replies[i]);
            let (b, sb) = region_and_scope(&replies[i + subnets.len()]);
            assert_eq!(a, b, "{} answered {a} then {b}", subnets[i].0);
            let want_scope = if subnets[i].0.addr().is_ipv4() { 24 } else { 56 };
            assert_eq!((sa, sb), (want_scope, want_scope), "{}", subnets[i].0);
            a
        })
        .collect();
    let sh = shares(&first);
    eprintln!(
        "sticky (3 regions): us-east {:.2}%, eu-west {:.2}%, ap-northeast {:.2}%",
        sh["us-east"], sh["eu-west"], sh["ap-northeast"]
    );

    // Without ap-northeast: the other two regions' clients stay where they were.
    let original = "name = \"sticky\"\nchain = [\"sticky\"]";
    let zones = zones_copy(|t| {
        assert!(t.contains(original), "the demo zone's sticky service changed shape");
        t.replace(original, "name = \"sticky\"\nregions = [\"us-east\", \"eu-west\"]\nchain = [\"sticky\"]")
    });
    let zones_dir = zones.path().join("zones");
    let s2 = Server::start_with(&["--zones", zones_dir.to_str().unwrap()], None);
    let replies = exchange_all(s2.addr, &queries(&subnets, 1));
    let (mut stayers, mut kept, mut moved_to) = (0usize, 0usize, HashMap::<&str, usize>::new());
    for (i, m) in replies.iter().enumerate() {
        let (r, _) = region_and_scope(m);
        assert_ne!(r, "ap-northeast", "removed region answered for {}", subnets[i].0);
        if first[i] == "ap-northeast" {
            *moved_to.entry(r).or_default() += 1;
        } else {
            stayers += 1;
            if r == first[i] {
                kept += 1;
            }
        }
    }
    let kept_fraction = kept as f64 / stayers as f64;
    eprintln!(
        "sticky without ap-northeast: {kept} of {stayers} us-east/eu-west clients kept their region ({:.4}); \
         ap-northeast's clients moved to {moved_to:?}",
        kept_fraction
    );
    assert!(kept_fraction >= 0.99, "kept fraction {kept_fraction}");
}

// ---------------------------------------------------------------------------
// meridian explain / meridian check

fn run_ok(args: &[&str], cwd: &Path) -> String {
    let out = meridian(args, cwd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "meridian {args:?} failed:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// Each of `want` must appear in `text`, in this order.
fn assert_in_order(text: &str, want: &[&str]) {
    let mut rest = text;
    for w in want {
        match rest.find(w) {
            Some(i) => rest = &rest[i + w.len()..],
            None => panic!("{w:?} missing (or out of order) in:\n{text}"),
        }
    }
}

#[test]
fn explain_shows_location_steps_answer_and_scope_for_an_ecs_client() {
    let out = run_ok(&["explain", &format!("www.{Z}"), "--client", "10.3.0.0/24"], &repo());
    assert_in_order(
        &out,
        &[
            &format!("query:    www.{Z}. A"),
            "client:   10.3.0.0/24 (EDNS Client Subnet)",
            "location: network 10.3.0.0/16 country GB continent EU",
            "  geo ",
            "why: matched continent EU",
            "  nearest ",
            "why: client at 51.51,-0.13",
            "chosen:   [eu-west]",
            "answer:   NOERROR aa",
            &format!("www.{Z}. 30 IN A 198.51.100.10"),
            "ecs scope: 16",
        ],
    );
}

#[test]
fn explain_an_ipv6_client_falling_through_to_nearest() {
    let out = run_ok(&["explain", &format!("www.{Z}"), "--type", "AAAA", "--client", "2001:db8:7::/56"], &repo());
    assert_in_order(
        &out,
        &[
            &format!("query:    www.{Z}. AAAA"),
            "client:   2001:db8:7::/56 (EDNS Client Subnet)",
            "location: network 2001:db8:7::/48 country AQ continent AN",
            "  geo ",
            "why: no rule matched",
            "  nearest ",
            "out: ap-northeast > us-east > eu-west",
            "chosen:   [ap-northeast]",
            &format!("www.{Z}. 30 IN AAAA 2001:db8:30::10"),
            "ecs scope: 48",
        ],
    );
}

#[test]
fn explain_a_resolver_without_ecs_uses_its_address_and_scope_zero() {
    let out = run_ok(&["explain", &format!("www.{Z}"), "--resolver", "127.0.0.1"], &repo());
    assert_in_order(
        &out,
        &[
            "client:   resolver 127.0.0.1 (no ECS)",
            "country - continent -",
            "why: no rule matched",
            "why: client coordinates unknown",
            "chosen:   [us-east]",
            &format!("www.{Z}. 30 IN A 192.0.2.10"),
            "ecs scope: 0",
        ],
    );
    assert!(!out.contains("EDNS Client Subnet"), "{out}");
}

#[test]
fn check_reports_that_the_demo_expectations_hold() {
    let out = run_ok(&["check"], &repo());
    assert!(out.contains("expectations"), "{out}");
    let ok = out.lines().find(|l| l.starts_with("ok:")).unwrap_or_else(|| panic!("no ok line:\n{out}"));
    assert!(ok.contains("expectation(s) hold"), "{ok}");
}

#[test]
fn check_fails_on_a_wrong_expectation_naming_its_file_line_and_column() {
    let case = "[[expect]]\nclient = \"198.51.100.0/24\"\nname = \"www\"\nregion = \"ap-northeast\"\n";
    let header_line = std::cell::Cell::new(0usize);
    let zones = zones_copy(|t| {
        let t = format!("{}\n", t.trim_end());
        header_line.set(t.lines().count() + 2); // after one blank line
        format!("{t}\n{case}")
    });
    let (first, last) = (header_line.get(), header_line.get() + 3);
    let geoip = repo().join("geoip/demo.mmdb");
    let out = meridian(&["check", "--zones", "zones", "--geoip", geoip.to_str().unwrap()], zones.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "check must fail:\n{}{err}", String::from_utf8_lossy(&out.stdout));

    let failures: Vec<&str> = err.lines().filter(|l| l.contains("wanted")).collect();
    assert_eq!(failures.len(), 1, "exactly the broken case fails:\n{err}");
    let line = failures[0];
    assert!(line.contains("wanted region ap-northeast, got eu-west"), "{line}");
    let at = line
        .split_once(&format!("zones/{ZONE_FILE}:"))
        .unwrap_or_else(|| panic!("no zones/{ZONE_FILE}:LINE:COL in {line:?}"))
        .1;
    let mut pos = at.splitn(3, ':');
    let l: usize = pos.next().unwrap().parse().unwrap_or_else(|_| panic!("no line number in {line:?}"));
    let c: usize = pos.next().unwrap().parse().unwrap_or_else(|_| panic!("no column in {line:?}"));
    assert!((first..=last).contains(&l) && c >= 1, "{l}:{c} is not the appended case (lines {first}-{last}): {line}");
    eprintln!("check: {line}");
}
