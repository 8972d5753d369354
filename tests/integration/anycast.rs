//! BGP anycast end to end with the real programs: ExaBGP (PyPI `exabgp`, in
//! the virtualenv `.ci/run` makes) runs `meridian anycast` as its process
//! and peers with BIRD 2 (Debian `bird2`). Each runs in a network namespace
//! of its own, made here and removed on drop, joined by a veth pair:
//!
//! ```text
//!   netns A (the DNS node)                          netns B (the "router")
//!   lo: 127.0.0.1, 192.0.2.53/32                    BIRD 2, AS 65000, passive
//!   meridian serve  --listen 127.0.0.1:5353         imports 192.0.2.53/32 only,
//!                   --listen 192.0.2.53:5353        exports it to B's kernel
//!   ExaBGP, AS 65001 ── meridian anycast
//!   veth 10.99.0.1/30  ─────────── BGP ──────────── veth 10.99.0.2/30
//! ```
//!
//! No default route in either namespace; nothing leaves them. The test shows
//! with `birdc show route` that the prefix is there while Meridian answers
//! (and that a client in B reaches Meridian through it), that it is gone
//! within `interval × fall + 2 s` after Meridian is SIGKILLed, that it comes
//! back after Meridian restarts, and that SIGTERM to the helper withdraws at
//! once (ExaBGP then restarts the helper, which announces again).
//!
//! Needs root, `ip`, `bird`/`birdc` and `exabgp`; otherwise it prints
//! `SKIP: …` and passes, unless `MERIDIAN_ANYCAST_E2E=require` (set by
//! `.ci/run`) or `CI` is set, when a missing piece fails the test.

use crate::common::{bin, repo, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PREFIX: &str = "192.0.2.53/32";
const SERVICE_IP: &str = "192.0.2.53";
const A_ADDR: &str = "10.99.0.1";
const B_ADDR: &str = "10.99.0.2";
const INTERVAL_S: f64 = 1.0;
const FALL: u32 = 3;
const RISE: u32 = 3;

/// Where `.ci/run` installs ExaBGP, then `$PATH`.
const EXABGP_PATHS: &[&str] = &["/opt/meridian-ci/venv/bin/exabgp"];

fn find(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = extra.iter().map(PathBuf::from).collect();
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p).map(|d| d.join(name)));
    }
    dirs.extend(["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"].iter().map(|d| Path::new(d).join(name)));
    dirs.into_iter().find(|p| p.is_file())
}

struct Tools {
    ip: PathBuf,
    bird: PathBuf,
    birdc: PathBuf,
    exabgp: PathBuf,
}

/// The tools, or why the test cannot run.
fn tools() -> Result<Tools, String> {
    if unsafe { libc::geteuid() } != 0 {
        return Err("anycast e2e needs root (it creates network namespaces); run `sudo -E cargo test --test integration anycast`".into());
    }
    let exabgp_env = std::env::var_os("MERIDIAN_EXABGP").map(PathBuf::from);
    let exabgp = exabgp_env.filter(|p| p.is_file()).or_else(|| find("exabgp", EXABGP_PATHS));
    let (Some(ip), Some(bird), Some(birdc), Some(exabgp)) =
        (find("ip", &[]), find("bird", &[]), find("birdc", &[]), exabgp)
    else {
        return Err("anycast e2e needs ip, bird, birdc and exabgp (install: apt-get install -y iproute2 bird2; \
             python3 -m venv /opt/meridian-ci/venv && /opt/meridian-ci/venv/bin/pip install 'exabgp>=4.2,<5' — or run .ci/run)"
            .into());
    };
    Ok(Tools { ip, bird, birdc, exabgp })
}

fn required() -> bool {
    std::env::var("MERIDIAN_ANYCAST_E2E").map(|v| v == "require").unwrap_or(false)
}

