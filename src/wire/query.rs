//! A zero-copy parser for the common query shape (one question, at most an
//! OPT record with ECS, cookie or padding). Anything else returns `None` and
//! goes to the general path, which knows every rule; this one only has to
//! recognise what it can answer byte-identically.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A query in the common shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleQuery<'a> {
    pub rd: bool,
    pub cd: bool,
    /// Question name in wire form as received (any case: see `has_upper`),
    /// with its terminating zero.
    pub qname: &'a [u8],
    pub qtype: u16,
    /// The header and question section as received (name, type, class): the
    /// answer starts with these bytes, its flags and counts rewritten.
    pub head: &'a [u8],
    pub edns: Option<SimpleEdns>,
    /// The ECS option's data as received (family, prefixes, address), empty
    /// without one: the answer echoes these bytes with the scope filled in.
    pub ecs_data: &'a [u8],
    /// The client cookie (8 bytes) of a COOKIE option, empty without one:
    /// the answer carries it with a fresh server cookie.
    pub client_cookie: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimpleEdns {
    pub payload: u16,
    pub dnssec_ok: bool,
    /// RFC 9824's Compact Answers OK flag: a signed answer echoes it (the
    /// general path's job).
    pub compact_ok: bool,
    pub ecs: Option<SimpleEcs>,
}

/// A valid ECS option (RFC 7871 checks done).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimpleEcs {
    pub addr: IpAddr,
    pub source: u8,
}

fn be16(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([p[at], p[at + 1]])
}

/// Parse `p` if it is a plain query this parser is sure about.
pub fn parse_simple(p: &[u8]) -> Option<SimpleQuery<'_>> {
    if p.len() < 17 {
        return None;
    }
    // QR, opcode, AA, TC all zero; RA, Z and RCODE zero (AD and CD may be set).
    if p[2] & 0xfe != 0 || p[3] & 0xcf != 0 {
        return None;
    }
    if be16(p, 4) != 1 || be16(p, 6) != 0 || be16(p, 8) != 0 || be16(p, 10) > 1 {
        return None;
    }
    let mut i = 12;
    loop {
        let len = *p.get(i)? as usize;
        if len == 0 {
            i += 1;
            break;
        }
        if len > 63 || i + 1 + len > p.len() || i + 1 + len - 12 > 255 {
            return None;
        }
        i += 1 + len;
    }
    let qname = &p[12..i];
    if qname.len() > 255 {
        return None; // RFC 1035 §2.3.4: the general path says FORMERR
    }
    if i + 4 > p.len() || be16(p, i + 2) != 1 {
        return None;
    }
    let qtype = be16(p, i);
    let head = &p[..i + 4];
    i += 4;
    let (mut ecs_data, mut client_cookie): (&[u8], &[u8]) = (&[], &[]);
    let edns = if be16(p, 10) == 1 {
        // The OPT record: root owner, type 41, version 0, then options.
        if i + 11 > p.len() || p[i] != 0 || be16(p, i + 1) != 41 || p[i + 5] != 0 || p[i + 6] != 0 {
            return None;
        }
        let payload = be16(p, i + 3);
        let dnssec_ok = p[i + 7] & 0x80 != 0;
        let compact_ok = p[i + 7] & 0x40 != 0;
        let rdlen = be16(p, i + 9) as usize;
        let opts = p.get(i + 11..i + 11 + rdlen)?;
        i += 11 + rdlen;
        let ecs = parse_options(opts, &mut client_cookie)?.map(|(ecs, data)| {
            ecs_data = data;
            ecs
        });
        Some(SimpleEdns { payload, dnssec_ok, compact_ok, ecs })
    } else {
        None
    };
    if i != p.len() {
        return None;
    }
    let (rd, cd) = (p[2] & 1 != 0, p[3] & 0x10 != 0);
    Some(SimpleQuery { rd, cd, qname, qtype, head, edns, ecs_data, client_cookie })
}

/// Whether a wire name has an uppercase ASCII letter: only a name the fast
/// index did not find is checked, to be lowercased for the negative index.
/// One branch-free pass (length bytes are < 64, never letters).
pub fn has_upper(name: &[u8]) -> bool {
    name.iter().fold(false, |up, b| up | b.wrapping_sub(b'A').lt(&26))
}

