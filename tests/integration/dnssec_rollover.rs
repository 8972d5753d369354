//! Issue 21 must-show 2: a ZSK pre-publish rollover (RFC 6781 §4.1.1) run
//! by the server from the key times in the zone file, on a timeline of
//! seconds, while Unbound (the KSK's DS as its anchor, caches capped at 2 s)
//! is asked every second: every answer validates. And the key schedule's
//! errors, each naming the file, line and column.

use crate::common::*;
use crate::dnssec::{ask, ds_record, edns_query, serve, ZONE};
use crate::peers::*;
use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::Message;
use hickory_proto::rr::{RData, RecordType};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The shipped zones copied into `dir/zones` with keys made by `meridian
/// dnssec keygen` (one per name in `keys`) and `dnssec` appended.
fn zones_with_keys(dir: &Path, keys: &[&str], dnssec: &str) -> PathBuf {
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    for f in ["gslb.example.test.toml", "gslb.example.test.inc.zone"] {
        std::fs::copy(repo().join("zones").join(f), zones.join(f)).unwrap();
    }
    for k in keys {
        let out = meridian(&["dnssec", "keygen", ZONE, "--out", &format!("zones/{k}")], dir);
        assert!(out.status.success(), "keygen: {}", String::from_utf8_lossy(&out.stderr));
    }
    crate::dnssec::append(&zones.join("gslb.example.test.toml"), &format!("\n{dnssec}"));
    zones
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn rfc3339(t: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t)).to_string()
}

/// A KSK that stays, the old ZSK retired at `t1` and removed at `t2`, the
/// new one published at `t0` and signing from `t1`.
fn rollover_keys(t0: u64, t1: u64, t2: u64) -> String {
    format!(
        r#"[dnssec]
[[dnssec.key]]
file = "ksk.key"
role = "ksk"

[[dnssec.key]]
file = "zsk1.key"
role = "zsk"
retire = "{}"
remove = {t2}

[[dnssec.key]]
file = "zsk2.key"
role = "zsk"
publish = "{}"
activate = {t1}
"#,
        rfc3339(t1),
        rfc3339(t0)
    )
}

/// `FILE (algorithm 13, tag N, ROLE STATE)` from `check`'s summary: the tag.
fn tag_in(summary: &str, file: &str) -> u16 {
    let at = summary.find(&format!("{file} (algorithm 13, tag ")).unwrap_or_else(|| panic!("{file} in {summary}"));
    let rest = &summary[at + file.len() + " (algorithm 13, tag ".len()..];
    rest[..rest.find(',').unwrap()].parse().unwrap()
}

/// Asked of Meridian directly: the key tags of the DNSKEY set and of the
/// RRSIG over `static…` A.
fn key_phase(addr: SocketAddr) -> (Vec<u16>, Vec<u16>) {
    let m = |name: &str, t| Message::from_vec(&ask(addr, &edns_query(name, t, 0x8000, false))).unwrap();
    let mut published: Vec<u16> = m(ZONE, RecordType::DNSKEY)
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.calculate_key_tag().unwrap()),
            _ => None,
        })
        .collect();
    published.sort_unstable();
    let signing = m("static.gslb.example.test.", RecordType::A)
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some(sig.input().key_tag),
            _ => None,
        })
        .collect();
    (published, signing)
}

/// Unbound's cache cap (seconds): DNSKEY sets and answers are held this
/// long, so a ZSK that signs less than this after it is published (or
/// leaves less than this after it retires) makes answers bogus to it.
const CACHE_CAP: u64 = 10;

/// What Unbound and Meridian said, asked once a second until `end`.
struct Watched {
    answers: usize,
    /// Answers through Unbound not NOERROR with AD: `t+SECONDS name: status flags`.
    failures: Vec<(u64, String)>,
    /// Distinct (DNSKEY tags, static A's RRSIG tags) in the order seen.
    phases: Vec<(Vec<u16>, Vec<u16>)>,
    log: String,
}

