//! Bursts over UDP: the server takes many queued datagrams per receive and
//! sends their answers together; every query must still get exactly its own
//! answer, and junk mixed into the burst changes nothing for the rest.

use crate::common::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

const QUERIES: u16 = 200;
/// Junk carries IDs from here up, valid queries 1..=QUERIES.
const JUNK_ID: u16 = 0xd000;

/// Query `id`'s name, type, and the rcode and single address of its answer.
fn expected(id: u16) -> (String, RecordType, ResponseCode, Option<&'static str>) {
    match id % 3 {
        0 => (format!("q{id}.wild.gslb.example.test."), RecordType::A, ResponseCode::NoError, Some("192.0.2.80")),
        1 => (format!("nx{id}.gslb.example.test."), RecordType::A, ResponseCode::NXDomain, None),
        _ => ("static.gslb.example.test.".into(), RecordType::AAAA, ResponseCode::NoError, Some("2001:db8::1")),
    }
}

/// Junk number `j`: a runt, a response (both dropped), noise (FORMERR or
/// dropped), or an oversized datagram (a query and 6000 bytes of trailing junk:
/// answered or FORMERR). Its ID, where it has one, is `JUNK_ID + j`.
fn junk(j: u16) -> Vec<u8> {
    let id = JUNK_ID + j;
    let mut p = match j % 4 {
        0 => return vec![0xde, 0xad, 0xbe],
        1 => {
            let mut p = query_bytes(id, "static.gslb.example.test.", RecordType::A);
            p[2] |= 0x80;
            return p;
        }
        2 => (0..40u32).map(|k| (k.wrapping_mul(2_654_435_761) >> 13) as u8 ^ j as u8).collect(),
        _ => {
            let mut p = query_bytes(id, "static.gslb.example.test.", RecordType::A);
            p.extend(std::iter::repeat_n(0xa5, 6000));
            p
        }
    };
    p[..2].copy_from_slice(&id.to_be_bytes());
    p[2] &= 0x7f;
    p
}

/// A client socket whose replies a second thread collects until none has come
/// for 500 ms (or 20 s have passed).
fn client(server: SocketAddr) -> (UdpSocket, std::thread::JoinHandle<Vec<Message>>) {
    let local = if server.is_ipv6() { "[::1]:0" } else { "127.0.0.1:0" };
    // Room for every reply even if the reader falls behind.
    let sock = socket2::Socket::from(UdpSocket::bind(local).unwrap());
    let _ = sock.set_recv_buffer_size(1 << 20);
    let sock = UdpSocket::from(sock);
    sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let reader = sock.try_clone().unwrap();
    let collect = std::thread::spawn(move || {
        let (mut out, mut buf) = (Vec::new(), vec![0u8; 65535]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match reader.recv(&mut buf) {
                Ok(n) => out.push(Message::from_vec(&buf[..n]).expect("a parsable reply")),
                Err(_) => break,
            }
        }
        out
    });
    (sock, collect)
}

/// Send the whole burst without waiting, from `CLIENTS` sockets taking turns
/// (query `id` from socket `id % CLIENTS`); every reply must reach the socket
/// its query came from. More clients than the server has receive sockets (one
/// per core), so some receive batch holds datagrams of two clients.
fn burst(server: SocketAddr) {
    const CLIENTS: u16 = 8;
    let clients: Vec<_> = (0..CLIENTS).map(|_| client(server)).collect();
    let mut j = 0;
    for id in 1..=QUERIES {
        let (name, rtype, _, _) = expected(id);
        let sock = &clients[usize::from(id % CLIENTS)].0;
        sock.send_to(&query_bytes(id, &name, rtype), server).unwrap();
        if id % 7 == 0 {
            sock.send_to(&junk(j), server).unwrap();
            j += 1;
        }
    }
    let mut all = Vec::new();
    for (k, (_, replies)) in (0..CLIENTS).zip(clients) {
        let replies = replies.join().unwrap();
        for m in replies.iter().filter(|m| m.metadata.id < JUNK_ID) {
            assert_eq!(m.metadata.id % CLIENTS, k, "reply {} reached another socket", m.metadata.id);
        }
        all.extend(replies);
    }
    check(&all);
}

fn check(replies: &[Message]) {
    let mut seen: HashMap<u16, usize> = HashMap::new();
    for m in replies {
        let id = m.metadata.id;
        *seen.entry(id).or_default() += 1;
        if id >= JUNK_ID {
            // Noise may parse as anything; only runts and responses must go unanswered.
            assert!((id - JUNK_ID) % 4 >= 2, "junk {id:#x} (a runt or a response) was answered");
            continue;
        }
        assert!((1..=QUERIES).contains(&id), "reply with an ID never asked: {id}");
        let (name, rtype, rcode, addr) = expected(id);
        assert_eq!(m.queries.len(), 1, "{m:?}");
        assert_eq!(m.queries[0].name().to_ascii().to_ascii_lowercase(), name, "reply {id} answers its own question");
        assert_eq!(m.queries[0].query_type(), rtype, "reply {id} answers its own question");
        assert_eq!(m.metadata.response_code, rcode, "reply {id}: {m:?}");
        let addrs = answer_addresses(m);
        assert_eq!(addrs, addr.into_iter().map(String::from).collect::<Vec<_>>(), "reply {id}: {m:?}");
    }
    let missing: Vec<u16> = (1..=QUERIES).filter(|id| !seen.contains_key(id)).collect();
    assert!(missing.is_empty(), "{} of {QUERIES} queries unanswered: {missing:?}", missing.len());
    let twice: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "answered more than once: {twice:?}");
}

