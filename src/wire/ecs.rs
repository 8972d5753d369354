//! EDNS Client Subnet (RFC 7871) checks that hickory's decoder does not make.

use hickory_proto::rr::rdata::opt::ClientSubnet;
use ipnet::IpNet;
use std::net::IpAddr;

/// Why an ECS option is refused with FORMERR (RFC 7871 §7.1.1/§6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcsError {
    #[error("source prefix {0} longer than the address family allows")]
    PrefixTooLong(u8),
    #[error("scope prefix {0} must be 0 in a query")]
    ScopeInQuery(u8),
    #[error("address has bits set beyond the source prefix")]
    BitsBeyondPrefix,
}

/// A validated client subnet from a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryEcs {
    pub addr: IpAddr,
    pub source_prefix: u8,
}

impl QueryEcs {
    /// The client network the option names.
    pub fn net(&self) -> IpNet {
        IpNet::new(self.addr, self.source_prefix).expect("prefix validated")
    }
}

/// Validate an option as received (hickory has already refused unknown families
/// and addresses longer than the family).
pub fn validate(cs: &ClientSubnet) -> Result<QueryEcs, EcsError> {
    let addr = cs.addr();
    let source = cs.source_prefix();
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if source > max {
        return Err(EcsError::PrefixTooLong(source));
    }
    if cs.scope_prefix() != 0 {
        return Err(EcsError::ScopeInQuery(cs.scope_prefix()));
    }
    let net = IpNet::new(addr, source).map_err(|_| EcsError::PrefixTooLong(source))?;
    if net.trunc().addr() != addr {
        return Err(EcsError::BitsBeyondPrefix);
    }
    Ok(QueryEcs { addr, source_prefix: source })
}

