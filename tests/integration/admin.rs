//! Issue "Health-probe subsystem" (admin and metrics): the admin HTTP API
//! (`/status`, `/metrics`, overrides), `meridian admin`, fail-open, persistence
//! of overrides across restarts and their expiry.
//!
//! Every server gets its own `--state-dir` and `--admin 127.0.0.1:<free port>`;
//! probe backends are tiny HTTP servers started in this process.

use crate::common::*;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const Z: &str = "gslb.example.test";
const WWW: &str = "www.gslb.example.test.";
/// Answered addresses (A) of the demo regions.
const US_EAST: &str = "192.0.2.10";
const EU_WEST: &str = "198.51.100.10";
/// A London client: eu-west by continent; us-east is the nearest other region.
const LONDON: &str = "+subnet=10.3.0.0/24";

// ---------------------------------------------------------------------------
// Helpers: a server with its admin API, HTTP by hand, zone copies, backends.

struct Admin {
    server: Server,
    admin: SocketAddr,
    state: PathBuf,
}

impl Admin {
    /// `meridian serve` with `--state-dir state --admin 127.0.0.1:<free>`, and `--zones zones` when given.
    fn start(state: &Path, zones: Option<&Path>) -> Admin {
        let admin: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
        let admin_text = admin.to_string();
        let state_text = state.display().to_string();
        let zones_text = zones.map(|z| z.display().to_string());
        let mut args = vec!["--state-dir", state_text.as_str(), "--admin", admin_text.as_str()];
        if let Some(z) = &zones_text {
            args.extend(["--zones", z.as_str()]);
        }
        let server = Server::start_with(&args, None);
        Admin { server, admin, state: state.to_path_buf() }
    }

    fn token(&self) -> String {
        std::fs::read_to_string(self.state.join("admin.token")).expect("token file").trim().to_string()
    }

    fn get(&self, path: &str) -> (u16, String) {
        http(self.admin, "GET", path, &[], b"")
    }

    /// A mutation with the right token.
    fn call(&self, method: &str, path: &str) -> (u16, serde_json::Value) {
        let (code, body) =
            http(self.admin, method, path, &[("Authorization", format!("Bearer {}", self.token()))], b"");
        (code, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{method} {path}: {code} {body:?}: {e}")))
    }

    fn status(&self) -> serde_json::Value {
        let (code, body) = self.get("/status");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/status is not JSON ({e}): {body}"))
    }

    fn metrics(&self) -> Exposition {
        let (code, body) = self.get("/metrics");
        assert_eq!(code, 200, "{body}");
        parse_openmetrics(&body).unwrap_or_else(|e| panic!("/metrics does not parse: {e}\n{body}"))
    }

    /// `meridian admin ARGS --admin A --state-dir S`, run from the repository.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        let admin = self.admin.to_string();
        let state = self.state.display().to_string();
        let mut all: Vec<&str> = vec!["admin"];
        all.extend(args);
        all.extend(["--admin", &admin, "--state-dir", &state]);
        meridian(&all, &repo())
    }

    /// The first A address answered for `www` to a London client.
    fn www_london(&self) -> String {
        let d = self.server.dig(&format!("{LONDON} www.{Z} A"));
        assert_eq!(d.status, "NOERROR", "{}", d.raw);
        d.answers_of("A").first().cloned().unwrap_or_else(|| panic!("no A answer: {}", d.raw))
    }
}

/// A loopback TCP port free right now.
fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Send `request` as is; return the status code and the (de-chunked) body.
fn raw_http(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to the admin API");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer (413) before reading everything: a failed write is not the test's concern.
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
    let code: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{head}"));
    let chunked =
        head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_string() };
    (code, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw_http(addr, &bytes)
}

