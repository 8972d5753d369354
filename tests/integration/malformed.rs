//! Issue 2: junk never crashes or stalls the server.

use crate::common::*;
use std::net::UdpSocket;
use std::time::Duration;

/// A small deterministic generator (no dependency, reproducible failures).
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn valid_query() -> Vec<u8> {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii("static.gslb.example.test.").unwrap(), RecordType::A));
    m.set_edns(Edns::new());
    m.to_vec().unwrap()
}

#[test]
fn ten_thousand_random_and_truncated_packets_do_not_hurt() {
    let s = Server::start();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_nonblocking(true).unwrap();
    let mut rng = XorShift(0x9e3779b97f4a7c15);
    let good = valid_query();
    let mut buf = [0u8; 4096];
    for i in 0..10_000u32 {
        let pkt: Vec<u8> = match i % 4 {
            // Pure noise of random length.
            0 => (0..rng.next() % 600).map(|_| rng.next() as u8).collect(),
            // A valid query cut short.
            1 => good[..(rng.next() as usize % good.len())].to_vec(),
            // A valid query with random bytes flipped.
            2 => {
                let mut p = good.clone();
                for _ in 0..1 + rng.next() % 4 {
                    let at = rng.next() as usize % p.len();
                    p[at] = rng.next() as u8;
                }
                p
            }
            // A header claiming huge counts, then noise.
            _ => {
                let mut p = vec![0x12, 0x34, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
                p.extend((0..rng.next() % 64).map(|_| rng.next() as u8));
                p
            }
        };
        let _ = sock.send_to(&pkt, s.addr);
        // Drain replies so our socket buffer never fills; pace a little so the
        // test measures robustness, not kernel drops.
        while sock.recv(&mut buf).is_ok() {}
        if i % 500 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    // Still alive and still right.
    let d = s.dig("static.gslb.example.test A");
    assert_eq!(d.status, "NOERROR");
    assert_eq!(d.answers_of("A"), vec!["192.0.2.1"]);
    let d = s.dig("+tcp static.gslb.example.test AAAA");
    assert_eq!(d.answers_of("AAAA"), vec!["2001:db8::1"]);
    assert!(!s.log_text().contains("panicked"), "a panic was logged");
}

#[test]
fn tcp_junk_closes_the_connection_without_stalling_others() {
    use std::io::{Read, Write};
    let s = Server::start();
    // A length prefix promising more than is sent, then silence: must not block others.
    let mut slow = std::net::TcpStream::connect(s.addr).unwrap();
    slow.write_all(&[0x01, 0x00, 0xde, 0xad]).unwrap();
    // Garbage framed correctly: answered with FORMERR or closed.
    let mut junk = std::net::TcpStream::connect(s.addr).unwrap();
    junk.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    junk.write_all(&[0x00, 0x0e, 0xab, 0xcd, 0x01, 0x00, 0x00, 0x09, 0, 0, 0, 0, 0, 0, 0xff, 0xff]).unwrap();
    let mut b = [0u8; 64];
    let _ = junk.read(&mut b);
    let d = s.dig("+tcp static.gslb.example.test A");
    assert_eq!(d.answers_of("A"), vec!["192.0.2.1"]);
    drop(slow);
}

/// A question name one byte over the 255-byte limit: FORMERR, every time
/// (it once panicked the UDP receiver in the fast path's index lookup).
#[test]
fn an_over_long_name_is_formerr_and_harms_nothing() {
    let s = Server::start();
    let mut q = vec![0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for len in [63u8, 63, 63, 44] {
        q.push(len);
        q.extend(std::iter::repeat_n(b'l', len as usize));
    }
    q.extend_from_slice(b"\x04gslb\x07example\x04test\x00\x00\x01\x00\x01");
    assert_eq!(q.len() - 12 - 4, 256);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 512];
    for _ in 0..32 {
        sock.send_to(&q, s.addr).unwrap();
        let n = sock.recv(&mut buf).expect("an answer");
        assert_eq!((&buf[..2], buf[3] & 0x0f), (&[0xbe, 0xef][..], 1), "FORMERR: {:?}", &buf[..n]);
    }
    let d = s.dig("nx.gslb.example.test A");
    assert_eq!(d.status, "NXDOMAIN");
    assert!(!s.log_text().contains("panicked"), "a panic was logged");
}
