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

use hickory_proto::rr::{RData, RecordType};
use meridian::zone::Zone;

/// Where Debian installs the daemon.
const KNOTD_PATHS: &[&str] = &["/usr/sbin/knotd", "/usr/local/sbin/knotd"];

/// The knotd binary, if installed (the usual sbin paths, then `$PATH`).
pub fn knotd_path() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("knotd")).collect::<Vec<_>>())
        .unwrap_or_default();
    KNOTD_PATHS
        .iter()
        .map(PathBuf::from)
        .chain(on_path)
        .find(|p| p.is_file())
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
        let knotd = knotd_path()?;
        let origin = if origin.ends_with('.') {
            origin.to_string()
        } else {
            format!("{origin}.")
        };
        let mut last = String::new();
        // A few attempts only for the race on the free port; any other
        // failure panics at once.
        for _attempt in 0..5 {
            let dir = TempDir::new("knot");
            let d = dir.path().to_path_buf();
            std::fs::create_dir_all(d.join("db")).unwrap();
            std::fs::create_dir_all(d.join("zones")).unwrap();
            std::fs::write(d.join("zones").join("zone.db"), master_file).unwrap();
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
        if let Ok(None) = self.child.try_wait() {
            unsafe {
                libc::kill(self.child.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for KnotServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `zone` as a master file Knot parses into the same data Meridian serves.
///
/// Starts from `Zone::to_master_file()` and repairs one thing: hickory-proto's
/// `Display` for TXT writes the character-strings raw, unquoted and glued
/// together (`TXT v=spf1 mx -all` for the single string "v=spf1 mx -all"),
/// which a master-file parser reads as three strings (and `"a" "b"` would come
/// out as `ab`). So every TXT line is dropped and the TXT records are written
/// again from the RDATA, one quoted, escaped string per character-string.
/// All other types (A, AAAA, NS, CNAME, MX, SRV, CAA, PTR, SOA) are rendered
/// by hickory in syntax Knot accepts as is.
pub fn master_file_for_knot(zone: &Zone) -> String {
    let text = zone.to_master_file();
    let mut out: String = text
        .lines()
        .filter(|l| l.split_whitespace().nth(3) != Some("TXT"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut names: Vec<_> = zone.nodes.keys().collect();
    names.sort();
    for name in names {
        if let Some(set) = zone.nodes[name].get(RecordType::TXT) {
            for r in &set.records {
                let RData::TXT(txt) = &r.data else { continue };
                let strings: Vec<String> = txt.txt_data.iter().map(|s| quote_character_string(s)).collect();
                out.push_str(&format!(
                    "{} {} {} TXT {}\n",
                    r.name,
                    r.ttl,
                    r.dns_class,
                    strings.join(" ")
                ));
            }
        }
    }
    out
}

/// One RFC 1035 §5.1 <character-string>, quoted: `"` and `\` escaped, bytes
/// outside printable ASCII as `\DDD`.
pub fn quote_character_string(s: &[u8]) -> String {
    let mut q = String::from("\"");
    for &b in s {
        match b {
            b'"' | b'\\' => {
                q.push('\\');
                q.push(b as char);
            }
            0x20..=0x7e => q.push(b as char),
            _ => q.push_str(&format!("\\{b:03}")),
        }
    }
    q.push('"');
    q
}