/// The shipped zones copied into a fresh directory, the main zone edited by `edit`.
fn zones_copy(edit: impl Fn(String) -> String) -> TempDir {
    let dir = TempDir::new("admin-zones");
    let src = repo().join("zones");
    for f in ["gslb.example.test.toml", "gslb.example.test.inc.zone"] {
        let text = std::fs::read_to_string(src.join(f)).unwrap();
        let text = if f.ends_with(".toml") { edit(text) } else { text };
        std::fs::write(dir.path().join(f), text).unwrap();
    }
    dir
}

/// Give each region an HTTP probe of its own backend port (probed at 127.0.0.1).
fn with_probes(text: String, ports: [u16; 3]) -> String {
    let probe = |port: u16| {
        format!(
            "\n[regions.probe]\ntype = \"http\"\nurl = \"http://{{addr}}:{port}/health\"\nprobe_addr = \"127.0.0.1\"\n\
             interval = \"200ms\"\ntimeout = \"500ms\"\nfall = 2\nrise = 2\n"
        )
    };
    let mut t = text;
    for (weight, port) in ["weight = 50\n", "weight = 30\n", "weight = 20\n"].iter().zip(ports) {
        assert_eq!(t.matches(weight).count(), 1, "{weight:?} should name one region");
        t = t.replacen(weight, &format!("{weight}{}", probe(port)), 1);
    }
    t
}

/// A minimal HTTP server answering 200 to everything until stopped
/// (then its port refuses connections).
struct Backend {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Backend {
    fn start() -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut c, _)) => {
                        let _ = c.set_nonblocking(false);
                        let _ = c.set_read_timeout(Some(Duration::from_secs(1)));
                        let mut got = Vec::new();
                        let mut buf = [0u8; 2048];
                        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                            match c.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => got.extend_from_slice(&buf[..n]),
                            }
                        }
                        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Backend { port, stop, thread: Some(thread) }
    }

    /// Close the listener: probes now fail with "connection refused".
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Poll `f` until it gives `Some`, at most `limit`.
fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn region<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["regions"]
        .as_array()
        .expect("regions")
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no region {name} in {status:#}"))
}

fn epoch_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

/// Parse an RFC 3339 UTC time as written by the server (`...Z`), to epoch seconds.
fn rfc3339_epoch(s: &str) -> u64 {
    humantime::parse_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"))
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------------
// A strict parser of the OpenMetrics text format (what prometheus-client writes
// and Prometheus scrapes): metadata before samples, no interleaved families,
// sample names matching their family's type, well-formed labels and values,
// no duplicate series, cumulative histograms, and a final `# EOF`.

#[derive(Debug, Default)]
struct Exposition {
    /// Family name → type.
    types: HashMap<String, String>,
    /// (sample name, sorted labels) → value.
    samples: HashMap<(String, BTreeMap<String, String>), f64>,
}

impl Exposition {
    /// The value of one series (0 when absent: counters not yet touched).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.samples.get(&(name.to_string(), key)).copied().unwrap_or(0.0)
    }

    /// The sum over every series of `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|((n, l), _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
            .map(|(_, v)| v)
            .sum()
    }
}

fn valid_metric_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn valid_label_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => v.parse::<f64>().map_err(|_| format!("bad value {v:?}")),
    }
}

/// `{a="x",b="y"} rest` → labels and rest.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').ok_or("labels must start with {")?;
    if let Some(r) = rest.strip_prefix('}') {
        return Ok((labels, r));
    }
    loop {
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !valid_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..].strip_prefix('"').ok_or("label value must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, '\n')) => return Err("newline in label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} repeated"));
        }
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        rest = rest.strip_prefix(',').ok_or("labels must be separated by commas")?;
        if rest.starts_with('}') {
            return Err("trailing comma in labels".into());
        }
    }
}

