//! DNS server cookies (RFC 7873, RFC 9018): what `dig +cookie` sees, a
//! wrong or expired server cookie, and a second node sharing the secret
//! (anycast) accepting the first's cookies, which lets them past RRL.

use crate::common::*;
use meridian::wire::server_cookie::{Cookies, Secret};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::RecordType;

const SECRET: &str = "5f1e0c8d2b7a49e3a1c6d4f08b2e7c91";
const NAME: &str = "static.gslb.example.test.";

/// A node serving the shipped zones with `[cookies]` secret `SECRET` and `extra` config.
fn node(extra: &str) -> (Server, TempDir) {
    let dir = TempDir::new("cookies");
    let cfg = dir.path().join("meridian.toml");
    let repo = repo();
    let text = format!("zones = \"{}\"\n{extra}\n[cookies]\nsecret = \"{SECRET}\"\n", repo.join("zones").display());
    std::fs::write(&cfg, text).unwrap();
    (Server::start_with(&["--config", cfg.to_str().unwrap()], None), dir)
}

fn now() -> u32 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as u32
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// dig's `; COOKIE: <hex> (good)` line: the cookie and whether dig called it good.
fn dig_cookie(d: &Dig) -> (String, bool) {
    let line = d.raw.lines().find(|l| l.starts_with("; COOKIE:")).unwrap_or_else(|| panic!("no COOKIE:\n{}", d.raw));
    let mut words = line.split_whitespace().skip(2);
    (words.next().unwrap().to_string(), line.ends_with("(good)"))
}

fn ours(cookie: &[u8]) -> bool {
    let c = Cookies::new(Some(SECRET.parse().unwrap()), None);
    c.valid(cookie, IpAddr::from([127, 0, 0, 1]), now())
}

#[test]
fn dig_cookie_gets_an_rfc_9018_server_cookie_and_a_resent_one_is_good() {
    if !dig_available() {
        return skip_or_fail("dig not installed");
    }
    let (s, _dir) = node("");
    let first = dig(s.addr, &format!("+cookie {NAME} A"));
    assert_eq!(first.status, "NOERROR");
    let (cookie, good) = dig_cookie(&first);
    assert!(good, "dig: the client cookie came back\n{}", first.raw);
    let bytes = hex(&cookie);
    assert_eq!(bytes.len(), 24, "client 8 + server 16: {cookie}");
    assert_eq!(bytes[8..12], [1, 0, 0, 0], "version 1, reserved 0");
    let stamped = u32::from_be_bytes(bytes[12..16].try_into().unwrap());
    assert!(stamped.abs_diff(now()) < 60, "timestamp {stamped} is now");
    assert!(ours(&bytes), "SipHash-2-4 under the configured secret for 127.0.0.1");

    // Sent back: answered as before, the same client cookie, a fresh server cookie.
    let second = dig(s.addr, &format!("+cookie={cookie} {NAME} A"));
    assert_eq!(second.status, "NOERROR");
    assert_eq!(second.addrs(), first.addrs());
    let (again, good) = dig_cookie(&second);
    assert!(good, "{}", second.raw);
    assert_eq!(again[..16], cookie[..16]);
    assert!(ours(&hex(&again)));
    // Without a cookie, none comes back.
    let plain = dig(s.addr, &format!("+nocookie {NAME} A"));
    assert!(!plain.raw.contains("; COOKIE:"), "{}", plain.raw);
    // CHAOS, a refused class, type OPT asked and a name outside the zones: the
    // same server cookie (RFC 7873 §5.2.3).
    for (q, status) in [
        ("id.server CH TXT", "NOERROR"),
        ("version.bind CH TXT", "REFUSED"),
        (&format!("{NAME} HS A"), "REFUSED"),
        (&format!("{NAME} TYPE41"), "FORMERR"),
        ("elsewhere.test. A", "REFUSED"),
    ] {
        let d = dig(s.addr, &format!("+cookie={cookie} +notcp +ignore {q}"));
        assert_eq!(d.status, status, "{q}\n{}", d.raw);
        let (again, good) = dig_cookie(&d);
        assert!(good && again[..16] == cookie[..16] && ours(&hex(&again)), "{q}\n{}", d.raw);
    }
}

