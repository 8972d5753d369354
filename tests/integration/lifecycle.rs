//! Process life under signals: during start-up, reload bursts, and SIGTERM
//! with TCP queries already sent.

use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Wait until the child's Rust runtime is up (it catches SIGSEGV for stack
/// overflows before `main`), and at least `at_least` after `spawned`: a
/// signal before that would hit the dynamic loader, not the server.
fn wait_started(s: &Server, spawned: Instant, at_least: Duration) {
    let status = format!("/proc/{}/status", s.child.id());
    let deadline = spawned + Duration::from_secs(5);
    while Instant::now() < deadline {
        let caught = std::fs::read_to_string(&status)
            .ok()
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("SigCgt:").map(|v| v.trim().to_string())))
            .and_then(|v| u64::from_str_radix(&v, 16).ok())
            .unwrap_or(0);
        if caught & (1 << (libc::SIGSEGV - 1)) != 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(at_least.saturating_sub(spawned.elapsed()));
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[test]
fn sighup_10ms_after_start_does_not_kill_the_server_and_is_applied_once_ready() {
    let spawned = Instant::now();
    let mut s = Server::spawn_with(&[], None);
    wait_started(&s, spawned, Duration::from_millis(10));
    s.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(30));
    s.signal(libc::SIGHUP);
    s.wait_ready(); // panics if the server died
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.log_text().split_once("ready").is_some_and(|(_, after)| after.contains("reloaded configuration")) {
        assert!(Instant::now() < deadline, "the SIGHUP of start-up was not applied:\n{}", s.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(s.child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(s.dig("static.gslb.example.test A").answers_of("A"), ["192.0.2.1"]);
}

#[test]
fn sigterm_during_start_up_exits_cleanly() {
    let spawned = Instant::now();
    let mut s = Server::spawn_with(&[], None);
    wait_started(&s, spawned, Duration::from_millis(10));
    s.signal(libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "no exit within 10 s of SIGTERM:\n{}", s.log_text());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}, not 0:\n{}", s.log_text());
    assert!(s.log_text().contains("stopped during start-up"), "{}", s.log_text());
}

/// The demo zones plus a second zone of 8,000 TXT records, so that each
/// reload takes a while (the whole configuration is loaded every time).
fn slow_zones() -> TempDir {
    let dir = TempDir::new("slow-zones");
    for e in std::fs::read_dir(repo().join("zones")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let zone = "origin = \"slow.test.\"\nttl = 60\nns = [\"ns1\"]\ninclude = \"slow.test.inc.zone\"\n\n\
                [soa]\nmname = \"ns1\"\nrname = \"hostmaster\"\nserial = 1\n\n\
                [[records]]\nname = \"ns1\"\ntype = \"A\"\ndata = \"127.0.0.3\"\n";
    std::fs::write(dir.path().join("slow.test.toml"), zone).unwrap();
    let txt: String = (0..8_000).map(|i| format!("n{i} 60 IN TXT \"record {i}\"\n")).collect();
    std::fs::write(dir.path().join("slow.test.inc.zone"), txt).unwrap();
    dir
}

#[test]
fn a_burst_of_sighups_during_a_reload_coalesces_and_the_newest_zone_wins() {
    let zones = slow_zones();
    let s = Server::start_with(&["--zones", zones.path().to_str().unwrap()], None);
    let zone_file = zones.path().join("gslb.example.test.toml");
    let original = std::fs::read_to_string(&zone_file).unwrap();
    let mark = s.log_text().len();
    let started = Instant::now();
    s.signal(libc::SIGHUP);
    for i in 0..10 {
        std::thread::sleep(Duration::from_millis(20));
        if i == 5 {
            // The newest configuration, written while reloads are under way.
            let fresh = format!("{original}\n[[records]]\nname = \"fresh\"\ntype = \"A\"\ndata = \"192.0.2.77\"\n");
            std::fs::write(&zone_file, fresh).unwrap();
        }
        s.signal(libc::SIGHUP);
    }
    let burst = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.dig("fresh.gslb.example.test A").answers_of("A") != ["192.0.2.77"] {
        assert!(Instant::now() < deadline, "the newest zone never served:\n{}", &s.log_text()[mark..]);
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let any last reload (the file watcher's, say) finish, then count.
    std::thread::sleep(Duration::from_secs(3));
    let log = s.log_text()[mark..].to_string();
    let (reloads, coalesced) = (count(&log, "reloaded configuration"), count(&log, "coalesced into one more"));
    eprintln!("burst of 11 SIGHUPs in {burst:?}: {reloads} reloads, {coalesced} coalesced");
    assert!(coalesced >= 1, "no request was coalesced:\n{log}");
    assert!(reloads + coalesced >= 2 && reloads <= 4, "{reloads} reloads for one burst:\n{log}");
    assert!(count(&log, "reloading once more") >= 1, "{log}");
    assert_eq!(s.dig("fresh.gslb.example.test A").answers_of("A"), ["192.0.2.77"], "nothing older came back");
}

/// SIGTERM while a pipelining client has sent queries the server has not
/// answered yet (it is blocked writing to a client that reads slowly): every
/// one is answered, then the connection ends with FIN, not a reset.
#[test]
fn sigterm_answers_tcp_queries_already_sent_and_closes_with_fin() {
    const N: u16 = 12_000;
    let s = Server::start();
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    // A small receive window: the server's answers (750 bytes each) back up in
    // its send buffer, so most queries wait unread in its receive buffer.
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&s.addr.into()).unwrap();
    let mut c: TcpStream = sock.into();
    let mut all = Vec::new();
    for id in 0..N {
        let q = query_bytes(id, "big.gslb.example.test.", RecordType::TXT);
        all.extend_from_slice(&(q.len() as u16).to_be_bytes());
        all.extend_from_slice(&q);
    }
    let mut w = c.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&all));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !writer.is_finished() {
        assert!(Instant::now() < deadline, "queries not taken in 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    writer.join().unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    s.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answered = 0u16;
    let mut len = [0u8; 2];
    let end = loop {
        match c.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) => break e,
        }
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        c.read_exact(&mut msg).expect("a whole answer");
        let m = Message::from_vec(&msg).unwrap();
        assert_eq!((m.metadata.id, m.metadata.response_code), (answered, ResponseCode::NoError));
        answered += 1;
    };
    assert_eq!(answered, N, "answers before the connection ended ({end})");
    assert_eq!(end.kind(), ErrorKind::UnexpectedEof, "closed with FIN, not reset: {end}");
    drop(c);
    assert!(s.stop().success());
}

/// Resident memory of the server, in KiB.
fn rss_kib(s: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/PID/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Issue 26: a reload frees the configuration it replaces and gives the
/// memory back. With glibc's malloc the resident size after one reload of
/// a big zone was 1.8× the start figure and kept growing; it must stay
/// within 1.2× of it however many reloads come.
#[test]
fn reloads_of_a_big_zone_give_the_old_configurations_memory_back() {
    let dir = TempDir::new("big-reload");
    // `include` is a top-level key: before the first table.
    let zone =
        zone_head("big.test.").replacen("ns = [\"ns1\"]\n", "ns = [\"ns1\"]\ninclude = \"big.test.inc.zone\"\n", 1);
    std::fs::write(dir.path().join("big.test.toml"), zone).unwrap();
    let mut records = String::new();
    for i in 0..30_000u32 {
        records += &format!("a{i} 3600 IN A 10.{}.{}.{}\n", i >> 16 & 255, i >> 8 & 255, i & 255);
    }
    for i in 0..10_000 {
        records += &format!("t{i} 3600 IN TXT \"v=bench1 record {i} of a big generated zone\"\n");
    }
    std::fs::write(dir.path().join("big.test.inc.zone"), records).unwrap();
    let mut s = Server::spawn_with(&["--zones", dir.path().to_str().unwrap()], None);
    s.wait_ready();
    std::thread::sleep(Duration::from_millis(500));
    let start = rss_kib(&s);
    let freed = "previous configuration freed";
    for n in 1..=4 {
        s.signal(libc::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(60);
        while count(&s.log_text(), freed) < n {
            assert!(Instant::now() < deadline, "reload {n} did not free the old configuration:\n{}", s.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let after = rss_kib(&s);
    eprintln!("RSS at start {start} KiB, after 4 reloads {after} KiB");
    assert!(after * 10 <= start * 12, "RSS {after} KiB after 4 reloads, {start} KiB at start");
    assert_eq!(s.dig("a29999.big.test A").answers_of("A"), ["10.0.117.47"]);
    assert_eq!(s.dig("t9999.big.test TXT").answers_of("TXT").len(), 1);
}
