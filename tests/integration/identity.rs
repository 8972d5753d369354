//! Which node answered (issue 22, must-show 2): `dig +nsid` and
//! `dig CH TXT id.server` / `hostname.bind` show the configured node id over
//! UDP and TCP; `version.bind` is REFUSED unless configured; without
//! `node_id` the host name is the id.

use crate::common::{self, Server, TempDir};

/// A server whose meridian.toml sets `extra` (zones: the repository's).
fn server_with(extra: &str) -> (Server, TempDir) {
    let dir = TempDir::new("identity");
    let zones = common::repo().join("zones");
    let cfg = dir.path().join("meridian.toml");
    std::fs::write(&cfg, format!("zones = {:?}\n{extra}", zones.display().to_string())).unwrap();
    let server = Server::start_with(&["--config", cfg.to_str().unwrap()], None);
    (server, dir)
}

/// The NSID dig printed (`; NSID: 6e 6f ... ("node")`), as text.
fn nsid(raw: &str) -> Option<String> {
    let line = raw.lines().find(|l| l.trim_start().starts_with("; NSID:"))?;
    let quoted = line.split_once("(\"")?.1;
    Some(quoted.trim_end().trim_end_matches(')').trim_end_matches('"').to_string())
}

#[test]
fn nsid_and_id_server_show_the_configured_node_id() {
    if !common::dig_available() {
        return common::skip_or_fail("dig not installed");
    }
    let (s, _dir) = server_with("node_id = \"fra-edge-1\"\n");
    for tcp in ["", "+tcp"] {
        let d = s.dig(&format!("static.gslb.example.test A +nsid {tcp}"));
        assert_eq!(d.status, "NOERROR", "{}", d.raw);
        assert_eq!(nsid(&d.raw).as_deref(), Some("fra-edge-1"), "{tcp}: {}", d.raw);
        assert_eq!(d.addrs(), ["192.0.2.1"], "{}", d.raw);
        // Without +nsid, no NSID.
        let d = s.dig(&format!("static.gslb.example.test A {tcp}"));
        assert_eq!(nsid(&d.raw), None, "{}", d.raw);
        // A GSLB name and an NXDOMAIN carry it as well.
        for (name, status) in [("www.gslb.example.test", "NOERROR"), ("nx.gslb.example.test", "NXDOMAIN")] {
            let d = s.dig(&format!("{name} A +nsid {tcp}"));
            assert_eq!((d.status.as_str(), nsid(&d.raw).as_deref()), (status, Some("fra-edge-1")), "{}", d.raw);
        }
        for name in ["id.server", "hostname.bind", "ID.Server"] {
            let d = s.dig(&format!("CH TXT {name} {tcp}"));
            assert_eq!(d.status, "NOERROR", "{}", d.raw);
            assert!(d.has_flag("aa"), "{}", d.raw);
            assert_eq!(d.answer.len(), 1, "{}", d.raw);
            let f: Vec<&str> = d.answer[0].split_whitespace().collect();
            assert_eq!(f[1..], ["0", "CH", "TXT", "\"fra-edge-1\""], "{}", d.raw);
        }
        // Off by default, like other CH names and types: REFUSED, as Knot.
        for q in ["CH TXT version.bind", "CH TXT version.server", "CH A id.server", "CH TXT static.gslb.example.test"] {
            assert_eq!(s.dig(&format!("{q} {tcp}")).status, "REFUSED", "{q}");
        }
    }
}

#[test]
fn the_host_name_is_the_default_node_id_and_version_bind_is_configurable() {
    if !common::dig_available() {
        return common::skip_or_fail("dig not installed");
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let (s, _dir) = server_with("version_bind = \"dns-42\"\n");
    let d = s.dig("CH TXT id.server");
    assert_eq!(d.answers_of("TXT"), [format!("\"{host}\"")], "{}", d.raw);
    assert_eq!(nsid(&s.dig("static.gslb.example.test +nsid").raw), Some(host));
    for name in ["version.bind", "version.server"] {
        assert_eq!(s.dig(&format!("CH TXT {name}")).answers_of("TXT"), ["\"dns-42\""]);
    }
    drop(s);

    // node_id = "" turns NSID and id.server off; version_bind = true says Meridian's version.
    let (s, _dir) = server_with("node_id = \"\"\nversion_bind = true\n");
    assert_eq!(s.dig("CH TXT id.server").status, "REFUSED");
    let d = s.dig("static.gslb.example.test +nsid");
    assert_eq!((d.status.as_str(), nsid(&d.raw)), ("NOERROR", None), "{}", d.raw);
    let version = format!("\"Meridian {}\"", env!("CARGO_PKG_VERSION"));
    assert_eq!(s.dig("CH TXT version.bind").answers_of("TXT"), [version]);
}

#[test]
fn an_overlong_node_id_fails_the_check_naming_the_field() {
    let dir = TempDir::new("identity-long");
    let cfg = dir.path().join("meridian.toml");
    std::fs::write(&cfg, format!("zones = {:?}\nnode_id = \"{}\"\n", common::repo().join("zones"), "n".repeat(256)))
        .unwrap();
    let out = common::meridian(&["check", "--config", cfg.to_str().unwrap()], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("meridian.toml:2") && err.contains("node_id is longer"), "{err}");
}
