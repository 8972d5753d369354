//! Issue 18 (lesser): a failing HTTPS probe is logged once per state change,
//! not once per probe, and the failures in between are counted in `/status`;
//! a server certificate that is a CA (CA:TRUE, self-signed) gets a hint.

use crate::backends::*;
use crate::common::*;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A server config presenting one self-signed certificate made as a CA
/// (CA:TRUE) for 127.0.0.1: what `openssl req -x509` makes by default.
fn self_signed_ca_server() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der)
        .unwrap();
    (cert.pem(), Arc::new(cfg))
}

fn zone(port: u16) -> String {
    let region = |name: &str, addr: &str, extra: &str| {
        format!(
            "\n[[regions]]\nname = \"{name}\"\naddresses = [\"{addr}\"]\n\n[regions.probe]\ntype = \"https\"\n\
             url = \"https://{{addr}}:{port}/health\"\nprobe_addr = \"127.0.0.1\"\ninterval = \"100ms\"\n\
             timeout = \"1s\"\nfall = 1\nrise = 1\n{extra}\n"
        )
    };
    format!(
        "origin = \"t.test\"\nns = [\"ns1\"]\n\n[soa]\nmname = \"ns1\"\nrname = \"hostmaster\"\nserial = 1\n\n\
         [[records]]\nname = \"ns1\"\ntype = \"A\"\ndata = \"192.0.2.53\"\n{}{}\n[[services]]\nname = \"www\"\n\
         chain = [\"weighted\"]\n",
        region("roots", "192.0.2.1", ""),
        region("withca", "192.0.2.2", "ca = \"ca.pem\""),
    )
}

#[test]
fn a_failing_https_probe_logs_each_change_once_counts_the_rest_and_hints_at_a_ca_certificate() {
    let (pem, cfg) = self_signed_ca_server();
    let backend = Backend::start("127.0.0.1".parse().unwrap(), 0, Mode::Https(cfg)).unwrap();
    let dir = TempDir::new("probe-tls-logs");
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::write(zones.join("t.test.toml"), zone(backend.port())).unwrap();
    std::fs::write(zones.join("ca.pem"), pem).unwrap();
    let admin: SocketAddr =
        format!("127.0.0.1:{}", TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port())
            .parse()
            .unwrap();
    let (zones_s, admin_s) = (zones.display().to_string(), admin.to_string());
    let state = dir.path().join("state").display().to_string();
    let server =
        Server::start_with(&["--zones", &zones_s, "--admin", &admin_s, "--state-dir", &state], Some(dir.path()));

    // Probes every 100 ms: wait until each target has failed at least 10 times.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let (code, body) = http_get(admin, "/status");
        assert_eq!(code, 200, "{body}");
        let st: serde_json::Value = serde_json::from_str(&body).unwrap();
        let counts: Vec<u64> = st["regions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["endpoints"][0]["failures_since_change"].as_u64().unwrap_or(0))
            .collect();
        if counts.len() == 2 && counts.iter().all(|&n| n >= 10) {
            break st;
        }
        assert!(Instant::now() < deadline, "failures not counted in /status: {counts:?}\n{}", server.log_text());
        std::thread::sleep(Duration::from_millis(200));
    };
    let log = server.log_text();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "no ERROR per failed probe, got {}:\n{}", errors.len(), errors.join("\n"));
    let changes = log.lines().filter(|l| l.contains("endpoint state changed")).count();
    assert_eq!(changes, 2, "one line per target's change to down:\n{log}");
    // The CA certificate used as the server's own gets a hint saying what to change.
    let withca = status["regions"].as_array().unwrap().iter().find(|r| r["name"] == "withca").unwrap();
    let reason = withca["endpoints"][0]["last_failure"]["reason"].as_str().unwrap();
    assert!(reason.contains("CaUsedAsEndEntity") && reason.contains("hint") && reason.contains("CA:TRUE"), "{reason}");
    assert!(backend.failed() >= 20, "the backend saw the failed handshakes: {}", backend.failed());
}
