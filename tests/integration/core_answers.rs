//! Issue 2: every core behaviour of the authoritative answer, asked with dig
//! against the shipped zone `gslb.example.test`.

use crate::common::*;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

const Z: &str = "gslb.example.test";

fn soa_ttl(lines: &[String]) -> u32 {
    let soa = lines.iter().find(|l| l.split_whitespace().nth(3) == Some("SOA")).expect("SOA in authority");
    soa.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn authoritative_answer_sets_aa_clears_ra_copies_rd() {
    let s = Server::start();
    let d = s.dig(&format!("static.{Z} A"));
    assert_eq!(d.status, "NOERROR");
    assert!(d.has_flag("aa") && !d.has_flag("ra") && !d.has_flag("rd"), "{:?}", d.flags);
    assert_eq!(d.answers_of("A"), vec!["192.0.2.1"]);
    let d = s.dig(&format!("+rec static.{Z} AAAA"));
    assert!(d.has_flag("rd") && d.has_flag("aa") && !d.has_flag("ra"), "{:?}", d.flags);
    assert_eq!(d.answers_of("AAAA"), vec!["2001:db8::1"]);
}

#[test]
fn nxdomain_carries_soa_with_negative_ttl() {
    let s = Server::start();
    let d = s.dig(&format!("no-such-name.{Z} A"));
    assert_eq!(d.status, "NXDOMAIN");
    assert!(d.has_flag("aa"));
    assert!(d.answer.is_empty());
    // SOA TTL 3600, MINIMUM 300: the negative TTL is the smaller.
    assert_eq!(soa_ttl(&d.authority), 300);
}

#[test]
fn nodata_carries_soa() {
    let s = Server::start();
    let d = s.dig(&format!("static.{Z} MX"));
    assert_eq!(d.status, "NOERROR");
    assert!(d.answer.is_empty() && d.has_flag("aa"));
    assert_eq!(soa_ttl(&d.authority), 300);
}

#[test]
fn names_outside_every_zone_are_refused() {
    let s = Server::start();
    for q in ["example.com A", "example.test A", "test SOA", ". NS"] {
        let d = s.dig(q);
        assert_eq!(d.status, "REFUSED", "{q}");
        assert!(!d.has_flag("aa") && d.answer.is_empty(), "{q}");
    }
}

#[test]
fn cname_chain_is_followed_inside_the_zone() {
    let s = Server::start();
    let d = s.dig(&format!("chain.{Z} AAAA"));
    assert_eq!(d.status, "NOERROR");
    assert_eq!(d.answers_of("CNAME"), vec![format!("alias.{Z}."), format!("static.{Z}.")]);
    assert_eq!(d.answers_of("AAAA"), vec!["2001:db8::1"]);
    // Asking for the CNAME itself does not chase it.
    let d = s.dig(&format!("alias.{Z} CNAME"));
    assert_eq!(d.answer.len(), 1);
    // Leaving the zone: the CNAME alone.
    let d = s.dig(&format!("external.{Z} A"));
    assert_eq!(d.status, "NOERROR");
    assert_eq!(d.answers_of("CNAME"), vec!["www.example.org."]);
    assert_eq!(d.answer.len(), 1);
    // A target that does not exist: NXDOMAIN, CNAME kept (RFC 6604).
    let d = s.dig(&format!("dangling.{Z} A"));
    assert_eq!(d.status, "NXDOMAIN");
    assert_eq!(d.answers_of("CNAME").len(), 1);
    assert_eq!(soa_ttl(&d.authority), 300);
}

#[test]
fn wildcard_synthesis_follows_rfc4592() {
    let s = Server::start();
    // Synthesized, with the owner the client asked for, one level or several.
    let d = s.dig(&format!("anything.wild.{Z} A"));
    assert_eq!(d.status, "NOERROR");
    assert_eq!(d.answer.len(), 1);
    assert!(d.answer[0].starts_with(&format!("anything.wild.{Z}.")), "{:?}", d.answer);
    assert_eq!(d.answers_of("A"), vec!["192.0.2.80"]);
    let d = s.dig(&format!("a.b.wild.{Z} TXT"));
    assert_eq!(d.answers_of("TXT"), vec!["\"synthesized from *.wild\""]);
    // The wildcard has no AAAA: NODATA, not NXDOMAIN.
    let d = s.dig(&format!("anything.wild.{Z} AAAA"));
    assert_eq!(d.status, "NOERROR");
    assert!(d.answer.is_empty());
    // An existing name is never synthesized: exists.wild has A but no TXT.
    let d = s.dig(&format!("exists.wild.{Z} TXT"));
    assert_eq!(d.status, "NOERROR");
    assert!(d.answer.is_empty());
    // Below an existing name the wildcard does not apply (closest encloser is exists.wild).
    let d = s.dig(&format!("below.exists.wild.{Z} A"));
    assert_eq!(d.status, "NXDOMAIN");
    // The wildcard's parent exists as an empty non-terminal: NODATA.
    let d = s.dig(&format!("wild.{Z} A"));
    assert_eq!(d.status, "NOERROR");
    assert!(d.answer.is_empty());
}

#[test]
fn empty_non_terminal_is_nodata_not_nxdomain() {
    let s = Server::start();
    let d = s.dig(&format!("deep.ent.{Z} A"));
    assert_eq!(d.status, "NOERROR");
    assert!(d.answer.is_empty() && !d.authority.is_empty());
    let d = s.dig(&format!("ent.{Z} A"));
    assert_eq!(d.status, "NOERROR");
    let d = s.dig(&format!("other.deep.ent.{Z} A"));
    assert_eq!(d.status, "NXDOMAIN");
}

#[test]
fn delegated_child_gets_a_referral_with_glue() {
    let s = Server::start();
    for q in [format!("www.sub.{Z} A"), format!("sub.{Z} NS"), format!("deep.www.sub.{Z} MX")] {
        let d = s.dig(&q);
        assert_eq!(d.status, "NOERROR", "{q}");
        assert!(!d.has_flag("aa"), "referral is not authoritative: {q}");
        assert!(d.answer.is_empty(), "{q}");
        let mut ns = rr_data(&d.authority, "NS");
        ns.sort();
        assert_eq!(ns, vec![format!("ns1.sub.{Z}."), format!("ns2.sub.{Z}.")]);
        assert_eq!(rr_data(&d.additional, "A"), vec!["192.0.2.153"]);
        assert_eq!(rr_data(&d.additional, "AAAA"), vec!["2001:db8:153::2"]);
    }
    // DS lives on the parent side of the cut; we hold none: authoritative NODATA.
    let d = s.dig(&format!("sub.{Z} DS"));
    assert_eq!(d.status, "NOERROR");
    assert!(d.has_flag("aa") && d.answer.is_empty());
}

#[test]
fn edns_is_echoed_with_our_payload_size() {
    let s = Server::start();
    let d = s.dig(&format!("static.{Z} A"));
    let edns = d.edns.expect("OPT echoed");
    assert!(edns.contains("version: 0") && edns.contains("udp: 1232"), "{edns}");
    let d = s.dig(&format!("+noedns static.{Z} A"));
    assert!(d.edns.is_none(), "no OPT in the answer to a query without one");
    let d = s.dig(&format!("+dnssec static.{Z} A"));
    assert!(d.edns.unwrap().contains("flags: do"), "DO bit copied");
}

#[test]
fn edns_version_above_zero_gets_badvers() {
    let s = Server::start();
    let d = s.dig(&format!("+edns=1 +noednsnegotiation static.{Z} A"));
    assert_eq!(d.status, "BADVERS");
    assert!(d.answer.is_empty());
    assert!(d.edns.unwrap().contains("version: 0"));
}

/// A query for static A with EDNS, built with hickory-proto.
fn query_bytes(name: &str, rtype: hickory_proto::rr::RecordType, edns: bool) -> Vec<u8> {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::Name;
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn udp_exchange(s: &Server, packet: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.send_to(packet, s.addr).unwrap();
    let mut buf = [0u8; 4096];
    sock.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

#[test]
fn two_opt_records_get_formerr() {
    let s = Server::start();
    let mut q = query_bytes(&format!("static.{Z}."), hickory_proto::rr::RecordType::A, true);
    // Append a second OPT RR (the last 11 bytes are the first one) and bump ARCOUNT.
    let opt = q[q.len() - 11..].to_vec();
    q.extend_from_slice(&opt);
    q[11] = 2;
    let r = udp_exchange(&s, &q).expect("an answer");
    assert_eq!(&r[0..2], &[0x42, 0x42], "ID echoed");
    assert_eq!(r[3] & 0x0f, 1, "FORMERR");
    assert!(r[2] & 0x80 != 0, "QR set");
}

#[test]
fn oversized_answer_truncates_over_udp_and_is_whole_over_tcp() {
    let s = Server::start();
    let d = s.dig(&format!("+noedns +ignore big.{Z} TXT"));
    assert!(d.has_flag("tc"), "{:?}", d.flags);
    assert!(d.answer.is_empty());
    // With a 512-byte EDNS payload it still does not fit.
    let d = s.dig(&format!("+bufsize=512 +ignore big.{Z} TXT"));
    assert!(d.has_flag("tc"));
    // The client's larger size is honoured (up to ours, 1232).
    let d = s.dig(&format!("+bufsize=1232 big.{Z} TXT"));
    assert!(!d.has_flag("tc"));
    assert_eq!(d.answers_of("TXT").len(), 8);
    let d = s.dig(&format!("+tcp +noedns big.{Z} TXT"));
    assert!(!d.has_flag("tc"));
    assert_eq!(d.answers_of("TXT").len(), 8);
}

fn tcp_send(stream: &mut TcpStream, q: &[u8]) {
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(q);
    stream.write_all(&framed).unwrap();
}

fn tcp_recv(stream: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).unwrap();
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut msg).unwrap();
    msg
}

#[test]
fn tcp_answers_several_queries_on_one_connection_then_idles_out() {
    use hickory_proto::op::Message;
    use hickory_proto::rr::RecordType;
    let s = Server::start_with(&["--tcp-idle-timeout", "1"], None);
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Pipelined: three queries sent before reading any answer.
    let names = ["static", "mail", "legacy"];
    for n in names {
        tcp_send(&mut stream, &query_bytes(&format!("{n}.{Z}."), RecordType::A, false));
    }
    for n in names {
        let m = Message::from_vec(&tcp_recv(&mut stream)).unwrap();
        assert_eq!(m.queries[0].name().to_ascii(), format!("{n}.{Z}."));
        assert_eq!(m.answers.len(), 1);
    }
    // Idle past the timeout: the server closes the connection.
    std::thread::sleep(Duration::from_millis(1500));
    let mut buf = [0u8; 1];
    assert_eq!(stream.read(&mut buf).unwrap_or(0), 0, "connection closed after idle timeout");
}

#[test]
fn question_case_is_echoed_and_matching_ignores_case() {
    let s = Server::start();
    let d = s.dig("StAtIc.GsLb.ExAmPlE.tEsT A");
    assert_eq!(d.status, "NOERROR");
    assert!(d.question[0].starts_with("StAtIc.GsLb.ExAmPlE.tEsT."), "{:?}", d.question);
    assert!(d.answer[0].starts_with("StAtIc.GsLb.ExAmPlE.tEsT."), "{:?}", d.answer);
    assert_eq!(d.answers_of("A"), vec!["192.0.2.1"]);
}

#[test]
fn any_is_answered_minimally() {
    let s = Server::start();
    let d = s.dig(&format!("{Z} ANY"));
    assert_eq!(d.status, "NOERROR");
    assert!(d.has_flag("aa"));
    // The apex holds SOA, NS, MX, TXT and CAA: RFC 8482 returns one RRset.
    let types: std::collections::BTreeSet<String> =
        d.answer.iter().map(|l| l.split_whitespace().nth(3).unwrap().to_string()).collect();
    assert_eq!(types.len(), 1, "{:?}", d.answer);
}

#[test]
fn unknown_opcode_gets_notimp() {
    let s = Server::start();
    for op in ["status", "3", "15"] {
        let d = s.dig(&format!("+opcode={op} static.{Z} A"));
        assert_eq!(d.status, "NOTIMP", "opcode {op}: {}", d.raw);
    }
}

#[test]
fn static_record_types_are_served() {
    let s = Server::start();
    let mx = s.dig(&format!("{Z} MX"));
    let mut v = mx.answers_of("MX");
    v.sort();
    assert_eq!(v, vec![format!("10 mail.{Z}."), format!("20 mail2.{Z}.")]);
    // Targets' addresses in the additional section.
    assert_eq!(rr_data(&mx.additional, "A").len(), 2);
    let srv = s.dig(&format!("_sip._udp.{Z} SRV"));
    assert_eq!(srv.answers_of("SRV"), vec![format!("10 60 5060 sip.{Z}.")]);
    assert_eq!(rr_data(&srv.additional, "A"), vec!["192.0.2.60"]);
    let caa = s.dig(&format!("{Z} CAA"));
    assert!(caa.answers_of("CAA").contains(&"0 issue \"letsencrypt.org\"".to_string()), "{:?}", caa.answer);
    let txt = s.dig(&format!("{Z} TXT"));
    assert!(txt.answers_of("TXT").contains(&"\"v=spf1 mx -all\"".to_string()));
    assert_eq!(s.dig(&format!("ptr.{Z} PTR")).answers_of("PTR"), vec![format!("static.{Z}.")]);
    let ns = s.dig(&format!("{Z} NS"));
    assert_eq!(ns.answers_of("NS").len(), 2);
    assert_eq!(rr_data(&ns.additional, "A").len(), 2, "glue for ns1/ns2");
    assert_eq!(rr_data(&ns.additional, "AAAA").len(), 2);
    let soa = s.dig(&format!("{Z} SOA"));
    assert_eq!(soa.answers_of("SOA").len(), 1);
    // From the included RFC 1035 master file.
    assert_eq!(s.dig(&format!("legacy.{Z} A")).answers_of("A"), vec!["192.0.2.101"]);
}

#[test]
fn tcp_and_udp_give_the_same_answer() {
    let s = Server::start();
    for q in [format!("chain.{Z} A"), format!("nx.{Z} A"), format!("www.sub.{Z} A")] {
        let u = s.dig(&q);
        let t = s.dig(&format!("+tcp {q}"));
        assert_eq!(
            (u.status, u.flags, u.answer, u.authority, u.additional),
            (t.status, t.flags, t.answer, t.authority, t.additional)
        );
    }
}
