//! Clear words for operators (issue 22): help that explains every argument
//! and MERIDIAN_LOG, `check` refusing zero zones, `serve` naming its GeoIP
//! database, `geoip lookup` reading meridian.toml and printing no Rust
//! debug formatting.

use crate::common::{self, meridian, Server, TempDir};

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn help_mentions_meridian_log_and_describes_every_argument() {
    let dir = common::repo();
    for args in [&["--help"][..], &["serve", "--help"]] {
        let out = meridian(args, &dir);
        assert!(out.status.success());
        assert!(text(&out).contains("MERIDIAN_LOG"), "{args:?}: {}", text(&out));
    }
    let build = text(&meridian(&["geoip", "build", "--help"], &dir));
    assert!(build.contains("<CSV>  The CSV to read") && build.contains("<OUT>  The .mmdb file to write"), "{build}");
    let explain = text(&meridian(&["explain", "--help"], &dir));
    assert!(explain.contains("Record type to ask for"), "{explain}");
    let lookup = text(&meridian(&["geoip", "lookup", "--help"], &dir));
    assert!(lookup.contains("The IPv4 or IPv6 address") && lookup.contains("--config"), "{lookup}");
}

#[test]
fn check_with_no_zones_fails_saying_serve_would_refuse_everything() {
    let empty = TempDir::new("no-zones");
    let zones = empty.path().display().to_string();
    let out = meridian(&["check", "--zones", &zones], &common::repo());
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&zones) && err.contains("no zone files") && err.contains("REFUSED"), "{err}");
    // serve still starts (zones may arrive by reload), with a warning.
    let s = Server::start_with(&["--zones", &zones], None);
    assert!(s.log_text().contains("no zone files loaded: every query will be answered REFUSED"), "{}", s.log_text());
}

#[test]
fn serve_logs_its_geoip_database_and_lookup_reads_the_server_file() {
    let s = Server::start();
    let log = s.log_text();
    let line = log.lines().find(|l| l.contains("GeoIP database:")).unwrap_or_else(|| panic!("{log}"));
    // Type, build date and path.
    for want in ["Meridian-Demo-City", "built 2025-01-01", "geoip/demo.mmdb"] {
        assert!(line.contains(want), "{want} in {line}");
    }
    drop(s);

    let dir = TempDir::new("lookup-config");
    let city = common::test_geoip("maxmind-test").join("GeoIP2-City-Test.mmdb");
    std::fs::write(dir.path().join("meridian.toml"), format!("geoip = {:?}\n", city.display().to_string())).unwrap();
    // ./meridian.toml is read, as by every other subcommand.
    let out = meridian(&["geoip", "lookup", "81.2.69.142"], dir.path());
    let got = text(&out);
    assert!(out.status.success(), "{got}");
    assert_eq!(
        got.trim(),
        "81.2.69.142: network=81.2.69.142/31 continent=EU country=GB subdivision=GB-ENG coords=51.5142,-0.0931"
    );
    assert!(!got.contains("Some(") && !got.contains("Location {"), "{got}");
    // --db still wins.
    let demo = common::repo().join("geoip/demo.mmdb").display().to_string();
    let got = text(&meridian(&["geoip", "lookup", "10.3.1.1", "--db", &demo], dir.path()));
    assert!(got.contains("country=GB") && got.contains("network=10.3.0.0/16"), "{got}");
}

/// A `probe_addr` table that leaves out an address of its region: `check`
/// says which (at the table's FILE:LINE:COL) and still passes; `serve` logs
/// it. A table covering every address, or one address for all, says nothing.
#[test]
fn a_probe_addr_table_missing_an_address_warns() {
    let dir = TempDir::new("probe-addr");
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    let zone = |probe_addr: &str| {
        format!(
            "origin = \"p.test.\"\nns = [\"ns1\"]\n[soa]\nmname = \"ns1\"\nrname = \"h\"\nserial = 1\n\
             [[records]]\nname = \"ns1\"\ntype = \"A\"\ndata = \"192.0.2.53\"\n\
             [[regions]]\nname = \"dc1\"\naddresses = [\"192.0.2.10\", \"192.0.2.11\"]\n\
             [regions.probe]\ntype = \"tcp\"\nport = 9\nprobe_addr = {probe_addr}\n"
        )
    };
    let file = zones.join("p.toml");
    let zones_arg = zones.display().to_string();
    std::fs::write(&file, zone(r#"{ "192.0.2.10" = "10.0.0.10" }"#)).unwrap();
    let out = meridian(&["check", "--zones", &zones_arg], dir.path());
    let got = text(&out);
    assert!(out.status.success(), "{got}");
    let want = format!(
        "{}:17:14: warning: the probe_addr table of region dc1 has no entry for 192.0.2.11: probed at the answered address",
        file.display()
    );
    assert!(got.contains(&want), "{want}\nin\n{got}");
    let s = Server::start_with(&["--zones", &zones_arg], None);
    assert!(s.log_text().contains("no entry for 192.0.2.11"), "{}", s.log_text());
    drop(s);

    for covered in [r#"{ "192.0.2.10" = "10.0.0.10", "192.0.2.11" = "10.0.0.11" }"#, r#""10.0.0.9""#] {
        std::fs::write(&file, zone(covered)).unwrap();
        let got = text(&meridian(&["check", "--zones", &zones_arg], dir.path()));
        assert!(!got.contains("warning"), "{covered}: {got}");
    }
}

/// `check` without any GeoIP database: the failed expectations come with
/// the reason (no database), not alone.
#[test]
fn check_without_a_database_says_so_beside_failed_expectations() {
    let dir = TempDir::new("no-geoip");
    let zones = common::repo().join("zones").display().to_string();
    let out = meridian(&["check", "--zones", &zones], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("expectation(s) failed"), "{err}");
    assert!(err.contains("no GeoIP database was loaded: geoip/demo.mmdb does not exist"), "{err}");
    // With the database, the same zones pass.
    let demo = common::repo().join("geoip/demo.mmdb").display().to_string();
    let out = meridian(&["check", "--zones", &zones, "--geoip", &demo], dir.path());
    assert!(out.status.success(), "{}", text(&out));
}
