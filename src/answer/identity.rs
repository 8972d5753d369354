//! Which node answered: behind anycast every node has the same address, so
//! an operator asks the node itself. NSID (RFC 5001) rides on any answer
//! whose query asked for it; CHAOS-class TXT `id.server` and `hostname.bind`
//! (RFC 4892) answer with the same node id, and `version.bind` /
//! `version.server` with a version only when configured. Anything else in
//! class CH, and a name whose answer is off, is REFUSED, as Knot does.

use hickory_proto::op::Query;
use hickory_proto::rr::rdata::opt::{EdnsOption, NSIDPayload};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};

use crate::config::{ServerConfig, VersionBind};

/// What this node says about itself (both `None`: nothing, everything REFUSED).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// NSID and `id.server` / `hostname.bind`.
    pub node_id: Option<String>,
    /// `version.bind` / `version.server`.
    pub version: Option<String>,
}

impl Identity {
    /// From `node_id` (default: the host name; `""`: off) and `version_bind`
    /// (default off; `true`: "Meridian <version>"; a string: that string).
    pub fn from_config(cfg: &ServerConfig) -> Identity {
        let node_id = match &cfg.node_id {
            Some(id) => Some(id.clone()),
            None => {
                let host = host_name();
                if host.is_none() {
                    tracing::warn!("cannot read the host name: no node id (set node_id in meridian.toml)");
                }
                host
            }
        };
        let version = match &cfg.version_bind {
            VersionBind::Off => None,
            VersionBind::Default => Some(concat!("Meridian ", env!("CARGO_PKG_VERSION")).to_string()),
            VersionBind::Text(t) => Some(t.clone()),
        };
        let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
        Identity { node_id: nonempty(node_id), version: nonempty(version) }
    }

    /// The NSID option for a query that carried one (empty, as RFC 5001 asks;
    /// any payload is ignored); `None` when no node id is configured.
    pub(super) fn nsid(&self) -> Option<EdnsOption> {
        let id = self.node_id.as_deref()?;
        NSIDPayload::new(id.as_bytes().to_vec()).ok().map(EdnsOption::NSID)
    }

    /// The answer to a class CH question: one TXT record (class CH, TTL 0,
    /// owner as asked), or `None` for REFUSED.
    pub(super) fn chaos(&self, q: &Query) -> Option<Record> {
        if q.query_type() != RecordType::TXT {
            return None;
        }
        let lower = q.name().to_lowercase().to_ascii();
        let text = match lower.as_str() {
            "id.server." | "hostname.bind." => self.node_id.as_deref()?,
            "version.bind." | "version.server." => self.version.as_deref()?,
            _ => return None,
        };
        let mut rec = Record::from_rdata(q.name().clone(), 0, RData::TXT(TXT::new(vec![text.to_string()])));
        rec.dns_class = DNSClass::CH;
        Some(rec)
    }
}

/// For `check` and the start-up log: what a dig will see.
impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.node_id {
            Some(id) => write!(f, "node id {id:?} (NSID, CH TXT id.server, hostname.bind)")?,
            None => f.write_str("no node id (NSID and id.server off)")?,
        }
        match &self.version {
            Some(v) => write!(f, "; version.bind {v:?}"),
            None => f.write_str("; version.bind off"),
        }
    }
}

/// The kernel's host name (what `hostname` prints), `None` if unreadable or empty.
fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, which is passed.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Name;

    fn q(name: &str, t: RecordType) -> Query {
        let mut q = Query::query(Name::from_ascii(name).unwrap(), t);
        q.set_query_class(DNSClass::CH);
        q
    }

    fn text(r: &Record) -> String {
        match &r.data {
            RData::TXT(t) => t.to_string(),
            other => panic!("not TXT: {other:?}"),
        }
    }

    #[test]
    fn node_id_and_version_answer_their_names_only() {
        let id = Identity { node_id: Some("fra-1".into()), version: None };
        for name in ["id.server.", "HOSTNAME.Bind.", "hostname.bind."] {
            let r = id.chaos(&q(name, RecordType::TXT)).expect(name);
            assert_eq!((text(&r), r.ttl, r.dns_class), ("fra-1".to_string(), 0, DNSClass::CH));
            assert_eq!(r.name.to_ascii(), name, "owner as asked");
        }
        assert!(id.chaos(&q("version.bind.", RecordType::TXT)).is_none(), "version off by default");
        assert!(id.chaos(&q("id.server.", RecordType::A)).is_none());
        assert!(id.chaos(&q("x.id.server.", RecordType::TXT)).is_none());
        let with_version = Identity { node_id: None, version: Some("v".into()) };
        assert_eq!(text(&with_version.chaos(&q("version.server.", RecordType::TXT)).unwrap()), "v");
        assert!(with_version.chaos(&q("id.server.", RecordType::TXT)).is_none());
        assert!(with_version.nsid().is_none());
    }

    #[test]
    fn defaults_are_the_host_name_and_no_version() {
        let id = Identity::from_config(&ServerConfig::default());
        assert_eq!(id.node_id, host_name());
        assert_eq!(id.version, None);
        let cfg =
            ServerConfig { node_id: Some(String::new()), version_bind: VersionBind::Default, ..Default::default() };
        let id = Identity::from_config(&cfg);
        assert_eq!(id.node_id, None, "an empty node_id turns it off");
        assert_eq!(id.version.as_deref(), Some(concat!("Meridian ", env!("CARGO_PKG_VERSION"))));
    }
}