#[test]
fn a_wrong_or_expired_server_cookie_is_answered_with_a_fresh_one() {
    if !dig_available() {
        return skip_or_fail("dig not installed");
    }
    let (s, _dir) = node("");
    let client = [0x11u8, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
    let same = Cookies::new(Some(SECRET.parse().unwrap()), None);
    let expired = same.answer(&client, IpAddr::from([127, 0, 0, 1]), now() - 7200);
    let other: Secret = "00112233445566778899aabbccddeeff".parse().unwrap();
    let wrong = Cookies::new(Some(other), None).answer(&client, IpAddr::from([127, 0, 0, 1]), now());
    let garbage = [&client[..], &[0xaa; 8]].concat();
    for sent in [&expired[..], &wrong[..], &garbage[..]] {
        assert!(!ours(sent));
        let d = dig(s.addr, &format!("+cookie={} {NAME} A", to_hex(sent)));
        assert_eq!(d.status, "NOERROR", "{}", d.raw);
        assert!(!d.addrs().is_empty(), "answered normally: {}", d.raw);
        let (back, good) = dig_cookie(&d);
        assert!(good && back != to_hex(sent), "{}", d.raw);
        assert!(ours(&hex(&back)), "a fresh cookie of ours: {back}");
    }
}

/// Send `count` copies of `q` and count the answers (no TC with slip 0).
fn blast(to: SocketAddr, q: &[u8], count: usize) -> usize {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(400))).unwrap();
    for _ in 0..count {
        sock.send_to(q, to).unwrap();
    }
    let mut buf = [0u8; 2048];
    let mut answers = 0;
    while answers < count && sock.recv(&mut buf).is_ok() {
        answers += 1;
    }
    answers
}

/// `NAME` A with EDNS and a COOKIE option holding `cookie`.
fn query_with_cookie(cookie: &[u8]) -> Vec<u8> {
    let mut q = query_bytes(0x4c4c, NAME, RecordType::A);
    let rdlen_at = q.len() - 2; // the OPT record, last, with no options yet
    q[rdlen_at..].copy_from_slice(&(4 + cookie.len() as u16).to_be_bytes());
    q.extend_from_slice(&[0, 10, 0, cookie.len() as u8]);
    q.extend_from_slice(cookie);
    q
}

#[test]
fn a_second_node_with_the_secret_takes_the_firsts_cookie_past_rrl() {
    if !dig_available() {
        return skip_or_fail("dig not installed");
    }
    let (a, _da) = node("");
    let (b, _db) = node("[rrl]\nenabled = true\nresponses_per_second = 2\nwindow = 1\nslip = 0\n");
    let (cookie, _) = dig_cookie(&dig(a.addr, &format!("+cookie {NAME} A")));
    let from_a = hex(&cookie);
    // Node B accepts node A's cookie: a flood carrying it is never limited.
    assert_eq!(blast(b.addr, &query_with_cookie(&from_a), 120), 120, "a valid server cookie is exempt from RRL");
    // The same flood with the client cookie alone, or an expired or foreign
    // server cookie, is limited (the bucket is empty by now).
    let client: [u8; 8] = from_a[..8].try_into().unwrap();
    let expired =
        Cookies::new(Some(SECRET.parse().unwrap()), None).answer(&client, IpAddr::from([127, 0, 0, 1]), now() - 7200);
    let foreign = Cookies::new(Some("00112233445566778899aabbccddeeff".parse().unwrap()), None).answer(
        &client,
        IpAddr::from([127, 0, 0, 1]),
        now(),
    );
    for (what, cookie) in [("client cookie alone", &from_a[..8]), ("expired", &expired[..]), ("foreign", &foreign[..])]
    {
        let answered = blast(b.addr, &query_with_cookie(cookie), 120);
        assert!(answered < 40, "{what}: {answered} of 120 answered, not limited");
    }
}

#[test]
fn a_bad_cookie_secret_is_a_config_error_naming_the_line() {
    let dir = TempDir::new("cookies-bad");
    let cfg = dir.path().join("meridian.toml");
    std::fs::write(&cfg, "[cookies]\nsecret = \"5f1e0c8d2b7a49e3\"\n").unwrap();
    let out = meridian(&["check", "--config", cfg.to_str().unwrap()], &repo());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("meridian.toml:2") && err.contains("32 hex digits"), "{err}");
}
