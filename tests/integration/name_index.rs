//! Issue 18 items 1, 2 and 5: a lone wildcard and its empty non-terminal
//! parent (against Knot when installed), and what `check` refuses so that no
//! answer depends on the query's case: a service in a child zone or below a
//! delegation, a region address listed twice.

use crate::common::*;
use crate::knot::KnotServer;
use std::path::Path;

const LONE: &str = r#"origin = "lone.test."
ns = ["ns1"]

[soa]
mname = "ns1"
rname = "hostmaster"
serial = 1
minimum = 60

[[records]]
name = "ns1"
type = "A"
data = "192.0.2.1"

# The only name under v.
[[records]]
name = "*.v"
type = "A"
data = "192.0.2.7"
"#;

fn write_zone(dir: &Path, file: &str, text: &str) {
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    std::fs::write(dir.join("zones").join(file), text).unwrap();
}

/// `x.v` gets the wildcard's data and `v` is NODATA (RFC 4592: an empty
/// non-terminal), over both the fast path (lowercase) and the general one.
#[test]
fn a_lone_wildcard_matches_and_its_parent_is_an_empty_non_terminal() {
    let dir = TempDir::new("lone-wildcard");
    write_zone(dir.path(), "lone.toml", LONE);
    let zones = dir.path().join("zones");
    let server = Server::start_with(&["--zones", zones.to_str().unwrap()], None);
    for name in ["x.v.lone.test", "X.V.Lone.Test", "a.b.v.lone.test"] {
        let d = server.dig(&format!("{name} A"));
        assert_eq!((d.status.as_str(), d.answers_of("A")), ("NOERROR", vec!["192.0.2.7".to_string()]), "{name}");
        assert!(d.has_flag("aa"), "{name}");
    }
    for name in ["v.lone.test", "V.lone.TEST"] {
        for t in ["A", "TXT"] {
            let d = server.dig(&format!("{name} {t}"));
            assert_eq!(d.status, "NOERROR", "{name} {t}: NODATA, not NXDOMAIN");
            assert!(d.answer.is_empty() && d.has_flag("aa"), "{name} {t}");
            assert_eq!(rr_data(&d.authority, "SOA").len(), 1, "{name} {t}");
        }
    }
    assert_eq!(server.dig("x.w.lone.test A").status, "NXDOMAIN");

    // Knot, serving the same data, says the same.
    let zone = meridian::zone::load_zones(&zones).unwrap().zones.remove(0);
    let Some(knot) = KnotServer::start("lone.test.", &zone.to_master_file()) else {
        eprintln!("knotd not installed: compared with RFC 4592 only");
        return;
    };
    for (name, t) in [("x.v.lone.test", "A"), ("v.lone.test", "A"), ("x.w.lone.test", "A")] {
        let (ours, theirs) = (server.dig(&format!("{name} {t}")), knot.dig(&format!("{name} {t}")));
        assert_eq!((&ours.status, ours.answers_of(t)), (&theirs.status, theirs.answers_of(t)), "{name} {t}");
    }
}

const PARENT: &str = r#"origin = "p.test."
ns = ["ns1"]

[soa]
mname = "ns1"
rname = "hostmaster"
serial = 1

[[records]]
name = "ns1"
type = "A"
data = "192.0.2.1"

[[regions]]
name = "r1"
addresses = ["198.51.100.1"]

[[services]]
name = "www.c"
chain = ["weighted"]
"#;

const CHILD: &str = r#"origin = "c.p.test."
ns = ["ns1.p.test."]

[soa]
mname = "ns1.p.test."
rname = "hostmaster.p.test."
serial = 1
"#;

/// Lowercase queries used to get the service (fast index) and mixed-case
/// ones the child's NXDOMAIN (general path): now `check` refuses the service.
#[test]
fn check_refuses_a_service_inside_a_child_zone_served_here() {
    let dir = TempDir::new("svc-in-child");
    write_zone(dir.path(), "p.toml", PARENT);
    write_zone(dir.path(), "c.toml", CHILD);
    let out = meridian(&["check", "--zones", "zones"], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("zones/p.toml:19:8:"), "{err}");
    assert!(err.contains("inside the zone c.p.test.") && err.contains("define the service there"), "{err}");
}

#[test]
fn check_refuses_a_service_below_a_delegation() {
    let dir = TempDir::new("svc-below-cut");
    let text = PARENT
        .replace("[[regions]]", "[[records]]\nname = \"c\"\ntype = \"NS\"\ndata = \"ns.example.\"\n\n[[regions]]");
    write_zone(dir.path(), "p.toml", &text);
    let out = meridian(&["check", "--zones", "zones"], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("zones/p.toml:24:8:") && err.contains("below the delegation c.p.test."), "{err}");
}

/// RFC 2181 §5: the same address twice would be answered twice.
#[test]
fn check_refuses_an_address_listed_twice_in_a_region() {
    let dir = TempDir::new("dup-address");
    let text = PARENT
        .replace("[\"198.51.100.1\"]", "[\"198.51.100.1\", \"198.51.100.1\"]")
        .replace("name = \"www.c\"", "name = \"www\"");
    write_zone(dir.path(), "p.toml", &text);
    let out = meridian(&["check", "--zones", "zones"], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("zones/p.toml:16:30:") && err.contains("listed twice in region r1"), "{err}");
}
