//! EDNS(0) Padding (RFC 7830) of answers sent over an encrypted transport,
//! with the block-length policy of RFC 8467: only when the query carried a
//! Padding option, the answer is padded to a multiple of 468 bytes so its
//! size says little about which name was asked. Done on the wire after the
//! answer path: that path is shared with UDP and TCP, which never pad.

/// Block size RFC 8467 §4.1 recommends for responses.
pub const BLOCK: usize = 468;

const OPT: u16 = 41;
const PADDING: u16 = 12;

/// Pad `answer` when `query` carries a Padding option and `answer` ends with
/// its OPT record (Meridian writes OPT last; with anything after it, such as
/// a TSIG, nothing is changed). Returns whether it padded.
pub fn pad_if_asked(query: &[u8], answer: &mut Vec<u8>) -> bool {
    if !query_asks(query) {
        return false;
    }
    let Some(rdlen_at) = last_opt_rdlen(answer) else { return false };
    // Option header: code and length, 4 bytes, then the zeros.
    let unpadded = answer.len() + 4;
    let target = unpadded.div_ceil(BLOCK) * BLOCK;
    let zeros = target - unpadded;
    let rdlen = u16::from_be_bytes([answer[rdlen_at], answer[rdlen_at + 1]]) as usize + 4 + zeros;
    if target > usize::from(u16::MAX) || rdlen > usize::from(u16::MAX) {
        return false; // would not fit a length prefix: send unpadded
    }
    answer[rdlen_at..rdlen_at + 2].copy_from_slice(&(rdlen as u16).to_be_bytes());
    answer.extend_from_slice(&PADDING.to_be_bytes());
    answer.extend_from_slice(&(zeros as u16).to_be_bytes());
    answer.resize(target, 0);
    true
}

/// Whether the query's OPT record holds a Padding option.
fn query_asks(query: &[u8]) -> bool {
    let Some(rdlen_at) = last_opt_rdlen(query) else { return false };
    let rdlen = u16::from_be_bytes([query[rdlen_at], query[rdlen_at + 1]]) as usize;
    let Some(mut opts) = query.get(rdlen_at + 2..rdlen_at + 2 + rdlen) else { return false };
    while opts.len() >= 4 {
        let code = u16::from_be_bytes([opts[0], opts[1]]);
        let len = u16::from_be_bytes([opts[2], opts[3]]) as usize;
        if code == PADDING {
            return true;
        }
        opts = opts.get(4 + len..).unwrap_or_default();
    }
    false
}

/// Offset of the RDLENGTH of the OPT record when it is the message's last
/// record and the message ends with it exactly.
fn last_opt_rdlen(msg: &[u8]) -> Option<usize> {
    let count = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]) as usize;
    if msg.len() < 12 {
        return None;
    }
    let (qd, records) = (count(4), count(6) + count(8) + count(10));
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(msg, at)? + 4;
    }
    let mut last = None;
    for _ in 0..records {
        let name_end = skip_name(msg, at)?;
        let fixed = msg.get(name_end..name_end + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        last = (rtype == OPT).then_some(name_end + 8);
        at = name_end + 10 + rdlen;
    }
    (at == msg.len()).then_some(last?)
}

/// End of the (possibly compressed) name starting at `at`.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => return Some(at + 2).filter(|&e| e <= msg.len()),
            l if l & 0xC0 == 0 => at += 1 + l as usize,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    use hickory_proto::rr::{Name, RecordType};

    fn msg(padding: bool) -> Message {
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii("www.example.com.").unwrap(), RecordType::A));
        let mut edns = Edns::new();
        if padding {
            edns.options_mut().insert(EdnsOption::Unknown(u16::from(EdnsCode::Padding), vec![0; 8]));
        }
        m.set_edns(edns);
        m
    }

    #[test]
    fn pads_to_the_block_only_when_asked() {
        let answer = msg(false).to_vec().unwrap();
        let mut padded = answer.clone();
        assert!(pad_if_asked(&msg(true).to_vec().unwrap(), &mut padded));
        assert_eq!(padded.len(), BLOCK);
        let parsed = Message::from_vec(&padded).unwrap();
        assert_eq!(parsed.queries, msg(false).queries);
        assert!(parsed.edns.as_ref().unwrap().option(EdnsCode::Padding).is_some());

        let mut plain = answer.clone();
        assert!(!pad_if_asked(&answer, &mut plain));
        assert_eq!(plain, answer);
    }

    #[test]
    fn leaves_an_answer_without_opt_alone() {
        let mut m = msg(false);
        m.edns = None;
        let answer = m.to_vec().unwrap();
        let mut out = answer.clone();
        assert!(!pad_if_asked(&msg(true).to_vec().unwrap(), &mut out));
        assert_eq!(out, answer);
    }
}
