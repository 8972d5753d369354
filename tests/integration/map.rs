//! `meridian map` (issue 23): shares add up, agree with `explain` client by
//! client, and a failure moves exactly the failed region's clients, to where
//! `explain --fail` sends them.

use serde_json::Value;
use std::path::{Path, PathBuf};

use crate::common::{meridian, repo, test_geoip, TempDir};

/// Answers drawn at random per query: one draw per client cannot be compared.
const RANDOM_SERVICE: &str = "weighted.gslb.example.test.";

fn city_db() -> Option<PathBuf> {
    // Travels with the repository: never skipped.
    Some(test_geoip("maxmind-test").join("GeoIP2-City-Test.mmdb"))
}

fn map_json(args: &[&str], cwd: &Path) -> Value {
    let mut all = vec!["map", "--json"];
    all.extend_from_slice(args);
    let out = meridian(&all, cwd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "meridian {all:?} failed: {err}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The first region `explain` chooses for the last service it decided.
fn explain_region(name: &str, client: &str, extra: &[&str]) -> String {
    let mut args = vec!["explain", name, "--client", client];
    args.extend_from_slice(extra);
    let out = meridian(&args, &repo());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let chosen = text.lines().rev().find(|l| l.trim_start().starts_with("chosen:")).expect(&text);
    let inner = chosen.split('[').nth(1).and_then(|s| s.split(']').next()).unwrap();
    inner.split(", ").next().unwrap().to_string()
}

/// Every service and family: the shares of `key` ("now" or "after") add up to 100 %.
fn assert_shares_add_up(map: &Value, key: &str, services: usize) {
    let services_seen = map["services"].as_array().unwrap();
    assert_eq!(services_seen.len(), services, "services mapped: {map:#}");
    let services = services_seen;
    for s in services {
        for f in s["families"].as_array().unwrap() {
            let sum: f64 = f["regions"].as_array().unwrap().iter().map(|r| r[key].as_f64().unwrap()).sum();
            assert!((sum - 1.0).abs() < 1e-9, "{} {} {key}: shares add up to {sum}", s["service"], f["family"]);
        }
    }
}

/// About `n` of `rows` (at least `n` when there are), the same number from
/// every service, spread evenly over each service's clients.
fn sample(rows: Vec<&Value>, n: usize) -> Vec<&Value> {
    let mut services: Vec<&str> = rows.iter().map(|r| r["service"].as_str().unwrap()).collect();
    services.sort();
    services.dedup();
    let per = n.div_ceil(services.len().max(1));
    let mut out = Vec::new();
    for s in services {
        let mine: Vec<&Value> = rows.iter().copied().filter(|r| r["service"] == s).collect();
        let step = mine.len().div_ceil(per).max(1);
        out.extend(mine.into_iter().step_by(step).take(per));
    }
    out
}

fn clients(map: &Value) -> Vec<&Value> {
    map["clients"].as_array().unwrap().iter().filter(|c| c["service"] != RANDOM_SERVICE).collect()
}

/// Must show 1: shares add up per service, and 100 clients' regions are the
/// ones `explain` gives them.
fn shares_and_explain_agree(geoip: &[&str]) {
    let mut args = vec!["--each"];
    args.extend_from_slice(geoip);
    let map = map_json(&args, &repo());
    assert_shares_add_up(&map, "now", 7);
    let rows = clients(&map);
    assert!(rows.len() >= 100, "{} clients", rows.len());
    for c in sample(rows, 100) {
        let (net, svc) = (c["client"].as_str().unwrap(), c["service"].as_str().unwrap());
        assert_eq!(explain_region(svc, net, geoip), c["now"].as_str().unwrap(), "{net} {svc}");
    }
}

#[test]
fn map_shares_add_up_and_agree_with_explain_on_the_demo_database() {
    shares_and_explain_agree(&[]);
}

#[test]
fn map_shares_add_up_and_agree_with_explain_on_the_maxmind_city_test_database() {
    let Some(db) = city_db() else { return };
    shares_and_explain_agree(&["--geoip", db.to_str().unwrap()]);
}

/// Must show 2: `--fail eu-west` moves eu-west's clients and no one else's,
/// each to the region `explain --fail eu-west` gives it.
fn fail_moves_exactly_eu_west(geoip: &[&str]) {
    let mut args = vec!["--each", "--fail", "eu-west"];
    args.extend_from_slice(geoip);
    let map = map_json(&args, &repo());
    assert_shares_add_up(&map, "after", 7);
    let rows = clients(&map);
    let mut moved = Vec::new();
    for c in &rows {
        let (now, after) = (c["now"].as_str().unwrap(), c["after"].as_str().unwrap());
        assert_ne!(after, "eu-west", "{c}");
        if now == "eu-west" {
            moved.push(*c);
        } else {
            assert_eq!(now, after, "a client not on eu-west moved: {c}");
        }
    }
    assert!(moved.len() >= 10, "too few eu-west clients to tell: {}", moved.len());
    let mut fail = vec!["--fail", "eu-west"];
    fail.extend_from_slice(geoip);
    for c in sample(moved, 50) {
        let (net, svc) = (c["client"].as_str().unwrap(), c["service"].as_str().unwrap());
        assert_eq!(explain_region(svc, net, &fail), c["after"].as_str().unwrap(), "{net} {svc}");
    }
    // The summary says the same as the clients: eu-west's share is what moves.
    for s in map["services"].as_array().unwrap() {
        for f in s["families"].as_array().unwrap() {
            let eu_now = f["regions"].as_array().unwrap().iter().find(|r| r["region"] == "eu-west");
            let eu_now = eu_now.map_or(0.0, |r| r["now"].as_f64().unwrap());
            let moved: f64 = f["moves"].as_array().unwrap().iter().map(|m| m["share"].as_f64().unwrap()).sum();
            if s["service"] != RANDOM_SERVICE {
                assert!(
                    (moved - eu_now).abs() < 1e-9,
                    "{} {}: moved {moved}, eu-west had {eu_now}",
                    s["service"],
                    f["family"]
                );
                assert!(f["moves"].as_array().unwrap().iter().all(|m| m["from"] == "eu-west"), "{f:#}");
            }
        }
    }
}

#[test]
fn map_fail_eu_west_moves_exactly_its_clients_where_explain_sends_them_demo() {
    fail_moves_exactly_eu_west(&[]);
}

#[test]
fn map_fail_eu_west_moves_exactly_its_clients_where_explain_sends_them_city() {
    let Some(db) = city_db() else { return };
    fail_moves_exactly_eu_west(&["--geoip", db.to_str().unwrap()]);
}

/// The demo zones with `capacity` on us-east, in a directory of their own.
fn zones_with_capacity(dir: &Path, capacity: u32) -> PathBuf {
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    for f in ["gslb.example.test.toml", "gslb.example.test.inc.zone"] {
        let text = std::fs::read_to_string(repo().join("zones").join(f)).unwrap();
        let text = text.replace("weight = 50\n", &format!("weight = 50\ncapacity = {capacity}\n"));
        std::fs::write(zones.join(f), text).unwrap();
    }
    zones
}

/// Must show 2, second half: with eu-west down, us-east takes more than its
/// capacity, and the map says so (and says nothing while it is not).
#[test]
fn map_flags_the_overload_a_failure_causes() {
    let dir = TempDir::new("map-capacity");
    let base = map_json(&["--service", "www", "--fail", "eu-west", "--qps", "1000"], &repo());
    let v4 = &base["services"][0]["families"][0];
    let us = v4["regions"].as_array().unwrap().iter().find(|r| r["region"] == "us-east").unwrap();
    let (now, after) = (us["qps_now"].as_f64().unwrap(), us["qps_after"].as_f64().unwrap());
    assert!(after > now + 10.0, "eu-west's clients should land on us-east: {us}");
    assert_eq!(us["capacity"], Value::Null);
    assert_eq!(us["overload_after"], false, "no capacity, no overload");

    let capacity = ((now + after) / 2.0) as u32;
    let zones = zones_with_capacity(dir.path(), capacity);
    let zones = zones.to_str().unwrap();
    let geoip = repo().join("geoip/demo.mmdb");
    let common = ["--service", "www", "--fail", "eu-west", "--qps", "1000", "--zones", zones];
    let mut args = common.to_vec();
    args.extend(["--geoip", geoip.to_str().unwrap()]);
    let map = map_json(&args, dir.path());
    let v4 = &map["services"][0]["families"][0];
    let us = v4["regions"].as_array().unwrap().iter().find(|r| r["region"] == "us-east").unwrap();
    assert_eq!(us["capacity"], capacity, "{us}");
    assert_eq!((us["overload_now"].as_bool(), us["overload_after"].as_bool()), (Some(false), Some(true)), "{us}");

    let mut text_args = vec!["map"];
    text_args.extend(args.iter().copied());
    let out = meridian(&text_args, dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.trim_start().starts_with("us-east")).expect(&text);
    assert!(line.ends_with("OVERLOAD (after)"), "{text}");
    assert!(!text.lines().any(|l| l.contains("OVERLOAD") && !l.trim_start().starts_with("us-east")), "{text}");
}

/// Bad input gets a clear error, not an empty map.
#[test]
fn map_rejects_unknown_regions_services_and_bad_client_files() {
    let dir = TempDir::new("map-bad");
    let out = meridian(&["map", "--fail", "mars-1"], &repo());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no region \"mars-1\""), "{out:?}");
    let out = meridian(&["map", "--service", "nothing"], &repo());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service \"nothing\""), "{out:?}");
    let csv = dir.path().join("clients.csv");
    std::fs::write(&csv, "subnet,weight\n10.0.0.0/8,5\n10.1.0.0/16,many\n").unwrap();
    let out = meridian(&["map", "--clients", csv.to_str().unwrap()], &repo());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("clients.csv:3:13: weight \"many\""), "{err}");
}

