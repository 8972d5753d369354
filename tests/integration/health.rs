//! Issue "health": probes against real in-process backends (tests/integration/backends.rs)
//! change what the real binary answers.
//!
//! Times are measured, not slept: after a backend is killed or restarted the
//! answers are polled every ~20 ms with raw UDP queries (hickory-proto over a
//! std UdpSocket) and the moment they change is compared with the bound the
//! issue states (`interval × fall + 1 s` to withdraw, `interval × rise + 1 s`
//! to return). Every polling loop has a deadline.

use crate::backends::*;
use crate::common::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const ORIGIN: &str = "h.test.";

// ---------------------------------------------------------------------------
// A raw UDP DNS client, fast enough to poll every 20 ms and to send thousands
// of queries a second.

#[derive(Debug, Clone)]
struct Ans {
    rcode: ResponseCode,
    addrs: Vec<IpAddr>,
    ttl: Option<u32>,
}

impl Ans {
    fn has(&self, a: &str) -> bool {
        self.addrs.contains(&a.parse().unwrap())
    }
}

struct Dns {
    sock: UdpSocket,
    server: SocketAddr,
    id: u16,
}

impl Dns {
    fn new(server: SocketAddr) -> Dns {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        Dns { sock, server, id: 0 }
    }

    /// A query for `name` (relative to the origin), optionally with ECS `client`.
    fn ask(&mut self, name: &str, client: Option<&str>) -> Ans {
        let mut buf = [0u8; 4096];
        for _attempt in 0..10 {
            self.id = self.id.wrapping_add(1);
            let mut m = Message::new(self.id, MessageType::Query, OpCode::Query);
            m.add_query(Query::query(Name::from_ascii(format!("{name}.{ORIGIN}")).unwrap(), RecordType::A));
            if let Some(c) = client {
                let net: IpNet = c.parse().unwrap();
                let mut e = Edns::new();
                e.set_max_payload(1232);
                e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::from(net)));
                m.set_edns(e);
            }
            self.sock.send_to(&m.to_vec().unwrap(), self.server).unwrap();
            let deadline = Instant::now() + Duration::from_millis(300);
            while Instant::now() < deadline {
                let Ok(n) = self.sock.recv(&mut buf) else { break };
                let Ok(r) = Message::from_vec(&buf[..n]) else { continue };
                if r.metadata.id != self.id {
                    continue; // a late reply to an earlier, resent query
                }
                let addrs: Vec<IpAddr> = r
                    .answers
                    .iter()
                    .filter_map(|rr| match &rr.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                        _ => None,
                    })
                    .collect();
                let ttl = r.answers.first().map(|rr| rr.ttl);
                return Ans { rcode: r.metadata.response_code, addrs, ttl };
            }
        }
        panic!("no answer from {} for {name} after 10 tries", self.server);
    }
}

// ---------------------------------------------------------------------------
// Zones and the server.

fn zone_head() -> String {
    crate::common::zone_head(ORIGIN)
}

/// An HTTP probe of `http://{{addr}}:PORT/health` at `probe_addr`: interval
/// 200 ms, timeout 150 ms, fall 3, rise 2, plus `extra` keys.
fn http_probe(port: u16, probe_addr: &str, extra: &str) -> String {
    format!(
        r#"
[regions.probe]
type = "http"
url = "http://{{addr}}:{port}/health"
probe_addr = "{probe_addr}"
interval = "200ms"
timeout = "150ms"
fall = 3
rise = 2
{extra}
"#
    )
}

/// A `[[regions]]` entry; `keys` are extra region keys, `probe` a probe table (or "").
fn region(name: &str, addrs: &[&str], loc: (f64, f64), keys: &str, probe: &str) -> String {
    let list = addrs.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
    format!(
        "\n[[regions]]\nname = \"{name}\"\naddresses = [{list}]\nlocation = {{ lat = {}, lon = {} }}\n{keys}\n{probe}\n",
        loc.0, loc.1
    )
}

