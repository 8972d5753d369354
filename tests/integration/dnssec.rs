//! Issue 21, DNSSEC online signing with compact denial: key files and their
//! errors (must-show 4), signed answers and compact denial asked directly,
//! DO=0 answers unchanged byte for byte, `delv` with the zone's DS as its
//! anchor, and Unbound validating through a relay that can flip a byte of a
//! signature (must-show 1).

use crate::common::*;
use crate::peers::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const ZONE: &str = "gslb.example.test.";

/// The shipped zones copied into `dir/zones`, the GSLB zone signed with a
/// key made by `meridian dnssec keygen` (`extra` goes into `[dnssec]`).
fn signed_zones(dir: &Path, algorithm: &str, extra: &str) -> PathBuf {
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    for f in ["gslb.example.test.toml", "gslb.example.test.inc.zone"] {
        std::fs::copy(repo().join("zones").join(f), zones.join(f)).unwrap();
    }
    let out = meridian(&["dnssec", "keygen", ZONE, "--algorithm", algorithm, "--out", "zones/zone.key"], dir);
    assert!(out.status.success(), "keygen: {}", String::from_utf8_lossy(&out.stderr));
    append(&zones.join("gslb.example.test.toml"), &format!("\n[dnssec]\nkeys = [\"zone.key\"]\n{extra}"));
    zones
}

pub(crate) fn append(path: &Path, text: &str) {
    let mut s = std::fs::read_to_string(path).unwrap();
    s.push_str(text);
    std::fs::write(path, s).unwrap();
}

/// `meridian dnssec ds` for the zone: `NAME IN DS TAG ALG 2 HEX`.
pub(crate) fn ds_record(dir: &Path, zones: &Path) -> String {
    let out = meridian(&["dnssec", "ds", ZONE, "--zones", zones.to_str().unwrap()], dir);
    assert!(out.status.success(), "ds: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub(crate) fn serve(zones: &Path) -> Server {
    let geoip = repo().join("geoip/demo.mmdb");
    Server::start_with(&["--zones", zones.to_str().unwrap(), "--geoip", geoip.to_str().unwrap()], None)
}

/// keygen writes a 0600 file and never overwrites one; ds prints one
/// SHA-256 DS per key; `check` loads the signed zone.
#[test]
fn keygen_writes_a_private_file_and_ds_prints_the_digest() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("dnssec-keygen");
    let zones = signed_zones(dir.path(), "ed25519", "signature_days = 7\n");
    let key = zones.join("zone.key");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.contains("; zone: gslb.example.test.\n; algorithm: 15\n-----BEGIN PRIVATE KEY-----"), "{text}");
    let again = meridian(&["dnssec", "keygen", ZONE, "--out", "zones/zone.key"], dir.path());
    assert!(!again.status.success());
    assert_eq!(std::fs::read_to_string(&key).unwrap(), text, "an existing key was overwritten");
    let ds = ds_record(dir.path(), &zones);
    let f: Vec<&str> = ds.split_whitespace().collect();
    assert_eq!(&f[..3], [ZONE, "IN", "DS"], "{ds}");
    assert_eq!((f[4], f[5], f[6].len()), ("15", "2", 64), "{ds}");
    let geoip = repo().join("geoip/demo.mmdb");
    let check =
        meridian(&["check", "--zones", zones.to_str().unwrap(), "--geoip", geoip.to_str().unwrap()], dir.path());
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let summary = String::from_utf8_lossy(&check.stdout);
    assert!(
        summary.contains(&format!("signed online with {} (algorithm 15, tag {}, csk active)", key.display(), f[3])),
        "{summary}"
    );
    assert!(!summary.contains("warning"), "{summary}");
    // A key others may read: loaded, with a warning to fix it.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let check =
        meridian(&["check", "--zones", zones.to_str().unwrap(), "--geoip", geoip.to_str().unwrap()], dir.path());
    let summary = String::from_utf8_lossy(&check.stdout);
    let want = format!("warning: {}: a private key readable by group or others (mode 644): chmod 600", key.display());
    assert!(check.status.success() && summary.contains(&want), "{summary}");
}

