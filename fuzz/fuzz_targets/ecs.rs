//! The ECS option checks: the decoded-option validator and the raw
//! option-length walk must never panic, and must agree on what they accept.
#![no_main]

use hickory_proto::rr::rdata::opt::ClientSubnet;
use libfuzzer_sys::fuzz_target;
use meridian::wire::ecs;

fuzz_target!(|data: &[u8]| {
    if let Ok(cs) = ClientSubnet::try_from(data) {
        if let Ok(v) = ecs::validate(&cs) {
            let _ = v.net();
        }
    }
    // The same bytes as an ECS option inside a minimal query.
    let mut p = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    p.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01\x00\x00\x29\x04\xd0\x00\x00\x00\x00");
    let len = data.len().min(60000) as u16;
    p.extend_from_slice(&(len + 4).to_be_bytes());
    p.extend_from_slice(&[0, 8]);
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&data[..len as usize]);
    let _ = ecs::raw_lengths_ok(&p);
    // And arbitrary bytes as a whole packet.
    let _ = ecs::raw_lengths_ok(data);
});
