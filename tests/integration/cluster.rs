//! Issue 20: several nodes, one answer. A real etcd (Debian's etcd-server)
//! on loopback ports with a temporary data directory, three `meridian serve`
//! nodes sharing it through `[cluster]`; overrides set on one node reach all.
//! Without etcd installed the tests skip, except under CI, where they fail.

use crate::common::*;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const Z: &str = "gslb.example.test";
const EU_WEST: &str = "198.51.100.10";
const US_EAST: &str = "192.0.2.10";
/// A London client subnet: eu-west by continent, us-east when eu-west is drained.
const LONDON: &str = "10.3.0.0/24";

/// One cluster test at a time: each runs an etcd and three or four nodes,
/// and their timing limits (2 s) are about Meridian, not a starved machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn etcd_bin() -> Option<PathBuf> {
    ["/usr/bin/etcd", "/usr/local/bin/etcd"].iter().map(PathBuf::from).find(|p| p.is_file())
}

/// The etcd binary, or `None` (skip) outside CI; in CI a missing etcd fails.
fn need_etcd() -> Option<PathBuf> {
    let found = etcd_bin();
    if found.is_none() {
        skip_or_fail("etcd not installed (apt-get install etcd-server; .ci/run installs it)");
    }
    found
}

/// One etcd member on loopback; stopped on drop, restartable on the same data.
struct Etcd {
    bin: PathBuf,
    dir: TempDir,
    client: u16,
    peer: u16,
    child: Option<Child>,
    /// Serving clients over TLS, with client certificates required (`Pki`'s files).
    tls: Option<Pki>,
}

impl Etcd {
    fn start(bin: PathBuf) -> Etcd {
        Etcd::start_tls(bin, None)
    }

    fn start_tls(bin: PathBuf, tls: Option<Pki>) -> Etcd {
        let (client, peer) = (free_port(), free_port());
        let mut e = Etcd { bin, dir: TempDir::new("etcd"), client, peer, child: None, tls };
        e.resume();
        e
    }

    fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client)
    }

    /// Start (again) on the same ports and data; wait until it is healthy.
    fn resume(&mut self) {
        let (c, p) = (self.url(), format!("http://127.0.0.1:{}", self.peer));
        let log = std::fs::File::create(self.dir.path().join("etcd.log")).unwrap();
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--name", "default", "--listen-client-urls", &c, "--advertise-client-urls", &c])
            .args(["--listen-peer-urls", &p, "--initial-advertise-peer-urls", &p])
            .arg(format!("--initial-cluster=default={p}"));
        if let Some(pki) = &self.tls {
            cmd.arg("--cert-file").arg(pki.file("server.pem"));
            cmd.arg("--key-file").arg(pki.file("server.key"));
            cmd.arg("--trusted-ca-file").arg(pki.file("ca.pem"));
            cmd.arg("--client-cert-auth");
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::from(log)).spawn().expect("start etcd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.gateway("GET", "/health", "").contains("true") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("etcd not healthy in 20 s: {}", std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap());
    }

    /// A request to etcd's HTTP gateway (with the client certificate over
    /// TLS, by curl); the body of the reply, or "" when it did not answer.
    fn gateway(&self, method: &str, path: &str, body: &str) -> String {
        let Some(pki) = &self.tls else {
            let addr: SocketAddr = format!("127.0.0.1:{}", self.client).parse().unwrap();
            return if TcpStream::connect(addr).is_ok() { http_get(addr, path).1 } else { String::new() };
        };
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "--max-time", "5", "-X", method]);
        cmd.arg("--cacert").arg(pki.file("ca.pem"));
        cmd.arg("--cert").arg(pki.file("client.pem"));
        cmd.arg("--key").arg(pki.file("client.key"));
        if !body.is_empty() {
            cmd.args(["-d", body]);
        }
        let out = cmd.arg(format!("{}{path}", self.url())).output().expect("curl (.ci/run installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(5));
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Meridian node of the cluster, with its own state directory and admin port.
struct Node {
    server: Option<Server>,
    name: String,
    dir: PathBuf,
    admin: SocketAddr,
    zones: PathBuf,
}

impl Node {
    fn start(name: &str, etcd: &Etcd, dir: &Path) -> Node {
        Node::start_with(name, etcd, dir, "", &repo().join("zones"))
    }

    /// `top` is added at the top of meridian.toml (e.g. `probe_source`).
    fn start_with(name: &str, etcd: &Etcd, dir: &Path, top: &str, zones: &Path) -> Node {
        std::fs::create_dir_all(dir).unwrap();
        let cfg = format!(
            "{top}\n[cluster]\nnode = \"{name}\"\nendpoints = [\"{}\"]\nprefix = \"/meridian-test\"\nfirst_sync_secs = 2\n",
            etcd.url()
        );
        std::fs::write(dir.join("meridian.toml"), cfg).unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut n = Node { server: None, name: name.into(), dir: dir.to_path_buf(), admin, zones: zones.to_path_buf() };
        n.restart();
        n
    }

    /// A node whose `[cluster]` table is `cluster` (endpoints, TLS, user)
    /// below its name, prefix and first sync.
    fn start_cluster_toml(name: &str, dir: &Path, cluster: &str) -> Node {
        std::fs::create_dir_all(dir).unwrap();
        let cfg =
            format!("[cluster]\nnode = \"{name}\"\nprefix = \"/meridian-test\"\nfirst_sync_secs = 2\n{cluster}\n");
        std::fs::write(dir.join("meridian.toml"), cfg).unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let zones = repo().join("zones");
        let mut n = Node { server: None, name: name.into(), dir: dir.to_path_buf(), admin, zones };
        n.restart();
        n
    }

    /// Start (again) with the same configuration and state directory.
    fn restart(&mut self) {
        self.server = None; // stops the old process first
        let (cfg, state, admin) = (self.dir.join("meridian.toml"), self.dir.join("state"), self.admin.to_string());
        let zones = self.zones.clone();
        let geoip = repo().join("geoip/demo.mmdb");
        let args: Vec<String> = vec![
            "--config".into(),
            cfg.display().to_string(),
            "--zones".into(),
            zones.display().to_string(),
            "--geoip".into(),
            geoip.display().to_string(),
            "--state-dir".into(),
            state.display().to_string(),
            "--admin".into(),
            admin,
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut server = Server::spawn_with(&args, None);
        // Not `wait_ready`: the etcd client's debug log says "ready" too.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !server.log_text().contains(" meridian::server: ready") {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("meridian exited early ({status}); log:\n{}", server.log_text());
            }
            assert!(Instant::now() < deadline, "node {} not ready in 20 s:\n{}", self.name, server.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        self.server = Some(server);
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("running")
    }

    /// The London answer, by a query sent from this process: polling with
    /// `dig` would spawn processes, whose delay on a busy machine would be
    /// counted against the node.
    fn london(&self) -> String {
        let addrs = ecs_addrs(self.server().addr, &format!("www.{Z}."), LONDON.parse().unwrap());
        assert_eq!(addrs.len(), 1, "node {}: one A answer expected: {addrs:?}", self.name);
        addrs[0].clone()
    }

    fn call(&self, method: &str, path: &str) -> (u16, serde_json::Value) {
        use std::io::{Read, Write};
        let token = std::fs::read_to_string(self.dir.join("state/admin.token")).unwrap();
        let mut s = TcpStream::connect(self.admin).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
            token.trim()
        )
        .unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (code, serde_json::from_str(body).unwrap_or_else(|e| panic!("{method} {path}: {code} {body:?}: {e}")))
    }

    fn status(&self) -> serde_json::Value {
        let (code, body) = http_get(self.admin, "/status");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

/// Poll every node until each answers `want` to London; the time each took.
fn until_all(nodes: &[&Node], want: &str, limit: Duration) -> Vec<Duration> {
    let start = Instant::now();
    let mut took: Vec<Option<Duration>> = vec![None; nodes.len()];
    while took.iter().any(Option::is_none) && start.elapsed() < limit {
        for (i, n) in nodes.iter().enumerate() {
            if took[i].is_none() && n.london() == want {
                took[i] = Some(start.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    nodes
        .iter()
        .zip(took)
        .map(|(n, t)| t.unwrap_or_else(|| panic!("node {} did not answer {want} within {limit:?}", n.name)))
        .collect()
}

/// Must-show 1: a drain issued on node B is in the answers of A, B and C
/// within 2 s; a node restarted while it is active (and a new node with an
/// empty state directory) answers drained from its first query; its expiry
/// ends it on all three within 2 s of each other.
#[test]
fn cluster_drain_on_one_node_reaches_all_and_expires_together() {
    let _serial = serial();
    let Some(bin) = need_etcd() else { return };
    let etcd = Etcd::start(bin);
    let dir = TempDir::new("cluster-drain");
    let mut a = Node::start("a", &etcd, &dir.path().join("a"));
    let b = Node::start("b", &etcd, &dir.path().join("b"));
    let c = Node::start("c", &etcd, &dir.path().join("c"));
    until_all(&[&a, &b, &c], EU_WEST, Duration::from_secs(2));

    // Measured from the request: b's own apply is part of the 2 s.
    let issued = Instant::now();
    let (code, body) = b.call("POST", "/regions/eu-west/drain?for=10s");
    assert_eq!(code, 200, "{body}");
    let until = body["override"]["until_epoch"].as_u64().expect("an absolute expiry");
    let answered = issued.elapsed();
    let took: Vec<Duration> =
        until_all(&[&a, &b, &c], US_EAST, Duration::from_secs(2)).into_iter().map(|t| t + answered).collect();
    eprintln!("drain issued on b: in the answers of a, b, c after {took:?}");
    assert!(took.iter().all(|t| *t < Duration::from_secs(2)), "{took:?}");
    assert_eq!(a.status()["cluster"]["connected"], true, "{}", a.status());

    // Restarted while drained: drained from its first answer.
    a.restart();
    assert_eq!(a.london(), US_EAST, "restarted node's first answer");
    let d = Node::start("d", &etcd, &dir.path().join("d"));
    assert_eq!(d.london(), US_EAST, "a new node's first answer comes from etcd, not its (empty) cache");

    // Expiry: every node back to eu-west, within 2 s of each other and of
    // the absolute expiry (whole seconds since the epoch).
    let watching = std::time::SystemTime::now();
    let took = until_all(&[&a, &b, &c, &d], EU_WEST, Duration::from_secs(20));
    let (first, last) = (took.iter().min().unwrap(), took.iter().max().unwrap());
    let epoch = |t: Duration| (watching + t).duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    eprintln!("expiry at {until}: nodes back after {took:?} (first {:.2}, last {:.2})", epoch(*first), epoch(*last));
    assert!(*last - *first < Duration::from_secs(2), "expiry spread {took:?}");
    assert!(epoch(*first) >= until as f64 - 0.5, "a node expired the drain early: {took:?}, until {until}");
    assert!(epoch(*last) <= until as f64 + 2.0, "a node kept the drain past its expiry: {took:?}, until {until}");
}

/// Must-show 3: with etcd stopped every node keeps answering (dnsperf on
/// a, b and c across the stop and the return loses no query), a change is
/// refused with 503 naming etcd and changes nothing, a node restarted
/// meanwhile (d) serves its cached drain, and once etcd is back a change
/// made through any node is in all four nodes' answers within 5 s of etcd's
/// return.
#[test]
fn cluster_etcd_outage_keeps_answers_and_refuses_changes() {
    let _serial = serial();
    let Some(bin) = need_etcd() else { return };
    let mut etcd = Etcd::start(bin);
    let dir = TempDir::new("cluster-outage");
    let a = Node::start("a", &etcd, &dir.path().join("a"));
    let b = Node::start("b", &etcd, &dir.path().join("b"));
    let c = Node::start("c", &etcd, &dir.path().join("c"));
    let mut d = Node::start("d", &etcd, &dir.path().join("d"));
    let (code, body) = a.call("POST", "/regions/eu-west/drain");
    assert_eq!(code, 200, "{body}");
    until_all(&[&a, &b, &c, &d], US_EAST, Duration::from_secs(2));

    // Load on a, b and c across the whole outage: stop, refusals, return.
    // `-l 60` only bounds it: it is interrupted (SIGINT: dnsperf reports and
    // exits) once the nodes have converged after etcd's return.
    let queries = dir.path().join("queries.txt");
    std::fs::write(&queries, format!("www.{Z} A\nstatic.{Z} A\n")).unwrap();
    let perf: Vec<Option<Child>> = [&a, &b, &c]
        .iter()
        .map(|n| {
            Command::new("dnsperf")
                .args(["-s", "127.0.0.1", "-p", &n.server().port().to_string(), "-d", queries.to_str().unwrap()])
                .args(["-l", "60", "-Q", "300", "-t", "2"])
                // To a file: a pipe nobody reads could fill with timeout lines.
                .stdout(std::fs::File::create(dir.path().join(format!("dnsperf-{}.txt", n.name))).unwrap())
                .stderr(Stdio::null())
                .spawn()
                .ok()
        })
        .collect();
    if perf.iter().any(Option::is_none) {
        // Under CI this fails; elsewhere the outage is still checked with dig.
        skip_or_fail("dnsperf not installed: the zero-loss run is skipped, dig checks remain");
    }
    std::thread::sleep(Duration::from_millis(500));

    etcd.stop();
    let stopped = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.status()["cluster"]["connected"] != false {
        assert!(Instant::now() < deadline, "node b still says connected: {}", b.status());
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("node b saw etcd gone after {:?}", stopped.elapsed());
    let (_, text) = http_get(b.admin, "/metrics");
    assert_eq!(metric(&text, "meridian_cluster_connected"), Some(0.0), "{text}");
    assert_eq!(metric(&text, "meridian_cluster_live_nodes"), Some(0.0), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    assert_eq!(b.status()["cluster"]["verdicts_from"], "own probes (cut off from etcd)");
    // Every query answered, from the last shared state.
    for _ in 0..10 {
        for n in [&a, &b, &c, &d] {
            assert_eq!(n.london(), US_EAST, "node {} during the outage", n.name);
        }
    }
    let started = Instant::now();
    let (code, body) = b.call("POST", "/regions/eu-west/undrain");
    assert_eq!(code, 503, "{body}");
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(msg.contains("etcd") && msg.contains("nothing was changed"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(5), "refused promptly: {:?}", started.elapsed());
    let (code, _) = c.call("POST", "/regions/us-east/drain");
    assert_eq!(code, 503);
    // The operator's command says the same and fails.
    let (admin, state) = (c.admin.to_string(), c.dir.join("state").display().to_string());
    let out = meridian(&["admin", "drain", "us-east", "--admin", &admin, "--state-dir", &state], &c.dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "meridian admin drain succeeded while etcd is down: {stderr}");
    assert!(stderr.contains("etcd") && stderr.contains("nothing was changed"), "{stderr}");
    eprintln!("meridian admin drain while etcd is down: {}", stderr.trim());
    for n in [&a, &b, &c, &d] {
        assert_eq!(n.london(), US_EAST, "node {}: a refused change changed nothing", n.name);
    }

    // Restarted during the outage: the local cache holds the drain.
    d.restart();
    assert_eq!(d.london(), US_EAST, "node d restarted while etcd is down");
    assert_eq!(d.status()["cluster"]["connected"], false);

    // etcd returns (after an outage of 3 s at least, so the load spans a
    // real one): the first change any node accepts is everywhere within 5 s.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(stopped.elapsed()));
    let outage = stopped.elapsed();
    etcd.resume();
    let back = Instant::now();
    loop {
        let (code, body) = b.call("POST", "/regions/eu-west/undrain");
        if code == 200 {
            assert_eq!(body["cleared"], true, "{body}");
            break;
        }
        assert_eq!(code, 503, "{body}");
        assert!(back.elapsed() < Duration::from_secs(5), "no node took a change within 5 s of etcd's return");
        std::thread::sleep(Duration::from_millis(50));
    }
    let accepted = back.elapsed();
    let each: Vec<Duration> = until_all(&[&a, &b, &c, &d], EU_WEST, Duration::from_secs(5).saturating_sub(accepted))
        .into_iter()
        .map(|t| t + accepted)
        .collect();
    let converged = back.elapsed();
    for n in [&a, &b, &c, &d] {
        assert_eq!(n.status()["cluster"]["connected"], true, "node {}", n.name);
    }
    eprintln!(
        "etcd down for {outage:?}; back: a change accepted after {accepted:?}, in a, b, c, d's answers after {each:?}"
    );
    assert!(converged < Duration::from_secs(5), "{converged:?}");

    for (child, node) in perf.into_iter().zip(["a", "b", "c"]) {
        let Some(mut child) = child else { continue };
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("dnsperf on node {node} did not stop on SIGINT");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let report = std::fs::read_to_string(dir.path().join(format!("dnsperf-{node}.txt"))).unwrap();
        let count = |what: &str| -> u64 {
            let line = report.lines().find(|l| l.contains(what)).unwrap_or_else(|| panic!("{what} in:\n{report}"));
            line.split_whitespace().nth(2).unwrap().parse().unwrap()
        };
        let (done, lost) = (count("Queries completed:"), count("Queries lost:"));
        eprintln!("node {node} across the etcd outage: {done} queries answered, {lost} lost");
        assert_eq!(lost, 0, "node {node} lost queries across the etcd outage:\n{report}");
        // 300 q/s for the outage's length, less a tenth for a slow start.
        let spanned = (300.0 * outage.as_secs_f64() * 0.9) as u64;
        assert!(done > spanned, "node {node}: the run was too short to span the outage ({outage:?}):\n{report}");
    }
}

/// An HTTP health backend on loopback that answers 503 to the probe source
/// addresses in `refuse` and 200 to the others; stops when dropped.
struct Backend {
    port: u16,
    refuse: Arc<Mutex<Vec<IpAddr>>>,
    stop: Arc<AtomicBool>,
}

impl Backend {
    fn start() -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let refuse: Arc<Mutex<Vec<IpAddr>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (Arc::clone(&refuse), Arc::clone(&stop));
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            while !s.load(Ordering::Relaxed) {
                let Ok((mut conn, peer)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
                let mut buf = [0u8; 2048];
                let _ = conn.read(&mut buf);
                let status = if r.lock().unwrap().contains(&peer.ip()) { "503 Refused" } else { "200 OK" };
                let _ = write!(conn, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Backend { port, refuse, stop }
    }

    fn refuse(&self, sources: &[IpAddr]) {
        *self.refuse.lock().unwrap() = sources.to_vec();
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The shipped zones with an HTTP probe on eu-west (interval 200 ms, fall 2).
fn zones_probing_eu_west(port: u16) -> TempDir {
    let dir = TempDir::new("cluster-zones");
    let src = repo().join("zones");
    for f in ["gslb.example.test.toml", "gslb.example.test.inc.zone"] {
        let mut text = std::fs::read_to_string(src.join(f)).unwrap();
        if f.ends_with(".toml") {
            assert_eq!(text.matches("weight = 30\n").count(), 1, "eu-west's weight line");
            let probe = format!(
                "weight = 30\n\n[regions.probe]\ntype = \"http\"\nurl = \"http://{{addr}}:{port}/health\"\n\
                 probe_addr = \"127.0.0.1\"\ninterval = \"200ms\"\ntimeout = \"500ms\"\nfall = 2\nrise = 2\n"
            );
            text = text.replacen("weight = 30\n", &probe, 1);
        }
        std::fs::write(dir.path().join(f), text).unwrap();
    }
    dir
}

/// Wait until `node`'s /status shows `n` live nodes reporting on eu-west's target.
fn until_reported(node: &Node, label: &str, n: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let st = node.status();
        let reporters = st["cluster"]["targets"][label]["nodes"].as_object().map_or(0, |m| m.len());
        if reporters == n && st["cluster"]["live_nodes"] == n {
            return;
        }
        assert!(Instant::now() < deadline, "node {}: not {n} reporters within {limit:?}: {st}", node.name);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Must-shows 2 and 4: each node probes from its own `probe_source`
/// (127.0.0.1, .2, .3). A backend refusing node a's probes only leaves the
/// region up on all three; refusing all withdraws it everywhere within
/// interval × fall + 2 s. Refusing a and b withdraws it (2 of 3); when b is
/// killed its verdict stops counting once its lease runs out, and the
/// quorum of the two left (a down, c up: no majority) brings it back.
#[test]
fn cluster_verdicts_follow_the_quorum_of_live_nodes() {
    let _serial = serial();
    let Some(bin) = need_etcd() else { return };
    let etcd = Etcd::start(bin);
    let backend = Backend::start();
    let zones = zones_probing_eu_west(backend.port);
    let label = format!("GET http://127.0.0.1:{}/health", backend.port);
    let src = |i: u8| IpAddr::from([127, 0, 0, i]);
    let dir = TempDir::new("cluster-verdicts");
    backend.refuse(&[src(1)]);
    let start = |name: &str, i: u8| {
        let top = format!("probe_source = \"{}\"", src(i));
        Node::start_with(name, &etcd, &dir.path().join(name), &top, zones.path())
    };
    let (a, mut b, c) = (start("a", 1), start("b", 2), start("c", 3));
    until_reported(&a, &label, 3, Duration::from_secs(5));
    let (_, text) = http_get(a.admin, "/metrics");
    assert_eq!(metric(&text, "meridian_cluster_connected"), Some(1.0), "{text}");
    assert_eq!(metric(&text, "meridian_cluster_live_nodes"), Some(3.0), "{text}");
    assert_eq!(a.status()["cluster"]["quorum"], "down when a majority of live nodes says down");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = a.status();
        let t = &st["cluster"]["targets"][&label];
        if t["nodes"]["a"] == "down" && t["nodes"]["b"] == "up" && t["nodes"]["c"] == "up" {
            assert_eq!(t["cluster"], "up", "{st}");
            break;
        }
        assert!(Instant::now() < deadline, "verdicts not in within 5 s: {st}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Node a's own probes fail; for 2 s (10 intervals) all three keep eu-west.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        for n in [&a, &b, &c] {
            assert_eq!(n.london(), EU_WEST, "node {} withdrew eu-west on one node's failure", n.name);
        }
    }

    backend.refuse(&[src(1), src(2), src(3)]);
    let took = until_all(&[&a, &b, &c], US_EAST, Duration::from_secs(5));
    let limit = Duration::from_millis(200 * 2) + Duration::from_secs(2);
    eprintln!("refused by all three: eu-west withdrawn by a, b, c after {took:?} (limit {limit:?})");
    assert!(took.iter().all(|t| *t <= limit), "withdrawn after {took:?}, limit {limit:?}");

    backend.refuse(&[src(1), src(2)]);
    std::thread::sleep(Duration::from_secs(1)); // c's verdict turns up (rise 2)
    for n in [&a, &b, &c] {
        assert_eq!(n.london(), US_EAST, "node {}: 2 of 3 say down", n.name);
    }
    let killed = Instant::now();
    b.server.as_mut().unwrap().child.kill().unwrap();
    let took = until_all(&[&a, &c], EU_WEST, Duration::from_secs(10));
    let after = killed.elapsed();
    eprintln!("b killed: its down verdict stopped counting on a, c after {took:?}");
    assert!(after >= Duration::from_secs(2), "b's verdict stopped counting before its 3 s lease ran out: {took:?}");
    assert!(after <= Duration::from_secs(3 + 2), "{after:?}");
    until_reported(&a, &label, 2, Duration::from_secs(1));
}

/// One UDP query with an ECS option for `subnet`; the sorted addresses answered.
fn ecs_addrs(server: SocketAddr, name: &str, subnet: ipnet::IpNet) -> Vec<String> {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(hickory_proto::rr::Name::from_ascii(name).unwrap(), hickory_proto::rr::RecordType::A));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::from(subnet)));
    m.set_edns(e);
    let packet = m.to_vec().unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 4096];
    for _ in 0..3 {
        sock.send_to(&packet, server).unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let reply = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!(
                reply.metadata.response_code,
                hickory_proto::op::ResponseCode::NoError,
                "{server}: {name} {subnet}: {reply:?}"
            );
            let mut addrs = answer_addresses(&reply);
            addrs.sort();
            return addrs;
        }
    }
    panic!("no answer from {server} for {name} {subnet}");
}

/// Must-show 5: with the same zones, database and shared overrides (eu-west
/// drained on one node), three nodes give the same geo, nearest, failover
/// and sticky answers to 1,000 client subnets spread over the address space.
#[test]
fn cluster_nodes_answer_alike_for_a_thousand_subnets() {
    let _serial = serial();
    let Some(bin) = need_etcd() else { return };
    let etcd = Etcd::start(bin);
    let dir = TempDir::new("cluster-alike");
    let nodes: Vec<Node> = ["a", "b", "c"].iter().map(|n| Node::start(n, &etcd, &dir.path().join(n))).collect();
    let (code, body) = nodes[1].call("POST", "/regions/eu-west/drain");
    assert_eq!(code, 200, "{body}");
    let refs: Vec<&Node> = nodes.iter().collect();
    until_all(&refs, US_EAST, Duration::from_secs(2));
    let mut differ = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..1000u32 {
        // A /24 from a multiplicative hash: every part of the IPv4 space.
        let base = i.wrapping_mul(2_654_435_761) & 0xffff_ff00;
        let subnet = ipnet::IpNet::new(IpAddr::from(std::net::Ipv4Addr::from(base)), 24).unwrap();
        for svc in ["www", "nearest", "failover", "sticky"] {
            let name = format!("{svc}.{Z}.");
            let answers: Vec<Vec<String>> = nodes.iter().map(|n| ecs_addrs(n.server().addr, &name, subnet)).collect();
            seen.insert(answers[0].clone());
            if answers.iter().any(|a| *a != answers[0]) {
                differ.push(format!("{svc} {subnet}: {answers:?}"));
            }
        }
    }
    assert!(differ.is_empty(), "{} differences, e.g. {:?}", differ.len(), &differ[..differ.len().min(5)]);
    assert!(seen.len() >= 2, "the subnets should reach different answers: {seen:?}");
    assert!(!seen.iter().flatten().any(|a| a == EU_WEST), "the shared drain holds on every node");
}

/// Standard base64, for etcd's JSON gateway (keys and values travel encoded).
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ABC[(n >> (18 - 6 * i)) as usize & 63] as char } else { '=' });
        }
    }
    out
}

/// Put `value` at `key` through etcd's HTTP gateway (as another writer of
/// the same etcd could): what Meridian reads is not always what it wrote.
fn etcd_put(etcd: &Etcd, key: &str, value: &str) {
    use std::io::{Read, Write};
    let body = format!(r#"{{"key":"{}","value":"{}"}}"#, base64(key.as_bytes()), base64(value.as_bytes()));
    let mut s = TcpStream::connect(("127.0.0.1", etcd.client)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "POST /v3/kv/put HTTP/1.0\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"), "etcd put {key}: {text}");
}

/// Robustness: values in etcd Meridian did not write (not JSON, an
/// override with impossible times, a verdict that is not one) are ignored
/// with a warning naming the key; every node keeps answering, `/status`
/// keeps working, and the next good change applies everywhere.
#[test]
fn cluster_garbage_in_etcd_is_ignored_with_a_warning() {
    let _serial = serial();
    let Some(bin) = need_etcd() else { return };
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"abc"), "YWJj");
    let etcd = Etcd::start(bin);
    let dir = TempDir::new("cluster-garbage");
    let a = Node::start("a", &etcd, &dir.path().join("a"));
    let b = Node::start("b", &etcd, &dir.path().join("b"));
    let (code, body) = a.call("POST", "/regions/eu-west/drain");
    assert_eq!(code, 200, "{body}");
    until_all(&[&a, &b], US_EAST, Duration::from_secs(2));

    // Not JSON over the drain: the key no longer holds an override.
    etcd_put(&etcd, "/meridian-test/overrides/region/eu-west", "\u{1}not json");
    until_all(&[&a, &b], EU_WEST, Duration::from_secs(2));
    // A drain set in the year 584 billion would break every /status: ignored.
    etcd_put(
        &etcd,
        "/meridian-test/overrides/region/us-east",
        r#"{"scope":{"region":"us-east"},"kind":"drain","until":null,"set_at":18446744073709551615}"#,
    );
    etcd_put(&etcd, "/meridian-test/verdicts/zz/GET http://x/", "[]");
    std::thread::sleep(Duration::from_millis(500));
    for n in [&a, &b] {
        let st = n.status();
        assert_eq!(st["overrides"], serde_json::json!([]), "node {}: {st}", n.name);
        assert_eq!(st["cluster"]["connected"], true, "node {}: {st}", n.name);
        assert_eq!(n.london(), EU_WEST);
        let log = n.server().log_text();
        for warning in ["ignoring an undecodable override in etcd", "ignoring an impossible override in etcd"] {
            assert!(log.contains(warning), "node {}: no {warning:?} in:\n{log}", n.name);
        }
        assert!(log.contains("ignoring an undecodable verdict in etcd"), "node {}:\n{log}", n.name);
    }
    let (code, body) = b.call("POST", "/regions/eu-west/drain");
    assert_eq!(code, 200, "{body}");
    until_all(&[&a, &b], US_EAST, Duration::from_secs(2));
}

/// Test certificates for etcd over TLS: a CA, etcd's certificate for
/// 127.0.0.1, and a client certificate, as PEM files in a directory.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let dir = TempDir::new("etcd-pki");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "Meridian etcd test CA");
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        for (name, sans, cn) in [("server", vec!["127.0.0.1", "localhost"], "etcd"), ("client", vec![], "meridian")] {
            let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
            params.distinguished_name.push(DnType::CommonName, cn);
            params.is_ca = IsCa::ExplicitNoCa;
            params.extended_key_usages =
                vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &ca).unwrap();
            std::fs::write(dir.path().join(format!("{name}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem()).unwrap();
        }
        Pki { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// etcd as operators run it: TLS with client certificates required, and
/// user/password authentication on. Two nodes with the CA, a client
/// certificate and the user share a drain; a node without the client
/// certificate, and one with a wrong password, are refused by etcd: they
/// say so (`/status`, the log) and keep answering alone.
#[test]
fn cluster_over_tls_with_client_certificates_and_a_user() {
    let _serial = serial();
    let Some(bin) = need_etcd() else { return };
    let pki = Pki::new();
    let (ca, cert, key) = (pki.file("ca.pem"), pki.file("client.pem"), pki.file("client.key"));
    let etcd = Etcd::start_tls(bin, Some(pki));
    // Authentication on: a root user (etcd requires one, with the root role).
    for (path, body) in [
        ("/v3/auth/role/add", r#"{"name":"root"}"#),
        ("/v3/auth/user/add", r#"{"name":"root","password":"s3cret"}"#),
        ("/v3/auth/user/grant", r#"{"user":"root","role":"root"}"#),
        ("/v3/auth/enable", "{}"),
    ] {
        let reply = etcd.gateway("POST", path, body);
        assert!(reply.contains("header"), "etcd {path}: {reply:?}");
    }
    let dir = TempDir::new("cluster-tls");
    std::fs::write(dir.path().join("password"), "s3cret\n").unwrap();
    std::fs::write(dir.path().join("wrong"), "guess\n").unwrap();
    let toml = |cert_lines: bool, password: &str| {
        let mut s = format!("endpoints = [\"{}\"]\nca_file = \"{}\"\n", etcd.url(), ca.display());
        if cert_lines {
            s += &format!("cert_file = \"{}\"\nkey_file = \"{}\"\n", cert.display(), key.display());
        }
        s + &format!("user = \"root\"\npassword_file = \"{}\"\n", dir.path().join(password).display())
    };
    let a = Node::start_cluster_toml("a", &dir.path().join("a"), &toml(true, "password"));
    let b = Node::start_cluster_toml("b", &dir.path().join("b"), &toml(true, "password"));
    for n in [&a, &b] {
        assert_eq!(n.status()["cluster"]["connected"], true, "node {}: {}", n.name, n.status());
    }
    let (code, body) = a.call("POST", "/regions/eu-west/drain?for=30s");
    assert_eq!(code, 200, "{body}");
    until_all(&[&a, &b], US_EAST, Duration::from_secs(3));

    // Refused by etcd: no client certificate; the wrong password.
    let no_cert = Node::start_cluster_toml("c", &dir.path().join("c"), &toml(false, "password"));
    let wrong = Node::start_cluster_toml("d", &dir.path().join("d"), &toml(true, "wrong"));
    for n in [&no_cert, &wrong] {
        assert_eq!(n.status()["cluster"]["connected"], false, "node {}: {}", n.name, n.status());
        assert_eq!(n.london(), EU_WEST, "node {} answers alone", n.name);
    }
    // Each log says why: the TLS alert etcd sent, etcd's refusal of the password.
    assert!(no_cert.server().log_text().contains("Certificate"), "{}", no_cert.server().log_text());
    assert!(
        no_cert.server().log_text().contains("WARN meridian::cluster: cannot reach etcd"),
        "never connected, not lost"
    );
    assert!(wrong.server().log_text().contains("authentication failed"), "{}", wrong.server().log_text());
}

/// A load pushed with `admin load` on one node (issue 24's `shed`) is in
/// every node's answers: it goes through etcd, stamped with its report
/// time, so the nodes shed the same clients and age it out together.
#[test]
fn cluster_a_load_pushed_on_one_node_steers_every_node() {
    use crate::load_shedding::{answers, zone, EU, US};
    let _serial = serial();
    let Some(bin) = need_etcd() else { return };
    let etcd = Etcd::start(bin);
    let dir = TempDir::new("cluster-load");
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::write(zones.join("load.test.toml"), zone(None)).unwrap();
    let a = Node::start_with("a", &etcd, &dir.path().join("a"), "", &zones);
    let b = Node::start_with("b", &etcd, &dir.path().join("b"), "", &zones);
    for n in [&a, &b] {
        assert!(answers(n.server().addr, 20).iter().all(|x| x == EU), "node {}: no load, nobody shed", n.name);
    }
    // us-east's load pushed on b, eu-west's (over its high watermark, 80) on a:
    // `shed` moves clients only onto a region known to have room.
    let (code, body) = b.call("POST", "/load/us-east?value=10");
    assert_eq!(code, 200, "{body}");
    let (code, body) = a.call("POST", "/load/eu-west?value=95");
    assert_eq!(code, 200, "{body}");
    let pushed = Instant::now();
    for n in [&a, &b] {
        while !answers(n.server().addr, 20).iter().all(|x| x == US) {
            assert!(
                pushed.elapsed() < Duration::from_secs(2),
                "node {} did not shed within 2 s: {}",
                n.name,
                n.status()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    eprintln!("a load pushed on a: shed by a and b after {:?}", pushed.elapsed());
    // Reports older than max_age (3 s) say nothing: both stop shedding.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(pushed.elapsed()) + Duration::from_millis(500));
    for n in [&a, &b] {
        assert!(answers(n.server().addr, 20).iter().all(|x| x == EU), "node {}: a stale report still sheds", n.name);
    }
}