/// Must-show 4: a missing, unreadable, wrong-zone or unsupported key stops
/// `check` and `serve` with `FILE: message` and a non-zero exit.
#[test]
fn bad_key_files_refuse_check_and_start_naming_the_file() {
    let dir = TempDir::new("dnssec-badkeys");
    let zones = signed_zones(dir.path(), "ecdsap256", "");
    let key = zones.join("zone.key");
    let good = std::fs::read_to_string(&key).unwrap();
    enum Make {
        Missing,
        /// Root reads any mode: a directory is what stays unreadable as a key.
        Directory,
        Text(String),
    }
    let cases = [
        ("cannot read the DNSSEC key: does not exist", Make::Missing),
        ("cannot read the DNSSEC key", Make::Directory),
        (
            "this key is for zone other.test., not gslb.example.test.",
            Make::Text(good.replace("; zone: gslb.example.test.", "; zone: other.test.")),
        ),
        ("unsupported algorithm 8", Make::Text(good.replace("; algorithm: 13", "; algorithm: 8"))),
        ("no PKCS#8 private key", Make::Text("; zone: gslb.example.test.\n; algorithm: 13\nnot a key\n".into())),
    ];
    let want_prefix = format!("{}: ", key.display());
    for (want, make) in cases {
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_dir(&key);
        match &make {
            Make::Missing => {}
            Make::Directory => std::fs::create_dir(&key).unwrap(),
            Make::Text(t) => std::fs::write(&key, t).unwrap(),
        }
        let check = meridian(&["check", "--zones", zones.to_str().unwrap()], dir.path());
        let err = String::from_utf8_lossy(&check.stderr);
        assert!(!check.status.success(), "check passed with a bad key ({want})");
        assert!(err.starts_with(&want_prefix) && err.contains(want), "check said {err:?}, wanted {want_prefix}…{want}");
        let serve = Command::new(bin())
            .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--admin", "off"])
            .args(["--zones", zones.to_str().unwrap(), "--state-dir", dir.path().join("state").to_str().unwrap()])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&serve.stderr);
        assert!(!serve.status.success(), "serve started with a bad key ({want})");
        assert!(err.contains(&want_prefix) && err.contains(want), "serve said {err:?}");
    }
}

/// A DS at a delegation makes it secure: the signed referral carries the DS
/// and its RRSIG instead of the no-DS NSEC, and the DS asked for is signed
/// data. A DS anywhere else is refused when the zone loads.
#[test]
fn a_ds_record_makes_a_signed_secure_referral() {
    if !dig_available() {
        return skip_or_fail("dig not installed (bind9-dnsutils)");
    }
    let dir = TempDir::new("dnssec-ds");
    let ds = "[[records]]\nname = \"sub\"\ntype = \"DS\"\ndata = \"12345 13 2 ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789\"\n";
    let zones = signed_zones(dir.path(), "ecdsap256", ds);
    let server = serve(&zones);
    let d = server.dig("host.sub.gslb.example.test A +dnssec");
    assert!(!d.has_flag("aa"), "{}", d.raw);
    assert_eq!(rr_data(&d.authority, "NS").len(), 2, "{}", d.raw);
    assert_eq!(rr_data(&d.authority, "DS").len(), 1, "{}", d.raw);
    let sigs = rr_data(&d.authority, "RRSIG");
    assert!(sigs.len() == 1 && sigs[0].starts_with("DS 13 4 "), "{}", d.raw);
    assert!(rr_data(&d.authority, "NSEC").is_empty(), "{}", d.raw);
    // Without DO the referral is what it always was: NS and glue only.
    let d = server.dig("host.sub.gslb.example.test A");
    assert!(rr_data(&d.authority, "DS").is_empty(), "{}", d.raw);
    let d = server.dig("sub.gslb.example.test DS +dnssec");
    assert!(d.has_flag("aa") && d.answers_of("DS").len() == 1 && d.answers_of("RRSIG").len() == 1, "{}", d.raw);
    drop(server);

    let toml = zones.join("gslb.example.test.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("name = \"sub\"\ntype = \"DS\"", "name = \"static\"\ntype = \"DS\"");
    std::fs::write(&toml, text).unwrap();
    let check = meridian(&["check", "--zones", zones.to_str().unwrap()], dir.path());
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(!check.status.success() && err.contains("has a DS record but is not a delegation"), "{err}");
}

