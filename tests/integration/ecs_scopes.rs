//! Issue 19, must show 5: the widest honest ECS scope. A `geo` service
//! (continents to regions, a default) over MaxMind's City test database is
//! asked from 2,000 client subnets drawn over the database's networks and
//! the rest of the address space; every scope it returns must be honest
//! (addresses sampled anywhere inside the returned prefix get the same
//! answer), and never narrower than gdnsd's for the same map.

use crate::common::*;
use crate::policies::{exchange_all, query_with_ecs, region_and_scope, zones_copy};
use hickory_proto::rr::RecordType;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERVICE: &str = "mapped.gslb.example.test.";

/// The map, in Meridian's words: continents as `www` has them, and a
/// default list in the order gdnsd uses for an unmapped client (all
/// datacenters), so the two servers merge the same answers.
const MAPPED: &str = r#"
[[services]]
name = "mapped"
chain = ["geo"]

[services.geo]
continent = { NA = ["us-east"], SA = ["us-east"], EU = ["eu-west"], AF = ["eu-west"], AS = ["ap-northeast"], OC = ["ap-northeast"] }
default = ["us-east", "eu-west", "ap-northeast"]
"#;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Every network of the City test database's JSON source (IPv4 ones, kept
/// there as `::a.b.c.d/N`, as IPv4 networks).
fn json_networks(json: &Path) -> Vec<IpNet> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let mut nets = Vec::new();
    for entry in v.as_array().expect("a JSON array") {
        for key in entry.as_object().expect("objects keyed by network").keys() {
            let net: IpNet = key.parse().unwrap_or_else(|e| panic!("{key}: {e}"));
            nets.push(match net {
                IpNet::V6(n) if n.prefix_len() >= 96 && u128::from(n.network()) >> 32 == 0 => {
                    IpNet::new(IpAddr::V4(Ipv4Addr::from(u128::from(n.network()) as u32)), n.prefix_len() - 96).unwrap()
                }
                n => n.trunc(),
            });
        }
    }
    nets
}

/// An address inside `net`, at `r` (any number).
fn inside(net: IpNet, r: u64) -> IpAddr {
    match net.trunc() {
        IpNet::V4(n) => {
            let host = 32 - u32::from(n.prefix_len());
            let off = if host == 32 { r as u32 } else { (r as u32) & ((1u32 << host) - 1) };
            IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) | off))
        }
        IpNet::V6(n) => {
            let host = 128 - u32::from(n.prefix_len());
            let r = u128::from(r) << 64 | u128::from(r.rotate_left(17));
            let off = if host == 128 { r } else { r & ((1u128 << host) - 1) };
            IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | off))
        }
    }
}

/// The last address of `net`.
fn last(net: IpNet) -> IpAddr {
    net.trunc().broadcast()
}

/// 2,000 client subnets: 1,500 inside the database's networks (IPv4 /24 or
/// /32, IPv6 /56 or /48), 500 anywhere in IPv4 (most in no network).
fn subnets(nets: &[IpNet]) -> Vec<IpNet> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    for i in 0..2_000 {
        let (addr, prefix) = if i < 1_500 {
            let net = nets[(rng.next() % nets.len() as u64) as usize];
            let addr = inside(net, rng.next());
            let prefix = match (addr.is_ipv4(), rng.next() % 2) {
                (true, 0) => 24,
                (true, _) => 32,
                (false, 0) => 56,
                (false, _) => 48,
            };
            (addr, prefix)
        } else {
            (IpAddr::V4(Ipv4Addr::from(rng.next() as u32)), 24)
        };
        out.push(IpNet::new(addr, prefix).unwrap().trunc());
    }
    out
}

fn qtype_of(net: &IpNet) -> RecordType {
    if net.addr().is_ipv4() {
        RecordType::A
    } else {
        RecordType::AAAA
    }
}

/// (region, scope) for every subnet, asked of `server`.
fn ask_all(server: SocketAddr, subnets: &[IpNet]) -> Vec<(&'static str, u8)> {
    let queries: Vec<Vec<u8>> =
        subnets.iter().enumerate().map(|(i, n)| query_with_ecs(i as u16, SERVICE, qtype_of(n), *n)).collect();
    exchange_all(server, &queries).iter().map(region_and_scope).collect()
}