fn skip(why: &str) {
    if required() {
        panic!("MERIDIAN_ANYCAST_E2E=require but: {why}");
    }
    crate::common::skip_or_fail(why);
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn must(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces, the programs in them, and a temp dir; all removed on drop.
struct Lab {
    tools: Tools,
    ns_a: String,
    ns_b: String,
    veth: (String, String),
    dir: TempDir,
    bird: Option<Child>,
    exabgp: Option<Child>,
    meridian: Option<Child>,
    meridian_starts: u32,
}

impl Lab {
    /// Make the namespaces and the link; `Err` when the kernel refuses (no
    /// namespaces in this sandbox).
    fn new(tools: Tools) -> Result<Lab, String> {
        let id = std::process::id();
        let lab = Lab {
            tools,
            ns_a: format!("mrdac-a-{id}"),
            ns_b: format!("mrdac-b-{id}"),
            veth: (format!("mac{}a", id % 100_000), format!("mac{}b", id % 100_000)),
            dir: TempDir::new("anycast"),
            bird: None,
            exabgp: None,
            meridian: None,
            meridian_starts: 0,
        };
        let ip = lab.tools.ip.clone();
        let first = run(Command::new(&ip).args(["netns", "add", &lab.ns_a]));
        if !first.status.success() {
            return Err(format!(
                "cannot create a network namespace: {}",
                String::from_utf8_lossy(&first.stderr).trim()
            ));
        }
        let (va, vb) = lab.veth.clone();
        let (a, b) = (lab.ns_a.clone(), lab.ns_b.clone());
        must(Command::new(&ip).args(["netns", "add", &b]));
        must(Command::new(&ip).args(["link", "add", &va, "type", "veth", "peer", "name", &vb]));
        must(Command::new(&ip).args(["link", "set", &va, "netns", &a]));
        must(Command::new(&ip).args(["link", "set", &vb, "netns", &b]));
        must(Command::new(&ip).args(["-n", &a, "addr", "add", &format!("{A_ADDR}/30"), "dev", &va]));
        must(Command::new(&ip).args(["-n", &b, "addr", "add", &format!("{B_ADDR}/30"), "dev", &vb]));
        // The anycast service address lives on A's loopback, as on a real node.
        must(Command::new(&ip).args(["-n", &a, "addr", "add", &format!("{SERVICE_IP}/32"), "dev", "lo"]));
        for (ns, dev) in [(&a, &va), (&b, &vb)] {
            must(Command::new(&ip).args(["-n", ns, "link", "set", "lo", "up"]));
            must(Command::new(&ip).args(["-n", ns, "link", "set", dev, "up"]));
        }
        Ok(lab)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// Everything worth reading when an assertion fails.
    fn logs(&self) -> String {
        let mut s = String::new();
        for f in ["exabgp.log", "bird.log", "meridian.log"] {
            s.push_str(&format!("\n===== {f} =====\n{}", self.log(f)));
        }
        s.push_str(&format!("\n===== birdc show protocols all =====\n{}", self.birdc("show protocols all exa")));
        s
    }

    fn in_ns(&self, ns: &str, program: &Path) -> Command {
        let mut c = Command::new(&self.tools.ip);
        c.args(["netns", "exec", ns]).arg(program);
        c
    }

    fn spawn_logged(&self, mut cmd: Command, log: &str) -> Child {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(self.path(log)).unwrap();
        let f2 = f.try_clone().unwrap();
        cmd.stdin(Stdio::null()).stdout(Stdio::from(f)).stderr(Stdio::from(f2));
        cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
    }

    fn write_configs(&self) {
        let bird_conf = format!(
            r#"log stderr all;
router id {B_ADDR};
protocol device {{ scan time 1; }}
# Put what BGP learns into this namespace's kernel table, so a client here
# reaches the anycast address through it (only 192.0.2.53/32 can be learnt).
protocol kernel {{ ipv4 {{ export all; }}; }}
protocol bgp exa {{
    local {B_ADDR} as 65000;
    neighbor {A_ADDR} as 65001;
    passive on;
    hold time 3;
    connect retry time 1;
    error wait time 1, 10;
    ipv4 {{
        import filter {{ if net = {PREFIX} then accept; reject; }};
        export none;
    }};
}}
"#
        );
        std::fs::write(self.path("bird.conf"), bird_conf).unwrap();
        let anycast = format!(
            r#"dns = "127.0.0.1:5353"
check_name = "gslb.example.test."
check_type = "SOA"
interval = "1s"
timeout = "500ms"
fall = {FALL}
rise = {RISE}
local_as = 65001
[[prefixes]]
prefix = "{PREFIX}"
med = 10
communities = ["65000:53"]
as_path_prepend = 2
"#
        );
        std::fs::write(self.path("anycast.toml"), anycast).unwrap();
        let exabgp_conf = format!(
            r#"process meridian {{
    run {bin} anycast --config {cfg};
    encoder text;
}}
neighbor {B_ADDR} {{
    router-id {A_ADDR};
    local-address {A_ADDR};
    local-as 65001;
    peer-as 65000;
    hold-time 3;
    api {{
        processes [ meridian ];
        neighbor-changes;
    }}
}}
"#,
            bin = bin().display(),
            cfg = self.path("anycast.toml").display()
        );
        std::fs::write(self.path("exabgp.conf"), exabgp_conf).unwrap();
        // The client's view from B: our own checker, aimed at the anycast address.
        let client = format!(
            "dns = \"{SERVICE_IP}:5353\"\ncheck_name = \"gslb.example.test.\"\ncheck_type = \"SOA\"\n[[prefixes]]\nprefix = \"{PREFIX}\"\n"
        );
        std::fs::write(self.path("client.toml"), client).unwrap();
    }

    fn start_bird(&mut self) {
        let mut c = self.in_ns(&self.ns_b.clone(), &self.tools.bird.clone());
        c.arg("-f").arg("-c").arg(self.path("bird.conf")).arg("-s").arg(self.path("bird.sock"));
        self.bird = Some(self.spawn_logged(c, "bird.log"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.birdc("show status").contains("Daemon is up") {
            assert!(Instant::now() < deadline, "BIRD did not come up:{}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn start_meridian(&mut self) {
        self.meridian_starts += 1;
        let before = self.log("meridian.log").matches("ready").count();
        let mut c = self.in_ns(&self.ns_a.clone(), &bin());
        c.args(["serve", "--listen", "127.0.0.1:5353", "--listen", &format!("{SERVICE_IP}:5353")]);
        c.arg("--state-dir").arg(self.path("state"));
        c.current_dir(repo()).env("MERIDIAN_LOG", "info");
        self.meridian = Some(self.spawn_logged(c, "meridian.log"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.log("meridian.log").matches("ready").count() <= before {
            if let Some(Ok(Some(st))) = self.meridian.as_mut().map(|c| c.try_wait()) {
                panic!("meridian exited ({st}):{}", self.logs());
            }
            assert!(Instant::now() < deadline, "meridian not ready:{}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn start_exabgp(&mut self) {
        let mut c = self.in_ns(&self.ns_a.clone(), &self.tools.exabgp.clone());
        c.arg(self.path("exabgp.conf")).current_dir(self.dir.path());
        // Stay root (the helper is our binary), no CLI pipes, log to the file.
        c.env("exabgp_daemon_user", "root")
            .env("exabgp_daemon_drop", "false")
            .env("exabgp_daemon_daemonize", "false")
            .env("exabgp_api_cli", "false")
            .env("exabgp_log_destination", "stdout")
            .env("MERIDIAN_LOG", "info");
        self.exabgp = Some(self.spawn_logged(c, "exabgp.log"));
    }

    fn birdc(&self, what: &str) -> String {
        let out = Command::new(&self.tools.birdc)
            .arg("-s")
            .arg(self.path("bird.sock"))
            .args(what.split_whitespace())
            .stdin(Stdio::null())
            .output()
            .expect("run birdc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn route(&self) -> Option<String> {
        let out = self.birdc("show route all");
        out.contains(PREFIX).then_some(out)
    }

    /// Poll `birdc show route` until the prefix is (or is not) there.
    fn wait_route(&self, present: bool, within: Duration) -> Option<Duration> {
        let t = Instant::now();
        while t.elapsed() < within {
            if self.route().is_some() == present {
                return Some(t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Ask Meridian from namespace B through the anycast address.
    fn client_answers(&self) -> (bool, String) {
        let mut c = self.in_ns(&self.ns_b, &bin());
        c.arg("anycast").arg("--check").arg("--config").arg(self.path("client.toml"));
        let out = run(&mut c);
        (out.status.success(), String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").to_string())
    }

    /// The helper ExaBGP runs (its child whose command line says `anycast`).
    fn helper_pid(&mut self) -> Option<i32> {
        let parent = self.exabgp.as_ref()?.id() as i32;
        for e in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            // pid (comm) state ppid …
            let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
            let ppid: i32 = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if ppid == parent && String::from_utf8_lossy(&cmdline).contains("anycast") {
                return Some(pid);
            }
        }
        None
    }
}

fn stop(child: &mut Option<Child>, sig: i32, grace: Duration) {
    if let Some(c) = child.as_mut() {
        if let Ok(None) = c.try_wait() {
            unsafe { libc::kill(c.id() as i32, sig) };
            let t = Instant::now();
            while t.elapsed() < grace {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    *child = None;
}

impl Drop for Lab {
    fn drop(&mut self) {
        // ExaBGP first: it stops the helper it started.
        stop(&mut self.exabgp, libc::SIGTERM, Duration::from_secs(3));
        stop(&mut self.meridian, libc::SIGTERM, Duration::from_secs(3));
        stop(&mut self.bird, libc::SIGTERM, Duration::from_secs(3));
        for ns in [self.ns_a.clone(), self.ns_b.clone()] {
            // Anything still in our namespaces was started by this test.
            if let Ok(out) = Command::new(&self.tools.ip).args(["netns", "pids", &ns]).stderr(Stdio::null()).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse::<i32>().ok())
                {
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            let _ = Command::new(&self.tools.ip).args(["netns", "del", &ns]).stderr(Stdio::null()).status();
        }
        // Only left in the root namespace if moving it failed.
        let _ = Command::new(&self.tools.ip).args(["link", "del", &self.veth.0]).stderr(Stdio::null()).status();
    }
}

#[test]
fn exabgp_announces_while_meridian_answers_and_withdraws_when_it_dies() {
    let tools = match tools() {
        Ok(t) => t,
        Err(why) => return skip(&why),
    };
    let mut lab = match Lab::new(tools) {
        Ok(l) => l,
        Err(why) => return skip(&why),
    };
    let started = Instant::now();
    lab.write_configs();
    lab.start_bird();
    lab.start_meridian();
    lab.start_exabgp();

    // 1. Announced once the session is up and `rise` checks passed.
    let Some(t) = lab.wait_route(true, Duration::from_secs(25)) else {
        panic!("{PREFIX} never announced:{}", lab.logs());
    };
    eprintln!("anycast e2e: {PREFIX} announced {:.1} s after ExaBGP started", t.as_secs_f64());
    let route = lab.route().unwrap();
    for attr in ["BGP.as_path: 65001 65001 65001", "BGP.med: 10", "BGP.community: (65000,53)", &format!("via {A_ADDR}")]
    {
        assert!(route.contains(attr), "route lacks {attr:?}:\n{route}");
    }
    let (ok, line) = lab.client_answers();
    assert!(ok, "a client in the router's namespace cannot reach Meridian at {SERVICE_IP}: {line}{}", lab.logs());
    eprintln!("anycast e2e: client via {SERVICE_IP}: {line}");

    // 2. Meridian dies: withdrawn within interval × fall + 2 s.
    let budget = Duration::from_secs_f64(INTERVAL_S * FALL as f64 + 2.0);
    stop(&mut lab.meridian, libc::SIGKILL, Duration::ZERO);
    let Some(t) = lab.wait_route(false, budget + Duration::from_secs(5)) else {
        panic!(
            "{PREFIX} still announced {:?} after Meridian was killed:{}",
            budget + Duration::from_secs(5),
            lab.logs()
        );
    };
    eprintln!(
        "anycast e2e: withdrawn {:.2} s after SIGKILL of meridian (budget {:.1} s = interval {INTERVAL_S} s × fall {FALL} + 2 s)",
        t.as_secs_f64(),
        budget.as_secs_f64()
    );
    assert!(t <= budget, "withdrawal took {t:?}, more than {budget:?}:{}", lab.logs());
    assert!(!lab.client_answers().0, "the anycast address still answers from B after the withdrawal");
    assert!(lab.log("exabgp.log").contains("WITHDRAW after 3 failed check(s)"), "{}", lab.logs());

    // 3. Meridian is back: announced again after `rise` checks.
    lab.start_meridian();
    let Some(t) = lab.wait_route(true, Duration::from_secs(RISE as u64 * 2 + 5)) else {
        panic!("{PREFIX} not announced again after Meridian restarted:{}", lab.logs());
    };
    eprintln!("anycast e2e: announced again {:.2} s after meridian restarted (rise {RISE})", t.as_secs_f64());
    assert!(lab.client_answers().0, "anycast address does not answer after re-announce:{}", lab.logs());

    // 4. SIGTERM to the helper withdraws at once (no `fall` wait); ExaBGP
    //    restarts it, and the new helper announces after `rise` checks.
    let helper = lab.helper_pid().unwrap_or_else(|| panic!("no helper process under ExaBGP:{}", lab.logs()));
    unsafe { libc::kill(helper, libc::SIGTERM) };
    let Some(t) = lab.wait_route(false, Duration::from_secs(3)) else {
        panic!("{PREFIX} still announced after SIGTERM to the helper:{}", lab.logs());
    };
    eprintln!("anycast e2e: withdrawn {:.2} s after SIGTERM to the helper", t.as_secs_f64());
    let Some(t) = lab.wait_route(true, Duration::from_secs(RISE as u64 * 2 + 5)) else {
        panic!("{PREFIX} not announced by the respawned helper:{}", lab.logs());
    };
    eprintln!("anycast e2e: re-announced {:.2} s later by the helper ExaBGP restarted", t.as_secs_f64());
    let new_helper = lab.helper_pid();
    assert!(new_helper.is_some() && new_helper != Some(helper), "helper not restarted:{}", lab.logs());

    // 5. The router resets the session: ExaBGP announces its routes again on
    //    the new session by itself (the helper is not asked, nor restarted).
    let t = Instant::now();
    lab.birdc("restart exa");
    let gone = lab.wait_route(false, Duration::from_secs(2)).is_some();
    let Some(_) = lab.wait_route(true, Duration::from_secs(15)) else {
        panic!("{PREFIX} not back after the BGP session was reset:{}", lab.logs());
    };
    eprintln!(
        "anycast e2e: session reset by the router (route seen gone: {gone}); back after {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(lab.helper_pid(), new_helper, "the helper is untouched by a session reset");
    eprintln!("anycast e2e: total {:.1} s", started.elapsed().as_secs_f64());
}

/// The shipped examples parse with the real programs (no root needed).
#[test]
fn shipped_examples_are_accepted_by_bird_and_exabgp() {
    let examples = repo().join("examples/anycast");
    let bird = find("bird", &[]);
    let exabgp = std::env::var_os("MERIDIAN_EXABGP")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| find("exabgp", EXABGP_PATHS));
    let (Some(bird), Some(exabgp)) = (bird, exabgp) else {
        return skip("bird or exabgp not installed (install: apt-get install -y bird2; pip install 'exabgp>=4.2,<5' — or run .ci/run)");
    };
    let out = run(Command::new(&bird).arg("-p").arg("-c").arg(examples.join("bird.conf")));
    assert!(
        out.status.success(),
        "bird -p rejects examples/anycast/bird.conf: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // ExaBGP checks that the process's program exists: point it at ours.
    let dir = TempDir::new("anycast-examples");
    let conf = std::fs::read_to_string(examples.join("exabgp.conf"))
        .unwrap()
        .replace("/usr/local/bin/meridian", &bin().display().to_string());
    std::fs::write(dir.path().join("exabgp.conf"), conf).unwrap();
    let check = |how: &str| {
        let out =
            run(Command::new(&exabgp).arg(how).arg(dir.path().join("exabgp.conf")).env("exabgp_api_cli", "false"));
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    // ExaBGP 4: `--test`; ExaBGP 5: `validate`.
    let (mut ok, mut text) = check("--test");
    if text.contains("unrecognized arguments") {
        (ok, text) = check("validate");
    }
    assert!(ok && !text.contains("syntax error"), "exabgp rejects examples/anycast/exabgp.conf:\n{text}");
}