fn parse_openmetrics(text: &str) -> Result<Exposition, String> {
    let body = text.strip_suffix("# EOF\n").ok_or("the exposition must end with \"# EOF\\n\"")?;
    let mut out = Exposition::default();
    let mut current: Option<String> = None;
    let mut finished: Vec<String> = Vec::new();
    let mut meta_seen: HashMap<(String, &str), ()> = HashMap::new();
    let mut family_has_samples = false;
    for (n, line) in body.lines().enumerate() {
        let at = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if line.is_empty() {
            return Err(at("blank line".into()));
        }
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (kind, name, rest) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
            if !["HELP", "TYPE", "UNIT"].contains(&kind) {
                return Err(at(format!("unknown metadata {kind}")));
            }
            if !valid_metric_name(name) {
                return Err(at(format!("bad family name {name:?}")));
            }
            if current.as_deref() != Some(name) {
                if let Some(prev) = current.take() {
                    finished.push(prev);
                }
                if finished.iter().any(|f| f == name) {
                    return Err(at(format!("family {name} appears twice")));
                }
                current = Some(name.to_string());
                family_has_samples = false;
            } else if family_has_samples {
                return Err(at("metadata after samples".into()));
            }
            let kind_static: &str = match kind {
                "HELP" => "HELP",
                "TYPE" => "TYPE",
                _ => "UNIT",
            };
            if meta_seen.insert((name.to_string(), kind_static), ()).is_some() {
                return Err(at(format!("{kind} repeated")));
            }
            let rest = rest.unwrap_or("");
            match kind {
                "TYPE" => {
                    let types =
                        ["counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"];
                    if !types.contains(&rest) {
                        return Err(at(format!("unknown type {rest:?}")));
                    }
                    out.types.insert(name.to_string(), rest.to_string());
                }
                "UNIT" if !name.ends_with(&format!("_{rest}")) => {
                    return Err(at("family name lacks its unit suffix".into()))
                }
                _ => {}
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(at("comment lines are not allowed".into()));
        }
        // A sample of the current family.
        let family = current.clone().ok_or_else(|| at("sample before any metadata".into()))?;
        let ftype = out.types.get(&family).cloned().unwrap_or_else(|| "unknown".into());
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let rest = rest.strip_prefix(' ').ok_or_else(|| at("a single space must precede the value".into()))?;
        let mut fields = rest.split(' ');
        let value = parse_value(fields.next().unwrap_or("")).map_err(at)?;
        if let Some(ts) = fields.next() {
            ts.parse::<f64>().map_err(|_| at(format!("bad timestamp {ts:?}")))?;
        }
        if fields.next().is_some() {
            return Err(at("trailing fields".into()));
        }
        let suffixes: &[&str] = match ftype.as_str() {
            "counter" => &["_total", "_created"],
            "histogram" | "gaugehistogram" => &["_bucket", "_sum", "_count", "_created", "_gcount", "_gsum"],
            "summary" => &["", "_sum", "_count", "_created"],
            "info" => &["_info"],
            _ => &[""],
        };
        let suffix = name.strip_prefix(family.as_str()).ok_or_else(|| at(format!("sample outside family {family}")))?;
        if !suffixes.contains(&suffix) {
            return Err(at(format!("suffix {suffix:?} does not belong to a {ftype}")));
        }
        if suffix == "_total" && (value.is_nan() || value < 0.0) {
            return Err(at("a counter must be a non-negative number".into()));
        }
        if suffix == "_bucket" && !labels.contains_key("le") {
            return Err(at("bucket without le".into()));
        }
        family_has_samples = true;
        if out.samples.insert((name.to_string(), labels), value).is_some() {
            return Err(at("duplicate series".into()));
        }
    }
    // Histograms: cumulative buckets ending at +Inf, which equals _count.
    for (family, ftype) in &out.types {
        if ftype != "histogram" {
            continue;
        }
        let mut groups: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        for ((name, labels), v) in &out.samples {
            if *name == format!("{family}_bucket") {
                let mut rest = labels.clone();
                let le = parse_value(&rest.remove("le").unwrap())?;
                groups.entry(rest).or_default().push((le, *v));
            }
        }
        for (labels, mut buckets) in groups {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            if buckets.last().map(|b| b.0) != Some(f64::INFINITY) {
                return Err(format!("{family}: no +Inf bucket"));
            }
            if buckets.windows(2).any(|w| w[1].1 < w[0].1) {
                return Err(format!("{family}: buckets are not cumulative"));
            }
            let count = out.samples.get(&(format!("{family}_count"), labels)).ok_or(format!("{family}: no _count"))?;
            if buckets.last().unwrap().1 != *count {
                return Err(format!("{family}: +Inf bucket differs from _count"));
            }
        }
    }
    Ok(out)
}

