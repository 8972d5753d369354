//! Issue 18 item 6: a region name names one datacenter across zones (health,
//! overrides and `/status` know it by name), so a second zone may only
//! repeat a region identically; otherwise its addresses would be answered
//! without being probed or shown.

use crate::common::*;
use std::path::Path;

fn zone(origin: &str, region_addrs: &str) -> String {
    format!(
        r#"origin = "{origin}"
ns = ["ns1"]

[soa]
mname = "ns1"
rname = "hostmaster"
serial = 1

[[records]]
name = "ns1"
type = "A"
data = "192.0.2.53"

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
