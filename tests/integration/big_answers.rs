//! Answers near the protocol's limits: TCP's 65,535-byte messages, UDP
//! queries over 4,096 bytes, bytes past a query's last record, and the ECS
//! scope of IPv4-mapped subnets.

use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

/// A zone with a region of 5,000 IPv4 addresses (80 KB as one answer) served
/// by `pool`, and a static TXT RRset of 72 KB at `t`.
fn big_zone() -> TempDir {
    let dir = TempDir::new("big-zone");
    let addrs: Vec<String> =
        (0..5_000u32).map(|i| format!("\"10.{}.{}.{}\"", i >> 16, (i >> 8) & 255, i & 255)).collect();
    let zone = format!(
        "origin = \"big.test.\"\nttl = 60\nns = [\"ns1\"]\ninclude = \"big.test.inc.zone\"\n\n\
         [soa]\nmname = \"ns1\"\nrname = \"hostmaster\"\nserial = 1\n\n\
         [[records]]\nname = \"ns1\"\ntype = \"A\"\ndata = \"127.0.0.3\"\n\n\
         [[regions]]\nname = \"many\"\naddresses = [{}]\n\n\
         [[services]]\nname = \"pool\"\nchain = [\"failover many\"]\n",
        addrs.join(", ")
    );
    std::fs::write(dir.path().join("big.test.toml"), zone).unwrap();
    let txt: String = (0..300).map(|i| format!("t 60 IN TXT \"{i:03}{}\"\n", "x".repeat(237))).collect();
    std::fs::write(dir.path().join("big.test.inc.zone"), txt).unwrap();
    dir
}

/// Send `queries` on one TCP connection, then read one framed answer per query.
fn tcp_exchange(s: &Server, queries: &[Vec<u8>]) -> Vec<Message> {
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for q in queries {
        c.write_all(&(q.len() as u16).to_be_bytes()).unwrap();
        c.write_all(q).unwrap();
    }
    let mut out = Vec::new();
    for _ in queries {
        let mut len = [0u8; 2];
        c.read_exact(&mut len).unwrap();
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        c.read_exact(&mut msg).unwrap();
        out.push(Message::from_vec(&msg).expect("each frame holds one whole message"));
    }
    out
}

#[test]
fn tcp_answers_over_65535_bytes_are_trimmed_or_servfail_and_keep_the_framing() {
    let zones = big_zone();
    let s = Server::start_with(&["--zones", zones.path().to_str().unwrap()], None);
    // Pipelined: the answer after the big one must start where its length said.
    let qs = [
        query_bytes(1, "pool.big.test.", RecordType::A),
        query_bytes(2, "t.big.test.", RecordType::TXT),
        query_bytes(3, "Pool.Big.Test.", RecordType::A), // the general path too
        query_bytes(4, "ns1.big.test.", RecordType::A),
    ];
    let got = tcp_exchange(&s, &qs);
    for m in [&got[0], &got[2]] {
        let addrs = answer_addresses(m);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative && !m.metadata.truncation);
        // Fewer addresses, the first ones. (65,535 bytes hold 4,090 A records
        // with compressed owners, but hickory compresses only the first 120
        // names of a message, so about 2,300 fit.)
        assert!((2_000..5_000).contains(&addrs.len()), "{} addresses", addrs.len());
        assert_eq!(addrs[..3], ["10.0.0.0", "10.0.0.1", "10.0.0.2"]);
    }
    // A static RRset cannot be cut: SERVFAIL, not authoritative, as Knot 3.2 answers it.
    assert_eq!(got[1].metadata.response_code, ResponseCode::ServFail);
    assert!(got[1].answers.is_empty() && !got[1].metadata.authoritative);
    assert_eq!(got[1].metadata.id, 2);
    assert_eq!(answer_addresses(&got[3]), ["127.0.0.3"], "the stream is still in step");
    // UDP is unchanged: truncated, for a retry over TCP.
    let d = s.dig("+ignore pool.big.test A");
    assert!(d.has_flag("tc") && d.answer.is_empty(), "{}", d.raw);
}

