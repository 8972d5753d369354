//! Files named in the configuration that are not regular files: a FIFO or
//! /dev/zero as the GeoIP database, the TLS certificate or key, or the admin
//! token must stop `serve` at once, naming the file (never hang on the FIFO,
//! never read /dev/zero until memory runs out).

use crate::common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

/// Runs `serve` with `args`; it must exit non-zero within 20 s and say `named`.
fn refuses(args: &[&str], dir: &Path, named: &str) {
    let port = free_port();
    let mut child = Command::new(bin())
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(args)
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            stop_child(&mut child, Duration::from_secs(1));
            panic!("serve {args:?} still running after 20 s: it hangs on {named}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "serve {args:?} started");
    assert!(err.contains(named), "the error names {named}: {err}");
    assert!(err.contains("regular file"), "the error says why: {err}");
}

#[test]
fn a_fifo_or_a_device_as_geoip_certificate_key_or_token_fails_the_start_naming_it() {
    let dir = TempDir::new("adversarial");
    let fifo = dir.path().join("pipe");
    mkfifo(&fifo);
    let fifo_s = fifo.display().to_string();
    let tls = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_p, key_p) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_p, cert.pem()).unwrap();
    std::fs::write(&key_p, signing_key.serialize_pem()).unwrap();
    let (cert_s, key_s) = (cert_p.display().to_string(), key_p.display().to_string());

    for bad in ["/dev/zero", fifo_s.as_str()] {
        refuses(&["--admin", "off", "--geoip", bad], dir.path(), bad);
        refuses(&["--admin", "off", "--listen-tls", &tls, "--tls-cert", bad, "--tls-key", &key_s], dir.path(), bad);
        refuses(&["--admin", "off", "--listen-tls", &tls, "--tls-cert", &cert_s, "--tls-key", bad], dir.path(), bad);
        let cfg = dir.path().join("meridian.toml");
        std::fs::write(&cfg, format!("zones = \"{}\"\nadmin_token_file = \"{bad}\"\n", repo().join("zones").display()))
            .unwrap();
        refuses(&["--admin", &admin, "--config", cfg.to_str().unwrap()], dir.path(), bad);
    }
}