#[test]
fn geo_scopes_are_honest_and_never_narrower_than_gdnsds() {
    let dir = test_geoip("maxmind-test");
    let db = dir.join("GeoIP2-City-Test.mmdb");
    let nets = json_networks(&dir.join("GeoIP2-City-Test.json"));
    assert!(nets.len() > 100, "too few networks in the City test database's source");
    let zones = zones_copy(|t| t + MAPPED);
    let zones_dir = zones.path().join("zones");
    let s = Server::start_with(&["--zones", zones_dir.to_str().unwrap(), "--geoip", db.to_str().unwrap()], None);
    let clients = subnets(&nets);
    let answers = ask_all(s.addr, &clients);

    // Honest: the first, the last and two other addresses of every returned
    // prefix, each asked as a host subnet, get the same region.
    let mut rng = Rng(7);
    let mut samples = Vec::new();
    let mut owners = Vec::new();
    for (i, (client, (_, scope))) in clients.iter().zip(&answers).enumerate() {
        let prefix = IpNet::new(client.addr(), *scope).unwrap().trunc();
        let host = if client.addr().is_ipv4() { 32 } else { 128 };
        for addr in [prefix.network(), last(prefix), inside(prefix, rng.next()), inside(prefix, rng.next())] {
            samples.push(IpNet::new(addr, host).unwrap());
            owners.push(i);
        }
    }
    let sampled = ask_all(s.addr, &samples);
    let mut widened = 0;
    for ((sample, (region, _)), i) in samples.iter().zip(&sampled).zip(&owners) {
        let (want, scope) = answers[*i];
        assert_eq!(
            *region, want,
            "{} answered {want} with scope /{scope}, but {sample} inside it gets {region}",
            clients[*i]
        );
        widened += usize::from(scope < 16);
    }
    assert!(widened > 0, "no scope shorter than /16: nothing was merged");

    // Never narrower than gdnsd's for the same map (when gdnsd is installed).
    let Some(gdnsd) = ["/usr/sbin/gdnsd", "/usr/local/sbin/gdnsd"].into_iter().find(|p| Path::new(p).exists()) else {
        skip_or_fail("gdnsd is not installed: the scope comparison did not run");
        return;
    };
    let g = Gdnsd::start(gdnsd, &db);
    let theirs = ask_all(g.addr, &clients);
    let (mut wider, mut same) = (0, 0);
    for ((client, (ours, our_scope)), (their_region, their_scope)) in clients.iter().zip(&answers).zip(&theirs) {
        assert_eq!(ours, their_region, "{client}: Meridian and gdnsd disagree on the region");
        assert!(
            our_scope <= their_scope,
            "{client}: Meridian's scope /{our_scope} is narrower than gdnsd's /{their_scope}"
        );
        wider += usize::from(our_scope < their_scope);
        same += usize::from(our_scope == their_scope);
    }
    eprintln!("ECS scopes over {} subnets: {same} as gdnsd's, {wider} wider", clients.len());
}

/// gdnsd 3 serving the same map on a loopback port; stopped when dropped.
struct Gdnsd {
    child: std::process::Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Gdnsd {
    fn start(bin: &str, db: &Path) -> Gdnsd {
        let dir = TempDir::new("ecs-scopes-gdnsd");
        let d = dir.path();
        std::fs::create_dir_all(d.join("zones")).unwrap();
        std::fs::write(
            d.join("zones/gslb.example.test"),
            "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 127.0.0.3\nmapped 30 DYNA geoip!mapped\n",
        )
        .unwrap();
        let port = free_port();
        let config = format!(
            r#"options => {{
  listen => [ 127.0.0.1:{port} ]
  udp_threads => 1
  tcp_threads => 1
  run_dir => {run}
  state_dir => {state}
}}
plugins => {{
  geoip => {{
    maps => {{
      continents => {{
        geoip2_db => {db}
        datacenters => [us-east, eu-west, ap-northeast]
        map => {{
          NA => [us-east], SA => [us-east],
          EU => [eu-west], AF => [eu-west],
          AS => [ap-northeast], OC => [ap-northeast],
        }}
      }}
    }}
    resources => {{
      mapped => {{
        map => continents
        dcmap => {{
          us-east => {{ addrs_v4 => {{ a => 192.0.2.10 }}, addrs_v6 => {{ a => 2001:db8:10::10 }} }}
          eu-west => {{ addrs_v4 => {{ a => 198.51.100.10 }}, addrs_v6 => {{ a => 2001:db8:20::10 }} }}
          ap-northeast => {{ addrs_v4 => {{ a => 203.0.113.10 }}, addrs_v6 => {{ a => 2001:db8:30::10 }} }}
        }}
      }}
    }}
  }}
}}
"#,
            run = d.join("run").display(),
            state = d.join("state").display(),
            db = db.display(),
        );
        std::fs::write(d.join("config"), config).unwrap();
        let log = std::fs::File::create(d.join("log")).unwrap();
        let child = Command::new(bin)
            .args(["-c", d.to_str().unwrap(), "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start gdnsd");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut g = Gdnsd { child, addr, _dir: dir };
        // Ready when it answers (bounded).
        let deadline = Instant::now() + Duration::from_secs(20);
        let probe = query_with_ecs(1, SERVICE, RecordType::A, "81.2.69.0/24".parse().unwrap());
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut buf = [0u8; 1500];
        loop {
            if let Ok(Some(st)) = g.child.try_wait() {
                panic!(
                    "gdnsd exited ({st}): {}",
                    std::fs::read_to_string(g._dir.path().join("log")).unwrap_or_default()
                );
            }
            sock.send_to(&probe, addr).unwrap();
            if sock.recv(&mut buf).is_ok() {
                return g;
            }
            assert!(
                Instant::now() < deadline,
                "gdnsd did not answer in 20 s: {}",
                std::fs::read_to_string(g._dir.path().join("log")).unwrap_or_default()
            );
        }
    }
}

impl Drop for Gdnsd {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(5));
    }
}
