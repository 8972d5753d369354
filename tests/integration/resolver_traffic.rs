//! Issue 19: what real resolvers send. Opcodes other than QUERY get NOTIMP
//! with RD and CD cleared (BIND's reply); names in random case (DNS 0x20)
//! with DO, a cookie and ECS are answered with the question exactly as asked;
//! malformed cookies get FORMERR (RFC 7873).

use crate::common::*;

const Z: &str = "gslb.example.test";

/// Must show 4: a header-only query (no question, no OPT) with opcode 15 and
/// every flag but QR set (AA TC RD RA Z AD CD) gets NOTIMP, RD and CD clear.
#[test]
fn opcode_15_with_every_flag_gets_notimp_with_rd_and_cd_clear() {
    let s = Server::start();
    let flags = "+aaflag +tcflag +rdflag +raflag +zflag +adflag +cdflag";
    let d = s.dig(&format!("+opcode=15 +header-only +noedns +ignore {flags}"));
    assert_eq!(d.status, "NOTIMP", "{}", d.raw);
    assert!(d.raw.contains("opcode: RESERVED15"), "the opcode is echoed: {}", d.raw);
    assert!(d.has_flag("qr"), "{}", d.raw);
    for cleared in ["rd", "cd"] {
        assert!(!d.has_flag(cleared), "{cleared} must be clear: {}", d.raw);
    }
    // With a question and over TCP too.
    for extra in ["", "+tcp"] {
        let d = s.dig(&format!("+opcode=15 {flags} +notcflag {extra} static.{Z} A"));
        assert_eq!(d.status, "NOTIMP", "{}", d.raw);
        assert!(!d.has_flag("rd") && !d.has_flag("cd"), "{extra}: {}", d.raw);
    }
}

/// The answer to a 0x20 name with DO, a client cookie and ECS echoes the
/// question exactly, and every name that is the question's (or its zone's)
/// keeps the asker's case; DO is echoed, and the client cookie comes back
/// with a server cookie (see cookies.rs).
#[test]
fn random_case_with_do_cookie_and_ecs_keeps_the_askers_case() {
    let s = Server::start();
    let opts = "+dnssec +cookie=0102030405060708 +subnet=81.2.69.0/24";
    for (name, rtype, status) in [
        ("StAtIc.GsLb.ExAmPlE.TeSt.", "A", "NOERROR"),
        ("wWw.gSlB.eXaMpLe.tEsT.", "A", "NOERROR"),
        ("NoNe.GsLb.ExAmPlE.TeSt.", "A", "NXDOMAIN"),
        ("STATIC.gslb.EXAMPLE.test.", "TXT", "NOERROR"),
    ] {
        let d = s.dig(&format!("{opts} {name} {rtype}"));
        assert_eq!(d.status, status, "{}", d.raw);
        let q: Vec<&str> = d.question.first().expect("a question").split_whitespace().collect();
        assert_eq!(q[0], name, "question as asked: {}", d.raw);
        for line in d.answer.iter() {
            assert!(line.starts_with(name), "answer owner in the asker's case: {}", d.raw);
        }
        let apex = &name[name.find('.').unwrap() + 1..];
        for line in d.authority.iter() {
            assert!(line.starts_with(apex), "SOA owner in the asker's case: {}", d.raw);
        }
        assert!(d.edns.as_deref().is_some_and(|e| e.contains("flags: do")), "DO echoed: {}", d.raw);
        assert!(d.raw.contains("; COOKIE: 0102030405060708010000"), "client + server cookie: {}", d.raw);
        assert!(d.ecs.is_some(), "ECS echoed: {}", d.raw);
    }
}

/// RFC 7873: a well-formed COOKIE option (a client cookie, or one with a
/// server cookie of 8 to 32 bytes) is answered, with a fresh server cookie
/// whatever the one sent (`cookies.rs`), over UDP (the
/// fast path) and TCP; a malformed one (a length of 0 to 7, 9 to 15, over
/// 40) is FORMERR (§5.2.2), on both, with the OPT record.
#[test]
fn well_formed_cookies_are_answered_and_malformed_ones_get_formerr() {
    let s = Server::start();
    let hex = |len: usize| (0..len).map(|i| format!("{:02x}", (i * 37 + 11) % 256)).collect::<String>();
    for transport in ["", "+tcp"] {
        for (len, status) in [(8, "NOERROR"), (16, "NOERROR"), (40, "NOERROR"), (5, "FORMERR"), (9, "FORMERR")] {
            let d = s.dig(&format!("{transport} +cookie={} static.{Z} A", hex(len)));
            assert_eq!(d.status, status, "{transport} cookie of {len} bytes: {}", d.raw);
            assert!(d.edns.is_some(), "OPT in the answer: {}", d.raw);
            if status == "NOERROR" {
                assert_eq!(d.answers_of("A"), vec!["192.0.2.1".to_string()], "{}", d.raw);
            }
        }
    }
}
