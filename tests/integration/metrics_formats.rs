//! `/metrics` in both exposition formats (issue 22, must-show 3): OpenMetrics
//! by default and for Prometheus' own Accept header, the Prometheus text
//! format 0.0.4 for `Accept: text/plain;version=0.0.4`; each parsed by the
//! reference parsers of the Python client (`prometheus_client.parser` and
//! `prometheus_client.openmetrics.parser`), with the process, build-info and
//! reload metrics in both.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;

use crate::common::{self, Server, TempDir};

/// A Python 3 that has prometheus_client with both parsers (Debian's
/// python3-prometheus-client, or a venv), if any.
fn python() -> Option<String> {
    let candidates = ["/usr/bin/python3", "python3", "/opt/meridian-ci/venv/bin/python3"];
    candidates.into_iter().map(str::to_string).find(|py| {
        Command::new(py)
            .args(["-c", "import prometheus_client.parser, prometheus_client.openmetrics.parser"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Parse `text` with the reference parser of `format` ("text" or "openmetrics"):
/// family name → (type, samples as `name{labels}` → value), or the parser's error.
type Families = BTreeMap<String, (String, BTreeMap<String, f64>)>;

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families as text
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
parse = om if sys.argv[1] == "openmetrics" else text
out = {}
for f in parse(sys.stdin.read()):
    samples = {}
    for s in f.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        samples[f"{s.name}{{{labels}}}"] = s.value
    out[f.name] = [f.type, samples]
print(json.dumps(out))
"#;

fn parse(py: &str, format: &str, text: &str) -> Result<Families, String> {
    use std::io::Write;
    let mut child = Command::new(py)
        .args(["-c", PARSE, format])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).to_string());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut fams = Families::new();
    for (name, f) in v.as_object().unwrap() {
        let samples = f[1].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_f64().unwrap())).collect();
        fams.insert(name.clone(), (f[0].as_str().unwrap().to_string(), samples));
    }
    Ok(fams)
}

fn scrape(admin: SocketAddr, accept: Option<&str>) -> (String, String) {
    let header = accept.map(|a| format!("Accept: {a}"));
    let (status, head, body) = common::http_get_with(
        admin,
        "/metrics",
        header.as_slice().iter().map(String::as_str).collect::<Vec<_>>().as_slice(),
    );
    assert_eq!(status, 200, "{head}\n{body}");
    let ctype = head.lines().find_map(|l| l.strip_prefix("content-type:")).unwrap_or("").trim().to_string();
    (ctype, body)
}

fn value(f: &Families, family: &str, sample: &str) -> f64 {
    let (_, samples) = f.get(family).unwrap_or_else(|| panic!("no family {family} in {:?}", f.keys()));
    *samples.get(sample).unwrap_or_else(|| panic!("no {sample} in {family}: {samples:?}"))
}

#[test]
fn metrics_parse_as_openmetrics_and_as_prometheus_text_0_0_4() {
    let Some(py) = python() else {
        return common::skip_or_fail("no Python with prometheus_client (apt-get install python3-prometheus-client)");
    };
    if !common::dig_available() {
        return common::skip_or_fail("dig not installed");
    }
    let state = TempDir::new("metrics-formats");
    let admin: SocketAddr = format!("127.0.0.1:{}", common::free_port()).parse().unwrap();
    let admin_text = admin.to_string();
    let state_text = state.path().display().to_string();
    let s = Server::start_with(&["--admin", &admin_text, "--state-dir", &state_text], None);
    for name in ["static", "www", "nx"] {
        s.dig(&format!("{name}.gslb.example.test A"));
    }

    let om_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    let prometheus_accept = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    for accept in [None, Some("*/*"), Some(prometheus_accept)] {
        assert_eq!(scrape(admin, accept).0, om_type, "{accept:?}");
    }
    // The server's CPU time as the kernel counts it (ticks), around both scrapes:
    // a start may take less than one tick, so 0 is a right value.
    let cpu = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", s.child.id())).unwrap();
        let f: Vec<f64> = stat[stat.rfind(')').unwrap() + 2..].split(' ').map(|v| v.parse().unwrap_or(0.0)).collect();
        (f[11] + f[12]) / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    };
    let cpu_before = cpu();
    let (ctype, om_text) = scrape(admin, None);
    assert_eq!(ctype, om_type);
    let (ctype, text) = scrape(admin, Some("text/plain;version=0.0.4"));
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    let cpu_after = cpu();

    let om = parse(&py, "openmetrics", &om_text).unwrap_or_else(|e| panic!("OpenMetrics parser: {e}\n{om_text}"));
    let t = parse(&py, "text", &text).unwrap_or_else(|e| panic!("text parser: {e}\n{text}"));
    // The strict parser refuses the 0.0.4 form (no `# EOF`): the two really differ.
    assert!(parse(&py, "openmetrics", &text).is_err(), "0.0.4 text passed as OpenMetrics:\n{text}");
    assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
    assert!(text.contains("# TYPE meridian_queries_total counter\n"), "{text}");

    for f in [&om, &t] {
        let q = r#"meridian_queries_total{qtype="A",rcode="NOERROR",region="",service=""}"#;
        assert!(value(f, "meridian_queries", q) >= 1.0);
        assert!(value(f, "meridian_answer_duration_seconds", "meridian_answer_duration_seconds_count{}") >= 3.0);
        let cpu = value(f, "process_cpu_seconds", "process_cpu_seconds_total{}");
        assert!(cpu >= cpu_before && cpu <= cpu_after, "cpu {cpu}, the kernel's {cpu_before}..{cpu_after}");
        assert!(value(f, "process_resident_memory_bytes", "process_resident_memory_bytes{}") > 1e6);
        assert!(value(f, "process_open_fds", "process_open_fds{}") >= 5.0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let started = value(f, "process_start_time_seconds", "process_start_time_seconds{}");
        assert!(started <= now + 1.0 && started > now - 120.0, "started {started}, now {now}");
        let loaded = value(f, "meridian_last_reload_timestamp_seconds", "meridian_last_reload_timestamp_seconds{}");
        assert!(loaded >= started - 1.0 && loaded <= now + 1.0);
        assert_eq!(value(f, "meridian_last_reload_successful", "meridian_last_reload_successful{}"), 1.0);
    }
    let version = format!("meridian_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"));
    assert_eq!(om["meridian_build"].0, "info");
    assert_eq!(value(&om, "meridian_build", &version), 1.0);
    assert_eq!(t["meridian_build_info"].0, "gauge", "an info is a gauge in 0.0.4");
    assert_eq!(value(&t, "meridian_build_info", &version), 1.0);
    assert_eq!((om["process_cpu_seconds"].0.as_str(), t["process_cpu_seconds"].0.as_str()), ("counter", "counter"));
}