#[test]
fn the_openmetrics_parser_is_strict() {
    let good = "# HELP a_total x.\n# TYPE a counter\na_total{k=\"v\\\"\"} 1\n# EOF\n";
    assert!(parse_openmetrics(good).is_ok());
    for bad in [
        "# TYPE a counter\na_total 1\n",                          // no EOF
        "# TYPE a counter\na 1\n# EOF\n",                         // counter sample without _total
        "# TYPE a counter\na_total{k=v} 1\n# EOF\n",              // unquoted label
        "# TYPE a counter\na_total{k=\"v\",} 1\n# EOF\n",         // trailing comma
        "# TYPE a counter\na_total 1\na_total 2\n# EOF\n",        // duplicate series
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n# EOF\n", // interleaved family
        "# TYPE a counter\na_total one\n# EOF\n",                 // bad value
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 1\n# EOF\n",
    ] {
        assert!(parse_openmetrics(bad).is_err(), "accepted: {bad:?}");
    }
}

// ---------------------------------------------------------------------------
// 1. /metrics parses, and counters rise with queries (and reloads).

#[test]
fn metrics_parse_and_count_queries() {
    let state = TempDir::new("admin-metrics");
    let a = Admin::start(state.path(), None);
    let before = a.metrics();
    // Families without a series yet (queries, probes, fail-open) are not written until their first count.
    for name in ["meridian_answer_duration_seconds", "meridian_reloads", "meridian_overrides", "meridian_region_up"] {
        assert!(before.types.contains_key(name), "family {name} missing: {:?}", before.types);
    }
    assert_eq!(before.get("meridian_region_up", &[("region", "eu-west")]), 1.0);
    let www = [("rcode", "NOERROR"), ("qtype", "A"), ("service", WWW), ("region", "eu-west")];
    let n0 = before.get("meridian_queries_total", &www);
    for _ in 0..3 {
        assert_eq!(a.www_london(), EU_WEST);
    }
    let d = a.server.dig(&format!("static.{Z} A"));
    assert_eq!(d.status, "NOERROR");
    let d = a.server.dig(&format!("nothing-here.{Z} A"));
    assert_eq!(d.status, "NXDOMAIN");

    let after = a.metrics();
    assert_eq!(after.types.get("meridian_queries").map(String::as_str), Some("counter"));
    assert_eq!(after.types.get("meridian_answer_duration_seconds").map(String::as_str), Some("histogram"));
    assert_eq!(after.get("meridian_queries_total", &www) - n0, 3.0, "three www answers from eu-west");
    let static_labels = [("rcode", "NOERROR"), ("qtype", "A"), ("service", ""), ("region", "")];
    assert!(after.get("meridian_queries_total", &static_labels) >= 1.0, "static answers carry empty service/region");
    assert!(after.sum("meridian_queries_total", &[("rcode", "NXDOMAIN")]) >= 1.0);
    let count = after.get("meridian_answer_duration_seconds_count", &[]);
    assert!(count >= before.get("meridian_answer_duration_seconds_count", &[]) + 5.0, "{count}");
    assert!(after.get("meridian_answer_duration_seconds_sum", &[]) > 0.0);

    // A reload (SIGHUP) is counted.
    let ok = [("result", "ok")];
    assert_eq!(after.get("meridian_reloads_total", &ok), 0.0);
    a.server.signal(libc::SIGHUP);
    wait_for(Duration::from_secs(10), "reloads_total{result=ok} to rise", || {
        (a.metrics().get("meridian_reloads_total", &ok) >= 1.0).then_some(())
    });
}