/// A loopback port free on `[::1]` for UDP and TCP, if IPv6 loopback exists.
fn free_port_v6() -> Option<u16> {
    for _ in 0..100 {
        let udp = UdpSocket::bind("[::1]:0").ok()?;
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("::1", port)).is_ok() {
            return Some(port);
        }
    }
    None
}

#[test]
fn a_burst_of_queries_with_junk_gets_every_answer_once() {
    let port6 = free_port_v6();
    let listen6 = port6.map(|p| format!("[::1]:{p}"));
    let extra: Vec<&str> = listen6.iter().flat_map(|l| ["--listen", l.as_str()]).collect();
    let s = Server::start_with(&extra, None);
    burst(s.addr);
    match port6 {
        Some(p) => burst(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, p))),
        None => skip_or_fail("no IPv6 loopback: IPv6 burst not run"),
    }
    // Still answering, and nothing went wrong inside.
    assert_eq!(s.dig("static.gslb.example.test A").answers_of("A"), vec!["192.0.2.1"]);
    assert!(!s.log_text().contains("panicked"), "a panic was logged");
}

/// A `www` query (A for an IPv4 subnet, AAAA for IPv6) carrying ECS `subnet`.
fn ecs_query(id: u16, subnet: IpNet) -> Vec<u8> {
    let rtype = if subnet.addr().is_ipv4() { RecordType::A } else { RecordType::AAAA };
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii("www.gslb.example.test.").unwrap(), rtype));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::from(subnet)));
    m.set_edns(e);
    m.to_vec().unwrap()
}

/// What a GSLB answer says: its addresses and the ECS echo (address/source, scope).
fn gslb_answer(m: &Message) -> (Vec<String>, Option<(String, u8, u8)>) {
    let addrs = answer_addresses(m);
    let ecs = match m.edns.as_ref().and_then(|e| e.option(EdnsCode::Subnet)) {
        Some(EdnsOption::Subnet(cs)) => Some((cs.addr().to_string(), cs.source_prefix(), cs.scope_prefix())),
        _ => None,
    };
    (addrs, ecs)
}

/// The receiver looks at a whole batch (parse, index entry, cache prefetch)
/// before answering any of it: in a burst of GSLB queries from many client
/// subnets, each answer must still be its own subnet's decision and scope,
/// the same as that subnet gets when it asks alone.
#[test]
fn a_burst_of_ecs_queries_gets_each_subnet_its_own_decision() {
    let s = Server::start();
    let mut subnets: Vec<IpNet> = (0..=12u8).map(|a| format!("10.{a}.7.0/24").parse().unwrap()).collect();
    subnets.extend((0..=6u8).map(|a| format!("2001:db8:{a}::/56").parse::<IpNet>().unwrap()));
    subnets.push("192.0.2.0/24".parse().unwrap());
    // Alone first: the reference each burst answer must equal.
    let one = UdpSocket::bind("127.0.0.1:0").unwrap();
    one.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = vec![0u8; 4096];
    let alone: Vec<_> = subnets
        .iter()
        .enumerate()
        .map(|(k, net)| {
            one.send_to(&ecs_query(k as u16, *net), s.addr).unwrap();
            let n = one.recv(&mut buf).expect("an answer to a lone query");
            let m = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{net}: {m:?}");
            gslb_answer(&m)
        })
        .collect();
    let distinct: std::collections::HashSet<_> = alone.iter().map(|a| &a.0).collect();
    assert!(distinct.len() >= 3, "the subnets reach several regions: {alone:?}");
    assert!(alone.iter().all(|a| a.1.is_some()), "every answer echoes ECS: {alone:?}");

    // Then all at once, five times each, from six sockets taking turns,
    // while the server is stopped: the kernel queues them, so on SIGCONT each
    // receiver takes full batches holding many subnets.
    const ROUNDS: u16 = 5;
    let clients: Vec<_> = (0..6).map(|_| client(s.addr)).collect();
    let n = subnets.len() as u16;
    s.signal(libc::SIGSTOP);
    for r in 0..ROUNDS {
        for (k, net) in subnets.iter().enumerate() {
            let id = r * n + k as u16;
            clients[usize::from(id % 6)].0.send_to(&ecs_query(id, *net), s.addr).unwrap();
        }
    }
    s.signal(libc::SIGCONT);
    let mut seen: HashMap<u16, usize> = HashMap::new();
    for (c, (_, replies)) in clients.into_iter().enumerate() {
        for m in replies.join().unwrap() {
            let id = m.metadata.id;
            assert_eq!(usize::from(id % 6), c, "reply {id} reached another socket");
            let k = usize::from(id % n);
            assert_eq!(gslb_answer(&m), alone[k], "burst reply for {} (id {id})", subnets[k]);
            *seen.entry(id).or_default() += 1;
        }
    }
    let wrong: Vec<_> = (0..ROUNDS * n).filter(|id| seen.get(id) != Some(&1)).collect();
    assert!(wrong.is_empty(), "IDs not answered exactly once: {wrong:?}");
}

/// The UDP receivers bind one socket per thread (SO_REUSEPORT on Linux); a port
/// another process holds must still stop the start with a clear error.
#[test]
fn a_udp_port_held_elsewhere_fails_the_start_clearly() {
    let held = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap();
    let dir = TempDir::new("held");
    let mut child = std::process::Command::new(bin())
        .args(["serve", "--listen", &addr.to_string(), "--admin", "off", "--state-dir"])
        .arg(dir.path().join("state"))
        .current_dir(repo())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            stop_child(&mut child, Duration::ZERO);
            panic!("meridian started on a UDP port another socket holds");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains(&format!("cannot bind UDP {addr}")) && err.contains("in use"), "{err}");
}
