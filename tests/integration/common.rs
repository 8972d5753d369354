//! Shared helpers: start the real binary, ask it with dig, parse dig's output.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_meridian"))
}

/// MaxMind's test databases, kept in the repository: `tests/data/geoip/<sub>`
/// (`maxmind-test` or `maxmind-bad`; see the README there).
pub fn test_geoip(sub: &str) -> PathBuf {
    let dir = repo().join("tests/data/geoip").join(sub);
    assert!(dir.is_dir(), "{} missing: MaxMind's test databases travel with the repository", dir.display());
    dir
}

/// Under CI (`$CI` set, as CI services do) a test that cannot run fails,
/// so a missing tool shows up as red instead of a quiet pass; elsewhere it
/// prints `SKIP: …` (visible with `--nocapture`) and the test returns.
pub fn skip_or_fail(why: &str) {
    if in_ci() {
        panic!("cannot run under CI: {why}");
    }
    eprintln!("SKIP: {why}");
}

/// `$CI` is set to something other than empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// A loopback port free for both UDP and TCP right now, and never handed out
/// before in this test run: the kernel may give a just-released port again,
/// and two servers of parallel tests would then share it (Meridian's UDP
/// sockets use SO_REUSEPORT, so the second bind succeeds and answers leak
/// between the tests). Taken below the kernel's ephemeral range
/// (32768-60999 by default), which the kernel never hands to a client
/// socket: dig's source port once equalled a server's port (both sockets
/// allow address reuse), and dig, connected to itself, read its own query
/// back as the answer.
pub fn free_port() -> u16 {
    const LOW: u16 = 20_000;
    const SPAN: u16 = 12_000; // 20000..32000
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    // A different start per process, so concurrent test binaries rarely probe the same ports.
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for i in 0..u64::from(SPAN) {
        let port = LOW + ((seed.wrapping_mul(2_654_435_761).wrapping_add(i * 7_919)) % u64::from(SPAN)) as u16;
        if given.contains(&port) {
            continue;
        }
        // Free on the wildcard (so on 127.0.0.1 too, and for tests that listen on 0.0.0.0), and for TCP.
        let (Ok(_udp), Ok(_tcp)) = (UdpSocket::bind(("0.0.0.0", port)), TcpListener::bind(("127.0.0.1", port))) else {
            continue;
        };
        given.push(port);
        return port;
    }
    panic!("no free port");
}

/// A running `meridian serve`, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    _dir: Option<TempDir>,
}

impl Server {
    /// Serve the shipped zones on a fresh loopback port.
    pub fn start() -> Server {
        Server::start_with(&[], None)
    }

    /// `extra` flags are appended to `serve --listen 127.0.0.1:PORT`; `cwd` defaults to the repo.
    pub fn start_with(extra: &[&str], cwd: Option<&Path>) -> Server {
        let mut server = Server::spawn_with(extra, cwd);
        server.wait_ready();
        server
    }

    /// `start_with` without waiting for it to be ready (`wait_ready`).
    pub fn spawn_with(extra: &[&str], cwd: Option<&Path>) -> Server {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let dir = TempDir::new("server");
        let log = dir.path().join("meridian.log");
        let logf = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(bin());
        cmd.arg("serve").arg("--listen").arg(addr.to_string()).args(extra);
        // Never share the repository's ./state (overrides, token) between tests.
        if !extra.contains(&"--state-dir") {
            cmd.arg("--state-dir").arg(dir.path().join("state"));
        }
        // Parallel tests must not race for the default admin port.
        if !extra.contains(&"--admin") {
            cmd.arg("--admin").arg("off");
        }
        cmd.current_dir(cwd.unwrap_or(&repo()));
        cmd.env("MERIDIAN_LOG", "debug");
        cmd.stdout(Stdio::null()).stderr(Stdio::from(logf));
        let child = cmd.spawn().expect("start meridian");
        Server { child, addr, log, _dir: Some(dir) }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("meridian exited early ({status}); log:\n{}", self.log_text());
            }
            if self.log_text().contains("ready") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("meridian not ready in 20 s; log:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Send SIGTERM and wait for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("meridian did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn dig(&self, args: &str) -> Dig {
        dig(self.addr, args)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(5));
    }
}

/// SIGTERM a child, wait up to `grace` for it to exit, then SIGKILL it.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(None) = child.try_wait() {
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "meridian-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What dig printed, split into the parts tests assert on.
#[derive(Debug, Clone, Default)]
pub struct Dig {
    pub raw: String,
    pub status: String,
    pub flags: Vec<String>,
    pub question: Vec<String>,
    pub answer: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
    pub edns: Option<String>,
    pub ecs: Option<String>,
}

