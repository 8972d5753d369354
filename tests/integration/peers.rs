//! Real peers for the resolver test: NSD (Debian package `nsd`) as an
//! authoritative parent, Unbound (Debian package `unbound`) as a recursive
//! resolver. Each runs in the foreground as a child process with its config,
//! zone files, pid file and log in a temporary directory, listens on loopback
//! only, and is stopped (SIGTERM, then SIGKILL) when dropped.

#![allow(dead_code)]

use crate::common::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The first of `names` found in the usual sbin directories or on `$PATH`.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default();
    ["/usr/sbin", "/usr/local/sbin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .chain(on_path)
        .find(|p| p.is_file())
}

pub fn nsd_path() -> Option<PathBuf> {
    find_binary("nsd")
}

pub fn unbound_path() -> Option<PathBuf> {
    find_binary("unbound")
}

/// A foreground daemon we started; SIGTERM (then SIGKILL) on drop.
pub struct Daemon {
    pub name: &'static str,
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    /// Also read for a pid to signal on drop (NSD forks its server process;
    /// it writes the main pid there).
    pub pidfile: Option<PathBuf>,
    dir: TempDir,
}

impl Daemon {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn dig(&self, args: &str) -> Dig {
        dig(self.addr, args)
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Poll `probe` until it returns true, the daemon exits, or `secs` pass.
    fn wait_until(&mut self, secs: u64, mut probe: impl FnMut(&Daemon) -> bool) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Err(format!("{} exited early ({status})", self.name));
            }
            if probe(self) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("{} not ready within {secs} s", self.name))
    }

    fn kill(&mut self) {
        let extra: Option<i32> = self
            .pidfile
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&p: &i32| p > 1 && p as u32 != self.child.id());
        stop_child(&mut self.child, Duration::from_secs(5));
        // A pid the daemon wrote itself, in our own temporary directory: only
        // signalled if it is still a process of that daemon (its name).
        if let Some(pid) = extra {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == self.name {
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(bin: &Path, args: &[&str], log: &Path) -> Child {
    let logf = std::fs::File::create(log).unwrap();
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(logf.try_clone().unwrap()))
        .stderr(Stdio::from(logf))
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()))
}

fn port_in_use(log: &str) -> bool {
    let l = log.to_ascii_lowercase();
    l.contains("address already in use") || l.contains("can't bind") || l.contains("could not bind")
}

/// NSD serving one zone (`origin`, master file text) on 127.0.0.1 and a
/// free port, authoritative only. `None` when nsd is not installed; an nsd
/// that is installed but does not come up panics with its log.
pub fn start_nsd(origin: &str, master_file: &str) -> Option<Daemon> {
    let nsd = nsd_path()?;
    let origin = origin.trim_end_matches('.').to_string();
    let mut last = String::new();
    for _attempt in 0..5 {
        let dir = TempDir::new("nsd");
        let d = dir.path().to_path_buf();
        std::fs::write(d.join("zone.db"), master_file).unwrap();
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        // NSD 4.x (nsd.conf(5)). No privilege drop (username ""), no chroot,
        // no database file, every state file in the temporary directory, one
        // server process, no remote control: nothing outside `d` is touched.
        let conf = format!(
            r#"server:
    ip-address: 127.0.0.1@{port}
    port: {port}
    do-ip4: yes
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    database: ""
    zonesdir: "{dir}"
    zonelistfile: "{dir}/zone.list"
    xfrdfile: "{dir}/xfrd.state"
    xfrdir: "{dir}"
    pidfile: "{dir}/nsd.pid"
    logfile: "{dir}/nsd.log"
    verbosity: 1
    hide-version: no

remote-control:
    control-enable: no

zone:
    name: "{origin}"
    zonefile: "zone.db"
"#,
            dir = d.display()
        );
        let conf_path = d.join("nsd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = d.join("nsd.log");
        let stderr = d.join("nsd.stderr");
        let child = spawn(&nsd, &["-d", "-c", conf_path.to_str().unwrap()], &stderr);
        let mut daemon = Daemon { name: "nsd", child, addr, log: log.clone(), pidfile: Some(d.join("nsd.pid")), dir };
        let q = format!("{origin}. SOA +time=1");
        match daemon.wait_until(20, |me| {
            let r = me.dig(&q);
            r.status == "NOERROR" && r.has_flag("aa") && !r.answer.is_empty()
        }) {
            Ok(()) => return Some(daemon),
            Err(e) => {
                let text = format!("{}{}", std::fs::read_to_string(&stderr).unwrap_or_default(), daemon.log_text());
                if !port_in_use(&text) {
                    panic!("nsd did not start: {e}\nnsd output:\n{text}");
                }
                last = format!("{e}\nnsd output:\n{text}");
            }
        }
    }
    panic!("nsd did not start (port races): {last}");
}

/// Unbound as a recursive resolver on 127.0.0.1 and a free port, with
/// `server_extra` appended to its `server:` clause and `tail` (stub-zone:
/// clauses and the like) after it. It is up when it answers
/// `version.server CH TXT` (answered locally, so no upstream is needed yet).
/// `None` when unbound is not installed.
pub fn start_unbound(server_extra: &str, tail: &str) -> Option<Daemon> {
    let unbound = unbound_path()?;
    let mut last = String::new();
    for _attempt in 0..5 {
        let dir = TempDir::new("unbound");
        let d = dir.path().to_path_buf();
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let conf = format!(
            r#"server:
    interface: 127.0.0.1@{port}
    port: {port}
    access-control: 127.0.0.0/8 allow
    num-threads: 1
    do-daemonize: no
    use-syslog: no
    logfile: ""
    log-time-ascii: yes
    verbosity: 1
    chroot: ""
    username: ""
    directory: "{dir}"
    pidfile: "{dir}/unbound.pid"
    hide-version: no
{server_extra}
remote-control:
    control-enable: no
{tail}
"#,
            dir = d.display()
        );
        let conf_path = d.join("unbound.conf");
        std::fs::write(&conf_path, &conf).unwrap();
        let log = d.join("unbound.log");
        let child = spawn(&unbound, &["-d", "-c", conf_path.to_str().unwrap()], &log);
        let mut daemon = Daemon { name: "unbound", child, addr, log, pidfile: None, dir };
        match daemon.wait_until(20, |me| !me.dig("version.server CH TXT +time=1").status.is_empty()) {
            Ok(()) => return Some(daemon),
            Err(e) => {
                let text = daemon.log_text();
                if !port_in_use(&text) {
                    panic!("unbound did not start: {e}\nconfig:\n{conf}\nunbound log:\n{text}");
                }
                last = format!("{e}\nunbound log:\n{text}");
            }
        }
    }
    panic!("unbound did not start (port races): {last}");
}
