//! Issue 25: DNS over TLS (RFC 7858) and over QUIC (RFC 9250). The same
//! answers as UDP, padding when asked, caps that keep idle clients from
//! starving the rest, and a certificate renewed on SIGHUP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::common::*;

/// Every network step of these tests is bounded by this.
const STEP: Duration = Duration::from_secs(5);
/// RFC 8467 block size for padded responses.
const BLOCK: usize = 468;

/// A fresh self-signed certificate for `localhost`: (cert PEM, key PEM, cert DER).
fn new_cert() -> (String, String, Vec<u8>) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    (cert.pem(), signing_key.serialize_pem(), cert.der().to_vec())
}

fn write_cert(dir: &Path, cert: &(String, String, Vec<u8>)) {
    // Written aside and renamed in, as a renewal tool would.
    for (name, text) in [("cert.pem", &cert.0), ("key.pem", &cert.1)] {
        std::fs::write(dir.join(format!("{name}.new")), text).unwrap();
        std::fs::rename(dir.join(format!("{name}.new")), dir.join(name)).unwrap();
    }
}

/// A server with UDP/TCP on `addr`, DoT and DoQ on `tls`, and the admin API.
struct Encrypted {
    server: Server,
    tls: SocketAddr,
    admin: SocketAddr,
}

fn start(dir: &Path, config: Option<&str>) -> Encrypted {
    let tls: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let mut args = vec![
        "--listen-tls".to_string(),
        tls.to_string(),
        "--listen-quic".into(),
        tls.to_string(),
        "--tls-cert".into(),
        cert.display().to_string(),
        "--tls-key".into(),
        key.display().to_string(),
        "--admin".into(),
        admin.to_string(),
    ];
    if let Some(text) = config {
        let path = dir.join("meridian.toml");
        std::fs::write(&path, text).unwrap();
        args.extend(["--config".into(), path.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Encrypted { server: Server::start_with(&args, None), tls, admin }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Accepts any certificate: the tests check which one was served, not who signed it.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config(alpn: &[u8]) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut c = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    c.alpn_protocols = vec![alpn.to_vec()];
    c
}

async fn tls_connect_from(local: &str, addr: SocketAddr) -> std::io::Result<TlsStream<TcpStream>> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind(format!("{local}:0").parse().unwrap())?;
    let tcp = tokio::time::timeout(STEP, sock.connect(addr)).await??;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(b"dot")));
    tokio::time::timeout(STEP, connector.connect(ServerName::try_from("localhost").unwrap(), tcp)).await?
}

fn peer_cert(s: &TlsStream<TcpStream>) -> Vec<u8> {
    s.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec()
}

async fn tls_ask(s: &mut TlsStream<TcpStream>, query: &[u8]) -> Vec<u8> {
    tokio::time::timeout(STEP, async {
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        s.write_all(&framed).await.unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.unwrap();
        let mut answer = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut answer).await.unwrap();
        answer
    })
    .await
    .expect("a TLS answer in time")
}

/// One DoQ query on a new connection: the answer and the certificate served.
async fn quic_ask(addr: SocketAddr, query: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(client_config(b"doq")).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let answer = tokio::time::timeout(STEP, async {
        let conn = endpoint.connect(addr, "localhost").unwrap().await.expect("QUIC handshake");
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        send.write_all(&framed).await.unwrap();
        send.finish().unwrap();
        let got = recv.read_to_end(2 + 65535).await.expect("a DoQ answer");
        assert_eq!(u16::from_be_bytes([got[0], got[1]]) as usize, got.len() - 2, "one framed message");
        let certs = conn.peer_identity().unwrap().downcast::<Vec<CertificateDer<'static>>>().unwrap();
        conn.close(0u32.into(), b"");
        (got[2..].to_vec(), certs[0].to_vec())
    })
    .await
    .expect("a DoQ answer in time");
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    answer
}