impl Dig {
    pub fn has_flag(&self, f: &str) -> bool {
        self.flags.iter().any(|x| x == f)
    }
    /// RDATA of every answer record of `rtype`.
    pub fn answers_of(&self, rtype: &str) -> Vec<String> {
        rr_data(&self.answer, rtype)
    }
    /// The answer's A/AAAA addresses, sorted.
    pub fn addrs(&self) -> Vec<String> {
        let mut v = self.answers_of("A");
        v.extend(self.answers_of("AAAA"));
        v.sort();
        v
    }
    /// ECS scope prefix echoed by the server (`; CLIENT-SUBNET: addr/src/scope`).
    pub fn ecs_scope(&self) -> Option<u8> {
        self.ecs.as_ref()?.rsplit('/').next()?.trim().parse().ok()
    }
}

/// RDATA (everything after the type) of records of `rtype` among `lines`.
pub fn rr_data(lines: &[String], rtype: &str) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 5 && f[3] == rtype).then(|| f[4..].join(" "))
        })
        .collect()
}

pub fn dig_available() -> bool {
    Command::new("dig").arg("-v").output().is_ok()
}

/// Run `dig @addr -p port +norec +time=2 +tries=1 ARGS` and parse the output.
pub fn dig(addr: SocketAddr, args: &str) -> Dig {
    assert!(dig_available(), "dig is required: apt-get install bind9-dnsutils");
    let out: Output = Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .arg("-p")
        .arg(addr.port().to_string())
        .args(["+norec", "+time=2", "+tries=1"])
        .args(args.split_whitespace())
        .output()
        .expect("run dig");
    parse_dig(&String::from_utf8_lossy(&out.stdout))
}

pub fn parse_dig(text: &str) -> Dig {
    let mut d = Dig { raw: text.to_string(), ..Default::default() };
    let mut section: Option<&str> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix(";; ->>HEADER<<-") {
            if let Some(s) = rest.split("status: ").nth(1) {
                d.status = s.split(',').next().unwrap_or("").trim().to_string();
            }
        } else if let Some(rest) = t.strip_prefix(";; flags:") {
            let flags = rest.split(';').next().unwrap_or("");
            d.flags = flags.split_whitespace().map(str::to_string).collect();
        } else if t.starts_with("; EDNS:") {
            d.edns = Some(t.to_string());
        } else if let Some(rest) = t.strip_prefix("; CLIENT-SUBNET:") {
            d.ecs = Some(rest.trim().to_string());
        } else if t == ";; QUESTION SECTION:" {
            section = Some("q");
        } else if t == ";; ANSWER SECTION:" {
            section = Some("an");
        } else if t == ";; AUTHORITY SECTION:" {
            section = Some("au");
        } else if t == ";; ADDITIONAL SECTION:" {
            section = Some("ad");
        } else if t.is_empty() {
            section = None;
        } else if let Some(s) = section {
            match s {
                "q" => d.question.push(t.trim_start_matches(';').to_string()),
                _ if t.starts_with(';') => {}
                "an" => d.answer.push(t.to_string()),
                "au" => d.authority.push(t.to_string()),
                "ad" => d.additional.push(t.to_string()),
                _ => {}
            }
        }
    }
    d
}

/// Run the meridian binary with args in `cwd`, returning its output.
pub fn meridian(args: &[&str], cwd: &Path) -> Output {
    Command::new(bin()).args(args).current_dir(cwd).output().expect("run meridian")
}

/// `GET path` over HTTP/1.0 (no chunking, connection closed by the server): status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the admin API");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

/// `GET path` over HTTP/1.0 with `headers` (`Name: value` lines): status,
/// response head (lowercased) and body.
pub fn http_get_with(addr: SocketAddr, path: &str, headers: &[&str]) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the admin API");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{extra}\r\n").unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// The value of one sample in Prometheus text (`name{labels} value`), if present.
pub fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The A and AAAA addresses of a reply's answer section, in order.
pub fn answer_addresses(m: &hickory_proto::op::Message) -> Vec<String> {
    use hickory_proto::rr::RData;
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

/// A DNS query for `name`/`rtype` with EDNS, as bytes.
pub fn query_bytes(id: u16, name: &str, rtype: hickory_proto::rr::RecordType) -> Vec<u8> {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(hickory_proto::rr::Name::from_ascii(name).unwrap(), rtype));
    m.set_edns(Edns::new());
    m.to_vec().unwrap()
}

/// The start of a test zone: `origin`, one name server `ns1` with its address, an SOA.
pub fn zone_head(origin: &str) -> String {
    format!(
        r#"origin = "{origin}"
ns = ["ns1"]

[soa]
mname = "ns1"
rname = "hostmaster"
serial = 1

[[records]]
name = "ns1"
type = "A"
data = "192.0.2.53"
"#
    )
}
