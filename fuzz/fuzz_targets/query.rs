//! The whole query handler: wire bytes in, wire bytes or nothing out.
//! Every answer must parse as DNS, carry the query's ID, and (when the query
//! parsed) echo its question.
#![no_main]

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use meridian::answer::{Transport, Worker};
use meridian::config::ServerConfig;
use meridian::answer::Snapshot;
use std::sync::OnceLock;

fn state() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let cfg = ServerConfig {
            zones: root.join("zones"),
            geoip: Some(root.join("geoip/demo.mmdb")),
            ..ServerConfig::default()
        };
        Snapshot::load(&cfg).expect("the shipped configuration loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let src = "192.0.2.99:5353".parse().unwrap();
    let mut worker = Worker::new(None);
    let mut out = Vec::new();
    for transport in [Transport::Udp, Transport::Tcp] {
        if !worker.answer(state(), data, src, transport, &mut out) {
            continue;
        }
        let resp = Message::from_vec(&out).expect("every answer parses as DNS");
        assert_eq!(&out[..2], &data[..2], "ID echoed");
        assert!(resp.metadata.message_type == hickory_proto::op::MessageType::Response);
        if transport == Transport::Udp {
            assert!(out.len() <= 1232, "UDP answer within our payload size");
        }
        if let Ok(q) = Message::from_vec(data) {
            if !resp.queries.is_empty() {
                assert_eq!(resp.queries, q.queries, "question echoed as asked");
            }
        }
    }
});