/// ECS (validated), COOKIE and PADDING are understood; any other option, or
/// a second ECS or COOKIE, sends the query the general way. Inlined: returned from a
/// call, its nested options were written to the stack in pieces and read
/// back wider, stalling on store forwarding.
#[inline(always)]
fn parse_options<'a>(mut o: &'a [u8], client_cookie: &mut &'a [u8]) -> Option<Option<(SimpleEcs, &'a [u8])>> {
    let (mut ecs, mut cookie) = (None, false);
    while !o.is_empty() {
        if o.len() < 4 {
            return None;
        }
        let code = be16(o, 0);
        let len = be16(o, 2) as usize;
        let data = o.get(4..4 + len)?;
        match code {
            8 if ecs.is_none() => ecs = Some((parse_ecs(data)?, data)),
            // One well-formed cookie; anything else is the general path's FORMERR.
            10 if !cookie && super::cookie::length_ok(len) => {
                cookie = true;
                *client_cookie = &data[..8];
            }
            12 => {}
            _ => return None,
        }
        o = &o[4 + len..];
    }
    Some(ecs)
}

#[inline(always)]
fn parse_ecs(d: &[u8]) -> Option<SimpleEcs> {
    if d.len() < 4 || d[3] != 0 {
        return None;
    }
    let family = be16(d, 0);
    let source = d[2];
    let bytes = &d[4..];
    if bytes.len() != (source as usize).div_ceil(8) {
        return None;
    }
    // The address bytes are shifted into an integer, left-aligned, rather
    // than copied into a zeroed array: a copy of variable length is a call
    // whose small stores the address's wider read then waited on.
    let addr = match family {
        1 if source <= 32 => {
            let a = bytes.iter().enumerate().fold(0u32, |a, (k, b)| a | u32::from(*b) << (24 - 8 * k));
            IpAddr::V4(Ipv4Addr::from(a))
        }
        2 if source <= 128 => {
            // Two 64-bit halves: a 128-bit shift per byte is several instructions.
            let half = |b: &[u8]| b.iter().enumerate().fold(0u64, |a, (k, b)| a | u64::from(*b) << (56 - 8 * k));
            let (hi, lo) = bytes.split_at(bytes.len().min(8));
            IpAddr::V6(Ipv6Addr::from(u128::from(half(hi)) << 64 | u128::from(half(lo))))
        }
        _ => return None,
    };
    // No bits beyond the prefix (only the last byte can hold any).
    let spare = source % 8;
    if spare != 0 && bytes.last().is_some_and(|b| b & (0xff >> spare) != 0) {
        return None;
    }
    Some(SimpleEcs { addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &[u8], extra: &[u8], arcount: u8) -> Vec<u8> {
        let mut p = vec![0xab, 0xcd, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, arcount];
        p.extend_from_slice(name);
        p.extend_from_slice(&[0, 1, 0, 1]);
        p.extend_from_slice(extra);
        p
    }

    #[test]
    fn plain_and_ecs_queries_parse() {
        let p = q(b"\x03www\x04test\x00", &[], 0);
        let s = parse_simple(&p).unwrap();
        assert_eq!((s.qtype, s.rd, s.edns), (1, true, None));
        let opt = [0, 0, 41, 4, 0xd0, 0, 0, 0x80, 0, 0, 11, 0, 8, 0, 7, 0, 1, 24, 0, 10, 3, 0];
        let p = q(b"\x03www\x04test\x00", &opt, 1);
        let s = parse_simple(&p).unwrap();
        let e = s.edns.unwrap();
        assert!(e.dnssec_ok);
        assert_eq!(e.ecs, Some(SimpleEcs { addr: "10.3.0.0".parse().unwrap(), source: 24 }));
        // What the answer copies: the header and question, the ECS option's data.
        assert_eq!(s.head, &p[..12 + 10 + 4]);
        assert_eq!(s.ecs_data, &[0, 1, 24, 0, 10, 3, 0]);
        // A cookie before the ECS option: the data is still ECS's alone.
        let cookie = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let ecs = [0, 8, 0, 7, 0, 1, 24, 0, 10, 3, 0];
        let opt = |opts: &[u8]| [&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, opts.len() as u8][..], opts].concat();
        let p = q(b"\x03www\x04test\x00", &opt(&[&cookie[..], &ecs].concat()), 1);
        assert_eq!(parse_simple(&p).unwrap().ecs_data, &ecs[4..]);
        let p = q(b"\x03www\x04test\x00", &opt(&cookie), 1);
        assert!(parse_simple(&p).unwrap().ecs_data.is_empty(), "a cookie alone: no ECS data");
    }

    /// The address bytes land left-aligned, zero-filled, for every length
    /// from none (/0) to a whole address, in both families.
    #[test]
    fn ecs_addresses_of_every_length() {
        let full4 = [192u8, 0, 2, 128];
        let full6: [u8; 16] = "2001:db8:a:b:c:d:e:f".parse::<Ipv6Addr>().unwrap().octets();
        for (family, full, bits) in [(1u16, &full4[..], 32u8), (2, &full6[..], 128)] {
            for source in 0..=bits {
                let n = usize::from(source).div_ceil(8);
                let mut bytes = full[..n].to_vec();
                if source % 8 != 0 {
                    bytes[n - 1] &= 0xff << (8 - source % 8); // no bits beyond the prefix
                }
                let mut d = vec![0, family as u8, source, 0];
                d.extend_from_slice(&bytes);
                let mut want = full.to_vec();
                want.iter_mut().enumerate().for_each(|(i, b)| *b = bytes.get(i).copied().unwrap_or(0));
                let want = match family {
                    1 => IpAddr::from(<[u8; 4]>::try_from(&want[..]).unwrap()),
                    _ => IpAddr::from(<[u8; 16]>::try_from(&want[..]).unwrap()),
                };
                assert_eq!(parse_ecs(&d), Some(SimpleEcs { addr: want, source }), "family {family} /{source}");
            }
        }
    }

    #[test]
    fn uppercase_letters_are_found_anywhere() {
        for name in [&b"\x03WWW\x04test\x00"[..], b"\x03wwZ\x04test\x00", b"\x01A\x00", b"\x03www\x04tEst\x00"] {
            assert!(has_upper(name), "{name:?}");
            assert_eq!(parse_simple(&q(name, &[], 0)).unwrap().qname, name, "kept as received");
        }
        // '@' and '[' sit just outside A-Z; bytes above 0x7f are not letters.
        for name in [&b"\x03a@[\x04test\x00"[..], b"\x03www\x04test\x00", b"\x02\xc1\xda\x00"] {
            assert!(!has_upper(name), "{name:?}");
        }
    }

    #[test]
    fn unusual_shapes_go_the_general_way() {
        let bad_ecs = [0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 11, 0, 8, 0, 7, 0, 1, 16, 0, 10, 3, 1];
        assert!(parse_simple(&q(b"\x01a\x00", &bad_ecs, 1)).is_none(), "extra address octet");
        let v1 = [0, 0, 41, 4, 0xd0, 0, 1, 0, 0, 0, 0];
        assert!(parse_simple(&q(b"\x01a\x00", &v1, 1)).is_none(), "EDNS version 1");
        // /20: the low four bits of the third octet must be zero.
        let ecs20 = |third: u8| [0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 11, 0, 8, 0, 7, 0, 1, 20, 0, 10, 3, third];
        assert!(parse_simple(&q(b"\x01a\x00", &ecs20(0x10), 1)).is_some());
        assert!(parse_simple(&q(b"\x01a\x00", &ecs20(0x18), 1)).is_none(), "bits beyond /20");
        // 255 bytes is the longest name; 256 goes the general way.
        let long = |last: usize| {
            let mut n = Vec::new();
            for _ in 0..4 {
                n.push(63u8);
                n.extend_from_slice(&[b'a'; 63]);
            }
            n.truncate(4 * 64 - (64 - last)); // four labels, the last `last - 1` bytes long
            n[3 * 64] = (last - 1) as u8;
            n.push(0);
            n
        };
        assert_eq!(long(62).len(), 255);
        assert!(parse_simple(&q(&long(62), &[], 0)).is_some());
        assert!(parse_simple(&q(&long(63), &[], 0)).is_none(), "256-byte name");
        let mut trailing = q(b"\x01a\x00", &[], 0);
        trailing.push(0);
        assert!(parse_simple(&trailing).is_none());
    }
}
