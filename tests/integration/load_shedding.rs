//! Issue 24: load-aware steering end to end. Real HTTP backends report their
//! load in a response header; the server probes them and sheds a growing,
//! stable share of the busy region's clients; `meridian admin load` pushes a
//! report. Clients are ECS subnets asked with `dig -f` (one process per batch).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{free_port, http_get, meridian, Server, TempDir};

/// An HTTP backend answering every request `200` with `X-Load: <load>`.
struct LoadBackend {
    port: u16,
    load: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl LoadBackend {
    fn start(load: u64) -> LoadBackend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (value, stop) = (Arc::new(AtomicU64::new(load)), Arc::new(AtomicBool::new(false)));
        let (v, s) = (Arc::clone(&value), Arc::clone(&stop));
        std::thread::spawn(move || {
            // Bounded: stops when dropped, or after ten minutes at the most.
            let end = Instant::now() + Duration::from_secs(600);
            while !s.load(Ordering::Relaxed) && Instant::now() < end {
                match listener.accept() {
                    Ok((mut c, _)) => {
                        c.set_nonblocking(false).unwrap();
                        c.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                        let mut buf = [0u8; 2048];
                        let _ = c.read(&mut buf);
                        let body = "OK\n";
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\nX-Load: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            v.load(Ordering::Relaxed),
                            body.len()
                        );
                        let _ = c.write_all(resp.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        LoadBackend { port, load: value, stop }
    }

    fn set(&self, load: u64) {
        self.load.store(load, Ordering::Relaxed);
    }
}

impl Drop for LoadBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub(crate) const EU: &str = "192.0.2.10";
pub(crate) const US: &str = "198.51.100.10";

/// eu-west first, us-east next; with `ports`, both probed over HTTP with
/// the load in `X-Load`, else not probed (loads come from `admin load`).
pub(crate) fn zone(ports: Option<(u16, u16)>) -> String {
    let region = |name: &str, addr: &str, port: Option<u16>| {
        let probe = match port {
            Some(port) => format!(
                "[regions.probe]\ntype = \"http\"\nurl = \"http://127.0.0.1:{port}/health\"\ninterval = \"150ms\"\n\
                 timeout = \"500ms\"\nload_header = \"X-Load\"\n"
            ),
            None => String::new(),
        };
        format!(
            r#"
[[regions]]
name = "{name}"
addresses = ["{addr}"]
[regions.load]
low = 60
high = 80
max_age = "3s"
{probe}"#
        )
    };
    format!(
        r#"origin = "load.test."
ns = ["ns1"]
[soa]
mname = "ns1"
rname = "hostmaster"
serial = 1
[[records]]
name = "ns1"
type = "A"
data = "192.0.2.53"
{}{}
[[services]]
name = "www"
regions = ["eu-west", "us-east"]
chain = ["failover eu-west us-east", "shed"]
"#,
        region("eu-west", EU, ports.map(|p| p.0)),
        region("us-east", US, ports.map(|p| p.1))
    )
}

/// The first answer for each of `n` client /24s, in order, from one `dig -f`.
pub(crate) fn answers(server: SocketAddr, n: u32) -> Vec<String> {
    let dir = TempDir::new("load-dig");
    let batch = dir.path().join("batch");
    let lines: String =
        (0..n).map(|i| format!("www.load.test A +subnet=10.{}.{}.0/24\n", 64 + i / 256, i % 256)).collect();
    std::fs::write(&batch, lines).unwrap();
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+norec", "+time=2", "+tries=1", "+short", "-f"])
        .arg(&batch)
        .output()
        .expect("run dig");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let got: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(got.len(), n as usize, "one answer per query: {text}");
    got
}

/// Ask until `ok(share moved to us-east)` holds for two batches in a row
/// with the same answers (the probes need a moment to see a new load, and a
/// batch asked while it arrived is half old, half new), at most 20 s.
fn settle(server: SocketAddr, n: u32, ok: impl Fn(f64) -> bool) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(20);
    let mut last: Option<Vec<String>> = None;
    loop {
        let got = answers(server, n);
        let share = got.iter().filter(|a| *a == US).count() as f64 / f64::from(n);
        if ok(share) && last.as_ref() == Some(&got) {
            return got;
        }
        assert!(Instant::now() < end, "share moved stayed {share}");
        last = Some(got);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Wait (at most 20 s) until `/status` shows `region` at `load`.
fn wait_load(admin: u16, region: &str, load: f64) {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = http_get(format!("127.0.0.1:{admin}").parse().unwrap(), "/status");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let seen = status["regions"].as_array().and_then(|rs| rs.iter().find(|r| r["name"] == region).cloned());
        if seen.as_ref().is_some_and(|r| r["load"] == load) {
            return;
        }
        assert!(Instant::now() < end, "{region} never reported {load}: {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start(zone_text: &str, admin: Option<u16>) -> (Server, TempDir) {
    let dir = TempDir::new("load");
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::write(zones.join("load.test.toml"), zone_text).unwrap();
    let zones_s = zones.display().to_string();
    let state = dir.path().join("state").display().to_string();
    let admin_s = admin.map(|p| format!("127.0.0.1:{p}"));
    let mut args = vec!["--zones", &zones_s, "--state-dir", &state];
    if let Some(a) = &admin_s {
        args.extend(["--admin", a.as_str()]);
    }
    (Server::start_with(&args, Some(dir.path())), dir)
}

#[test]
fn backends_reporting_load_in_a_header_shed_a_stable_share_and_take_it_back() {
    let (eu, us) = (LoadBackend::start(10), LoadBackend::start(10));
    let admin = free_port();
    let (server, _dir) = start(&zone(Some((eu.port, us.port))), Some(admin));
    let n = 400;
    // Below low: everyone on eu-west.
    settle(server.addr, n, |s| s == 0.0);
    // Halfway between the watermarks: about half move (the ±5 % over 10,000
    // subnets is the chain-level test; 400 subnets give ±10 %).
    eu.set(70);
    let half = settle(server.addr, n, |s| (s - 0.5).abs() < 0.1);
    assert_eq!(answers(server.addr, n), half, "the same clients move on repeat");
    // Above high: all of them.
    eu.set(95);
    settle(server.addr, n, |s| s == 1.0);
    // Back below low: they all return.
    eu.set(20);
    settle(server.addr, n, |s| s == 0.0);
    // us-east busy too: nobody is shed onto it (no cascade); eu-west keeps them.
    us.set(80);
    wait_load(admin, "us-east", 80.0);
    eu.set(95);
    wait_load(admin, "eu-west", 95.0);
    assert!(answers(server.addr, n).iter().all(|a| a == EU), "shed onto a region at its high watermark");
}

#[test]
fn stale_reports_shed_nobody_and_admin_load_pushes_a_report() {
    // No probes: loads only come through the admin API, and age out after 3 s.
    let admin = free_port();
    let (server, dir) = start(&zone(None), Some(admin));
    let n = 200;
    assert!(answers(server.addr, n).iter().all(|a| a == EU), "no reports: nobody shed");
    let state = dir.path().join("state").display().to_string();
    let admin_s = format!("127.0.0.1:{admin}");
    let push = |target: &str, value: &str| {
        let out = meridian(&["admin", "load", target, value, "--admin", &admin_s, "--state-dir", &state], dir.path());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(push("us-east", "10"), "us-east: load 10 reported\n");
    // By endpoint address: eu-west's only endpoint.
    push(EU, "95");
    let pushed_at = Instant::now();
    let got = answers(server.addr, n);
    assert!(got.iter().all(|a| a == US), "eu-west over high: all shed to us-east");
    let (code, body) = http_get(format!("127.0.0.1:{admin}").parse().unwrap(), "/status");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let eu_status = status["regions"].as_array().unwrap().iter().find(|r| r["name"] == "eu-west").unwrap().clone();
    assert_eq!(eu_status["load"], 95.0, "{eu_status}");
    assert_eq!(eu_status["watermarks"], serde_json::json!({ "low": 60.0, "high": 80.0 }));
    // Reports older than max_age (3 s) are unknown: nobody is shed.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(pushed_at.elapsed()) + Duration::from_millis(500));
    assert!(answers(server.addr, n).iter().all(|a| a == EU), "a stale report shed someone");
    let bad = meridian(&["admin", "load", "nowhere", "5", "--admin", &admin_s, "--state-dir", &state], dir.path());
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("unknown region"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn check_refuses_watermarks_that_make_no_sense_with_file_and_line() {
    let dir = TempDir::new("load-check");
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    let file = zones.join("load.test.toml");
    std::fs::write(&file, zone(Some((1, 2))).replacen("low = 60\nhigh = 80", "low = 80\nhigh = 60", 1)).unwrap();
    let zones_s = zones.display().to_string();
    let out = meridian(&["check", "--zones", &zones_s], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("load.test.toml:16:7: load low = 80 is not below high = 60"), "{err}");
    std::fs::write(&file, zone(Some((1, 2))).replacen("low = 60", "low = -1", 1)).unwrap();
    let out = meridian(&["check", "--zones", &zones_s], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("load.test.toml:16:7: load low = -1 must be a load figure of 0 or more"), "{err}");
}

#[test]
fn explain_shows_the_load_the_watermarks_and_why_a_client_was_shed() {
    let dir = TempDir::new("load-explain");
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::write(zones.join("load.test.toml"), zone(None)).unwrap();
    let zones_s = zones.display().to_string();
    let explain = |extra: &[&str]| {
        let mut args = vec!["explain", "www.load.test", "--zones", &zones_s, "--client", "10.64.1.0/24"];
        args.extend(extra);
        let out = meridian(&args, dir.path());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let quiet = explain(&[]);
    assert!(quiet.contains("why: eu-west load unknown (no fresh report), low 60 high 80; nobody shed"), "{quiet}");
    // Halfway: this subnet's hash (0.181) is under the 50 % share, so it is shed.
    let half = explain(&["--load", "eu-west=70", "--load", "us-east=10"]);
    assert!(
        half.contains(
            "why: eu-west load 70 (low 60, high 80): 50% of its clients shed; this client (hash 0.181) goes to \
             us-east (load 10 below its low 60)"
        ),
        "{half}"
    );
    assert!(half.contains("ecs scope: 24"), "the hash prefix: {half}");
    let busy = explain(&["--load", "eu-west=95", "--load", "us-east=70"]);
    assert!(busy.contains("keep eu-west (fail nearest)") && busy.contains("IN A 192.0.2.10"), "{busy}");
}
