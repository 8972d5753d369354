//! The Debian package end to end (issue 22, "Must show 1"): `.ci/run` builds
//! it with `cargo deb` and sets `MERIDIAN_PACKAGE_DEB` (the .deb) and
//! `MERIDIAN_PACKAGE_E2E=require`. The test installs it with `dpkg -i` on this
//! machine, runs `meridian check` on the installed config, has
//! `systemd-analyze verify` check the unit, and starts the installed binary
//! the way the unit does: as the `meridian` user with only
//! `CAP_NET_BIND_SERVICE`, `--config /etc/meridian/meridian.toml`,
//! `STATE_DIRECTORY` set, `/etc` read-only (a private mount namespace), on a
//! loopback port below 1024; then asks it with `dig`.
//!
//! Without `MERIDIAN_PACKAGE_E2E=require` it prints `SKIP` (it installs a
//! package system-wide), and fails instead when `CI` is set.

use crate::common::*;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const UNIT: &str = "/usr/lib/systemd/system/meridian.service";
const CONFIG: &str = "/etc/meridian/meridian.toml";

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn must(cmd: &mut Command) -> String {
    let out = run(cmd);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{text}", out.status);
    text
}

/// A privileged loopback port (needs CAP_NET_BIND_SERVICE) free for UDP and TCP.
fn free_low_port() -> u16 {
    (900..1000)
        .find(|&p| {
            let a = SocketAddr::from(([127, 0, 0, 1], p));
            UdpSocket::bind(a).is_ok() && TcpListener::bind(a).is_ok()
        })
        .expect("a free loopback port in 900..1000")
}

/// The .deb to test, or why the test cannot run.
fn package() -> Result<PathBuf, String> {
    if std::env::var("MERIDIAN_PACKAGE_E2E").as_deref() != Ok("require") {
        return Err("package e2e runs from .ci/run (it builds the .deb with `cargo deb`, sets MERIDIAN_PACKAGE_DEB \
                    and MERIDIAN_PACKAGE_E2E=require; the test installs it system-wide)"
            .into());
    }
    let deb = std::env::var_os("MERIDIAN_PACKAGE_DEB").map(PathBuf::from);
    match deb {
        Some(d) if d.is_file() => Ok(d),
        d => panic!("MERIDIAN_PACKAGE_E2E=require but MERIDIAN_PACKAGE_DEB={d:?} is not a file"),
    }
}

#[test]
fn debian_package_installs_checks_verifies_and_serves_as_the_unit_runs_it() {
    let deb = match package() {
        Ok(d) => d,
        Err(why) => return skip_or_fail(&why),
    };
    assert_eq!(unsafe { libc::geteuid() }, 0, "dpkg -i needs root");

    // Installs (twice: an upgrade over itself must work too, user already there).
    must(Command::new("dpkg").arg("-i").arg(&deb));
    must(Command::new("dpkg").arg("-i").arg(&deb));
    let user = must(Command::new("getent").args(["passwd", "meridian"]));
    let uid: u32 = user.split(':').nth(2).and_then(|u| u.parse().ok()).expect("meridian's uid");
    assert_ne!(uid, 0, "the meridian user must not be root: {user}");
    for f in ["/usr/bin/meridian", UNIT, CONFIG, "/etc/meridian/zones/gslb.example.test.toml"] {
        assert!(Path::new(f).is_file(), "{f} not installed");
    }
    let conffiles = must(Command::new("dpkg-query").args(["--showformat=${Conffiles}", "--show", "meridian"]));
    assert!(conffiles.contains(CONFIG), "{CONFIG} is not a conffile: {conffiles}");

    // The installed config checks, as root and as the service user.
    must(Command::new("/usr/bin/meridian").args(["check", "--config", CONFIG]));
    must(Command::new("setpriv").args(["--reuid=meridian", "--regid=meridian", "--init-groups"]).args([
        "/usr/bin/meridian",
        "check",
        "--config",
        CONFIG,
    ]));

    // systemd accepts the unit, and the anycast example's (its binary is in
    // /usr/local/bin, from `cargo install`; here the package's stands in).
    must(Command::new("systemd-analyze").args(["verify", UNIT]));
    let units = TempDir::new("package-units");
    let anycast = std::fs::read_to_string(repo().join("examples/anycast/meridian.service")).unwrap();
    let anycast_unit = units.path().join("meridian.service");
    std::fs::write(&anycast_unit, anycast.replace("/usr/local/bin/meridian", "/usr/bin/meridian")).unwrap();
    must(Command::new("systemd-analyze").arg("verify").arg(&anycast_unit));

    // Run as the unit does. setpriv gives what User= and AmbientCapabilities=
    // give; `/etc` read-only and a fresh state directory stand for
    // ProtectSystem=strict and StateDirectory=.
    let state = TempDir::new("package-state");
    must(Command::new("chown").arg("meridian:meridian").arg(state.path()));
    let port = free_low_port();
    let admin = free_port();
    let log = state.path().join("serve.log");
    let logf = std::fs::File::create(&log).unwrap();
    let mut child = Command::new("unshare")
        .args(["-m", "--", "sh", "-c", "mount -o bind,ro /etc /etc && exec \"$@\"", "sh"])
        .args(["setpriv", "--reuid=meridian", "--regid=meridian", "--init-groups", "--no-new-privs"])
        .args(["--inh-caps=-all,+net_bind_service", "--ambient-caps=-all,+net_bind_service"])
        .args(["--bounding-set=-all,+net_bind_service"])
        .args(["/usr/bin/meridian", "serve", "--config", CONFIG])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--admin")
        .arg(format!("127.0.0.1:{admin}"))
        .env("STATE_DIRECTORY", state.path())
        .env("MERIDIAN_LOG", "info")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(logf))
        .spawn()
        .expect("unshare");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ready = false;
    while !ready && Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("installed meridian exited ({status}); log:\n{}", std::fs::read_to_string(&log).unwrap());
        }
        ready = std::fs::read_to_string(&log).unwrap_or_default().contains("ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let answer = ready.then(|| dig(addr, "static.gslb.example.test A").answers_of("A"));
    // ExecReload: SIGHUP, and it keeps answering.
    let after_reload = ready.then(|| {
        unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
        std::thread::sleep(Duration::from_millis(300));
        dig(addr, "static.gslb.example.test A").answers_of("A")
    });
    stop_child(&mut child, Duration::from_secs(5));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(ready, "installed meridian not ready in 20 s; log:\n{text}");
    assert_eq!(answer, Some(vec!["192.0.2.1".to_string()]), "log:\n{text}");
    assert_eq!(after_reload, answer, "after SIGHUP; log:\n{text}");
    assert!(state.path().join("admin.token").is_file(), "no admin token in STATE_DIRECTORY; log:\n{text}");
    assert!(!Path::new("/etc/meridian/state").exists(), "state made under /etc");
}