const LONDON: (f64, f64) = (51.5, -0.1);
const ASHBURN: (f64, f64) = (39.0, -77.5);
const TOKYO: (f64, f64) = (35.7, 139.7);

/// Clients (as ECS subnets) located by geoip/demo.csv.
const CLIENT_LONDON: &str = "10.3.0.0/24"; // EU, GB
const CLIENT_SF: &str = "10.1.0.0/24"; // NA, US
const CLIENT_TOKYO: &str = "10.5.0.0/24"; // AS, JP

struct Meridian {
    server: Server,
    /// Removed after the server (fields drop in order).
    _dir: TempDir,
}

impl Meridian {
    /// Write `zone` (and `files`: name → contents, beside it) into a fresh
    /// directory and serve it; `health` is the `[health]` table of a
    /// meridian.toml, or `None` for no server file (the defaults).
    fn start(zone: &str, files: &[(&str, &str)], health: Option<&str>) -> Meridian {
        let dir = TempDir::new("health");
        let zones = dir.path().join("zones");
        std::fs::create_dir_all(&zones).unwrap();
        std::fs::write(zones.join("h.test.toml"), zone).unwrap();
        for (name, text) in files {
            std::fs::write(zones.join(name), text).unwrap();
        }
        let zones_s = zones.display().to_string();
        let state = dir.path().join("state").display().to_string();
        let geoip = repo().join("geoip/demo.mmdb").display().to_string();
        let conf: PathBuf = dir.path().join("meridian.toml");
        let mut args = vec!["--zones", &zones_s, "--state-dir", &state, "--geoip", &geoip];
        let conf_s = conf.display().to_string();
        if let Some(h) = health {
            std::fs::write(&conf, format!("[health]\n{h}\n")).unwrap();
            args.extend(["--config", conf_s.as_str()]);
        }
        let server = Server::start_with(&args, Some(dir.path()));
        Meridian { server, _dir: dir }
    }

    fn dns(&self) -> Dns {
        Dns::new(self.server.addr)
    }