/// The scope prefix to answer for a query's subnet, given the scope the
/// decision holds for: 0 when the query gave no address bits (source 0).
/// A scope counts bits of the option's own family, so an IPv4-mapped subnet
/// (`::ffff:a.b.c.d/120`, decided as its IPv4 subnet) gets 96 plus the IPv4
/// scope: /112 for an IPv4 /16, never the /16 that as an IPv6 scope would
/// cover every mapped client. A client-independent answer (scope 0) stays 0.
pub fn answer_scope(addr: IpAddr, source: u8, scope: u8) -> u8 {
    match addr {
        _ if source == 0 || scope == 0 => 0,
        IpAddr::V6(v6) if source > 96 && v6.to_ipv4_mapped().is_some() => 96 + scope.min(32),
        _ => scope,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(a: &str, src: u8, scope: u8) -> ClientSubnet {
        ClientSubnet::new(a.parse().unwrap(), src, scope)
    }

    #[test]
    fn accepts_clean_subnets() {
        assert!(validate(&cs("192.0.2.0", 24, 0)).is_ok());
        assert!(validate(&cs("2001:db8::", 56, 0)).is_ok());
        assert!(validate(&cs("0.0.0.0", 0, 0)).is_ok());
    }

    #[test]
    fn a_mapped_subnets_scope_is_counted_in_ipv6_bits() {
        let mapped: IpAddr = "::ffff:10.3.0.0".parse().unwrap();
        assert_eq!(answer_scope(mapped, 120, 16), 112);
        assert_eq!(answer_scope(mapped, 120, 0), 0, "client-independent");
        assert_eq!(answer_scope("10.3.0.0".parse().unwrap(), 24, 16), 16);
        assert_eq!(answer_scope("2001:db8::".parse().unwrap(), 48, 32), 32);
        assert_eq!(answer_scope(mapped, 0, 16), 0, "no address bits sent");
    }

    #[test]
    fn refuses_bits_beyond_prefix_and_scope() {
        assert_eq!(validate(&cs("192.0.2.1", 24, 0)), Err(EcsError::BitsBeyondPrefix));
        assert_eq!(validate(&cs("192.0.2.0", 24, 24)), Err(EcsError::ScopeInQuery(24)));
        assert_eq!(validate(&cs("192.0.2.0", 33, 0)), Err(EcsError::PrefixTooLong(33)));
    }
}

/// RFC 7871 §6: ADDRESS must be exactly ceil(SOURCE PREFIX-LENGTH / 8)
/// octets. hickory's decoder reads that many and ignores the rest, so the
/// option's real length is checked on the raw packet. `false` when some ECS
/// option in the OPT record has the wrong length (the packet was already
/// parsed successfully, so the walk below stays in bounds or gives up).
pub fn raw_lengths_ok(packet: &[u8]) -> bool {
    opt_options(packet)
        .all(|(code, _, data)| code != 8 || (data.len() >= 4 && data.len() == 4 + (data[2] as usize).div_ceil(8)))
}

/// Whether a query carries an ECS option (for rate-limiting exemptions).
pub fn has_ecs(packet: &[u8]) -> bool {
    opt_options(packet).any(|(code, _, _)| code == 8)
}

/// The options of the query's OPT record, in order: code, length as
/// declared, and the data as far as the record holds it (the packet was
/// already parsed, so a walk that runs past the end just stops).
pub(super) fn opt_options(packet: &[u8]) -> impl Iterator<Item = (u16, usize, &[u8])> {
    let opt = find_opt_rdata(packet).unwrap_or(&[]);
    let mut i = 0;
    std::iter::from_fn(move || {
        if i + 4 > opt.len() {
            return None;
        }
        let code = u16::from_be_bytes([opt[i], opt[i + 1]]);
        let len = u16::from_be_bytes([opt[i + 2], opt[i + 3]]) as usize;
        let data = &opt[i + 4..(i + 4 + len).min(opt.len())];
        i += 4 + len;
        Some((code, len, data))
    })
}

/// The RDATA of the OPT record in the additional section, if any.
fn find_opt_rdata(p: &[u8]) -> Option<&[u8]> {
    let count = |at: usize| u16::from_be_bytes([p[at], p[at + 1]]) as usize;
    if p.len() < 12 {
        return None;
    }
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(p, i)? + 4;
    }
    for n in 0..an + ns + ar {
        i = skip_name(p, i)?;
        if i + 10 > p.len() {
            return None;
        }
        let rtype = u16::from_be_bytes([p[i], p[i + 1]]);
        let rdlen = u16::from_be_bytes([p[i + 8], p[i + 9]]) as usize;
        let start = i + 10;
        let end = start.checked_add(rdlen).filter(|e| *e <= p.len())?;
        if rtype == 41 && n >= an + ns {
            return Some(&p[start..end]);
        }
        i = end;
    }
    None
}

/// Index just past a (possibly compressed) name.
fn skip_name(p: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = *p.get(i)? as usize;
        if len == 0 {
            return Some(i + 1);
        }
        if len & 0xc0 == 0xc0 {
            return Some(i + 2);
        }
        i += 1 + len;
    }
}

#[cfg(test)]
mod raw_tests {
    use super::*;

    fn packet_with_ecs(ecs: &[u8]) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(b"\x03www\x04test\x00\x00\x01\x00\x01");
        p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
        let opt_len = 4 + ecs.len();
        p.extend_from_slice(&(opt_len as u16).to_be_bytes());
        p.extend_from_slice(&[0, 8]);
        p.extend_from_slice(&(ecs.len() as u16).to_be_bytes());
        p.extend_from_slice(ecs);
        p
    }

    #[test]
    fn address_length_must_match_the_prefix() {
        assert!(raw_lengths_ok(&packet_with_ecs(&[0, 1, 16, 0, 10, 3])));
        assert!(!raw_lengths_ok(&packet_with_ecs(&[0, 1, 16, 0, 10, 3, 0, 1])));
        assert!(!raw_lengths_ok(&packet_with_ecs(&[0, 1, 24, 0, 10, 3])));
        assert!(raw_lengths_ok(&packet_with_ecs(&[0, 1, 0, 0])));
    }
}
