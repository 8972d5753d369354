//! Issue 7: probe responses that are huge, slow, or redirects are judged
//! safely: bounded reads, the timeout, no redirect following.

use crate::common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a raw backend answers every request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// 200 with 100 KiB of filler before "OK": beyond the 64 KiB read limit.
    HugeOkLate,
    /// 200 with "OK" first, then 20 MiB of filler (never read in full).
    HugeOkEarly,
    /// 302 to a port where nothing listens.
    Redirect,
    /// Headers after 2 s.
    SlowHead,
    /// Headers at once, then the body one byte every 100 ms.
    SlowBody,
}

struct RawBackend {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl RawBackend {
    fn start(ip: &str, how: Behaviour) -> RawBackend {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let flag = Arc::clone(&flag);
                        std::thread::spawn(move || answer(s, how, &flag));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        RawBackend { addr, stop }
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn answer(mut s: std::net::TcpStream, how: Behaviour, stop: &AtomicBool) {
    s.set_nonblocking(false).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = match how {
        Behaviour::HugeOkLate => {
            let body = format!("{}OK", "x".repeat(100 * 1024));
            s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
        }
        Behaviour::HugeOkEarly => {
            let total = 2 + 20 * 1024 * 1024;
            let _ = s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\nOK").as_bytes());
            let chunk = vec![b'x'; 64 * 1024];
            // Stops as soon as the prober hangs up (write error) or the test ends.
            for _ in 0..320 {
                if stop.load(Ordering::SeqCst) || s.write_all(&chunk).is_err() {
                    break;
                }
            }
            Ok(())
        }
        Behaviour::Redirect => {
            s.write_all(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n")
        }
        Behaviour::SlowHead => {
            std::thread::sleep(Duration::from_secs(2));
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
        }
        Behaviour::SlowBody => {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n");
            for _ in 0..40 {
                if stop.load(Ordering::SeqCst) || s.write_all(b"z").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        }
    };
}

fn region(name: &str, addr: &str, backend: &RawBackend, body: bool) -> String {
    let body_key = if body { "body = \"OK\"\n" } else { "" };
    format!(
        "\n[[regions]]\nname = \"{name}\"\naddresses = [\"{addr}\"]\n\n[regions.probe]\ntype = \"http\"\n\
         url = \"http://{{addr}}:{port}/health\"\nprobe_addr = \"{probe}\"\ninterval = \"300ms\"\n\
         timeout = \"600ms\"\nfall = 2\nrise = 1\n{body_key}",
        port = backend.addr.port(),
        probe = backend.addr.ip(),
    )
}

#[test]
fn probe_responses_that_are_huge_slow_or_redirects() {
    let late = RawBackend::start("127.0.0.21", Behaviour::HugeOkLate);
    let early = RawBackend::start("127.0.0.22", Behaviour::HugeOkEarly);
    let redirect = RawBackend::start("127.0.0.23", Behaviour::Redirect);
    let slow_head = RawBackend::start("127.0.0.24", Behaviour::SlowHead);
    let slow_body = RawBackend::start("127.0.0.25", Behaviour::SlowBody);
    let mut zone = String::from(
        "origin = \"p.test.\"\nns = [\"ns1\"]\n[soa]\nmname = \"ns1\"\nrname = \"h\"\nserial = 1\n\
         [[records]]\nname = \"ns1\"\ntype = \"A\"\ndata = \"192.0.2.53\"\n",
    );
    zone += &region("huge-late", "192.0.2.21", &late, true);
    zone += &region("huge-early", "192.0.2.22", &early, true);
    zone += &region("redirect", "192.0.2.23", &redirect, false);
    zone += &region("slow-head", "192.0.2.24", &slow_head, false);
    zone += &region("slow-body", "192.0.2.25", &slow_body, true);
    let dir = TempDir::new("probe-inputs");
    std::fs::create_dir_all(dir.path().join("zones")).unwrap();
    std::fs::write(dir.path().join("zones/p.toml"), zone).unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let zones = dir.path().join("zones");
    let s = Server::start_with(&["--zones", zones.to_str().unwrap(), "--admin", &admin.to_string()], None);

    let want =
        [("huge-late", false), ("huge-early", true), ("redirect", true), ("slow-head", false), ("slow-body", false)];
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, body) = http_get(admin, "/status");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let verdicts: Vec<(String, String, String)> = status["regions"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .map(|r| {
                        let ep = &r["endpoints"][0];
                        let detail = ep["last_result"]["detail"].as_str().unwrap_or("").to_string();
                        (
                            r["name"].as_str().unwrap_or("").to_string(),
                            ep["verdict"].as_str().unwrap_or("").to_string(),
                            detail,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let last = format!("{verdicts:#?}");
        let settled = want
            .iter()
            .all(|(name, up)| verdicts.iter().any(|(n, v, _)| n == name && v == if *up { "up" } else { "down" }));
        if settled {
            eprintln!("probe verdicts: {last}");
            let detail = |name: &str| verdicts.iter().find(|(n, _, _)| n == name).unwrap().2.clone();
            assert!(detail("slow-head").contains("timeout"), "{}", detail("slow-head"));
            assert!(detail("redirect").contains("302"), "a redirect is a status, not followed: {}", detail("redirect"));
            assert!(detail("huge-late").contains("lacks"), "{}", detail("huge-late"));
            break;
        }
        assert!(Instant::now() < deadline, "verdicts did not settle as expected in 15 s: {last}\n{}", s.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    // The server stays responsive throughout.
    assert_eq!(s.dig("ns1.p.test A").answers_of("A"), vec!["192.0.2.53"]);
}