    /// The last lines of the server log, for failure messages.
    fn log_tail(&self) -> String {
        let t = self.server.log_text();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// Call `f` every `every` until it returns `Some`, at most until `limit`
/// has passed; the value and the time it took.
fn poll<T>(limit: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<(T, Duration)> {
    let start = Instant::now();
    loop {
        let t = Instant::now();
        if let Some(v) = f() {
            return Some((v, start.elapsed()));
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(every.saturating_sub(t.elapsed()));
    }
}

/// Wait until every backend has answered at least `n` probes (so each
/// endpoint has left cold start and is steadily up).
fn wait_probed(backends: &[&Backend], n: usize, m: &Meridian) {
    let ok = poll(Duration::from_secs(10), Duration::from_millis(20), || {
        backends.iter().all(|b| b.served() >= n).then_some(())
    });
    assert!(
        ok.is_some(),
        "backends not probed {n} times within 10 s: {:?}\n{}",
        backends.iter().map(|b| (b.addr, b.served())).collect::<Vec<_>>(),
        m.log_tail()
    );
}

const FAST: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------
// 1. Kill and restart: failover and geo/nearest clients move within the bound.

#[test]
fn kill_withdraws_within_interval_times_fall_and_restart_returns_after_rise() {
    let mut b = http_backends_on_one_port(&["127.0.0.11", "127.0.0.12", "127.0.0.13"]);
    let port = b[0].port();
    let zone = format!(
        "{}{}{}{}{}",
        zone_head(),
        region("r1", &["192.0.2.1"], LONDON, "", &http_probe(port, "127.0.0.11", "")),
        region("r2", &["192.0.2.2"], ASHBURN, "", &http_probe(port, "127.0.0.12", "")),
        region("r3", &["192.0.2.3"], TOKYO, "", &http_probe(port, "127.0.0.13", "")),
        r#"
[[services]]
name = "fo"
chain = ["failover r1 r2 r3"]

[[services]]
name = "geo"
chain = ["geo", "nearest"]

[services.geo]
continent = { EU = ["r1"], NA = ["r2"], AS = ["r3"] }
"#
    );
    let m = Meridian::start(&zone, &[], None);
    let mut dns = m.dns();
    wait_probed(&[&b[0], &b[1], &b[2]], 2, &m);
    let (r1, r2, r3) = ("192.0.2.1", "192.0.2.2", "192.0.2.3");
    let fo = |d: &mut Dns| d.ask("fo", None);
    let geo = |d: &mut Dns, c: &str| d.ask("geo", Some(c));
    assert!(fo(&mut dns).has(r1), "failover leads with r1");
    assert!(geo(&mut dns, CLIENT_LONDON).has(r1), "London → r1");
    assert!(geo(&mut dns, CLIENT_SF).has(r2), "San Francisco → r2");
    assert!(geo(&mut dns, CLIENT_TOKYO).has(r3), "Tokyo → r3");

    // Kill r1's backend.
    let interval = Duration::from_millis(200);
    let withdraw_bound = interval * 3 + Duration::from_secs(1);
    let rise_bound = interval * 2 + Duration::from_secs(1);
    b[0].kill();
    let killed = Instant::now();
    let (mut fo_moved, mut geo_moved) = (None, None);
    let mut others_moved = Vec::new();
    let done = poll(Duration::from_secs(5), FAST, || {
        let f = fo(&mut dns);
        let g = geo(&mut dns, CLIENT_LONDON);
        if fo_moved.is_none() && !f.has(r1) {
            fo_moved = Some((killed.elapsed(), f));
        }
        if geo_moved.is_none() && !g.has(r1) {
            geo_moved = Some((killed.elapsed(), g));
        }
        // Clients of the other regions stay where they are.
        for (c, want) in [(CLIENT_SF, r2), (CLIENT_TOKYO, r3)] {
            let a = geo(&mut dns, c);
            if !a.has(want) {
                others_moved.push(format!("{c} got {:?} at {:?}", a.addrs, killed.elapsed()));
            }
        }
        (fo_moved.is_some() && geo_moved.is_some()).then_some(())
    });
    assert!(done.is_some(), "r1 still answered 5 s after its backend died\n{}", m.log_tail());
    let (fo_t, fo_a) = fo_moved.unwrap();
    let (geo_t, geo_a) = geo_moved.unwrap();
    eprintln!("withdraw after kill: failover {fo_t:?}, geo/nearest (London) {geo_t:?} (bound {withdraw_bound:?})");
    assert_eq!(fo_a.addrs, vec![r2.parse::<IpAddr>().unwrap()], "failover moves to r2: {fo_a:?}");
    assert_eq!(geo_a.addrs, vec![r2.parse::<IpAddr>().unwrap()], "London moves to the next nearest, r2: {geo_a:?}");
    assert_eq!(fo_a.rcode, ResponseCode::NoError);
    assert!(fo_t <= withdraw_bound, "failover withdrew r1 after {fo_t:?} > {withdraw_bound:?}");
    assert!(geo_t <= withdraw_bound, "geo withdrew r1 after {geo_t:?} > {withdraw_bound:?}");

    // While it stays dead, r1 does not come back.
    let back = poll(Duration::from_millis(800), FAST, || {
        (fo(&mut dns).has(r1) || geo(&mut dns, CLIENT_LONDON).has(r1)).then_some(())
    });
    assert!(back.is_none(), "r1 answered again while its backend is down\n{}", m.log_tail());
    assert!(others_moved.is_empty(), "clients of r2/r3 moved: {others_moved:?}");

    // Restart it: back after `rise` successes.
    let requests_before = b[0].requests();
    b[0].restart();
    let restarted = Instant::now();
    let (mut fo_back, mut geo_back) = (None, None);
    let mut probes_when_back = 0;
    let done = poll(Duration::from_secs(5), FAST, || {
        if fo_back.is_none() && fo(&mut dns).has(r1) {
            fo_back = Some(restarted.elapsed());
            // Read after the answer: a request is counted before it is answered,
            // so every success behind this answer is included.
            probes_when_back = b[0].requests() - requests_before;
        }
        if geo_back.is_none() && geo(&mut dns, CLIENT_LONDON).has(r1) {
            geo_back = Some(restarted.elapsed());
        }
        (fo_back.is_some() && geo_back.is_some()).then_some(())
    });
    assert!(done.is_some(), "r1 not back 5 s after restart\n{}", m.log_tail());
    let (fo_t, geo_t) = (fo_back.unwrap(), geo_back.unwrap());
    eprintln!(
        "return after restart: failover {fo_t:?}, geo/nearest (London) {geo_t:?} (bound {rise_bound:?}; backend saw {} probes)",
        b[0].served()
    );
    eprintln!("probes the restarted backend had received when r1 was answered again: {probes_when_back} (rise 2)");
    assert!(probes_when_back >= 2, "r1 back after {probes_when_back} successful probe(s), rise is 2");
    assert!(fo_t <= rise_bound, "failover brought r1 back after {fo_t:?} > {rise_bound:?}");
    assert!(geo_t <= rise_bound, "geo brought r1 back after {geo_t:?} > {rise_bound:?}");
    assert!(geo(&mut dns, CLIENT_SF).has(r2) && geo(&mut dns, CLIENT_TOKYO).has(r3));
}

// ---------------------------------------------------------------------------
// 3. Slow start, measured on a weighted service.

#[test]
fn slow_start_ramps_a_returning_regions_weighted_share() {
    let mut b = http_backends_on_one_port(&["127.0.0.11", "127.0.0.12"]);
    let port = b[0].port();
    let zone = format!(
        "{}{}{}{}",
        zone_head(),
        region("r1", &["192.0.2.1"], LONDON, "slow_start = \"3s\"", &http_probe(port, "127.0.0.11", "")),
        region("r2", &["192.0.2.2"], ASHBURN, "", &http_probe(port, "127.0.0.12", "")),
        r#"
[[services]]
name = "w"
regions = ["r1", "r2"]
chain = ["weighted"]

[[services]]
name = "fo"
regions = ["r1", "r2"]
chain = ["failover r1 r2"]
"#
    );
    let m = Meridian::start(&zone, &[], None);
    let mut dns = m.dns();
    wait_probed(&[&b[0], &b[1]], 2, &m);
    let r1 = "192.0.2.1";

    // Withdraw r1.
    b[0].kill();
    let gone = poll(Duration::from_secs(5), FAST, || (!dns.ask("fo", None).has(r1)).then_some(()));
    assert!(gone.is_some(), "r1 not withdrawn\n{}", m.log_tail());
    let leaks = (0..200).filter(|_| dns.ask("w", None).has(r1)).count();
    assert_eq!(leaks, 0, "withdrawn r1 still answered by the weighted service");

    // Bring it back; the first time the weighted service answers r1 starts the clock.
    b[0].restart();
    let restarted = Instant::now();
    let mut asked = 0usize;
    let first = poll(Duration::from_secs(5), Duration::ZERO, || {
        asked += 1;
        dns.ask("w", None).has(r1).then(Instant::now)
    });
    let (t0, _) = first.unwrap_or_else(|| panic!("r1 never reappeared in 5 s\n{}", m.log_tail()));
    eprintln!("r1 reappeared {:?} after restart (after {asked} queries)", t0 - restarted);

    // Its share over the first second, in 100 ms buckets.
    let mut buckets = [(0usize, 0usize); 10];
    while t0.elapsed() < Duration::from_secs(1) {
        let i = ((t0.elapsed().as_millis() / 100) as usize).min(9);
        let a = dns.ask("w", None);
        buckets[i].1 += 1;
        if a.has(r1) {
            buckets[i].0 += 1;
        }
    }
    let (hits, total) = buckets.iter().fold((0, 0), |acc, b| (acc.0 + b.0, acc.1 + b.1));
    let early = hits as f64 / total as f64 * 100.0;
    let curve: Vec<String> = buckets
        .iter()
        .map(|(h, n)| if *n == 0 { "-".into() } else { format!("{:.0}%", *h as f64 / *n as f64 * 100.0) })
        .collect();
    eprintln!(
        "slow start: r1 share over its first second {early:.1}% of {total} queries; per 100 ms: {}",
        curve.join(" ")
    );
    assert!(total >= 100, "too few queries in the first second ({total}) to measure a share");
    assert!(early < 25.0, "r1 got {early:.1}% in its first second back: not below half its full share (50%)");

    // After the 3 s ramp, the full (equal-weight) share.
    let ramp_end = t0 + Duration::from_millis(3300);
    std::thread::sleep(ramp_end.saturating_duration_since(Instant::now()));
    let n = 600;
    let late = (0..n).filter(|_| dns.ask("w", None).has(r1)).count() as f64 / n as f64 * 100.0;
    eprintln!(
        "slow start: r1 share {:.1}% over {n} queries, {:?} after it reappeared (full share 50%)",
        late,
        t0.elapsed()
    );
    assert!((43.0..=57.0).contains(&late), "r1 share after the ramp {late:.1}% is not 50 ± 7%");
}

// ---------------------------------------------------------------------------
// 6. Cold start: before any verdict the healthy-path answer, not fail-open.

fn cold_start_case(health: Option<&str>) {
    let b = http_backends_on_one_port(&["127.0.0.11", "127.0.0.12", "127.0.0.13"]);
    for x in &b {
        x.set_reply(Reply { delay: Duration::from_secs(1), ..Reply::default() });
    }
    let port = b[0].port();
    let probe = |ip: &str| {
        format!(
            "\n[regions.probe]\ntype = \"http\"\nurl = \"http://{{addr}}:{port}/health\"\nprobe_addr = \"{ip}\"\ninterval = \"5s\"\ntimeout = \"2s\"\nfall = 3\nrise = 2\n"
        )
    };
    let zone = format!(
        "{}{}{}{}{}",
        zone_head(),
        region("r1", &["192.0.2.1"], LONDON, "", &probe("127.0.0.11")),
        region("r2", &["192.0.2.2"], ASHBURN, "", &probe("127.0.0.12")),
        region("r3", &["192.0.2.3"], TOKYO, "", &probe("127.0.0.13")),
        r#"
[[services]]
name = "fo"
ttl = 30
ttl_degraded = 5
fail = "servfail"
chain = ["failover r1 r2 r3"]
"#
    );
    let m = Meridian::start(&zone, &[], health);
    let ready = Instant::now();
    let mut dns = m.dns();
    let served_at_first = b.iter().map(|x| x.served()).sum::<usize>();
    let first = dns.ask("fo", None);
    let first_at = ready.elapsed();
    let mut answers = vec![(first_at, first)];
    // Keep asking until every backend has answered its first (slow) probe, and a little after.
    let done = poll(Duration::from_secs(6), FAST, || {
        answers.push((ready.elapsed(), dns.ask("fo", None)));
        b.iter().all(|x| x.served() >= 1).then(Instant::now)
    });
    let (all_probed, _) = done.unwrap_or_else(|| panic!("backends never probed\n{}", m.log_tail()));
    let _ = poll(Duration::from_millis(300), FAST, || {
        answers.push((ready.elapsed(), dns.ask("fo", None)));
        None::<()>
    });
    eprintln!(
        "cold start ({}): first query {first_at:?} after ready, {} answers until {:?} after the last first probe finished",
        health.unwrap_or("defaults"),
        answers.len(),
        all_probed.elapsed()
    );
    assert_eq!(served_at_first, 0, "the first query was not made before any probe finished (not a cold-start query)");
    let wrong: Vec<String> = answers
        .iter()
        .filter(|(_, a)| {
            a.rcode != ResponseCode::NoError
                || a.addrs != vec!["192.0.2.1".parse::<IpAddr>().unwrap()]
                || a.ttl != Some(30)
        })
        .map(|(t, a)| format!("{t:?}: {a:?}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "during cold start every answer must be r1 (192.0.2.1) with the normal TTL 30 (not SERVFAIL, not degraded):\n{}\n{}",
        wrong.join("\n"),
        m.log_tail()
    );
    // The slow probes did succeed: each endpoint went unknown → up.
    let ups = poll(Duration::from_secs(3), FAST, || {
        let log = m.server.log_text();
        let n =
            log.lines().filter(|l| l.contains("endpoint state changed") && l.contains("from=unknown to=up")).count();
        (n == 3).then_some(())
    });
    assert!(ups.is_some(), "three unknown → up transitions expected\n{}", m.log_tail());
}

#[test]
fn cold_start_answers_the_healthy_path_before_the_first_verdict() {
    cold_start_case(None);
    cold_start_case(Some("cold_start = \"up\""));
}

// ---------------------------------------------------------------------------
// 7. TCP and HTTPS probes; body and status checks; probe_addr as a table.

/// A probe table with interval 200 ms, fall 3, rise 2 and a generous 1 s
/// timeout (TLS handshakes on a busy machine), plus `keys`.
fn probe_with(keys: &str) -> String {
    format!("\n[regions.probe]\ninterval = \"200ms\"\ntimeout = \"1s\"\nfall = 3\nrise = 2\n{keys}\n")
}

/// A spare region without probes (always up), and `failover X spare` services.
fn spare_and_services(names: &[&str]) -> String {
    let mut s = region("spare", &["192.0.2.99"], ASHBURN, "", "");
    for n in names {
        s.push_str(&format!("\n[[services]]\nname = \"{n}\"\nchain = [\"failover {n} spare\"]\n"));
    }
    s
}

const SPARE: &str = "192.0.2.99";

/// With `cold_start = "down"`, a region is answered only after a probe succeeded.
const COLD_DOWN: Option<&str> = Some("cold_start = \"down\"");

#[test]
fn tcp_probe_follows_the_listener() {
    let mut t = Backend::start("127.0.0.15".parse().unwrap(), 0, Mode::Tcp).unwrap();
    let zone = format!(
        "{}{}{}",
        zone_head(),
        region(
            "t",
            &["192.0.2.7"],
            LONDON,
            "",
            &probe_with(&format!("type = \"tcp\"\nport = {}\nprobe_addr = \"127.0.0.15\"", t.port()))
        ),
        spare_and_services(&["t"])
    );
    let m = Meridian::start(&zone, &[], COLD_DOWN);
    let mut dns = m.dns();
    let up = poll(Duration::from_secs(5), FAST, || dns.ask("t", None).has("192.0.2.7").then_some(()));
    assert!(up.is_some(), "tcp-probed region never up\n{}", m.log_tail());
    assert!(t.accepted() >= 1);
    t.kill();
    let down = poll(Duration::from_secs(5), FAST, || dns.ask("t", None).has(SPARE).then_some(()));
    let (_, took) = down.unwrap_or_else(|| panic!("tcp-probed region not withdrawn after kill\n{}", m.log_tail()));
    eprintln!("tcp probe: withdrawn {took:?} after the listener was closed");
    assert!(took <= Duration::from_millis(1600), "withdrawn after {took:?}");
    t.restart();
    let back = poll(Duration::from_secs(5), FAST, || dns.ask("t", None).has("192.0.2.7").then_some(()));
    let (_, took) = back.unwrap_or_else(|| panic!("tcp-probed region not back after restart\n{}", m.log_tail()));
    eprintln!("tcp probe: back {took:?} after the listener returned");
    assert!(took <= Duration::from_millis(1400), "back after {took:?}");
}

#[test]
fn https_probe_verifies_the_certificate_or_trusts_the_given_ca() {
    let pki = test_pki(&["127.0.0.1", "127.0.0.14"]);
    let tls = Backend::start("127.0.0.14".parse().unwrap(), 0, Mode::Https(pki.server_config.clone())).unwrap();
    let url = format!("url = \"https://{{addr}}:{}/health\"\nprobe_addr = \"127.0.0.14\"", tls.port());
    let zone = format!(
        "{}{}{}{}{}",
        zone_head(),
        // Verification on (the default), system roots: the self-signed CA is unknown.
        region("verify", &["192.0.2.4"], LONDON, "", &probe_with(&format!("type = \"https\"\n{url}"))),
        // The test CA beside the zone file.
        region("withca", &["192.0.2.5"], LONDON, "", &probe_with(&format!("type = \"https\"\n{url}\nca = \"ca.pem\""))),
        // Verification off.
        region(
            "noverify",
            &["192.0.2.6"],
            LONDON,
            "",
            &probe_with(&format!("type = \"https\"\n{url}\nverify_tls = false"))
        ),
        spare_and_services(&["verify", "withca", "noverify"])
    );
    let m = Meridian::start(&zone, &[("ca.pem", &pki.ca_pem)], COLD_DOWN);
    let mut dns = m.dns();
    let up = poll(Duration::from_secs(8), FAST, || {
        (dns.ask("withca", None).has("192.0.2.5") && dns.ask("noverify", None).has("192.0.2.6")).then_some(())
    });
    let (_, took) =
        up.unwrap_or_else(|| panic!("HTTPS with ca = \"ca.pem\" / verify_tls = false not up in 8 s\n{}", m.log_tail()));
    eprintln!(
        "https: region with ca = \"ca.pem\" (and verify_tls = false) up {took:?} after ready; backend served {}",
        tls.served()
    );
    // The verifying probe fails for an unknown issuer and its region is withdrawn.
    let log_has_down = || {
        let log = m.server.log_text();
        log.lines()
            .find(|l| l.contains("endpoint state changed") && l.contains("/health") && l.contains("to=down"))
            .map(str::to_string)
    };
    let down = poll(Duration::from_secs(8), FAST, log_has_down);
    let (line, _) = down.unwrap_or_else(|| panic!("verifying HTTPS probe never went down\n{}", m.log_tail()));
    eprintln!("https (verify on): {line}");
    // The line names what went down: the region and answered address (the probe URL beside them).
    assert!(line.contains("endpoints=verify 192.0.2.4 ") && line.contains("probe=GET https://"), "{line}");
    assert!(
        line.to_ascii_lowercase().contains("unknownissuer") || line.to_ascii_lowercase().contains("unknown issuer"),
        "the failure names the unknown issuer: {line}"
    );
    eprintln!("https backend: {} TLS failures, last: {}", tls.failed(), tls.last_error());
    for _ in 0..20 {
        assert_eq!(dns.ask("verify", None).addrs, vec![SPARE.parse::<IpAddr>().unwrap()], "verifying region withdrawn");
        assert!(dns.ask("withca", None).has("192.0.2.5"), "CA-trusting region stays up");
    }
}

#[test]
fn http_body_and_status_checks_withdraw() {
    let b = http_backends_on_one_port(&["127.0.0.16", "127.0.0.17", "127.0.0.18"]);
    let port = b[0].port();
    let probe = |ip: &str| {
        probe_with(&format!(
            "type = \"http\"\nurl = \"http://{{addr}}:{port}/health\"\nprobe_addr = \"{ip}\"\nbody = \"OK\""
        ))
    };
    b[0].set_reply(Reply { body: "all OK here".into(), ..Reply::default() });
    b[1].set_reply(Reply { body: "DEGRADED".into(), ..Reply::default() });
    b[2].set_reply(Reply { status: 500, body: "OK".into(), ..Reply::default() });
    let zone = format!(
        "{}{}{}{}{}",
        zone_head(),
        region("good", &["192.0.2.11"], LONDON, "", &probe("127.0.0.16")),
        region("degraded", &["192.0.2.12"], LONDON, "", &probe("127.0.0.17")),
        region("err", &["192.0.2.13"], LONDON, "", &probe("127.0.0.18")),
        spare_and_services(&["good", "degraded", "err"])
    );
    let m = Meridian::start(&zone, &[], COLD_DOWN);
    let mut dns = m.dns();
    let up = poll(Duration::from_secs(5), FAST, || dns.ask("good", None).has("192.0.2.11").then_some(()));
    assert!(up.is_some(), "region whose body has OK never up\n{}", m.log_tail());
    wait_probed(&[&b[1], &b[2]], 4, &m);
    assert!(dns.ask("degraded", None).has(SPARE), "body DEGRADED lacks OK: withdrawn");
    assert!(dns.ask("err", None).has(SPARE), "status 500: withdrawn");
    let log = m.server.log_text();
    for want in ["lacks \\\"OK\\\"", "status 500 not in 200-399"] {
        let alt = want.replace("\\\"", "\"");
        assert!(log.contains(want) || log.contains(&alt), "log names the failure {alt:?}\n{}", m.log_tail());
    }

    // The healthy one turns bad at run time: withdrawn; fixed: back; 500: withdrawn.
    let bound = Duration::from_millis(1600);
    for (reply, want, what) in [
        (Reply { body: "DEGRADED".into(), ..Reply::default() }, SPARE, "body DEGRADED"),
        (Reply { body: "OK".into(), ..Reply::default() }, "192.0.2.11", "body OK again"),
        (Reply { status: 500, body: "OK".into(), ..Reply::default() }, SPARE, "status 500"),
    ] {
        b[0].set_reply(reply);
        let r = poll(Duration::from_secs(5), FAST, || dns.ask("good", None).has(want).then_some(()));
        let (_, took) = r.unwrap_or_else(|| panic!("{what}: answer not {want} in 5 s\n{}", m.log_tail()));
        eprintln!("http checks: {what} → {want} after {took:?}");
        assert!(took <= bound, "{what}: took {took:?}");
    }
}

#[test]
fn probe_addr_table_probes_each_address_at_its_own_target() {
    let mut b = http_backends_on_one_port(&["127.0.0.19", "127.0.0.20"]);
    let port = b[0].port();
    let zone = format!(
        "{}{}{}",
        zone_head(),
        region(
            "pt",
            &["192.0.2.21", "192.0.2.22"],
            LONDON,
            "",
            &probe_with(&format!(
                "type = \"http\"\nurl = \"http://{{addr}}:{port}/health\"\nprobe_addr = {{ \"192.0.2.21\" = \"127.0.0.19\", \"192.0.2.22\" = \"127.0.0.20\" }}"
            ))
        ),
        spare_and_services(&["pt"])
    );
    let m = Meridian::start(&zone, &[], COLD_DOWN);
    let mut dns = m.dns();
    let both = |d: &mut Dns| {
        let a = d.ask("pt", None);
        a.has("192.0.2.21") && a.has("192.0.2.22")
    };
    let up = poll(Duration::from_secs(5), FAST, || both(&mut dns).then_some(()));
    assert!(up.is_some(), "both addresses never answered\n{}", m.log_tail());
    assert!(b[0].served() >= 1 && b[1].served() >= 1, "each mapped address probed");

    // Killing the backend of .22 withdraws only that address.
    b[1].kill();
    let only21 = poll(Duration::from_secs(5), FAST, || {
        let a = dns.ask("pt", None);
        (a.addrs == vec!["192.0.2.21".parse::<IpAddr>().unwrap()]).then_some(())
    });
    let (_, took) = only21.unwrap_or_else(|| panic!("192.0.2.22 not withdrawn\n{}", m.log_tail()));
    eprintln!("probe_addr table: 192.0.2.22 withdrawn {took:?} after 127.0.0.20 died; 192.0.2.21 still answered");
    // Both dead: the region is down and the spare answers.
    b[0].kill();
    let spare = poll(Duration::from_secs(5), FAST, || dns.ask("pt", None).has(SPARE).then_some(()));
    assert!(spare.is_some(), "region not withdrawn with both endpoints down\n{}", m.log_tail());
    b[0].restart();
    b[1].restart();
    let back = poll(Duration::from_secs(5), FAST, || both(&mut dns).then_some(()));
    assert!(back.is_some(), "both addresses not back\n{}", m.log_tail());
}
