//! The binary as a service starts it: systemd's `$STATE_DIRECTORY` is the
//! state directory when the config names none, and a default listen address
//! the host lacks (no `::1`) is skipped with a warning while a configured one
//! still fails the start. The `::1`-less host is a network namespace made
//! here (`unshare -n`, IPv6 disabled on its `lo`); it needs root and `ip`.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Spawn `cmd` with its stderr in `log`.
fn spawn_logged(cmd: &mut Command, log: &Path) -> Child {
    let f = std::fs::File::create(log).unwrap();
    cmd.env("MERIDIAN_LOG", "info").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::from(f));
    cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// Wait (at most 20 s) until the log says "ready"; `Err(exit status)` if the child exited first.
fn wait_ready(child: &mut Child, log: &Path) -> Result<(), std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(status);
        }
        if std::fs::read_to_string(log).unwrap_or_default().contains("ready") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("meridian neither ready nor exited in 20 s; log:\n{}", std::fs::read_to_string(log).unwrap_or_default());
}

#[test]
fn state_directory_from_systemd_is_used_when_the_config_names_none() {
    let dir = TempDir::new("statedir");
    let etc = dir.path().join("etc");
    let state = dir.path().join("var-lib-meridian");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    let admin = free_port();
    let config = etc.join("meridian.toml");
    std::fs::write(
        &config,
        format!(
            "zones = {:?}\ngeoip = {:?}\nadmin = \"127.0.0.1:{admin}\"\n",
            repo().join("zones"),
            repo().join("geoip/demo.mmdb")
        ),
    )
    .unwrap();
    let log = dir.path().join("log");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--config", config.to_str().unwrap(), "--listen", &listen]);
    cmd.env("STATE_DIRECTORY", &state).current_dir(dir.path());
    let mut child = spawn_logged(&mut cmd, &log);
    let started = wait_ready(&mut child, &log);
    let token = state.join("admin.token");
    let deadline = Instant::now() + Duration::from_secs(5);
    while started.is_ok() && !token.is_file() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop_child(&mut child, Duration::from_secs(5));
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(started.is_ok(), "meridian exited ({:?}); log:\n{log_text}", started.err());
    assert!(token.is_file(), "no admin token in $STATE_DIRECTORY {}; log:\n{log_text}", state.display());
    assert!(!etc.join("state").exists(), "state was still made beside the config; log:\n{log_text}");
}

fn ip_tool() -> Option<PathBuf> {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].iter().map(PathBuf::from).find(|p| p.is_file())
}

/// `meridian serve ARGS` in a new network namespace whose `lo` is up with
/// IPv6 disabled (127.0.0.1 only), from the repository with `--admin off`.
fn serve_without_ipv6(ip: &Path, args: &[&str], log: &Path) -> Child {
    let script = format!(
        "{} link set lo up && echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6 && exec \"$0\" \"$@\"",
        ip.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-n", "--", "sh", "-c", &script]).arg(bin()).arg("serve").args(args);
    cmd.args(["--admin", "off"]).current_dir(repo());
    spawn_logged(&mut cmd, log)
}

#[test]
fn default_listen_skips_a_missing_ipv6_loopback_but_a_configured_one_fails_the_start() {
    if unsafe { libc::geteuid() } != 0 {
        return skip_or_fail("needs root for a network namespace without ::1 (unshare -n)");
    }
    let Some(ip) = ip_tool() else {
        return skip_or_fail("needs `ip` (Debian package iproute2)");
    };
    let dir = TempDir::new("no-ipv6");
    let state = dir.path().join("state");
    let state_arg = state.to_str().unwrap();

    // The defaults (127.0.0.1:5353, [::1]:5353): serves on 127.0.0.1, warns about ::1.
    let log = dir.path().join("defaults.log");
    let mut child = serve_without_ipv6(&ip, &["--state-dir", state_arg], &log);
    let started = wait_ready(&mut child, &log);
    let answer = started.is_ok().then(|| {
        let netns = format!("--net=/proc/{}/ns/net", child.id());
        let out = Command::new("nsenter")
            .args([netns.as_str(), "dig", "@127.0.0.1", "-p", "5353", "+short", "+time=2", "+tries=2"])
            .arg("static.gslb.example.test")
            .arg("A")
            .output()
            .expect("nsenter dig");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    });
    stop_child(&mut child, Duration::from_secs(5));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(started.is_ok(), "default listen without ::1 did not start ({:?}); log:\n{text}", started.err());
    assert_eq!(answer.as_deref(), Some("192.0.2.1"), "log:\n{text}");
    assert!(text.contains("[::1]:5353 skipped"), "no warning about the skipped ::1; log:\n{text}");

    // The same addresses configured: the missing one fails the start.
    let log = dir.path().join("configured.log");
    let args = ["--state-dir", state_arg, "--listen", "127.0.0.1:5353", "--listen", "[::1]:5353"];
    let mut child = serve_without_ipv6(&ip, &args, &log);
    let started = wait_ready(&mut child, &log);
    stop_child(&mut child, Duration::from_secs(5));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let status = started.expect_err("a configured [::1]:5353 that cannot be bound must fail the start");
    assert!(!status.success(), "{status}; log:\n{text}");
    assert!(text.contains("cannot bind UDP [::1]:5353"), "log:\n{text}");
}
