//! A real Knot DNS (`knotd`, Debian package `knot`) serving one static zone on
//! a free loopback port, for differential tests. Started in the foreground as
//! a child process with everything (config, zone file, rundir, databases) in
//! a temporary directory; killed when dropped.

#![allow(dead_code)]

use crate::common::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs the daemon.
const KNOTD_PATHS: &[&str] = &["/usr/sbin/knotd", "/usr/local/sbin/knotd"];

/// The knotd binary, if installed (the usual sbin paths, then `$PATH`).
pub fn knotd_path() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("knotd")).collect::<Vec<_>>())
        .unwrap_or_default();
    KNOTD_PATHS.iter().map(PathBuf::from).chain(on_path).find(|p| p.is_file())
}

/// A running knotd, killed (SIGTERM, then SIGKILL) when dropped.
pub struct KnotServer {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    dir: TempDir,
}

impl KnotServer {
    /// Serve `master_file` (RFC 1035 text, SOA first) as zone `origin` on a
    /// fresh loopback port. `None` only when knotd is not installed; a knotd
    /// that is installed but does not come up (bad config, unparseable zone)
    /// panics with its log.
    pub fn start(origin: &str, master_file: &str) -> Option<KnotServer> {
        KnotServer::start_with_files(origin, master_file, &[])
    }

    /// [`KnotServer::start`] with more files (`$INCLUDE` targets) written
    /// beside the zone file first, at paths relative to its directory.
    pub fn start_with_files(origin: &str, master_file: &str, files: &[(&str, &str)]) -> Option<KnotServer> {
        let knotd = knotd_path()?;
        let origin = if origin.ends_with('.') { origin.to_string() } else { format!("{origin}.") };
        let mut last = String::new();
        // A few attempts only for the race on the free port; any other
        // failure panics at once.
        for _attempt in 0..5 {
            let dir = TempDir::new("knot");
            let d = dir.path().to_path_buf();
            std::fs::create_dir_all(d.join("db")).unwrap();
            std::fs::create_dir_all(d.join("zones")).unwrap();
            std::fs::write(d.join("zones").join("zone.db"), master_file).unwrap();
            for (path, text) in files {
                let p = d.join("zones").join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, text).unwrap();
            }
            let port = free_port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            // Knot 3.2 option names (knot.conf(5)). No DNSSEC signing (the
            // default, dnssec-signing: off); the zone file is never rewritten
            // (zonefile-sync: -1) and no journal is kept (journal-content:
            // none), so what is served is exactly the file. semantic-checks
            // off: the mandatory checks (CNAME beside other data, ...) still
            // apply. knotd runs as whoever runs the test (no `user:`), and
            // udp-max-payload is Knot's default 1232, the same as Meridian's.
            let conf = format!(
                r#"server:
    rundir: "{dir}"
    pidfile: "{dir}/knot.pid"
    listen: 127.0.0.1@{port}
    udp-max-payload: 1232

database:
    storage: "{dir}/db"

log:
  - target: stderr
    any: info

control:
    listen: "{dir}/knot.sock"

template:
  - id: default
    storage: "{dir}/zones"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off

zone:
  - domain: "{origin}"
    file: "zone.db"
"#,
                dir = d.display()
            );
            let conf_path = d.join("knot.conf");
            std::fs::write(&conf_path, conf).unwrap();
            let log = d.join("knotd.log");
            let logf = std::fs::File::create(&log).unwrap();
            let child = Command::new(&knotd)
                .arg("-c")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(logf))
                .spawn()
                .expect("start knotd");
            let mut server = KnotServer { child, addr, log, dir };
            match server.wait_ready(&origin) {
                Ok(()) => return Some(server),
                Err(e) => {
                    let text = server.log_text();
                    if !text.to_ascii_lowercase().contains("already in use") {
                        panic!("knotd did not start: {e}\nknotd log:\n{text}");
                    }
                    last = format!("{e}\nknotd log:\n{text}");
                }
            }
        }
        panic!("knotd did not start (port races): {last}");
    }

    /// Ask `dig` (with common's defaults: +norec +time=2 +tries=1).
    pub fn dig(&self, args: &str) -> Dig {
        dig(self.addr, args)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Up when it answers the zone's SOA authoritatively (so the zone file
    /// was parsed and loaded, not just the sockets bound).
    fn wait_ready(&mut self, origin: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("knotd exited early ({status})"));
            }
            let text = self.log_text();
            // Knot 3.2: "failed to parse zone file ..." then "zone event 'load' failed".
            if text.contains("failed to parse zone file") || text.contains("event 'load' failed") {
                return Err("knotd could not load the zone (see its log for the line)".into());
            }
            let d = dig(self.addr, &format!("{origin} SOA +time=1"));
            if d.status == "NOERROR" && d.has_flag("aa") && !d.answer.is_empty() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("knotd did not answer the zone's SOA within 20 s".into())
    }

    fn kill(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(5));
    }
}

impl Drop for KnotServer {
    fn drop(&mut self) {
        self.kill();
    }
}