#[test]
fn check_warns_on_a_region_whose_answer_cannot_fit_tcp() {
    let zones = big_zone();
    let out = meridian(&["check", "--zones", zones.path().to_str().unwrap()], &repo());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "a warning, not an error: {text}{}", String::from_utf8_lossy(&out.stderr));
    let warning = text.lines().find(|l| l.contains("warning")).unwrap_or_else(|| panic!("no warning:\n{text}"));
    assert!(warning.contains("big.test.toml") && warning.contains("region many"), "{warning}");
    let demo = meridian(&["check"], &repo());
    assert!(!String::from_utf8_lossy(&demo.stdout).contains("warning"), "the demo zone fits");
}

#[test]
fn an_ipv4_mapped_subnet_gets_96_plus_the_ipv4_scope() {
    let s = Server::start();
    for name in ["www.gslb.example.test", "WwW.gslb.example.test"] {
        let v4 = s.dig(&format!("+subnet=10.3.0.0/24 {name} A"));
        let mapped = s.dig(&format!("+subnet=::ffff:10.3.0.0/120 {name} A"));
        let (v4_scope, mapped_scope) = (v4.ecs_scope().unwrap(), mapped.ecs_scope().unwrap());
        assert!(v4_scope > 0 && v4_scope <= 32, "{}", v4.raw);
        assert_eq!(mapped_scope, 96 + v4_scope, "{name}: {}", mapped.raw);
        assert_eq!(mapped.addrs(), v4.addrs(), "decided as the IPv4 client");
    }
}

#[test]
fn a_udp_query_over_4096_bytes_is_answered() {
    let s = Server::start();
    // A query padded (RFC 7830) to 4,600 bytes.
    let mut q = query_bytes(0x4242, "static.gslb.example.test.", RecordType::A);
    let pad = 4_600 - q.len() - 4;
    let rdlen = u16::from_be_bytes([q[q.len() - 2], q[q.len() - 1]]) as usize;
    assert_eq!(rdlen, 0, "the OPT record ends the query");
    let at = q.len() - 2;
    q.splice(at.., ((pad + 4) as u16).to_be_bytes());
    q.extend_from_slice(&[0, 12]);
    q.extend_from_slice(&(pad as u16).to_be_bytes());
    q.resize(4_600, 0);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(&q, s.addr).unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("an answer");
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!((m.metadata.id, m.metadata.response_code), (0x4242, ResponseCode::NoError));
    assert_eq!(answer_addresses(&m), ["192.0.2.1"]);
}

#[test]
fn bytes_past_the_last_counted_record_get_formerr_with_the_question() {
    let s = Server::start();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let plain = {
        let mut q = query_bytes(7, "static.gslb.example.test.", RecordType::A);
        q.truncate(q.len() - 11); // no OPT
        q[11] = 0;
        q
    };
    let uncounted_opt = [&plain[..], &[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]].concat();
    let junk = [&plain[..], b"junk"].concat();
    for (what, q, rcode) in [
        ("plain", &plain, ResponseCode::NoError),
        ("OPT not counted", &uncounted_opt, ResponseCode::FormErr),
        ("trailing junk", &junk, ResponseCode::FormErr),
    ] {
        sock.send_to(q, s.addr).unwrap();
        let mut buf = [0u8; 1232];
        let n = sock.recv(&mut buf).expect("an answer");
        let m = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!((m.metadata.id, m.metadata.response_code), (7, rcode), "{what}");
        assert_eq!(m.queries.len(), 1, "{what}: the question is echoed");
        if rcode == ResponseCode::FormErr {
            assert!(m.answers.is_empty() && m.edns.is_none(), "{what}: {m:?}");
        }
    }
}
