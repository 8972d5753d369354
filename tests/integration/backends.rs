//! In-process test backends for the health tests: a tiny HTTP/1.1 server (plain
//! or TLS with rustls) and a bare TCP listener, each on a thread, that can be
//! killed (listener dropped: connects are refused) and restarted (the same
//! address and port bound again). Only std threads and blocking sockets.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the backend answers to every request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// Wait this long after reading the request before answering.
    pub delay: Duration,
}

impl Default for Reply {
    fn default() -> Self {
        Reply { status: 200, body: "OK\n".into(), delay: Duration::ZERO }
    }
}

/// How a backend speaks on an accepted connection.
#[derive(Clone)]
pub enum Mode {
    /// HTTP/1.1, one request per connection.
    Http,
    /// HTTP/1.1 inside TLS.
    Https(Arc<rustls::ServerConfig>),
    /// Accept and close: a TCP-connect probe target.
    Tcp,
}

struct Shared {
    reply: Mutex<Reply>,
    /// Connections accepted (the wake-up connect of `kill` is not counted).
    accepted: AtomicUsize,
    /// HTTP requests read in full.
    requests: AtomicUsize,
    /// HTTP responses written.
    served: AtomicUsize,
    /// Connections whose TLS handshake (or request) failed, with the last error.
    failed: AtomicUsize,
    last_error: Mutex<String>,
}

struct Running {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// A killable, restartable backend on one address and port.
pub struct Backend {
    pub addr: SocketAddr,
    mode: Mode,
    shared: Arc<Shared>,
    running: Option<Running>,
}

impl Backend {
    /// Bind `ip:port` (`port` 0: any free port) and start serving.
    pub fn start(ip: IpAddr, port: u16, mode: Mode) -> std::io::Result<Backend> {
        let listener = TcpListener::bind(SocketAddr::new(ip, port))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            reply: Mutex::new(Reply::default()),
            accepted: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            last_error: Mutex::new(String::new()),
        });
        let mut b = Backend { addr, mode, shared, running: None };
        b.run(listener);
        Ok(b)
    }

    pub fn http(ip: &str, port: u16) -> std::io::Result<Backend> {
        Backend::start(ip.parse().unwrap(), port, Mode::Http)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn set_reply(&self, reply: Reply) {
        *self.shared.reply.lock().unwrap() = reply;
    }

    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }
    pub fn served(&self) -> usize {
        self.shared.served.load(Ordering::SeqCst)
    }
    pub fn failed(&self) -> usize {
        self.shared.failed.load(Ordering::SeqCst)
    }
    pub fn last_error(&self) -> String {
        self.shared.last_error.lock().unwrap().clone()
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Stop accepting and drop the listener: from return on, connects are refused.
    pub fn kill(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop.store(true, Ordering::SeqCst);
            // Wake the blocking accept; the acceptor sees `stop` and exits, dropping the listener.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
            let _ = r.thread.join();
        }
    }

    /// Bind the same address and port again and serve.
    pub fn restart(&mut self) {
        assert!(self.running.is_none(), "restart of a running backend");
        // std sets SO_REUSEADDR on Unix; retry briefly in case the port is momentarily busy.
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rebind {}: {e}; retrying", self.addr);
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.addr),
            }
        };
        self.run(listener);
    }

    fn run(&mut self, listener: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, shared, mode) = (Arc::clone(&stop), Arc::clone(&self.shared), self.mode.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                let (shared, mode) = (Arc::clone(&shared), mode.clone());
                std::thread::spawn(move || handle(stream, &shared, &mode));
            }
            // `listener` dropped here.
        });
        self.running = Some(Running { stop, thread });
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

fn handle(stream: TcpStream, shared: &Shared, mode: &Mode) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(3)));
    let _ = stream.set_nodelay(true);
    match mode {
        Mode::Tcp => {}
        Mode::Http => {
            let mut s = stream;
            serve_http(&mut s, shared);
            let _ = s.shutdown(Shutdown::Both);
        }
        Mode::Https(cfg) => {
            let conn = match rustls::ServerConnection::new(Arc::clone(cfg)) {
                Ok(c) => c,
                Err(e) => return record_error(shared, format!("TLS setup: {e}")),
            };
            let mut tls = rustls::StreamOwned::new(conn, stream);
            serve_http(&mut tls, shared);
            tls.conn.send_close_notify();
            let _ = tls.flush();
            let _ = tls.sock.shutdown(Shutdown::Both);
        }
    }
}

fn record_error(shared: &Shared, e: String) {
    shared.failed.fetch_add(1, Ordering::SeqCst);
    *shared.last_error.lock().unwrap() = e;
}

/// Read one request head, answer per the current `Reply`, close.
fn serve_http<S: Read + Write>(s: &mut S, shared: &Shared) {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => {
                // TLS handshake failures surface here (e.g. the client rejected our certificate).
                if !head.is_empty() || !matches!(e.kind(), std::io::ErrorKind::UnexpectedEof) {
                    record_error(shared, e.to_string());
                }
                return;
            }
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let reply = shared.reply.lock().unwrap().clone();
    if !reply.delay.is_zero() {
        std::thread::sleep(reply.delay);
    }
    let reason = match reply.status {
        200 => "OK",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let resp = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        reply.status,
        reply.body.len(),
        reply.body
    );
    if s.write_all(resp.as_bytes()).and_then(|_| s.flush()).is_ok() {
        shared.served.fetch_add(1, Ordering::SeqCst);
    }
}

/// One port free on every one of `ips` right now, and the backends bound to it.
pub fn http_backends_on_one_port(ips: &[&str]) -> Vec<Backend> {
    for _ in 0..50 {
        let first = Backend::http(ips[0], 0).expect("bind backend");
        let port = first.port();
        let mut all = vec![first];
        for ip in &ips[1..] {
            match Backend::http(ip, port) {
                Ok(b) => all.push(b),
                Err(_) => break,
            }
        }
        if all.len() == ips.len() {
            return all;
        }
    }
    panic!("no port free on all of {ips:?}");
}

/// A test CA and a leaf certificate for `sans` signed by it.
pub struct TestPki {
    pub ca_pem: String,
    pub leaf_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

pub fn test_pki(sans: &[&str]) -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Meridian test CA");
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let mut leaf_params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    leaf_params.distinguished_name.push(DnType::CommonName, "meridian test backend");
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();

    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
        .unwrap();
    TestPki { ca_pem: ca.pem(), leaf_pem: leaf.pem(), server_config: Arc::new(cfg) }
}
