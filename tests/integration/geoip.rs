//! GeoIP end to end: MaxMind's official test database decides `www` (with an
//! ECS scope no wider than the database network that decided), corrupt
//! databases are refused at start without a panic, and a reload with a corrupt
//! database keeps serving the previous one.
//!
//! The tests use MaxMind's test and bad-data databases, kept in the
//! repository under `tests/data/geoip/`.

use crate::common::*;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// (region, its A, its AAAA) as zones/gslb.example.test.toml has them.
const US_EAST: (&str, &str, &str) = ("us-east", "192.0.2.10", "2001:db8:10::10");
const EU_WEST: (&str, &str, &str) = ("eu-west", "198.51.100.10", "2001:db8:20::10");
const AP_NORTHEAST: (&str, &str, &str) = ("ap-northeast", "203.0.113.10", "2001:db8:30::10");

// ---------------------------------------------------------------------------
// The networks of GeoIP2-City-Test.json, so the expected ECS scope bound is
// computed from MaxMind's source data rather than from Meridian's output.

/// Every network key of the JSON source, IPv4 ones (written `::a.b.c.d/N`
/// with N >= 96, i.e. the IPv4 subtree of the IPv6 tree) as IPv4 networks.
fn json_networks(json: &Path) -> Vec<IpNet> {
    let text = std::fs::read_to_string(json).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut nets = Vec::new();
    for entry in v.as_array().expect("a JSON array") {
        for key in entry.as_object().expect("objects keyed by network").keys() {
            let net: IpNet = key.parse().unwrap_or_else(|e| panic!("{key}: {e}"));
            let net = match net {
                IpNet::V6(n) if n.prefix_len() >= 96 && u128::from(n.network()) >> 32 == 0 => {
                    let v4 = Ipv4Addr::from(u128::from(n.network()) as u32);
                    IpNet::new(IpAddr::V4(v4), n.prefix_len() - 96).unwrap()
                }
                n => n,
            };
            nets.push(net.trunc());
        }
    }
    assert!(nets.len() > 100, "too few networks in {}", json.display());
    nets
}

fn common_prefix(a: IpAddr, b: IpAddr) -> u8 {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) ^ u32::from(b)).leading_zeros() as u8,
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a) ^ u128::from(b)).leading_zeros() as u8,
        _ => 0,
    }
}

/// The database network holding `addr`, as the search tree built from the
/// JSON has it: the most specific JSON network containing `addr`, cut down so
/// it overlaps no more specific JSON network that does not contain `addr`
/// (those split the tree).
fn deciding_network(nets: &[IpNet], addr: IpAddr) -> IpNet {
    let longest = nets
        .iter()
        .filter(|n| n.contains(&addr))
        .max_by_key(|n| n.prefix_len())
        .unwrap_or_else(|| panic!("{addr} is in no network of the JSON"));
    let mut prefix = longest.prefix_len();
    for n in nets {
        if n != longest && longest.contains(n) && !n.contains(&addr) {
            prefix = prefix.max(common_prefix(addr, n.network()) + 1);
        }
    }
    IpNet::new(addr, prefix).unwrap().trunc()
}

// ---------------------------------------------------------------------------
// Must show 2: answers from GeoIP2-City-Test.mmdb.