// ---------------------------------------------------------------------------
// 2. /status: probe verdicts, last failure reason, time of the last transition.

#[test]
fn status_reports_probe_failures_and_transitions() {
    let mut backends = [Backend::start(), Backend::start(), Backend::start()];
    let ports = [backends[0].port, backends[1].port, backends[2].port];
    let zones = zones_copy(|t| with_probes(t, ports));
    let state = TempDir::new("admin-status");
    let a = Admin::start(state.path(), Some(zones.path()));

    // Every probed endpoint comes up.
    let status = wait_for(Duration::from_secs(10), "all endpoints up", || {
        let s = a.status();
        let all_up = s["regions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["endpoints"].as_array().unwrap().iter().all(|e| e["verdict"] == "up"));
        all_up.then_some(s)
    });
    assert!(rfc3339_epoch(status["generated_at"].as_str().unwrap()) >= epoch_now() - 5);
    let eu = region(&status, "eu-west");
    assert_eq!(eu["state"], "up");
    assert_eq!(eu["min_healthy"], 1);
    let ep = &eu["endpoints"][0];
    assert_eq!(ep["address"], EU_WEST);
    let label = format!("GET http://127.0.0.1:{}/health", ports[1]);
    assert_eq!(ep["probe"], label.as_str());
    assert_eq!(ep["last_result"]["ok"], true);
    assert!(ep["last_failure"].is_null());
    let up_since = ep["since_epoch"].as_u64().unwrap();
    assert_eq!(rfc3339_epoch(ep["since"].as_str().unwrap()), up_since);

    // eu-west's backend stops: its endpoints go down, with a reason and a new transition time.
    std::thread::sleep(Duration::from_millis(1100)); // so the down transition's second differs
    let stopped_at = epoch_now();
    backends[1].stop();
    let status = wait_for(Duration::from_secs(10), "eu-west down", || {
        let s = a.status();
        (region(&s, "eu-west")["state"] == "down").then_some(s)
    });
    let eu = region(&status, "eu-west");
    assert_eq!(eu["healthy_endpoints"], 0);
    for ep in eu["endpoints"].as_array().unwrap() {
        assert_eq!(ep["verdict"], "down", "{ep:#}");
        assert_eq!(ep["state"], "down", "{ep:#}");
        assert_eq!(ep["last_result"]["ok"], false, "{ep:#}");
        let reason = ep["last_failure"]["reason"].as_str().expect("a failure reason");
        assert!(reason.to_ascii_lowercase().contains("connect") || reason.contains("refused"), "{reason}");
        let failed_at = rfc3339_epoch(ep["last_failure"]["at"].as_str().unwrap());
        assert!(failed_at >= stopped_at, "{ep:#}");
        let since = ep["since_epoch"].as_u64().unwrap();
        assert!(since >= stopped_at && since > up_since, "transition time {since} (stopped at {stopped_at}): {ep:#}");
        assert_eq!(rfc3339_epoch(ep["since"].as_str().unwrap()), since);
        assert!(ep["transitions"].as_u64().unwrap() >= 2, "unknown → up → down: {ep:#}");
        assert!(ep["last_probe_at_epoch"].as_u64().unwrap() >= since);
    }
    // The others are untouched.
    let us = region(&status, "us-east");
    assert_eq!(us["state"], "up");
    assert!(us["endpoints"][0]["last_failure"].is_null());
    assert!(us["endpoints"][0]["rtt_ms"].as_f64().is_some());

    // Answers and metrics agree.
    assert_eq!(a.www_london(), US_EAST);
    let m = a.metrics();
    // Probe metrics are labelled by what they decide: zone, region, answered address.
    let at = [("zone", "gslb.example.test."), ("region", "eu-west"), ("address", EU_WEST)];
    let with = |k: &'static str, v: &'static str| [&at[..], &[(k, v)]].concat();
    assert!(m.get("meridian_probes_total", &with("result", "fail")) >= 2.0);
    assert!(m.get("meridian_probes_total", &with("result", "ok")) >= 1.0);
    assert_eq!(m.get("meridian_probe_transitions_total", &with("to", "down")), 1.0);
    assert_eq!(m.get("meridian_probe_transitions_total", &with("to", "up")), 1.0);
    assert!(!format!("{m:?}").contains(&label), "no probe URL in the metrics' labels");
    assert_eq!(m.get("meridian_region_up", &[("region", "eu-west")]), 0.0);
}

// ---------------------------------------------------------------------------
// 3. All regions down: fail open (counted), or SERVFAIL where the service says so.

#[test]
fn all_regions_down_fail_open_or_servfail() {
    let zones = zones_copy(|t| {
        t.replacen(
            "[[expect]]",
            "[[services]]\nname = \"strict\"\nchain = [\"nearest\"]\nfail = \"servfail\"\n\n[[expect]]",
            1,
        )
    });
    let state = TempDir::new("admin-failopen");
    let a = Admin::start(state.path(), Some(zones.path()));
    assert_eq!(a.server.dig(&format!("{LONDON} strict.{Z} A")).status, "NOERROR");
    let before = a.metrics().get("meridian_fail_open_total", &[("service", WWW)]);
    assert_eq!(before, 0.0);

    for r in ["us-east", "eu-west", "ap-northeast"] {
        let (code, v) = a.call("POST", &format!("/regions/{r}/force-down"));
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["override"]["kind"], "force-down");
    }
    let status = a.status();
    for r in ["us-east", "eu-west", "ap-northeast"] {
        assert_eq!(region(&status, r)["state"], "forced-down");
    }
    // Default fail = open: still answered (as if all were up).
    assert_eq!(a.www_london(), EU_WEST);
    assert_eq!(a.www_london(), EU_WEST);
    let m = a.metrics();
    assert_eq!(m.get("meridian_fail_open_total", &[("service", WWW)]), 2.0);
    assert_eq!(m.get("meridian_overrides", &[]), 3.0);
    // fail = "servfail".
    let d = a.server.dig(&format!("{LONDON} strict.{Z} A"));
    assert_eq!(d.status, "SERVFAIL", "{}", d.raw);
    assert!(
        a.metrics().get(
            "meridian_queries_total",
            &[("rcode", "SERVFAIL"), ("qtype", "A"), ("service", &format!("strict.{Z}.")), ("region", "")]
        ) >= 1.0
    );

    // One region back: answered normally again.
    let (code, v) = a.call("DELETE", "/regions/us-east/override");
    assert_eq!((code, &v["cleared"]), (200, &serde_json::json!(true)), "{v}");
    let d = a.server.dig(&format!("{LONDON} strict.{Z} A"));
    assert_eq!((d.status.as_str(), d.answers_of("A")), ("NOERROR", vec![US_EAST.to_string()]), "{}", d.raw);
    assert_eq!(a.www_london(), US_EAST);
}