/// `--clients`: the weights are the file's, not address counts.
#[test]
fn map_weighs_clients_from_a_csv() {
    let dir = TempDir::new("map-csv");
    let csv = dir.path().join("clients.csv");
    // DE (eu-west) 3 to JP (ap-northeast) 1 in the demo database.
    std::fs::write(&csv, "198.51.100.0/24,3\n10.5.0.0/24,1\n").unwrap();
    let map = map_json(&["--service", "www", "--clients", csv.to_str().unwrap()], &repo());
    let v4 = &map["services"][0]["families"][0];
    let share = |r: &str| v4["regions"].as_array().unwrap().iter().find(|x| x["region"] == r).unwrap()["now"].clone();
    assert_eq!((share("eu-west"), share("ap-northeast")), (Value::from(0.75), Value::from(0.25)), "{map:#}");
}

/// `--diff OLD NEW`: Africa moved from eu-west to us-east in the new zone
/// file, so exactly the African clients move, to where `explain` on the new
/// zones sends them.
#[test]
fn map_diff_moves_exactly_the_clients_whose_rule_changed() {
    let dir = TempDir::new("map-diff");
    let new = dir.path().join("new");
    std::fs::create_dir_all(&new).unwrap();
    for f in ["gslb.example.test.toml", "gslb.example.test.inc.zone"] {
        let text = std::fs::read_to_string(repo().join("zones").join(f)).unwrap();
        let changed = text.replace("AF = [\"eu-west\"], AS", "AF = [\"us-east\"], AS");
        assert!(f.ends_with(".zone") || changed != text, "the demo's www rule changed shape");
        std::fs::write(new.join(f), changed).unwrap();
    }
    let new = new.to_str().unwrap();
    let map = map_json(&["--service", "www", "--each", "--diff", "zones", new], &repo());
    assert_shares_add_up(&map, "after", 1);
    for f in map["services"][0]["families"].as_array().unwrap() {
        let moves = f["moves"].as_array().unwrap();
        assert_eq!(moves.len(), 1, "{f:#}");
        assert_eq!((moves[0]["from"].as_str(), moves[0]["to"].as_str()), (Some("eu-west"), Some("us-east")));
        let continents: Vec<&String> = moves[0]["by_continent"].as_object().unwrap().keys().collect();
        assert_eq!(continents, vec!["AF"], "{f:#}");
    }
    let rows = clients(&map);
    let moved: Vec<&Value> = rows.iter().copied().filter(|c| c["now"] != c["after"]).collect();
    assert!(!moved.is_empty());
    for c in moved {
        let net = c["client"].as_str().unwrap();
        assert_eq!(explain_region("www.gslb.example.test", net, &[]), "eu-west", "{net} before");
        assert_eq!(explain_region("www.gslb.example.test", net, &["--zones", new]), "us-east", "{net} after");
    }
}
