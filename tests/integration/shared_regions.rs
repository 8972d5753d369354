//! Issue 18 item 6: a region name names one datacenter across zones (health,
//! overrides and `/status` know it by name), so a second zone may only
//! repeat a region identically; otherwise its addresses would be answered
//! without being probed or shown.

use crate::common::*;
use std::path::Path;

fn zone(origin: &str, region_addrs: &str) -> String {
    let head = crate::common::zone_head(origin);
    format!(
        r#"{head}
[[regions]]
name = "dc1"
addresses = [{region_addrs}]

[regions.probe]
type = "tcp"
port = 9
interval = "1s"

[[services]]
name = "www"
chain = ["weighted"]
"#
    )
}

fn write_zones(dir: &Path, a: &str, b: &str) {
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::write(zones.join("a.test.toml"), zone("a.test", a)).unwrap();
    std::fs::write(zones.join("b.test.toml"), zone("b.test", b)).unwrap();
}

#[test]
fn a_region_in_two_zones_is_one_datacenter_defined_identically_or_refused_naming_the_first() {
    let dir = TempDir::new("shared-regions");
    write_zones(dir.path(), r#""192.0.2.1""#, r#""192.0.2.1", "192.0.2.2""#);
    let out = meridian(&["check", "--zones", "zones"], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "check must refuse: {err}");
    // Line 15, column 8: the name of the second definition; the first is named with its position.
    assert!(err.contains("zones/b.test.toml:15:8:"), "{err}");
    assert!(err.contains("zones/a.test.toml:15:8") && err.contains("addresses"), "{err}");
    // serve refuses it the same way (and a reload keeps the old zones: same loader).
    let zones = dir.path().join("zones").display().to_string();
    let out = meridian(&["serve", "--zones", &zones, "--listen", "127.0.0.1:0", "--admin", "off"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("b.test.toml:15:8"));

    // Repeated identically, it is the same datacenter: accepted.
    write_zones(dir.path(), r#""192.0.2.1", "192.0.2.2""#, r#""192.0.2.1", "192.0.2.2""#);
    let out = meridian(&["check", "--zones", "zones"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_reload_adding_a_zone_that_redefines_a_region_is_refused_and_the_old_zones_kept() {
    let dir = TempDir::new("shared-regions-reload");
    write_zones(dir.path(), r#""192.0.2.1""#, r#""192.0.2.1""#);
    let zones = dir.path().join("zones");
    let b = std::fs::read_to_string(zones.join("b.test.toml")).unwrap();
    std::fs::remove_file(zones.join("b.test.toml")).unwrap();
    let zones_s = zones.display().to_string();
    let s = Server::start_with(&["--zones", &zones_s], Some(dir.path()));
    assert_eq!(s.dig("www.b.test A").status, "REFUSED", "b.test not served yet");

    let mark = s.log_text().len();
    std::fs::write(zones.join("b.test.toml"), b.replace(r#""192.0.2.1""#, r#""192.0.2.9""#)).unwrap();
    s.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let line = loop {
        let log = s.log_text();
        if let Some(l) = log[mark.min(log.len())..].lines().find(|l| l.contains("reload failed")) {
            break l.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "the reload was not refused:\n{log}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(line.contains("b.test.toml:15:8") && line.contains("a.test.toml:15:8"), "{line}");
    assert_eq!(s.dig("www.b.test A").status, "REFUSED", "the refused zone is not served");
    assert_eq!(s.dig("www.a.test A").answers_of("A"), vec!["192.0.2.1"], "the old zones are");
}
