//! The few wire checks hickory-proto's decoder leaves to us: the header
//! bits we need before a full parse, RFC 7871's rules for ECS, RFC 7873's
//! COOKIE lengths.

pub mod cookie;
pub mod ecs;
pub mod query;
pub mod server_cookie;

/// Size of the DNS header.
pub const HEADER_LEN: usize = 12;

/// Our advertised EDNS UDP payload (the DNS flag day 2020 value).
pub const EDNS_PAYLOAD: u16 = 1232;

/// True when the QR bit says the packet is itself a response: we never answer those.
pub fn is_response(packet: &[u8]) -> bool {
    packet.len() >= 3 && packet[2] & 0x80 != 0
}

/// The ID of a packet with at least a header.
pub fn id(packet: &[u8]) -> Option<u16> {
    (packet.len() >= HEADER_LEN).then(|| u16::from_be_bytes([packet[0], packet[1]]))
}

/// A FORMERR for a packet we could not parse: header only, ID, opcode and RD
/// copied (no question: we could not trust it).
pub fn formerr_header(packet: &[u8]) -> Option<Vec<u8>> {
    let id = id(packet)?;
    let opcode_rd = packet[2] & 0x79; // opcode bits and RD
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(&id.to_be_bytes());
    out.push(0x80 | opcode_rd);
    out.push(1); // RCODE = FORMERR
    out.extend_from_slice(&[0; 8]);
    Some(out)
}

/// Length of the uncompressed wire name at `at` in `packet`, its terminating
/// zero included; `None` for a pointer, a bad length or a name running off
/// the end.
pub fn plain_name_len(packet: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    loop {
        let len = *packet.get(i)? as usize;
        if len > 63 {
            return None;
        }
        i += 1 + len;
        if len == 0 {
            return Some(i - at);
        }
    }
}