#[test]
fn maxmind_city_test_db_decides_www_with_bounded_ecs_scope() {
    // Uses tests/data/geoip/maxmind-test.
    let dir = test_geoip("maxmind-test");
    let db = dir.join("GeoIP2-City-Test.mmdb");
    let nets = json_networks(&dir.join("GeoIP2-City-Test.json"));
    let db_arg = db.to_str().unwrap();
    let s = Server::start_with(&["--geoip", db_arg], None);

    let cases: [(&str, (&str, &str, &str), &str); 8] = [
        ("81.2.69.142/32", EU_WEST, "GB"),
        ("89.160.20.112/32", EU_WEST, "SE"),
        ("2.2.3.0/24", EU_WEST, "GB"),
        ("216.160.83.56/32", US_EAST, "US"),
        ("214.78.124.0/24", US_EAST, "US"),
        ("2001:218::1/128", AP_NORTHEAST, "JP"),
        ("2001:218::/56", AP_NORTHEAST, "JP"),
        ("175.16.199.0/24", AP_NORTHEAST, "CN"),
    ];
    for (subnet, (region, v4, v6), country) in cases {
        let client: IpNet = subnet.parse().unwrap();
        let network = deciding_network(&nets, client.trunc().addr());
        for (qtype, want) in [("A", v4), ("AAAA", v6)] {
            let d = s.dig(&format!("+subnet={subnet} www.gslb.example.test {qtype}"));
            let ctx = format!("{subnet} {qtype} (database network {network}):\n{}", d.raw);
            assert_eq!(d.status, "NOERROR", "{ctx}");
            assert_eq!(d.answers_of(qtype), vec![want.to_string()], "{ctx}");
            let scope = d.ecs_scope().unwrap_or_else(|| panic!("no ECS option echoed: {ctx}"));
            assert!(scope > 0, "scope 0 for a located client: {ctx}");
            assert!(
                scope <= network.prefix_len(),
                "scope {scope} is longer than the deciding network {network}: {ctx}"
            );
        }

        // `meridian explain` tells the same story and names the network.
        let out = meridian(&["explain", "www.gslb.example.test", "--client", subnet, "--geoip", db_arg], &repo());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&format!("location: network {network} country {country} ")), "{text}");
        assert!(text.contains(&format!("chosen:   [{region}]")), "{text}");
        assert!(text.contains(&format!(" IN A {v4}\n")), "{text}");
        let d = s.dig(&format!("+subnet={subnet} www.gslb.example.test A"));
        assert!(
            text.contains(&format!("ecs scope: {}\n", d.ecs_scope().unwrap())),
            "explain and the server disagree on the scope ({:?}):\n{text}",
            d.ecs
        );
    }
}

// ---------------------------------------------------------------------------
// Must show 4: corrupt databases are refused at start and on reload.

/// Every corrupt database: all of maxmind-bad plus the two broken ones in maxmind-test.
fn corrupt_databases(bad: &Path, test: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(bad)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "mmdb"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "expected MaxMind's bad-data set, found {files:?}");
    files.push(test.join("GeoIP2-City-Test-Broken-Double-Format.mmdb"));
    files.push(test.join("GeoIP2-City-Test-Invalid-Node-Count.mmdb"));
    files
}