// ---------------------------------------------------------------------------
// 4. Drain through the CLI: at once, survives a restart, undrain restores.

#[test]
fn cli_drain_persists_across_restart_and_undrain_restores() {
    let state = TempDir::new("admin-drain");
    let a = Admin::start(state.path(), None);
    assert_eq!(a.www_london(), EU_WEST);

    let out = a.cli(&["drain", "eu-west"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("eu-west: drained"), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    // At once: no probe interval, no TTL to wait for on the server side.
    assert_eq!(a.www_london(), US_EAST);
    let persisted = std::fs::read_to_string(state.path().join("overrides.json")).expect("overrides.json");
    assert!(persisted.contains("eu-west") && persisted.contains("drain"), "{persisted}");

    // Status through the CLI: a table by default, JSON with --json.
    let out = a.cli(&["status"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert!(table.starts_with("REGION "), "{table}");
    let eu_row = table.lines().find(|l| l.starts_with("eu-west ")).unwrap_or_else(|| panic!("{table}"));
    assert!(eu_row.split_whitespace().nth(1) == Some("drained") && eu_row.ends_with("drain"), "{eu_row}");
    assert!(table.contains(&format!("  {EU_WEST} ")) && !table.contains('{'), "{table}");
    assert!(table.contains("overrides:\n  region eu-west: drain\n"), "{table}");
    let out = a.cli(&["status", "eu-west", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(v["state"], "drained");
    assert_eq!(v["override"]["kind"], "drain");
    assert!(v["override"]["until"].is_null());

    // Restart with the same state directory: still drained.
    let admin_before = a.admin;
    assert!(a.server.stop().success());
    let a = Admin::start(state.path(), None);
    assert_ne!(a.admin, admin_before);
    assert_eq!(a.www_london(), US_EAST, "the drain survives a restart");
    assert_eq!(region(&a.status(), "eu-west")["state"], "drained");

    let out = a.cli(&["undrain", "eu-west"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), "eu-west: override cleared");
    assert_eq!(a.www_london(), EU_WEST);
    let out = a.cli(&["undrain", "eu-west"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "eu-west: no override was set");

    // Errors: unknown region, server not running, wrong token.
    let out = a.cli(&["drain", "mars"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("404") && err.contains("mars"), "{err}");
    let out = meridian(
        &[
            "admin",
            "drain",
            "eu-west",
            "--admin",
            &format!("127.0.0.1:{}", free_tcp_port()),
            "--state-dir",
            &a.state.display().to_string(),
        ],
        &repo(),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach the admin API"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other = TempDir::new("admin-othertoken");
    std::fs::write(other.path().join("admin.token"), "0123456789abcdef\n").unwrap();
    let out = meridian(
        &[
            "admin",
            "drain",
            "eu-west",
            "--admin",
            &a.admin.to_string(),
            "--state-dir",
            &other.path().display().to_string(),
        ],
        &repo(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(a.www_london(), EU_WEST, "a refused drain changes nothing");
}

// ---------------------------------------------------------------------------
// 5. An override with an expiry clears itself.

#[test]
fn drain_with_expiry_clears_itself() {
    let state = TempDir::new("admin-expiry");
    let a = Admin::start(state.path(), None);
    let out = a.cli(&["drain", "eu-west", "--for", "2s"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("eu-west: drained until "), "{stdout}");
    let set = Instant::now();
    assert_eq!(a.www_london(), US_EAST);
    let until = region(&a.status(), "eu-west")["override"]["until_epoch"].as_u64().expect("until");
    assert!(until >= epoch_now() && until <= epoch_now() + 3, "{until}");

    wait_for(Duration::from_secs(10), "eu-west answered again", || (a.www_london() == EU_WEST).then_some(()));
    let took = set.elapsed();
    assert!(took >= Duration::from_millis(900), "cleared too early: {took:?}");
    assert!(took <= Duration::from_secs(5), "cleared too late: {took:?}");
    let s = a.status();
    assert!(region(&s, "eu-west")["override"].is_null());
    assert_eq!(s["overrides"].as_array().unwrap().len(), 0);
    // The expiry is persisted too.
    wait_for(Duration::from_secs(3), "overrides.json emptied", || {
        let text = std::fs::read_to_string(state.path().join("overrides.json")).unwrap_or_default();
        (!text.contains("eu-west")).then_some(())
    });
}

// ---------------------------------------------------------------------------
// 6. Authentication, body limit, unknown names; endpoint overrides.

#[test]
fn mutations_need_the_token_small_bodies_and_known_names() {
    let state = TempDir::new("admin-auth");
    let a = Admin::start(state.path(), None);
    let token = a.token();
    assert_eq!(token.len(), 64, "32 random bytes in hex");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.path().join("admin.token")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let drain = "/regions/eu-west/drain";
    let (code, body) = http(a.admin, "POST", drain, &[], b"");
    assert_eq!(code, 401, "{body}");
    assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].is_string());
    let (code, _) = http(a.admin, "POST", drain, &[("Authorization", "Bearer 0123".into())], b"");
    assert_eq!(code, 401);
    let (code, _) = http(a.admin, "POST", drain, &[("Authorization", format!("Basic {token}"))], b"");
    assert_eq!(code, 401);
    let (code, _) = http(a.admin, "DELETE", "/regions/eu-west/override", &[], b"");
    assert_eq!(code, 401);
    assert!(a.status()["overrides"].as_array().unwrap().is_empty(), "refused mutations change nothing");
    assert_eq!(a.www_london(), EU_WEST);

    // Bodies over 4 KiB: declared, and chunked.
    let auth = ("Authorization", format!("Bearer {token}"));
    let (code, body) = http(a.admin, "POST", drain, std::slice::from_ref(&auth), &[b'x'; 5000]);
    assert_eq!(code, 413, "{body}");
    let mut chunked = format!(
        "POST {drain} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        5000
    )
    .into_bytes();
    chunked.extend_from_slice(&[b'y'; 5000]);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let (code, body) = raw_http(a.admin, &chunked);
    assert_eq!(code, 413, "{body}");
    assert_eq!(a.www_london(), EU_WEST);
    // A small body is fine.
    let (code, body) = http(a.admin, "POST", "/regions/eu-west/drain?for=1h", std::slice::from_ref(&auth), b"{}");
    assert_eq!(code, 200, "{body}");
    assert_eq!(a.www_london(), US_EAST);
    let (code, _) = a.call("DELETE", "/regions/eu-west/override");
    assert_eq!(code, 200);

    // Unknown names and bad input.
    let (code, v) = a.call("POST", "/regions/mars/drain");
    assert_eq!(code, 404);
    assert!(v["error"].as_str().unwrap().contains("mars"), "{v}");
    assert_eq!(a.call("DELETE", "/regions/mars/override").0, 404);
    assert_eq!(a.call("POST", "/regions/eu-west/endpoints/192.0.2.99/drain").0, 404);
    assert_eq!(a.call("POST", "/regions/eu-west/explode").0, 404);
    assert_eq!(a.call("POST", "/regions/eu-west/endpoints/not-an-ip/drain").0, 400);
    assert_eq!(a.call("POST", "/regions/eu-west/drain?for=soon").0, 400);
    assert_eq!(a.get("/nothing").0, 404);

    // Endpoint overrides: the v4 address of eu-west drained, the region stays up.
    let (code, v) = a.call("POST", &format!("/regions/eu-west/endpoints/{EU_WEST}/drain"));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["override"]["scope"]["endpoint"], EU_WEST);
    let s = a.status();
    let eu = region(&s, "eu-west");
    assert_eq!(eu["state"], "up");
    assert_eq!(eu["endpoints"][0]["state"], "drained");
    assert_eq!(eu["endpoints"][1]["state"], "up");
    let d = a.server.dig(&format!("{LONDON} www.{Z} AAAA"));
    assert_eq!(d.answers_of("AAAA"), vec!["2001:db8:20::10".to_string()], "{}", d.raw);
    let (code, v) = a.call("DELETE", &format!("/regions/eu-west/endpoints/{EU_WEST}/override"));
    assert_eq!((code, &v["cleared"]), (200, &serde_json::json!(true)));
    assert_eq!(a.www_london(), EU_WEST);
}
