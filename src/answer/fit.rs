//! Keeping a TCP answer within its 16-bit length prefix (RFC 1035 §4.2.2),
//! and a UDP answer within the client's size by its optional records.
//! A GSLB answer is a choice of addresses, so a shorter choice is still a
//! right answer: the least preferred addresses (the last) are dropped until
//! it fits, before anything else (a signer, one day) sees the message. Static
//! data is an RRset that must go whole or not at all: SERVFAIL, as Knot 3.2
//! answers such an RRset over TCP (`encode_sized`).

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

/// The longest DNS message TCP can carry.
pub const TCP_MAX: usize = u16::MAX as usize;

/// Whether `bytes`, the encoding of `resp`, lost records: hickory's encoder
/// stops at 65,535 bytes and sets TC, which `resp` itself did not ask for.
pub fn overflowed(bytes: &[u8], resp: &Message) -> bool {
    bytes.get(2).is_some_and(|b| b & 0x02 != 0) && !resp.metadata.truncation
}

/// Drop trailing addresses of a GSLB answer (the A/AAAA records that end the
/// answer section) until `resp` encodes whole; the message is left alone when
/// it already does or cannot be encoded. Returns how many were dropped.
pub fn trim_addresses(resp: &mut Message) -> usize {
    let is_address = |t: RecordType| matches!(t, RecordType::A | RecordType::AAAA);
    let mut dropped = 0;
    loop {
        let Ok(bytes) = resp.to_vec() else { return dropped };
        if !overflowed(&bytes, resp) {
            return dropped;
        }
        let tail = resp.answers.iter().rev().take_while(|r| is_address(r.record_type())).count();
        if tail == 0 {
            return dropped;
        }
        // The encoder wrote the answers that fit: drop the rest, at least one
        // (the OPT after them needs room too), then check again.
        let written = usize::from(u16::from_be_bytes([bytes[6], bytes[7]]));
        let n = resp.answers.len().saturating_sub(written).clamp(1, tail);
        resp.answers.truncate(resp.answers.len() - n);
        dropped += n;
    }
}

/// RFC 2181 §9: TC is for data the answer needs, not "merely because some
/// extra information could have been included". The addresses in the
/// additional section of an answer (MX, SRV, NS targets) are such extra: the
/// last names' records (a name's together) are dropped until `resp`
/// fits `limit`, as Knot does. A referral's glue is needed (RFC 9471), and a
/// referral is left alone. The encoding that fits, or `None` (TC it is).
pub fn without_extra_additionals(resp: &mut Message, limit: usize) -> Option<Vec<u8>> {
    let referral = resp.answers.is_empty() && resp.authorities.iter().any(|r| r.record_type() == RecordType::NS);
    if referral {
        return None;
    }
    while let Some(last) = resp.additionals.last().map(|r| r.name.clone()) {
        while resp.additionals.last().is_some_and(|r| r.name == last) {
            resp.additionals.pop();
        }
        let bytes = resp.to_vec().ok()?;
        if bytes.len() <= limit {
            return Some(bytes);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS};
    use hickory_proto::rr::{Name, RData, Record};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn message(addrs: usize, v6: bool) -> Message {
        let name = Name::from_ascii("www.gslb.example.test.").unwrap();
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii("alias.gslb.example.test.").unwrap(), RecordType::A));
        m.add_answer(Record::from_rdata(
            Name::from_ascii("alias.gslb.example.test.").unwrap(),
            60,
            RData::CNAME(CNAME(name.clone())),
        ));
        for i in 0..addrs as u32 {
            let data = if v6 {
                RData::AAAA(AAAA(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i))))
            } else {
                RData::A(A(Ipv4Addr::from(0x0a00_0000 | i)))
            };
            m.add_answer(Record::from_rdata(name.clone(), 60, data));
        }
        m
    }

    /// An MX answer that fits 512 bytes without all its targets' addresses
    /// keeps its answer, drops the last addresses, and is not truncated;
    /// a referral whose glue does not fit is (RFC 9471).
    #[test]
    fn extra_additionals_go_before_the_answer_does() {
        let owner = Name::from_ascii("mx.t.test.").unwrap();
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(owner.clone(), RecordType::MX));
        for i in 0..10u8 {
            let target = Name::from_ascii(format!("mail-exchanger-{i}.t.test.")).unwrap();
            m.add_answer(Record::from_rdata(owner.clone(), 60, RData::MX(MX::new(u16::from(i), target.clone()))));
            m.add_additional(Record::from_rdata(target.clone(), 60, RData::A(A(Ipv4Addr::new(192, 0, 2, i)))));
            m.add_additional(Record::from_rdata(target, 60, RData::AAAA(AAAA(Ipv6Addr::LOCALHOST))));
        }
        assert!(m.to_vec().unwrap().len() > 512);
        let mut fitted = m.clone();
        let bytes = without_extra_additionals(&mut fitted, 512).expect("fits without some addresses");
        assert!(bytes.len() <= 512);
        assert_eq!(fitted.answers.len(), 10, "the answer whole");
        assert!(
            !fitted.additionals.is_empty()
                && fitted.additionals.len() < 20
                && fitted.additionals.len().is_multiple_of(2)
        );
        assert_eq!(
            fitted.additionals[..],
            m.additionals[..fitted.additionals.len()],
            "the first targets' addresses kept"
        );
        // The same records as a referral's NS and glue: not dropped.
        let mut referral = m.clone();
        referral.authorities = std::mem::take(&mut referral.answers)
            .into_iter()
            .map(|r| {
                let RData::MX(mx) = &r.data else { unreachable!() };
                Record::from_rdata(owner.clone(), 60, RData::NS(NS(mx.exchange.clone())))
            })
            .collect();
        assert!(without_extra_additionals(&mut referral, 512).is_none());
        assert_eq!(referral.additionals.len(), 20);
    }

    #[test]
    fn trims_the_last_addresses_until_it_fits_and_keeps_the_first() {
        for v6 in [false, true] {
            let mut m = message(5_000, v6);
            assert!(overflowed(&m.to_vec().unwrap(), &m), "5,000 addresses do not fit");
            let dropped = trim_addresses(&mut m);
            let bytes = m.to_vec().unwrap();
            let len = bytes.len();
            assert!(!overflowed(&bytes, &m));
            let per = if v6 { 28 } else { 16 };
            assert!(len <= TCP_MAX && len + per > TCP_MAX, "v6={v6}: {len} bytes, not the most that fit");
            assert_eq!(m.answers.len() + dropped, 5_001);
            assert_eq!(m.answers[0].record_type(), RecordType::CNAME, "the chain is kept");
            let first = if v6 { "2001:db8::" } else { "10.0.0.0" };
            assert_eq!(m.answers[1].data.ip_addr().unwrap().to_string(), first, "the preferred address stays");
        }
    }

    #[test]
    fn an_answer_that_fits_is_untouched() {
        let mut m = message(100, false);
        assert_eq!(trim_addresses(&mut m), 0);
        assert_eq!(m.answers.len(), 101);
    }
}
