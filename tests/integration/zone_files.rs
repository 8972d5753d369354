//! Issue 18 items 9 and 12, and `$INCLUDE` watching: what happens when a zone
//! file or an included file is not what it should be, or changes.

use crate::common::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn zone(origin: &str, extra: &str) -> String {
    format!(
        "origin = \"{origin}\"\nns = [\"ns1\"]\n{extra}\n[soa]\nmname = \"ns1\"\nrname = \"h\"\nserial = 1\n\
         [[records]]\nname = \"ns1\"\ntype = \"A\"\ndata = \"192.0.2.53\"\n\
         [[records]]\nname = \"www\"\ntype = \"A\"\ndata = \"192.0.2.1\"\n"
    )
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", p.display());
}

/// SIGHUP; the log line of the reload's outcome, which must contain `outcome`.
fn sighup(s: &Server, outcome: &str) -> String {
    let mark = s.log_text().len();
    s.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = s.log_text();
        let after = log.get(mark..).unwrap_or("");
        if let Some(line) = after.lines().find(|l| l.contains("reload failed") || l.contains("reloaded configuration"))
        {
            assert!(line.contains(outcome), "wanted {outcome:?}, got: {line}");
            return line.to_string();
        }
        assert!(Instant::now() < deadline, "no reload outcome in the log within 10 s:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn www(s: &Server, zone: &str) -> (String, Vec<String>) {
    let d = s.dig(&format!("www.{zone} A"));
    (d.status.clone(), d.answers_of("A"))
}

fn served(s: &Server, zone: &str) -> bool {
    www(s, zone) == ("NOERROR".to_string(), vec!["192.0.2.1".to_string()])
}

/// A zones directory with `a.test` and `b.test` (which includes `b.inc.zone`),
/// served with SIGHUP as the only reload trigger.
fn setup() -> (TempDir, Server) {
    let dir = TempDir::new("zonefiles");
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::write(zones.join("a.toml"), zone("a.test.", "")).unwrap();
    std::fs::write(zones.join("b.toml"), zone("b.test.", "include = \"b.inc.zone\"")).unwrap();
    std::fs::write(zones.join("b.inc.zone"), "inc IN A 192.0.2.9\n").unwrap();
    std::fs::write(dir.path().join("meridian.toml"), "zones = \"zones\"\nwatch_interval_ms = 0\n").unwrap();
    let s = Server::start_with(&[], Some(dir.path()));
    (dir, s)
}

#[test]
fn a_broken_zone_file_keeps_its_zone_and_only_a_deleted_one_removes_it() {
    let (dir, s) = setup();
    let zones = dir.path().join("zones");
    let a = zones.join("a.toml");
    let good = std::fs::read_to_string(&a).unwrap();
    assert!(served(&s, "a.test") && served(&s, "b.test"));

    let restore = |a: &Path| {
        if std::fs::symlink_metadata(a).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir(a).unwrap();
        } else {
            let _ = std::fs::remove_file(a);
        }
        std::fs::write(a, &good).unwrap();
    };
    type Breaker = fn(&Path);
    let cases: [(&str, Breaker, &str); 3] = [
        ("a directory", |a| std::fs::create_dir(a).unwrap(), "is a directory"),
        ("a dangling symlink", |a| std::os::unix::fs::symlink("gone.toml", a).unwrap(), "symbolic link to gone.toml"),
        ("a FIFO", mkfifo, "FIFO"),
    ];
    for (what, breaker, why) in cases {
        std::fs::remove_file(&a).unwrap();
        breaker(&a);
        let line = sighup(&s, "reload failed");
        assert!(line.contains("a.toml") && line.contains(why), "{what}: the log names the file and why: {line}");
        assert!(served(&s, "a.test"), "{what}: a.test is still served");
        assert!(served(&s, "b.test"));
        restore(&a);
        sighup(&s, "reloaded configuration");
    }

    // A missing include keeps the zone that includes it, with its included records.
    std::fs::rename(zones.join("b.inc.zone"), zones.join("b.inc.zone.moved")).unwrap();
    let line = sighup(&s, "reload failed");
    assert!(line.contains("b.toml") && line.contains("b.inc.zone") && line.contains("does not exist"), "{line}");
    assert_eq!(s.dig("inc.b.test A").answers_of("A"), vec!["192.0.2.9"]);
    std::fs::rename(zones.join("b.inc.zone.moved"), zones.join("b.inc.zone")).unwrap();

    // Truly gone (no directory entry): that is how an operator removes a zone.
    std::fs::remove_file(&a).unwrap();
    sighup(&s, "reloaded configuration");
    assert_eq!(www(&s, "a.test").0, "REFUSED");
    assert!(served(&s, "b.test"));
}