/// A key file replaced under a running server is picked up like a changed
/// zone file: the apex DNSKEY changes without a signal.
#[test]
fn a_replaced_key_file_reloads_the_zone() {
    if !dig_available() {
        return skip_or_fail("dig not installed (bind9-dnsutils)");
    }
    let dir = TempDir::new("dnssec-reload");
    let zones = signed_zones(dir.path(), "ecdsap256", "");
    let server = serve(&zones);
    let before = server.dig("gslb.example.test DNSKEY").answers_of("DNSKEY");
    assert_eq!(before.len(), 1);
    let out = meridian(&["dnssec", "keygen", ZONE, "--algorithm", "ed25519", "--out", "zones/new.key"], dir.path());
    assert!(out.status.success());
    std::fs::rename(zones.join("new.key"), zones.join("zone.key")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let now = server.dig("gslb.example.test DNSKEY").answers_of("DNSKEY");
        if now.len() == 1 && now != before {
            assert!(now[0].starts_with("257 3 15 "), "{now:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "DNSKEY still {now:?} 15 s after the key changed\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A query with EDNS: DO and the other flag bits (`flags`) as given.
pub(crate) fn edns_query(name: &str, rtype: RecordType, flags: u16, ecs: bool) -> Vec<u8> {
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.set_dnssec_ok(flags & 0x8000 != 0);
    e.flags_mut().z = flags & 0x7fff;
    if ecs {
        let subnet = hickory_proto::rr::rdata::opt::ClientSubnet::new("10.3.0.0".parse().unwrap(), 24, 0);
        e.options_mut().insert(hickory_proto::rr::rdata::opt::EdnsOption::Subnet(subnet));
    }
    m.set_edns(e);
    m.to_vec().unwrap()
}

pub(crate) fn ask(addr: SocketAddr, packet: &[u8]) -> Vec<u8> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.send_to(packet, addr).unwrap();
    let mut buf = vec![0u8; 65535];
    let n = s.recv(&mut buf).expect("an answer within 3 s");
    buf.truncate(n);
    buf
}

/// DO=0 answers from the signed zone are the unsigned zone's, byte for byte
/// (they take the same fast path); DO=1 answers carry RRSIGs and compact
/// denial; CO brings the NXDOMAIN rcode back and is echoed.
#[test]
fn do_bit_decides_between_todays_bytes_and_signed_answers() {
    if !dig_available() {
        return skip_or_fail("dig not installed (bind9-dnsutils)");
    }
    let dir = TempDir::new("dnssec-direct");
    let signed = serve(&signed_zones(dir.path(), "ecdsap256", ""));
    let plain = serve(&repo().join("zones"));
    for (name, t) in [
        ("static.gslb.example.test.", RecordType::A),
        ("www.gslb.example.test.", RecordType::A),
        ("chain.gslb.example.test.", RecordType::A),
        ("x.wild.gslb.example.test.", RecordType::A),
        ("static.gslb.example.test.", RecordType::TXT),
        ("nope.gslb.example.test.", RecordType::A),
        ("sub.gslb.example.test.", RecordType::A),
    ] {
        for (flags, ecs) in [(0, false), (0, true), (0x4000, false)] {
            let q = edns_query(name, t, flags, ecs);
            assert_eq!(ask(signed.addr, &q), ask(plain.addr, &q), "{name} {t} flags {flags:#x} ecs {ecs}");
        }
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        let q = m.to_vec().unwrap();
        assert_eq!(ask(signed.addr, &q), ask(plain.addr, &q), "{name} {t} no EDNS");
    }

    let d = signed.dig("static.gslb.example.test A +dnssec");
    assert_eq!(rr_data(&d.answer, "RRSIG").len(), 1, "{}", d.raw);
    assert!(rr_data(&d.answer, "RRSIG")[0].starts_with("A 13 4 300 "), "{}", d.raw);
    // A wildcard is signed as the query name: labels 5, not 4.
    let d = signed.dig("x.wild.gslb.example.test A +dnssec");
    assert!(rr_data(&d.answer, "RRSIG")[0].starts_with("A 13 5 "), "{}", d.raw);
    // A delegation: NS unsigned, an NSEC proving no DS, signed; glue unsigned.
    let d = signed.dig("host.sub.gslb.example.test A +dnssec");
    assert!(!d.has_flag("aa"), "{}", d.raw);
    let au_sigs = rr_data(&d.authority, "RRSIG");
    assert_eq!(au_sigs.len(), 1, "{}", d.raw);
    assert!(au_sigs[0].starts_with("NSEC "), "{}", d.raw);
    assert_eq!(rr_data(&d.authority, "NSEC"), ["\\000.sub.gslb.example.test. NS RRSIG NSEC"], "{}", d.raw);
    assert!(rr_data(&d.additional, "RRSIG").is_empty(), "{}", d.raw);
    // NODATA: the types the name has, not the asked one.
    let d = signed.dig("static.gslb.example.test TXT +dnssec");
    assert_eq!(d.status, "NOERROR");
    assert_eq!(rr_data(&d.authority, "NSEC"), ["\\000.static.gslb.example.test. A AAAA RRSIG NSEC"], "{}", d.raw);
    assert_eq!(rr_data(&d.authority, "RRSIG").len(), 2, "SOA and NSEC signed:\n{}", d.raw);
    // A name that does not exist: NOERROR with NXNAME (type 128) ...
    let d = signed.dig("nope.gslb.example.test A +dnssec");
    assert_eq!(d.status, "NOERROR", "{}", d.raw);
    assert_eq!(rr_data(&d.authority, "NSEC"), ["\\000.nope.gslb.example.test. RRSIG NSEC TYPE128"], "{}", d.raw);
    // ... and NXDOMAIN again, CO echoed, for a client that sets CO (dig
    // 9.18 does not send that bit: a raw query).
    let r = Message::from_vec(&ask(signed.addr, &edns_query("nope.gslb.example.test.", RecordType::A, 0xc000, false)))
        .unwrap();
    assert_eq!(r.metadata.response_code, hickory_proto::op::ResponseCode::NXDomain);
    let flags = *r.edns.as_ref().expect("OPT").flags();
    assert!(flags.dnssec_ok && flags.z & 0x4000 != 0, "CO not echoed: {flags:?}");
    assert_eq!(r.authorities.iter().filter(|a| a.record_type() == RecordType::NSEC).count(), 1, "{r:?}");
    // RFC 9824 §3.5: NXNAME asked for is FORMERR, in a signed zone only.
    for dnssec in ["+dnssec", ""] {
        assert_eq!(signed.dig(&format!("static.gslb.example.test TYPE128 {dnssec}")).status, "FORMERR");
    }
    assert_eq!(plain.dig("static.gslb.example.test TYPE128").status, "NOERROR");
    // An NSEC asked for at a name that exists: the compact NSEC, signed.
    let d = signed.dig("static.gslb.example.test NSEC +dnssec");
    assert_eq!(d.answers_of("NSEC"), ["\\000.static.gslb.example.test. A AAAA RRSIG NSEC"], "{}", d.raw);
    assert_eq!(d.answers_of("RRSIG").len(), 1, "{}", d.raw);
    // RRSIG asked for: the signatures held there, not a NODATA its own NSEC would contradict.
    let d = signed.dig("static.gslb.example.test RRSIG +dnssec");
    let mut covered: Vec<String> =
        d.answers_of("RRSIG").iter().map(|r| r.split_whitespace().next().unwrap().to_string()).collect();
    covered.sort();
    assert_eq!(covered, ["A", "AAAA", "NSEC"], "{}", d.raw);
    // ANY and CD with DO: one signed RRset, as without DO; CD changes nothing.
    let d = signed.dig("static.gslb.example.test ANY +dnssec");
    assert_eq!((d.answers_of("A").len(), d.answers_of("RRSIG").len()), (1, 1), "{}", d.raw);
    let d = signed.dig("www.gslb.example.test AAAA +dnssec +cdflag");
    assert!(d.has_flag("cd") && d.answers_of("RRSIG").len() == 1, "{}", d.raw);
    // A signed answer past the client's UDP size: TC=1 (the unsigned one fits); TCP carries it.
    assert!(!signed.dig("big.gslb.example.test TXT +bufsize=800 +ignore").has_flag("tc"));
    let d = signed.dig("big.gslb.example.test TXT +dnssec +bufsize=800 +ignore");
    assert!(d.has_flag("tc") && d.answer.is_empty(), "{}", d.raw);
    let d = signed.dig("big.gslb.example.test TXT +dnssec +bufsize=800 +tcp");
    assert!(!d.has_flag("tc") && d.answers_of("RRSIG").len() == 1, "{}", d.raw);
    // Over TCP too.
    let d = signed.dig("www.gslb.example.test A +dnssec +tcp");
    assert_eq!(d.answers_of("RRSIG").len(), 1, "{}", d.raw);
    // The keys at the apex.
    let d = signed.dig("gslb.example.test DNSKEY +dnssec");
    assert!(rr_data(&d.answer, "DNSKEY")[0].starts_with("257 3 13 "), "{}", d.raw);
    assert_eq!(rr_data(&d.answer, "RRSIG").len(), 1, "{}", d.raw);
    for t in ["CDS", "CDNSKEY"] {
        assert_eq!(signed.dig(&format!("gslb.example.test {t}")).answers_of(t).len(), 1, "{t}");
    }
}

/// Names must-show 1 asks about, and what each answers.
const NAMES: &[(&str, &str)] = &[
    ("static.gslb.example.test", "A"),
    ("chain.gslb.example.test", "A"),
    ("x.wild.gslb.example.test", "A"),
    ("static.gslb.example.test", "TXT"),
    ("nope.gslb.example.test", "A"),
    ("www.gslb.example.test", "A"),
];

/// `delv` output for `name`/`t` asked of `server` with `ds` (a `meridian
/// dnssec ds` line) as its only trust anchor.
fn delv(dir: &Path, server: &Server, ds: &str, name: &str, t: &str) -> String {
    let f: Vec<&str> = ds.split_whitespace().collect();
    let anchor = dir.join(format!("anchor-{}.conf", f[3]));
    std::fs::write(
        &anchor,
        format!("trust-anchors {{\n  {ZONE} static-ds {} {} {} \"{}\";\n}};\n", f[3], f[4], f[5], f[6]),
    )
    .unwrap();
    let out = Command::new("delv")
        .arg(format!("@{}", server.addr.ip()))
        .args(["-p", &server.port().to_string(), "-a", anchor.to_str().unwrap(), "+root=gslb.example.test"])
        .args([name, t])
        .output()
        .unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn delv_available() -> bool {
    Command::new("delv").arg("-v").output().is_ok()
}

/// `delv` with the zone's DS as its only anchor: "fully validated" for each
/// name (it sends no ECS: one `www` decision).
#[test]
fn delv_fully_validates_with_the_ds_as_anchor() {
    if !delv_available() {
        return skip_or_fail("delv not installed (bind9-dnsutils)");
    }
    let dir = TempDir::new("dnssec-delv");
    let zones = signed_zones(dir.path(), "ecdsap256", "");
    let ds = ds_record(dir.path(), &zones);
    let server = serve(&zones);
    for (name, t) in NAMES {
        let text = delv(dir.path(), &server, &ds, name, t);
        println!("delv {name} {t}: {}", text.lines().find(|l| l.contains("validated")).unwrap_or("?"));
        assert!(text.contains("fully validated"), "delv {name} {t}:\n{text}");
    }
}

/// Two keys listed (the middle of a manual rollover): both published, both
/// sign, and a validator holding either one's DS validates the answers.
#[test]
fn with_two_keys_either_ds_validates() {
    if !delv_available() {
        return skip_or_fail("delv not installed (bind9-dnsutils)");
    }
    let dir = TempDir::new("dnssec-twokeys");
    let zones = signed_zones(dir.path(), "ecdsap256", "");
    let out = meridian(&["dnssec", "keygen", ZONE, "--algorithm", "ed25519", "--out", "zones/second.key"], dir.path());
    assert!(out.status.success());
    let toml = zones.join("gslb.example.test.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("keys = [\"zone.key\"]", "keys = [\"zone.key\", \"second.key\"]");
    std::fs::write(&toml, text).unwrap();
    let ds_lines = ds_record(dir.path(), &zones);
    let ds: Vec<&str> = ds_lines.lines().collect();
    assert_eq!(ds.len(), 2, "{ds_lines}");
    let server = serve(&zones);
    let d = server.dig("gslb.example.test DNSKEY +dnssec");
    assert_eq!((d.answers_of("DNSKEY").len(), d.answers_of("RRSIG").len()), (2, 2), "{}", d.raw);
    for anchor in &ds {
        for (name, t) in [("www.gslb.example.test", "A"), ("nope.gslb.example.test", "A")] {
            let text = delv(dir.path(), &server, anchor, name, t);
            assert!(text.contains("fully validated"), "delv {name} {t} with {anchor}:\n{text}");
        }
    }
}

/// A UDP relay in front of Meridian that flips a byte of the answer's last
/// RRSIG signature for one name (`static.…` A): what a validator must
/// refuse. Runs until the flag is set, each wait bounded.
struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(upstream: SocketAddr, tamper: &'static str) -> Relay {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let up = UdpSocket::bind("127.0.0.1:0").unwrap();
            up.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = vec![0u8; 65535];
            let mut back = vec![0u8; 65535];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
                if up.send_to(&buf[..n], upstream).is_err() {
                    continue;
                }
                let Ok(m) = up.recv(&mut back) else { continue };
                let mut reply = back[..m].to_vec();
                tamper_reply(&mut reply, tamper);
                let _ = sock.send_to(&reply, from);
            }
        });
        Relay { addr, stop, thread: Some(thread) }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Flip the last signature byte of the answer's RRSIG when the question is
/// `name` type A (case-insensitive; Unbound randomises case).
fn tamper_reply(reply: &mut Vec<u8>, name: &str) {
    use hickory_proto::dnssec::rdata::{DNSSECRData, RRSIG};
    use hickory_proto::rr::RData;
    let Ok(mut m) = Message::from_vec(reply) else { return };
    let asked = m.queries.first().map(|q| (q.name().to_ascii().to_lowercase(), q.query_type()));
    if asked != Some((name.to_string(), RecordType::A)) {
        return;
    }
    let mut flipped = false;
    for r in m.answers.iter_mut() {
        if let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &r.data {
            let mut bytes = sig.sig().to_vec();
            if let Some(b) = bytes.last_mut() {
                *b ^= 0x01;
                r.data = RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(sig.input().clone(), bytes)));
                flipped = true;
            }
        }
    }
    if flipped {
        if let Ok(v) = m.to_vec() {
            *reply = v;
        }
    }
}

/// Must-show 1 through Unbound (ECS on, the zone's DS as its trust anchor,
/// loopback only, a stub zone to Meridian behind the relay): every name
/// comes back with AD, `www` with three different answers for three
/// continents; the name whose signature the relay breaks is SERVFAIL.
#[test]
fn unbound_validates_signed_answers_and_refuses_a_tampered_one() {
    if unbound_path().is_none() {
        return skip_or_fail("unbound not installed (Debian package unbound)");
    }
    if !dig_available() {
        return skip_or_fail("dig not installed (bind9-dnsutils)");
    }
    let dir = TempDir::new("dnssec-unbound");
    let zones = signed_zones(dir.path(), "ecdsap256", "");
    let ds = ds_record(dir.path(), &zones);
    let server = serve(&zones);
    let relay = Relay::start(server.addr, "static.gslb.example.test.");
    // static A is tampered with; its chain (chain → alias → static) too, so
    // ask the chain for AAAA, which the relay leaves alone.
    let server_conf = format!(
        r#"    outgoing-interface: 127.0.0.1
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    do-not-query-localhost: no
    local-zone: "test." nodefault
    trust-anchor: "{ds}"
    module-config: "subnetcache validator iterator"
    client-subnet-always-forward: yes
    max-client-subnet-ipv4: 24
    send-client-subnet: 127.0.0.1
    log-servfail: yes
    val-log-level: 2
"#
    );
    let at = format!("{}@{}", relay.addr.ip(), relay.addr.port());
    let stubs = format!(
        "stub-zone:\n    name: \"{ZONE}\"\n    stub-addr: {at}\nstub-zone:\n    name: \".\"\n    stub-addr: {at}\n"
    );
    let unbound = start_unbound(&server_conf, &stubs).expect("unbound checked above");
    let resolve = |args: &str| {
        let d = dig(unbound.addr, &format!("{args} +rec +dnssec +time=3"));
        println!(
            "via unbound: {args} -> {} {:?} {:?}",
            d.status,
            d.flags,
            d.answer.iter().filter(|l| !l.contains("RRSIG")).collect::<Vec<_>>()
        );
        d
    };
    let logs = || {
        format!(
            "--- unbound log:\n{}\n--- meridian log tail:\n{}",
            unbound.log_text(),
            server.log_text().lines().rev().take(20).collect::<Vec<_>>().join("\n")
        )
    };
    for (name, t) in NAMES.iter().filter(|&&(n, t)| !(n == "static.gslb.example.test" && t == "A")) {
        let t = if name.starts_with("chain") { "AAAA" } else { t };
        let d = resolve(&format!("{name} {t}"));
        assert_eq!(d.status, "NOERROR", "{name} {t}:\n{}\n{}", d.raw, logs());
        assert!(d.has_flag("ad"), "{name} {t} not validated:\n{}\n{}", d.raw, logs());
    }
    let d = resolve("static.gslb.example.test AAAA");
    assert!(d.status == "NOERROR" && d.has_flag("ad"), "static AAAA:\n{}\n{}", d.raw, logs());
    let d = resolve("static.gslb.example.test TXT");
    assert!(d.status == "NOERROR" && d.has_flag("ad"), "NODATA:\n{}\n{}", d.raw, logs());
    let mut seen = Vec::new();
    for subnet in ["10.1.0.0/24", "10.3.0.0/24", "10.5.0.0/24"] {
        let d = resolve(&format!("www.gslb.example.test A +subnet={subnet}"));
        assert!(d.status == "NOERROR" && d.has_flag("ad"), "www for {subnet}:\n{}\n{}", d.raw, logs());
        seen.push(d.answers_of("A"));
    }
    assert_eq!(
        seen,
        [["192.0.2.10"], ["198.51.100.10"], ["203.0.113.10"]],
        "three continents, three signed decisions\n{}",
        logs()
    );
    let d = resolve("static.gslb.example.test A");
    assert_eq!(d.status, "SERVFAIL", "a flipped signature byte must not validate:\n{}\n{}", d.raw, logs());
    // SERVFAIL because the signature is bogus, not because the relay lost it.
    assert!(unbound.log_text().contains("validation failure <static.gslb.example.test. A IN>"), "{}", logs());
    drop(relay);
}
