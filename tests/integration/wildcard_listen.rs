//! A server listening on `0.0.0.0` and `[::]` answers each query from the
//! address it was sent to. A host with several addresses (an anycast service
//! address on `lo` beside the unicast one) would otherwise answer from the
//! address routing picks, and resolvers (dig here) drop an answer from an
//! unexpected source: it used to time out.

use crate::common::{dig, free_port, Server};
use std::net::SocketAddr;

#[test]
fn a_wildcard_listener_answers_from_the_address_each_query_was_sent_to() {
    let port = free_port();
    let v4 = format!("0.0.0.0:{port}");
    let v6 = format!("[::]:{port}");
    let has_v6 = std::net::UdpSocket::bind("[::1]:0").is_ok();
    let mut args = vec!["--listen", v4.as_str()];
    if has_v6 {
        args.extend(["--listen", v6.as_str()]);
    }
    let _s = Server::start_with(&args, None);
    let mut asked: Vec<String> = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.1.2.3"].map(String::from).to_vec();
    if has_v6 {
        asked.push("[::1]".into());
    }
    for ip in &asked {
        let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        for transport in ["+notcp", "+tcp"] {
            let d = dig(addr, &format!("static.gslb.example.test A {transport}"));
            assert_eq!(d.answers_of("A"), ["192.0.2.1"], "{addr} {transport}: {}", d.raw);
        }
        // A GSLB answer with ECS takes the same way out.
        let d = dig(addr, "www.gslb.example.test A +subnet=81.2.69.0/24");
        assert_eq!(d.status, "NOERROR", "{addr}: {}", d.raw);
        assert_eq!(d.answers_of("A").len(), 1, "{addr}: {}", d.raw);
    }
}
