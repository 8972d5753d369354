//! A loopback HTTP backend for the probe load note (`bench/probe_load.sh`):
//! answers every GET with `200 OK`, counting requests and distinct paths.
//! `GET /__stats` returns `requests=N distinct=M` (not counted itself).
//!
//! Usage: `probe_backends [LISTEN] [WORKERS] [flap]` (default `127.0.0.1:0`, 16).
//! With `flap`, every other request is answered `500` instead (endpoints
//! probed with rise = fall = 1 then change state on almost every probe).
//! Prints `listening ADDR` on its first line; runs until killed (SIGTERM).
//! Loopback only: refuses a non-loopback LISTEN address. Std only.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Stats {
    flap: bool,
    requests: AtomicU64,
    paths: Mutex<HashSet<String>>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args.next().unwrap_or_else(|| "127.0.0.1:0".into()).parse().expect("LISTEN address");
    let workers: usize = args.next().map(|w| w.parse().expect("WORKERS")).unwrap_or(16);
    let flap = args.next().as_deref() == Some("flap");
    assert!(listen.ip().is_loopback(), "probe_backends listens on loopback only, not {listen}");
    let listener = TcpListener::bind(listen).expect("bind");
    println!("listening {}", listener.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    let stats = Arc::new(Stats { flap, requests: AtomicU64::new(0), paths: Mutex::new(HashSet::new()) });
    let mut threads = Vec::new();
    for _ in 0..workers.max(1) {
        let l = listener.try_clone().expect("clone listener");
        let stats = Arc::clone(&stats);
        threads.push(std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                handle(s, &stats);
            }
        }));
    }
    for t in threads {
        let _ = t.join();
    }
}

fn handle(mut s: TcpStream, stats: &Stats) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_nodelay(true);
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let line = String::from_utf8_lossy(&head);
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut status = "200 OK";
    let body = if path == "/__stats" {
        let distinct = stats.paths.lock().unwrap().len();
        format!("requests={} distinct={distinct}\n", stats.requests.load(Ordering::Relaxed))
    } else {
        let n = stats.requests.fetch_add(1, Ordering::Relaxed);
        stats.paths.lock().unwrap().insert(path);
        if stats.flap && n % 2 == 1 {
            status = "500 Internal Server Error";
        }
        "OK\n".to_string()
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes());
}