#[test]
fn check_and_serve_refuse_a_zone_file_that_is_not_a_file_naming_it() {
    let dir = TempDir::new("zonedir");
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(zones.join("c.toml")).unwrap();
    std::fs::write(zones.join("a.toml"), zone("a.test.", "")).unwrap();
    let out = meridian(&["check", "--zones", "zones"], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("zones/c.toml: is a directory"), "{err}");
    std::fs::remove_dir(zones.join("c.toml")).unwrap();
    std::os::unix::fs::symlink("nowhere.toml", zones.join("c.toml")).unwrap();
    let out = std::process::Command::new(bin())
        .args(["serve", "--zones", "zones", "--admin", "off", "--listen", &format!("127.0.0.1:{}", free_port())])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("zones/c.toml: is a symbolic link to nowhere.toml, which does not exist"), "{err}");
}

/// `meridian check` in `dir`, killed if it has not finished in 10 s.
fn check_bounded(dir: &Path) -> (bool, String) {
    let mut child = std::process::Command::new(bin())
        .args(["check", "--zones", "zones"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("meridian check still running after 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn check_refuses_settings_that_cannot_work_with_file_line_and_column() {
    let dir = TempDir::new("checkbad");
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    let geo = "[[regions]]\nname = \"r\"\naddresses = [\"192.0.2.10\"]\n\
               [[services]]\nname = \"svc\"\nchain = [\"geo\"]\n[services.geo]\ncountry = { UK = [\"r\"] }\n";
    std::fs::write(zones.join("bad.toml"), format!("{}{geo}", zone("bad.test.", ""))).unwrap();
    let (ok, err) = check_bounded(dir.path());
    assert!(!ok, "{err}");
    assert!(err.contains("zones/bad.toml:23:") && err.contains("did you mean GB?"), "{err}");

    // An include that is a FIFO or a device: refused at once, not a hang or a memory blow-up.
    mkfifo(&zones.join("pipe.zone"));
    for (target, why) in [("pipe.zone", "FIFO"), ("/dev/zero", "a device")] {
        std::fs::write(zones.join("bad.toml"), zone("bad.test.", &format!("include = \"{target}\""))).unwrap();
        let (ok, err) = check_bounded(dir.path());
        assert!(!ok, "{err}");
        assert!(err.contains("zones/bad.toml:3:11:") && err.contains(why), "{target}: {err}");
    }
}

#[test]
fn a_change_to_a_dollar_included_file_outside_the_zones_dir_is_reloaded_without_sighup() {
    let dir = TempDir::new("incwatch");
    let zones = dir.path().join("zones");
    let masters = dir.path().join("masters");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::create_dir_all(&masters).unwrap();
    std::fs::write(zones.join("w.toml"), zone("w.test.", "include = \"../masters/top.zone\"")).unwrap();
    std::fs::write(masters.join("top.zone"), "top IN A 192.0.2.20\n$INCLUDE sub.zone\n").unwrap();
    std::fs::write(masters.join("sub.zone"), "sub IN A 192.0.2.30\n").unwrap();
    std::fs::write(dir.path().join("meridian.toml"), "zones = \"zones\"\nwatch_interval_ms = 200\n").unwrap();
    let s = Server::start_with(&[], Some(dir.path()));
    assert_eq!(s.dig("sub.w.test A").answers_of("A"), vec!["192.0.2.30"]);

    let changed = |name: &str, want: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while s.dig(&format!("{name}.w.test A")).answers_of("A") != vec![want.to_string()] {
            assert!(Instant::now() < deadline, "{name} not reloaded within 5 s:\n{}", s.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    std::fs::write(masters.join("sub.zone"), "sub IN A 192.0.2.131\n").unwrap();
    changed("sub", "192.0.2.131");
    std::fs::write(masters.join("top.zone"), "top IN A 192.0.2.121\n$INCLUDE sub.zone\n").unwrap();
    changed("top", "192.0.2.121");
}

/// Two CNAMEs at one name in an included master file: `check` refuses the
/// zone naming the name, as it does for TOML records and as Knot refuses
/// such a file (it used to keep the last CNAME silently and answer it).
#[test]
fn two_cnames_at_a_name_in_an_included_file_are_refused() {
    let dir = TempDir::new("twocnames");
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::write(zones.join("c.toml"), zone("c.test.", "include = \"c.inc.zone\"")).unwrap();
    std::fs::write(zones.join("c.inc.zone"), "alias IN CNAME www\nalias IN CNAME ns1\n").unwrap();
    let out = meridian(&["check", "--zones", zones.to_str().unwrap()], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "two CNAMEs accepted: {err}");
    assert!(err.contains("alias.c.test.") && err.contains("more than one CNAME"), "{err}");
    // One CNAME is fine.
    std::fs::write(zones.join("c.inc.zone"), "alias IN CNAME www\n").unwrap();
    let out = meridian(&["check", "--zones", zones.to_str().unwrap()], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A bad record in an included master file: `check` names that file and
/// the record's own line, whether our reader or hickory's parser read it
/// (hickory's errors carry no line; a record the zone refuses had none).
#[test]
fn a_bad_record_in_an_included_master_file_is_named_by_file_and_line() {
    let dir = TempDir::new("badline");
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::write(zones.join("l.toml"), zone("l.test.", "include = \"l.inc.zone\"")).unwrap();
    let plain: String = (0..40).map(|i| format!("h{i} 60 IN A 192.0.2.{i}\n")).collect();
    let long = "x".repeat(300);
    for (body, line, why) in [
        // Plain lines (our reader), one bad among them.
        (format!("{plain}bad 60 IN A 192.0.2.300\n{plain}"), 41, "in `bad 60 IN A 192.0.2.300`"),
        (format!("{plain}t 60 IN TXT \"{long}\"\n"), 41, "the limit is 255"),
        (format!("{plain}n 60 IN NAPTR 100 10 \"u\" \"E2U+sip\" \"\" .\n"), 41, "NAPTR is not supported"),
        (format!("{plain}out.example. 60 IN A 192.0.2.1\n"), 41, "outside the zone"),
        // Parentheses and a blank owner (hickory's parser, after our rewrite).
        (format!("$TTL 60\nmx ( MX 10\n  mail )\n  MX 20 mail\n\n  MX twenty mail\n{plain}"), 6, "MX twenty mail`"),
    ] {
        std::fs::write(zones.join("l.inc.zone"), &body).unwrap();
        let (ok, err) = check_bounded(dir.path());
        assert!(!ok, "accepted:\n{body}");
        assert!(err.contains(&format!("zones/l.inc.zone:{line}:1: ")) && err.contains(why), "want line {line}: {err}");
    }
    // In a file it includes: that file's line.
    std::fs::write(zones.join("inner.zone"), "ok A 192.0.2.1\n\nbroken AAAA 192.0.2.1\n").unwrap();
    std::fs::write(zones.join("l.inc.zone"), format!("{plain}$INCLUDE inner.zone sub\n")).unwrap();
    let (ok, err) = check_bounded(dir.path());
    assert!(!ok && err.contains("zones/inner.zone:3:1: "), "{err}");
}
