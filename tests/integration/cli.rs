//! Issue 2: `meridian check` and `serve` start-up, errors and shutdown.

use crate::common::*;
use std::path::Path;

fn zone_with(dir: &Path, text: &str) {
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    std::fs::write(dir.join("zones/bad.toml"), text).unwrap();
}

const GOOD: &str = r#"origin = "bad.test."
ns = ["ns1"]

[soa]
mname = "ns1"
rname = "hostmaster"
serial = 1

[[records]]
name = "ns1"
type = "A"
data = "192.0.2.1"
"#;

#[test]
fn check_passes_on_the_shipped_config() {
    let out = meridian(&["check"], &repo());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("zone gslb.example.test."), "{stdout}");
}

#[test]
fn check_names_file_line_and_column_of_a_typo() {
    let dir = TempDir::new("typo");
    // Line 11: a misspelt key.
    zone_with(dir.path(), &GOOD.replace("type = \"A\"", "tpye = \"A\""));
    let out = meridian(&["check", "--zones", "zones"], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("zones/bad.toml:11:1:"), "{err}");
    assert!(err.contains("tpye"), "{err}");
}

#[test]
fn check_names_the_field_of_bad_record_data() {
    let dir = TempDir::new("baddata");
    zone_with(dir.path(), &GOOD.replace("192.0.2.1", "192.0.2.300"));
    let out = meridian(&["check", "--zones", "zones"], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("zones/bad.toml:12:8:"), "{err}");
    assert!(err.contains("192.0.2.300"), "{err}");
}

#[test]
fn check_rejects_toml_syntax_errors_and_unknown_types() {
    let dir = TempDir::new("syntax");
    zone_with(dir.path(), &GOOD.replace("serial = 1", "serial = = 1"));
    let out = meridian(&["check", "--zones", "zones"], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("zones/bad.toml:7:"), "{err}");
    let dir = TempDir::new("rtype");
    zone_with(dir.path(), &GOOD.replace("type = \"A\"", "type = \"AXFR\""));
    let out = meridian(&["check", "--zones", "zones"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("zones/bad.toml:11:8:"));
}

#[test]
fn serve_refuses_to_start_with_a_bad_zone() {
    let dir = TempDir::new("servebad");
    zone_with(dir.path(), &GOOD.replace("type = \"A\"", "tpye = \"A\""));
    let out = std::process::Command::new(bin())
        .args(["serve", "--zones", "zones", "--listen", &format!("127.0.0.1:{}", free_port())])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("zones/bad.toml:11:1:"));
}

#[test]
fn sigterm_stops_cleanly_with_status_zero() {
    let s = Server::start();
    assert_eq!(s.dig("static.gslb.example.test A").status, "NOERROR");
    let status = s.stop();
    assert!(status.success(), "{status}");
}

#[test]
fn json_logs_on_request() {
    let s = Server::start_with(&["--log-format", "json"], None);
    let log = s.log_text();
    let first = log.lines().next().expect("a log line");
    let v: serde_json::Value = serde_json::from_str(first).expect("JSON log line");
    assert!(v.get("level").is_some(), "{first}");
}

#[test]
fn admin_on_a_non_loopback_address_is_refused_unless_allowed() {
    let out = std::process::Command::new(bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--admin", "0.0.0.0:18053"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address") && err.contains("admin_allow_remote"), "{err}");
}

#[test]
fn check_refuses_probe_settings_that_cannot_work() {
    let base = |probe: &str| {
        format!("{GOOD}\n[[regions]]\nname = \"r1\"\naddresses = [\"192.0.2.10\"]\n\n[regions.probe]\n{probe}\n")
    };
    let cases = [
        ("type = \"https\"\nurl = \"http://{addr}/\"", "needs a https:// URL"),
        ("type = \"http\"\nurl = \"http://{addr}/\"\nca = \"missing.pem\"", "does not exist"),
        (
            "type = \"http\"\nurl = \"http://{addr}/\"\nprobe_addr = { \"192.0.2.99\" = \"127.0.0.1\" }",
            "not one of the region's addresses",
        ),
        ("type = \"http\"\nurl = \"http://{addr}/\"\nport = 80", "`port` does not apply"),
        ("type = \"tcp\"\nport = 80\nbody = \"OK\"", "`body` does not apply"),
    ];
    for (probe, want) in cases {
        let dir = TempDir::new("probecfg");
        zone_with(dir.path(), &base(probe));
        let out = meridian(&["check", "--zones", "zones"], dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{probe}");
        assert!(err.contains("zones/bad.toml:") && err.contains(want), "{probe}: {err}");
    }
}
