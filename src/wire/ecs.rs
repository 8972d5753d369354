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
    fn refuses_bits_beyond_prefix_and_scope() {
        assert_eq!(validate(&cs("192.0.2.1", 24, 0)), Err(EcsError::BitsBeyondPrefix));
        assert_eq!(validate(&cs("192.0.2.0", 24, 24)), Err(EcsError::ScopeInQuery(24)));
        assert_eq!(validate(&cs("192.0.2.0", 33, 0)), Err(EcsError::PrefixTooLong(33)));
    }
}