/// Serve `zones`, put Unbound in front (each DS line of `ds` an anchor, ECS on,
/// caches capped at `CACHE_CAP`), and ask it every second until Unix time
/// `end`: a static name, a `www` decision (ECS), a nonexistent name and a
/// nonexistent name not asked before, all with DO; Meridian directly for
/// the key phase.
fn watch_through_unbound(zones: &Path, ds: &str, start: u64, end: u64) -> Watched {
    let server = serve(zones);
    // One anchor per DS line: a parent that holds both DS of a double-DS rollover.
    let anchors: String = ds.lines().map(|l| format!("    trust-anchor: \"{l}\"\n")).collect();
    let server_conf = format!(
        r#"    outgoing-interface: 127.0.0.1
    do-ip4: yes
    do-ip6: no
    do-not-query-localhost: no
    local-zone: "test." nodefault
{anchors}    module-config: "subnetcache validator iterator"
    client-subnet-always-forward: yes
    max-client-subnet-ipv4: 24
    send-client-subnet: 127.0.0.1
    cache-max-ttl: {CACHE_CAP}
    cache-max-negative-ttl: {CACHE_CAP}
    prefetch: no
    log-servfail: yes
    val-log-level: 2
"#
    );
    let at = format!("{}@{}", server.addr.ip(), server.addr.port());
    let stubs = format!(
        "stub-zone:\n    name: \"{ZONE}\"\n    stub-addr: {at}\nstub-zone:\n    name: \".\"\n    stub-addr: {at}\n"
    );
    let unbound = start_unbound(&server_conf, &stubs).expect("unbound checked by the caller");
    let asks =
        ["static.gslb.example.test A", "www.gslb.example.test A +subnet=10.3.0.0/24", "nope.gslb.example.test A"];
    let mut w = Watched { answers: 0, failures: Vec::new(), phases: Vec::new(), log: String::new() };
    let deadline = Instant::now() + Duration::from_secs(end.saturating_sub(unix_now()) + 30);
    while unix_now() <= end && Instant::now() < deadline {
        let tick = Instant::now();
        let second = unix_now() - start;
        // A name never asked before: validated with whatever DNSKEY set Unbound holds now.
        let fresh = format!("gone{second}.gslb.example.test A");
        for q in asks.iter().copied().chain([fresh.as_str()]) {
            let d = dig(unbound.addr, &format!("{q} +rec +dnssec +time=2 +tries=1"));
            w.answers += 1;
            if d.status != "NOERROR" || !d.has_flag("ad") {
                w.failures.push((second, format!("t+{second} {q}: {} {:?}", d.status, d.flags)));
            }
        }
        let phase = key_phase(server.addr);
        if w.phases.last() != Some(&phase) {
            println!("t+{second}: DNSKEY tags {:?}, static A signed by {:?}", phase.0, phase.1);
            w.phases.push(phase);
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
    }
    println!("{} answers through unbound, {} not validated", w.answers, w.failures.len());
    w.log = format!(
        "--- unbound log:\n{}\n--- meridian log tail:\n{}",
        unbound.log_text(),
        server.log_text().lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
    w.log.push_str(&format!("\nkey events: {}", server.log_text().matches("DNSSEC key event at").count()));
    w
}

fn unbound_and_dig_or_skip() -> bool {
    if unbound_path().is_none() {
        skip_or_fail("unbound not installed (Debian package unbound)");
        return false;
    }
    if !dig_available() {
        skip_or_fail("dig not installed (bind9-dnsutils)");
        return false;
    }
    true
}

/// Must-show 2. Phases 14 s apart (longer than Unbound's 10 s cache cap):
/// old ZSK signs; new ZSK published too; new ZSK signs, old still
/// published; old removed. Every answer through Unbound, asked each second,
/// is NOERROR with AD (none SERVFAIL); Meridian asked directly goes through
/// exactly the four phases, in order, the server alone (no reload asked).
#[test]
fn zsk_rollover_keeps_unbound_validating_every_second() {
    if !unbound_and_dig_or_skip() {
        return;
    }
    let dir = TempDir::new("dnssec-rollover");
    let start = unix_now();
    let step = CACHE_CAP + 4;
    let (t0, t1, t2) = (start + 6, start + 6 + step, start + 6 + 2 * step);
    let zones = zones_with_keys(dir.path(), &["ksk.key", "zsk1.key", "zsk2.key"], &rollover_keys(t0, t1, t2));
    let ds = ds_record(dir.path(), &zones);
    assert_eq!(ds.lines().count(), 1, "only the KSK has a DS: {ds}");
    let geoip = repo().join("geoip/demo.mmdb");
    let check =
        meridian(&["check", "--zones", zones.to_str().unwrap(), "--geoip", geoip.to_str().unwrap()], dir.path());
    let summary = String::from_utf8_lossy(&check.stdout).to_string();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    for want in ["ksk active)", "zsk active)", "zsk not yet published)", &format!("next key event: {}", rfc3339(t0))] {
        assert!(summary.contains(want), "check lacks {want:?}:\n{summary}");
    }
    // A pre-publish period of seconds is far below the DNSKEY TTL (3600 s):
    // fine here (Unbound caches 10 s at most), worth a warning to an operator.
    let warn = format!("zsk2.key signs {step} s after it is published, less than the DNSKEY TTL (3600 s)");
    assert!(summary.contains(&warn), "{summary}");
    assert!(summary.contains(&format!("zsk1.key leaves the DNSKEY set {step} s after it retires")), "{summary}");
    let (ksk, zsk1, zsk2) = (tag_in(&summary, "ksk.key"), tag_in(&summary, "zsk1.key"), tag_in(&summary, "zsk2.key"));
    assert!(ds.contains(&format!(" DS {ksk} 13 2 ")), "{ds}");

    let w = watch_through_unbound(&zones, &ds, start, t2 + 6);
    let failures: Vec<&str> = w.failures.iter().map(|(_, f)| f.as_str()).collect();
    assert!(failures.is_empty(), "answers not validated:\n{}\n{}", failures.join("\n"), w.log);
    assert!(w.answers >= 4 * 20, "only {} answers\n{}", w.answers, w.log);
    let want = vec![
        (sorted(vec![ksk, zsk1]), vec![zsk1]),
        (sorted(vec![ksk, zsk1, zsk2]), vec![zsk1]),
        (sorted(vec![ksk, zsk1, zsk2]), vec![zsk2]),
        (sorted(vec![ksk, zsk2]), vec![zsk2]),
    ];
    assert_eq!(w.phases, want, "key phases seen (ksk {ksk}, old {zsk1}, new {zsk2})\n{}", w.log);
    assert!(w.log.ends_with("key events: 3"), "{}", w.log);
}

/// The control that shows the test above can fail: the same ZSKs swapped
/// at once (new published and active, old removed, all at one moment, as
/// an operator replacing the key file would), 6 s after the start. Unbound
/// keeps the DNSKEY set it validated the first answer with for 10 s, so a
/// name first asked after the swap is signed by a key it does not know:
/// SERVFAIL, and only after the swap.
#[test]
fn a_zsk_swapped_without_pre_publishing_fails_validation() {
    if !unbound_and_dig_or_skip() {
        return;
    }
    let dir = TempDir::new("dnssec-swap");
    let start = unix_now();
    let swap = start + 6;
    let zones = zones_with_keys(dir.path(), &["ksk.key", "zsk1.key", "zsk2.key"], &rollover_keys(swap, swap, swap));
    let ds = ds_record(dir.path(), &zones);
    let w = watch_through_unbound(&zones, &ds, start, swap + CACHE_CAP);
    assert_eq!(w.phases.len(), 2, "one swap: {:?}\n{}", w.phases, w.log);
    assert!(!w.failures.is_empty(), "no answer failed validation across a swap without pre-publishing\n{}", w.log);
    assert!(w.failures.iter().all(|(t, _)| *t >= swap - start), "failures before the swap: {:?}", w.failures);
    assert!(w.log.contains("signatures from unknown keys"), "{}", w.log);
}

/// Key tags by file from `check`'s summary.
fn tags(zones: &Path, dir: &Path, files: &[&str]) -> Vec<u16> {
    let geoip = repo().join("geoip/demo.mmdb");
    let check = meridian(&["check", "--zones", zones.to_str().unwrap(), "--geoip", geoip.to_str().unwrap()], dir);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let summary = String::from_utf8_lossy(&check.stdout).to_string();
    files.iter().map(|f| tag_in(&summary, f)).collect()
}

fn sorted(mut v: Vec<u16>) -> Vec<u16> {
    v.sort_unstable();
    v
}

/// A CSK rollover (docs/dnssec.md): the new CSK pre-published, its DS
/// beside the old one at the parent (Unbound holds both as anchors), then
/// it signs everything while the old one stays published, then the old one
/// goes. Every answer through Unbound validates; four phases in order.
#[test]
fn csk_rollover_with_both_ds_keeps_unbound_validating() {
    if !unbound_and_dig_or_skip() {
        return;
    }
    let dir = TempDir::new("dnssec-csk-roll");
    let start = unix_now();
    let step = CACHE_CAP + 4;
    let (publish, switch, remove) = (start + 6, start + 6 + step, start + 6 + 2 * step);
    let keys = format!(
        "[[dnssec.key]]\nfile = \"csk1.key\"\nretire = {switch}\nremove = {remove}\n\n[[dnssec.key]]\nfile = \"csk2.key\"\npublish = {publish}\nactivate = {switch}\n"
    );
    let zones = zones_with_keys(dir.path(), &["csk1.key", "csk2.key"], &keys);
    let ds = ds_record(dir.path(), &zones);
    assert_eq!(ds.lines().count(), 2, "a DS for each CSK, the one not yet published too: {ds}");
    let t = tags(&zones, dir.path(), &["csk1.key", "csk2.key"]);
    let w = watch_through_unbound(&zones, &ds, start, remove + 6);
    let failures: Vec<&str> = w.failures.iter().map(|(_, f)| f.as_str()).collect();
    assert!(failures.is_empty(), "answers not validated:\n{}\n{}", failures.join("\n"), w.log);
    let want = vec![
        (vec![t[0]], vec![t[0]]),
        (sorted(t.clone()), vec![t[0]]),
        (sorted(t.clone()), vec![t[1]]),
        (vec![t[1]], vec![t[1]]),
    ];
    assert_eq!(w.phases, want, "CSK phases (old {}, new {})\n{}", t[0], t[1], w.log);
}

/// A KSK double-DS rollover (RFC 6781 §4.1.2): with both DS at the parent,
/// the KSKs swap in the DNSKEY set at one moment; the ZSK goes on signing
/// the data. Every answer through Unbound validates.
#[test]
fn ksk_double_ds_swap_keeps_unbound_validating() {
    if !unbound_and_dig_or_skip() {
        return;
    }
    let dir = TempDir::new("dnssec-ksk-roll");
    let start = unix_now();
    let swap = start + 8;
    let keys = format!(
        "[[dnssec.key]]\nfile = \"ksk1.key\"\nrole = \"ksk\"\nremove = {swap}\n\n[[dnssec.key]]\nfile = \"ksk2.key\"\nrole = \"ksk\"\npublish = {swap}\n\n[[dnssec.key]]\nfile = \"zsk.key\"\nrole = \"zsk\"\n"
    );
    let zones = zones_with_keys(dir.path(), &["ksk1.key", "ksk2.key", "zsk.key"], &keys);
    let ds = ds_record(dir.path(), &zones);
    assert_eq!(ds.lines().count(), 2, "{ds}");
    let t = tags(&zones, dir.path(), &["ksk1.key", "ksk2.key", "zsk.key"]);
    let w = watch_through_unbound(&zones, &ds, start, swap + CACHE_CAP + 4);
    let failures: Vec<&str> = w.failures.iter().map(|(_, f)| f.as_str()).collect();
    assert!(failures.is_empty(), "answers not validated:\n{}\n{}", failures.join("\n"), w.log);
    let want = vec![(sorted(vec![t[0], t[2]]), vec![t[2]]), (sorted(vec![t[1], t[2]]), vec![t[2]])];
    assert_eq!(w.phases, want, "KSK phases (old {}, new {}, zsk {})\n{}", t[0], t[1], t[2], w.log);
}

/// The same rollover driven by the operator: `state` per key, edited and
/// reloaded with SIGHUP at each step (the file watcher may reload first). Each reload
/// changes the DNSKEY set and the signing key as the states say.
#[test]
fn key_states_edited_and_reloaded_step_the_rollover() {
    let dir = TempDir::new("dnssec-states");
    let states = |old: &str, new: Option<&str>| {
        let mut t = format!(
            "[dnssec]\n[[dnssec.key]]\nfile = \"ksk.key\"\nrole = \"ksk\"\n\n[[dnssec.key]]\nfile = \"zsk1.key\"\nrole = \"zsk\"\nstate = \"{old}\"\n"
        );
        if let Some(new) = new {
            t.push_str(&format!("\n[[dnssec.key]]\nfile = \"zsk2.key\"\nrole = \"zsk\"\nstate = \"{new}\"\n"));
        }
        t
    };
    let zones = zones_with_keys(dir.path(), &["ksk.key", "zsk1.key", "zsk2.key"], &states("active", None));
    let toml = zones.join("gslb.example.test.toml");
    let base = std::fs::read_to_string(&toml).unwrap().replace(&states("active", None), "");
    let geoip = repo().join("geoip/demo.mmdb");
    let server = Server::start_with(&["--zones", zones.to_str().unwrap(), "--geoip", geoip.to_str().unwrap()], None);
    // Write the zone, SIGHUP, wait for the reload, and read the phase.
    let step = |text: String| {
        std::fs::write(&toml, text).unwrap();
        let reloads = server.log_text().matches("reloaded configuration").count();
        server.signal(libc::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.log_text().matches("reloaded configuration").count() == reloads {
            assert!(Instant::now() < deadline, "no reload after SIGHUP\n{}", server.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        key_phase(server.addr)
    };
    let mut phases = vec![key_phase(server.addr)];
    for (old, new) in [("active", "published"), ("retired", "active")] {
        phases.push(step(format!("{base}{}", states(old, Some(new)))));
    }
    // The old ZSK's entry deleted: gone from the DNSKEY set.
    phases.push(step(format!("{base}{}", states("active", None).replace("zsk1.key", "zsk2.key"))));
    let (k, z1, z2) = (phases[0].0.clone(), phases[0].1[0], phases[3].1[0]);
    assert_ne!(z1, z2, "{phases:?}");
    let ksk = k.iter().copied().find(|t| *t != z1).unwrap();
    assert_eq!(
        phases,
        [
            (sorted(vec![ksk, z1]), vec![z1]),
            (sorted(vec![ksk, z1, z2]), vec![z1]),
            (sorted(vec![ksk, z1, z2]), vec![z2]),
            (sorted(vec![ksk, z2]), vec![z2]),
        ],
        "{}",
        server.log_text()
    );
}

/// Must-show 4 for the key schedule: an unknown role or state, times out of
/// order, a state with times, a time that is not one, no active key now, and
/// a retirement that leaves no key signing later each stop `check` (and
/// `serve`) with `FILE:LINE:COL: message` at the field, exit status 1.
#[test]
fn key_schedule_errors_name_file_line_and_column() {
    let dir = TempDir::new("dnssec-schedule");
    let zones = zones_with_keys(dir.path(), &["ksk.key", "zsk1.key", "zsk2.key"], "");
    let toml = zones.join("gslb.example.test.toml");
    let base = std::fs::read_to_string(&toml).unwrap();
    let head = "[dnssec]\n[[dnssec.key]]\nfile = \"ksk.key\"\nrole = \"ksk\"\n[[dnssec.key]]\nfile = \"zsk1.key\"\n";
    let soon = unix_now() + 3600;
    // (what follows `head`, the line the error points at, the message)
    let cases: Vec<(String, &str, String)> = vec![
        ("role = \"zsk2\"\n".into(), "role = \"zsk2\"", "unknown key role \"zsk2\": csk, ksk or zsk".into()),
        (
            "role = \"zsk\"\nstate = \"pending\"\n".into(),
            "state = \"pending\"",
            "unknown key state \"pending\": published, active or retired".into(),
        ),
        (
            "role = \"zsk\"\nactivate = \"2026-12-10T00:00:00Z\"\nretire = \"2026-12-09T00:00:00Z\"\n".into(),
            "retire = ",
            "retire (2026-12-09T00:00:00Z) is before activate (2026-12-10T00:00:00Z)".into(),
        ),
        (
            "role = \"zsk\"\nstate = \"active\"\nretire = 1\n".into(),
            "state = \"active\"",
            "a key has a state or times (publish, activate, retire, remove), not both".into(),
        ),
        ("role = \"zsk\"\npublish = \"next week\"\n".into(), "publish = ", "publish: not a date and time".into()),
        (
            "role = \"zsk\"\nstate = \"published\"\n".into(),
            "[dnssec]",
            "no active key signs the zone's data (a csk or zsk) now".into(),
        ),
        (
            format!("role = \"zsk\"\nretire = {soon}\n"),
            "retire = ",
            format!("no active key signs the zone's data (a csk or zsk) from {}", rfc3339(soon)),
        ),
        (
            format!("role = \"zsk\"\n[[dnssec.key]]\nfile = \"zsk2.key\"\nrole = \"zsk\"\npublish = {soon}\nactivate = {}\n[[dnssec.key]]\nfile = \"ksk.key\"\n", soon + 1),
            "file = \"ksk.key\"",
            "is the same key as one listed before it".into(),
        ),
    ];
    for (tail, at, want) in cases {
        let text = format!("{base}\n{head}{tail}");
        std::fs::write(&toml, &text).unwrap();
        // The error's line: the last line holding `at` (the table's own for `[dnssec]`).
        let from = text.find(head).unwrap();
        let offset = from + if at == "[dnssec]" { 0 } else { text[from..].rfind(at).unwrap() };
        let line = text[..offset].lines().count() + 1;
        let check = meridian(&["check", "--zones", zones.to_str().unwrap()], dir.path());
        let err = String::from_utf8_lossy(&check.stderr);
        assert_eq!(check.status.code(), Some(1), "check passed: {want}\n{err}");
        let prefix = format!("{}:{line}:", toml.display());
        assert!(err.starts_with(&prefix) && err.contains(&want), "wanted {prefix}…{want}, got {err:?}");
    }
    // `serve` refuses the same way (one case).
    let text = format!("{base}\n{head}role = \"zsk\"\nstate = \"pending\"\n");
    std::fs::write(&toml, text).unwrap();
    let serve = std::process::Command::new(bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--admin", "off"])
        .args(["--zones", zones.to_str().unwrap(), "--state-dir", dir.path().join("state").to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&serve.stderr);
    assert!(!serve.status.success() && err.contains("unknown key state \"pending\""), "serve said {err:?}");
}