/// Run meridian with `args` in the repo, stderr to a file; kill it (and fail)
/// if it is still running after `secs`. Returns (exit status, stderr).
fn run_bounded(args: &[&str], secs: u64) -> (std::process::ExitStatus, String) {
    let dir = TempDir::new("geoip-run");
    let err_path = dir.path().join("stderr");
    let err = std::fs::File::create(&err_path).unwrap();
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(err))
        .spawn()
        .expect("run meridian");
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, std::fs::read_to_string(&err_path).unwrap_or_default());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "meridian {args:?} still running after {secs} s (a corrupt database was accepted?); stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn corrupt_databases_are_refused_by_check_and_serve_without_panic() {
    // Uses tests/data/geoip/maxmind-bad and tests/data/geoip/maxmind-test.
    let bad = test_geoip("maxmind-bad");
    let test = test_geoip("maxmind-test");
    let mut failures = Vec::new();
    for path in corrupt_databases(&bad, &test) {
        let file = path.to_str().unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        // libmaxminddb-uint64-max-epoch.mmdb is structurally valid (its README
        // says so); only build_epoch = u64::MAX is odd. The maxminddb reader
        // Meridian uses refuses it at open ("Unix timestamp is too large to
        // represent as SystemTime"), so Meridian refuses it like the others;
        // what matters is that it is a clean refusal naming the file, never a
        // panic (e.g. in the epoch-to-date formatting of `describe`).
        let port = free_port().to_string();
        let listen = format!("127.0.0.1:{port}");
        let runs: [(&str, Vec<&str>); 3] = [
            ("check", vec!["check", "--geoip", file]),
            ("serve", vec!["serve", "--geoip", file, "--listen", &listen]),
            ("geoip lookup", vec!["geoip", "lookup", "81.2.69.142", "--db", file]),
        ];
        for (what, args) in runs {
            let (status, stderr) = run_bounded(&args, 20);
            if status.success() {
                failures.push(format!("{name}: `{what}` accepted it (exit 0); stderr:\n{stderr}"));
            }
            if status.code().is_none() {
                failures.push(format!("{name}: `{what}` died by a signal ({status}); stderr:\n{stderr}"));
            }
            if stderr.contains("panicked") {
                failures.push(format!("{name}: `{what}` panicked:\n{stderr}"));
            }
            if !stderr.contains(file) {
                failures.push(format!("{name}: `{what}` stderr does not name {file}:\n{stderr}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

/// Polls the server log past byte `from` until `needle` appears; the new part of the log.
fn wait_log(s: &Server, from: usize, needle: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let log = s.log_text();
        let tail = log.get(from..).unwrap_or("").to_string();
        if tail.contains(needle) {
            return tail;
        }
        if Instant::now() > deadline {
            panic!("no {needle:?} in the log within {secs} s; new log:\n{tail}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn www_a(s: &Server, subnet: &str) -> Vec<String> {
    let d = s.dig(&format!("+subnet={subnet} www.gslb.example.test A"));
    assert_eq!(d.status, "NOERROR", "{}", d.raw);
    d.answers_of("A")
}

#[test]
fn reload_with_a_corrupt_database_keeps_the_old_one_then_a_good_one_takes_over() {
    // Uses tests/data/geoip/maxmind-test (a corrupt database and the City test db).
    let test = test_geoip("maxmind-test");
    let corrupt = test.join("GeoIP2-City-Test-Broken-Double-Format.mmdb");
    let city = test.join("GeoIP2-City-Test.mmdb");
    let demo = repo().join("geoip/demo.mmdb");

    // The facts the test relies on, checked with `explain` first:
    // demo: 10.3.0.0 is GB → eu-west; 81.2.69.142 unknown → nearest without
    // coordinates keeps config order → us-east.
    // City-Test: 81.2.69.142 is GB → eu-west; 10.3.0.0 unknown → us-east.
    for (db, client, region) in [
        (&demo, "10.3.0.0/24", "eu-west"),
        (&demo, "81.2.69.142/32", "us-east"),
        (&city, "81.2.69.142/32", "eu-west"),
        (&city, "10.3.0.0/24", "us-east"),
    ] {
        let out = meridian(
            &["explain", "www.gslb.example.test", "--client", client, "--geoip", db.to_str().unwrap()],
            &repo(),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("chosen:   [{region}")), "{} {client}:\n{text}", db.display());
    }

    let tmp = TempDir::new("geoip-reload");
    let db = tmp.path().join("db.mmdb");
    std::fs::copy(&demo, &db).unwrap();
    let db_str = db.to_str().unwrap();
    let mut s = Server::start_with(&["--geoip", db_str], None);
    assert_eq!(www_a(&s, "10.3.0.0/24"), vec![EU_WEST.1]);
    assert_eq!(www_a(&s, "81.2.69.142/32"), vec![US_EAST.1]);

    // A corrupt database copied over the live one: the file watcher or the
    // SIGHUP (whichever comes first) tries to reload and fails.
    let mark = s.log_text().len();
    std::fs::copy(&corrupt, &db).unwrap();
    s.signal(libc::SIGHUP);
    let tail = wait_log(&s, mark, "reload failed; still serving the previous configuration", 20);
    let line = tail.lines().find(|l| l.contains("reload failed")).unwrap();
    assert!(line.contains(db_str), "the failure does not name {db_str}: {line}");
    assert!(!tail.contains("panicked"), "{tail}");
    assert!(s.child.try_wait().unwrap().is_none(), "meridian exited:\n{}", s.log_text());
    assert_eq!(www_a(&s, "10.3.0.0/24"), vec![EU_WEST.1], "old database no longer served");
    assert_eq!(www_a(&s, "81.2.69.142/32"), vec![US_EAST.1], "old database no longer served");

    // A valid database put back: the reload succeeds and answers follow it.
    let mark = s.log_text().len();
    std::fs::copy(&city, &db).unwrap();
    s.signal(libc::SIGHUP);
    wait_log(&s, mark, "reloaded configuration", 20);
    assert_eq!(www_a(&s, "81.2.69.142/32"), vec![EU_WEST.1], "new database not in use");
    assert_eq!(www_a(&s, "10.3.0.0/24"), vec![US_EAST.1], "new database not in use");

    assert!(!s.log_text().contains("panicked"), "{}", s.log_text());
    let status = s.stop();
    assert!(status.success(), "{status}");
}