fn udp_ask(addr: SocketAddr, query: &[u8]) -> Vec<u8> {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(STEP)).unwrap();
    sock.send_to(query, addr).unwrap();
    let mut buf = vec![0u8; 65535];
    let n = sock.recv(&mut buf).expect("a UDP answer");
    buf.truncate(n);
    buf
}

/// ID 0 (RFC 9250 asks it of DoQ; the same for every transport), EDNS with
/// an optional ECS subnet and an empty Padding option.
fn query(name: &str, rtype: RecordType, ecs: Option<&str>) -> Vec<u8> {
    let mut m = Message::new(0, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    let mut edns = Edns::new();
    if let Some(net) = ecs {
        edns.options_mut().insert(EdnsOption::Subnet(net.parse::<ClientSubnet>().unwrap()));
    }
    edns.options_mut().insert(EdnsOption::Unknown(u16::from(EdnsCode::Padding), Vec::new()));
    m.set_edns(edns);
    m.to_vec().unwrap()
}

/// The parsed answer with any Padding option removed, and whether it had one.
fn unpadded(bytes: &[u8]) -> (Message, bool) {
    let mut m = Message::from_vec(bytes).expect("a parseable answer");
    let edns = m.edns.as_mut().expect("EDNS in the answer");
    let padded = edns.option(EdnsCode::Padding).is_some();
    edns.options_mut().remove(EdnsCode::Padding);
    (m, padded)
}

fn metrics(admin: SocketAddr) -> String {
    http_get(admin, "/metrics").1
}

const CASES: [(&str, RecordType, Option<&str>, &str); 3] = [
    ("www.gslb.example.test.", RecordType::A, Some("10.3.0.0/24"), "NoError"),
    ("gslb.example.test.", RecordType::SOA, None, "NoError"),
    ("nope.gslb.example.test.", RecordType::A, None, "NXDomain"),
];

#[test]
fn tls_and_quic_answer_as_udp_does_with_padding_when_asked() {
    let dir = TempDir::new("encrypted-same");
    write_cert(dir.path(), &new_cert());
    let s = start(dir.path(), None);
    let rt = runtime();
    for (name, rtype, ecs, rcode) in CASES {
        let q = query(name, rtype, ecs);
        let (udp, udp_padded) = unpadded(&udp_ask(s.server.addr, &q));
        let tls_raw = rt.block_on(async {
            let mut c = tls_connect_from("127.0.0.1", s.tls).await.expect("TLS handshake");
            tls_ask(&mut c, &q).await
        });
        let (quic_raw, _) = rt.block_on(quic_ask(s.tls, &q));
        let (tls, tls_padded) = unpadded(&tls_raw);
        let (quic, quic_padded) = unpadded(&quic_raw);
        assert_eq!(format!("{:?}", udp.metadata.response_code), rcode, "{name}");
        assert!(!udp_padded, "UDP answers are never padded");
        assert_eq!(tls, udp, "{name}: DoT and UDP differ");
        assert_eq!(quic, udp, "{name}: DoQ and UDP differ");
        assert!(tls_padded && quic_padded, "{name}: the query asked for padding");
        assert_eq!(tls_raw.len() % BLOCK, 0, "{name}: padded to the RFC 8467 block");
        assert_eq!(quic_raw.len() % BLOCK, 0, "{name}: padded to the RFC 8467 block");
        if ecs.is_some() {
            let scope = udp.edns.as_ref().and_then(|e| match e.option(EdnsCode::Subnet) {
                Some(EdnsOption::Subnet(cs)) => Some(cs.scope_prefix()),
                _ => None,
            });
            assert!(matches!(scope, Some(1..)), "{name}: ECS answered with a scope: {scope:?}");
        }
    }
    // And with dig's own DoT client.
    for (name, rtype, ecs, _) in CASES {
        let ecs = ecs.map_or(String::new(), |n| format!("+subnet={n}"));
        let args = format!("{ecs} {name} {rtype}");
        let udp = s.server.dig(&args);
        let tls = dig(s.tls, &format!("+tls +padding=128 {args}"));
        assert!(tls.raw.contains("(TLS)") && tls.raw.contains("PAD:"), "dig +tls, padded:\n{}", tls.raw);
        let parts = |d: &Dig| (d.status.clone(), d.flags.clone(), d.answer.clone(), d.authority.clone(), d.ecs.clone());
        assert_eq!(parts(&tls), parts(&udp), "{name}: dig +tls and UDP differ\n{}\n{}", tls.raw, udp.raw);
    }
}

#[test]
fn idle_tls_connections_do_not_stop_udp_or_new_tls_queries() {
    let dir = TempDir::new("encrypted-idle");
    write_cert(dir.path(), &new_cert());
    let config = format!(
        "zones = {:?}\ngeoip = {:?}\ntcp_idle_timeout_secs = 60\n[tcp]\nmax_connections = 1024\nmax_connections_per_client = 100\n",
        repo().join("zones"),
        repo().join("geoip/demo.mmdb"),
    );
    let s = start(dir.path(), Some(&config));
    let rt = runtime();
    let q = query("www.gslb.example.test.", RecordType::A, None);
    let started = Instant::now();
    // 200 idle clients from one address: 100 fit its cap, the rest are closed at once.
    let idle: Vec<_> = rt.block_on(async {
        let mut open = Vec::new();
        for _ in 0..200 {
            if let Ok(c) = tls_connect_from("127.0.0.2", s.tls).await {
                open.push(c);
            }
        }
        open
    });
    assert!(started.elapsed() < Duration::from_secs(60), "bounded in time");
    // A refused client may finish its handshake before it sees the close; a query tells.
    let (alive, _kept) = rt.block_on(async {
        let (mut alive, mut kept) = (0, Vec::new());
        for mut c in idle {
            let asked = async {
                let mut framed = (q.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&q);
                c.write_all(&framed).await.ok()?;
                let mut len = [0u8; 2];
                c.read_exact(&mut len).await.ok()?;
                Some(())
            };
            if tokio::time::timeout(STEP, asked).await.ok().flatten().is_some() {
                alive += 1;
            }
            kept.push(c); // stays open (and idle) until the test ends
        }
        (alive, kept)
    });
    assert_eq!(alive, 100, "the per-client cap admits 100");
    let text = metrics(s.admin);
    assert_eq!(metric(&text, "meridian_encrypted_refused_total{transport=\"tls\",reason=\"per_client\"}"), Some(100.0));
    assert_eq!(metric(&text, "meridian_encrypted_connections{transport=\"tls\"}"), Some(100.0));
    // Others are still served: UDP, dig +tls, and a new TLS client.
    assert_eq!(s.server.dig("www.gslb.example.test A").status, "NOERROR");
    assert_eq!(dig(s.tls, "+tls www.gslb.example.test A").status, "NOERROR");
    let answer = rt.block_on(async {
        let mut c = tls_connect_from("127.0.0.1", s.tls).await.expect("a new client is admitted");
        tls_ask(&mut c, &q).await
    });
    assert_eq!(Message::from_vec(&answer).unwrap().answers.len(), 1);
}

#[test]
fn renewed_certificate_is_served_after_sighup_and_sessions_survive() {
    let dir = TempDir::new("encrypted-renew");
    let (old, new) = (new_cert(), new_cert());
    write_cert(dir.path(), &old);
    let s = start(dir.path(), None);
    let rt = runtime();
    let q = query("www.gslb.example.test.", RecordType::A, None);
    let mut session = rt.block_on(tls_connect_from("127.0.0.1", s.tls)).unwrap();
    assert_eq!(peer_cert(&session), old.2);
    assert_eq!(rt.block_on(quic_ask(s.tls, &q)).1, old.2);

    write_cert(dir.path(), &new);
    s.server.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.server.log_text().contains("reloaded TLS certificate") {
        assert!(Instant::now() < deadline, "no certificate reload:\n{}", s.server.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let fresh = rt.block_on(tls_connect_from("127.0.0.1", s.tls)).unwrap();
    assert_eq!(peer_cert(&fresh), new.2, "a new TLS handshake gets the renewed certificate");
    assert_eq!(rt.block_on(quic_ask(s.tls, &q)).1, new.2, "so does a new QUIC one");
    let answer = rt.block_on(tls_ask(&mut session, &q));
    assert_eq!(Message::from_vec(&answer).unwrap().answers.len(), 1, "the session from before is still served");

    // A broken renewal keeps the last good pair in service.
    std::fs::write(dir.path().join("cert.pem"), "not a certificate\n").unwrap();
    s.server.signal(libc::SIGHUP);
    while !s.server.log_text().contains("TLS certificate reload failed") {
        assert!(Instant::now() < deadline + Duration::from_secs(10), "no failed reload:\n{}", s.server.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = rt.block_on(tls_connect_from("127.0.0.1", s.tls)).unwrap();
    assert_eq!(peer_cert(&after), new.2, "still the last good certificate");
}

#[test]
fn bad_key_or_certificate_refuses_the_start_naming_the_file() {
    let dir = TempDir::new("encrypted-bad");
    write_cert(dir.path(), &new_cert());
    let other = new_cert();
    std::fs::write(dir.path().join("other-key.pem"), &other.1).unwrap();
    std::fs::write(dir.path().join("junk.pem"), "not a certificate\n").unwrap();
    let port = free_port();
    let run = |cert: &str, key: &str| {
        let d = dir.path();
        let args = [
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--listen-tls",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
            &d.join(cert).display().to_string(),
            "--tls-key",
            &d.join(key).display().to_string(),
            "--admin",
            "off",
            "--state-dir",
            &d.join("state").display().to_string(),
        ]
        .map(|a| a.to_string());
        let out = meridian(&args.iter().map(String::as_str).collect::<Vec<_>>(), &repo());
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    for (cert, key, named) in [("junk.pem", "key.pem", "junk.pem"), ("cert.pem", "other-key.pem", "other-key.pem")] {
        let (ok, stderr) = run(cert, key);
        assert!(!ok, "{cert}/{key} must refuse the start");
        let line = stderr.lines().find(|l| l.starts_with("meridian:")).unwrap_or_default().to_string();
        assert!(line.contains(&dir.path().join(named).display().to_string()), "names {named}: {stderr}");
    }
}

#[test]
fn quic_connection_kept_alive_by_pings_is_closed_after_the_idle_timeout() {
    let dir = TempDir::new("encrypted-quic-idle");
    write_cert(dir.path(), &new_cert());
    let config = format!(
        "zones = {:?}\ngeoip = {:?}\ntcp_idle_timeout_secs = 1\n",
        repo().join("zones"),
        repo().join("geoip/demo.mmdb"),
    );
    let s = start(dir.path(), Some(&config));
    let rt = runtime();
    let (closed, open_during) = rt.block_on(async {
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(client_config(b"doq")).unwrap();
        let mut transport = quinn::TransportConfig::default();
        transport.keep_alive_interval(Some(Duration::from_millis(200))); // never idle at the QUIC layer
        let mut client = quinn::ClientConfig::new(Arc::new(crypto));
        client.transport_config(Arc::new(transport));
        endpoint.set_default_client_config(client);
        let conn = endpoint.connect(s.tls, "localhost").unwrap().await.expect("QUIC handshake");
        let open_during = metric(&metrics(s.admin), "meridian_encrypted_connections{transport=\"quic\"}");
        let started = Instant::now();
        let reason = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await.expect("closed by the server");
        (format!("{reason:?} after {:?}", started.elapsed()), open_during)
    });
    assert_eq!(open_during, Some(1.0), "counted while open");
    assert!(closed.contains("ApplicationClosed"), "closed by the server's idle timeout: {closed}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(metric(&metrics(s.admin), "meridian_encrypted_connections{transport=\"quic\"}"), Some(0.0));
}
