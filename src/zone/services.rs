//! Regions, services and expectations of a zone file → policy types.

use hickory_proto::rr::{Name, RecordType};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;
use toml::Spanned;

use crate::config::zone_file::{ExpectSpec, ProbeSpec, RegionSpec, RuleSpec, ServiceSpec};
use crate::config::{ConfigError, Source};
use crate::health::{Endpoint, HttpProbe, LoadSource, ProbeKind, ProbeTarget};
use crate::policy::{FailMode, Matcher, Region, RegionId, Service, ShedFail, Step};
use std::time::Duration;

/// An `[[expect]]` case, checked by `meridian check`.
#[derive(Debug, Clone)]
pub struct Expect {
    pub client: IpNet,
    pub name: Name,
    pub rtype: RecordType,
    pub region: Option<String>,
    pub answer: Option<Vec<IpAddr>>,
    /// `FILE:LINE:COL` of the case, for its failure message.
    pub at: String,
}

/// The metric label names of one snapshot's services and regions, by id,
/// assigned as the zones are built: metrics count numbers and read the names
/// from this table (`Zones::labels`). Id 0 names nothing, so a service id is
/// never 0 (the decision cache's empty slot).
#[derive(Debug)]
pub struct Labels {
    names: Vec<Arc<str>>,
}

impl Default for Labels {
    fn default() -> Labels {
        Labels { names: vec![Arc::from("")] }
    }
}

impl Labels {
    /// A new id for `name` (one per service or region built: unique in the snapshot).
    fn add(&mut self, name: &str) -> u32 {
        self.names.push(Arc::from(name));
        u32::try_from(self.names.len() - 1).expect("fewer than 2^32 services and regions")
    }

    pub fn finish(self) -> Arc<[Arc<str>]> {
        self.names.into()
    }
}

pub fn build_regions(
    src: &Source,
    specs: &[Spanned<RegionSpec>],
    labels: &mut Labels,
) -> Result<Vec<Region>, ConfigError> {
    let mut out: Vec<Region> = Vec::new();
    for spec in specs {
        let r = spec.get_ref();
        let name = r.name.get_ref().clone();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(src.error(r.name.span(), format!("region name {name:?} must be one word")));
        }
        if out.iter().any(|o| o.name == name) {
            return Err(src.error(r.name.span(), format!("region {name} is defined twice")));
        }
        let mut addresses = Vec::new();
        for a in &r.addresses {
            let ip: IpAddr = a
                .get_ref()
                .parse()
                .map_err(|_| src.error(a.span(), format!("{:?} is not an IP address", a.get_ref())))?;
            // RFC 2181 §5: duplicate records in an RRset are meaningless; a
            // repeated address is an operator's slip, so say so.
            if addresses.contains(&ip) {
                return Err(src.error(
                    a.span(),
                    format!(
                        "address {ip} is listed twice in region {name} (remove one: each address is answered once)"
                    ),
                ));
            }
            addresses.push(ip);
        }
        if addresses.is_empty() {
            return Err(src.error(r.name.span(), format!("region {name} has no addresses")));
        }
        let location = match &r.location {
            Some(l) => {
                let ll = l.get_ref();
                if !(-90.0..=90.0).contains(&ll.lat) || !(-180.0..=180.0).contains(&ll.lon) {
                    return Err(src.error(l.span(), "location needs lat in [-90, 90] and lon in [-180, 180]"));
                }
                Some((ll.lat, ll.lon))
            }
            None => None,
        };
        let slow_start = match &r.slow_start {
            Some(d) => Some(duration(src, d)?),
            None => None,
        };
        let endpoints = match &r.probe {
            Some(p) => addresses
                .iter()
                .map(|a| Ok(Endpoint { addr: *a, target: Some(Arc::new(probe_target(src, p, *a, &addresses)?)) }))
                .collect::<Result<Vec<_>, ConfigError>>()?,
            None => addresses.iter().map(|a| Endpoint { addr: *a, target: None }).collect(),
        };
        let (watermarks, load_max_age) = match &r.load {
            None => (None, crate::policy::DEFAULT_LOAD_MAX_AGE),
            Some(l) => {
                let l = l.get_ref();
                let marks = l.low.as_ref().zip(l.high.as_ref()).map(|(lo, hi)| (*lo.get_ref(), *hi.get_ref()));
                let age = l.max_age.as_ref().map(|d| duration(src, d)).transpose()?;
                (marks, age.unwrap_or(crate::policy::DEFAULT_LOAD_MAX_AGE))
            }
        };
        if r.min_healthy == 0 {
            return Err(src.error(r.name.span(), "min_healthy must be at least 1"));
        }
        out.push(Region {
            label: labels.add(&name),
            name,
            addresses,
            location,
            weight: r.weight,
            capacity: r.capacity,
            endpoints,
            min_healthy: r.min_healthy,
            slow_start,
            watermarks,
            load_max_age,
        });
    }
    Ok(out)
}

/// "200ms", "5s", "1m30s" (humantime).
fn duration(src: &Source, d: &Spanned<String>) -> Result<Duration, ConfigError> {
    humantime::parse_duration(d.get_ref())
        .map_err(|e| src.error(d.span(), format!("{:?} is not a duration (e.g. \"5s\", \"200ms\"): {e}", d.get_ref())))
}

/// The probe of one answered address.
fn probe_target(
    src: &Source,
    spec: &Spanned<ProbeSpec>,
    answered: IpAddr,
    all_answered: &[IpAddr],
) -> Result<ProbeTarget, ConfigError> {
    let p = spec.get_ref();
    let probed: IpAddr = match &p.probe_addr {
        None => answered,
        Some(v) => {
            let text = match v.get_ref() {
                toml::Value::String(s) => Some(s.clone()),
                toml::Value::Table(t) => t.get(&answered.to_string()).and_then(|x| x.as_str()).map(str::to_string),
                _ => return Err(src.error(v.span(), "probe_addr must be an address or a table of address = address")),
            };
            match text {
                Some(t) => t.parse().map_err(|_| src.error(v.span(), format!("{t:?} is not an IP address")))?,
                None => answered,
            }
        }
    };
    let interval = p.interval.as_ref().map(|d| duration(src, d)).transpose()?.unwrap_or(Duration::from_secs(5));
    let timeout = p.timeout.as_ref().map(|d| duration(src, d)).transpose()?.unwrap_or(Duration::from_secs(2));
    if interval.is_zero() || timeout.is_zero() {
        return Err(src.error(spec.span(), "probe interval and timeout must be more than zero"));
    }
    // A timeout longer than the interval is allowed: the next probe then starts
    // when the slow one ends (probes of one target never overlap).
    // Keys that belong to the other kind of probe are mistakes, not options.
    let kind = p.kind.get_ref().as_str();
    let misplaced = match kind {
        "tcp" => [
            ("url", p.url.is_some()),
            ("body", p.body.is_some()),
            ("status", p.status.is_some()),
            ("ca", p.ca.is_some()),
            ("load_header", p.load_header.is_some()),
            ("load_json", p.load_json.is_some()),
        ]
        .iter()
        .find(|(_, set)| *set)
        .map(|(k, _)| *k),
        _ => p.port.is_some().then_some("port"),
    };
    if let Some(key) = misplaced {
        return Err(src.error(p.kind.span(), format!("`{key}` does not apply to a {kind} probe")));
    }
    if let Some(v) = &p.probe_addr {
        if let toml::Value::Table(t) = v.get_ref() {
            for key in t.keys() {
                let known = key.parse::<IpAddr>().ok().is_some_and(|a| all_answered.contains(&a));
                if !known {
                    return Err(src.error(
                        v.span(),
                        format!("probe_addr names {key:?}, which is not one of the region's addresses"),
                    ));
                }
            }
        }
    }
    let kind = match p.kind.get_ref().as_str() {
        "http" | "https" => {
            let url = p.url.as_ref().ok_or_else(|| src.error(p.kind.span(), "an http probe needs `url`"))?;
            let host = match probed {
                IpAddr::V4(a) => a.to_string(),
                IpAddr::V6(a) => format!("[{a}]"),
            };
            let full = url.get_ref().replace("{addr}", &host);
            let scheme = if kind == "https" { "https://" } else { "http://" };
            if !full.starts_with(scheme) {
                return Err(
                    src.error(url.span(), format!("a {kind} probe needs a {scheme} URL, not {:?}", url.get_ref()))
                );
            }
            let status = match &p.status {
                None => (200, 399),
                Some(s) => match s.get_ref().as_slice() {
                    [one] => (*one, *one),
                    [lo, hi] if lo <= hi => (*lo, *hi),
                    _ => return Err(src.error(s.span(), "status must be [code] or [lowest, highest]")),
                },
            };
            let base = src.path.parent().unwrap_or(std::path::Path::new("."));
            let load = match (&p.load_header, &p.load_json) {
                (Some(h), Some(_)) => {
                    return Err(src.error(h.span(), "a probe reads load from `load_header` or `load_json`, not both"))
                }
                (Some(h), None) => {
                    if reqwest::header::HeaderName::from_bytes(h.get_ref().as_bytes()).is_err() {
                        return Err(src.error(h.span(), format!("{:?} is not an HTTP header name", h.get_ref())));
                    }
                    Some(LoadSource::Header(h.get_ref().clone()))
                }
                (None, Some(j)) => Some(LoadSource::Json(j.get_ref().clone())),
                (None, None) => None,
            };
            ProbeKind::Http(HttpProbe {
                url: full,
                method: p.method.clone().unwrap_or_else(|| "GET".into()).to_ascii_uppercase(),
                host: p.host.as_ref().map(|h| h.get_ref().clone()),
                status,
                body: p.body.clone(),
                body_limit: p.body_limit.unwrap_or(64 * 1024),
                verify_tls: p.verify_tls.unwrap_or(true),
                load,
                ca_file: match &p.ca {
                    None => None,
                    Some(c) => {
                        let path = base.join(c.get_ref());
                        if !path.is_file() {
                            return Err(src.error(p.kind.span(), format!("ca file {} does not exist", path.display())));
                        }
                        Some(path)
                    }
                },
            })
        }
        "tcp" => {
            let port = *p.port.as_ref().ok_or_else(|| src.error(p.kind.span(), "a tcp probe needs `port`"))?.get_ref();
            ProbeKind::Tcp(std::net::SocketAddr::new(probed, port))
        }
        other => return Err(src.error(p.kind.span(), format!("probe type {other:?} is not one of http, https, tcp"))),
    };
    Ok(ProbeTarget {
        kind,
        interval,
        timeout,
        fall: p.fall.as_ref().map_or(3, |f| *f.get_ref()).max(1),
        rise: p.rise.as_ref().map_or(2, |r| *r.get_ref()).max(1),
    })
}

fn region_id(src: &Source, regions: &[Region], name: &str, span: Range<usize>) -> Result<RegionId, ConfigError> {
    regions.iter().position(|r| r.name == name).ok_or_else(|| src.error(span, format!("unknown region {name:?}")))
}

fn region_list(
    src: &Source,
    regions: &[Region],
    list: &Spanned<Vec<Spanned<String>>>,
) -> Result<Vec<RegionId>, ConfigError> {
    list.get_ref().iter().map(|n| region_id(src, regions, n.get_ref(), n.span())).collect()
}

/// Build a rule table, converting each value with `conv`.
fn rules<S, T>(
    src: &Source,
    spec: &Spanned<RuleSpec<S>>,
    mut conv: impl FnMut(&Spanned<S>) -> Result<T, ConfigError>,
) -> Result<Matcher<T>, ConfigError> {
    let r = spec.get_ref();
    let mut m = Matcher::default();
    for (k, v) in &r.cidr {
        let net: IpNet = k.parse().map_err(|_| src.error(v.span(), format!("{k:?} is not a CIDR network")))?;
        if net.trunc() != net {
            return Err(src.error(v.span(), format!("{k} has host bits set (did you mean {}?)", net.trunc())));
        }
        m.cidr.push((net, conv(v)?));
    }
    for (k, v) in &r.asn {
        let asn: u32 = k
            .trim_start_matches("AS")
            .parse()
            .map_err(|_| src.error(v.span(), format!("{k:?} is not an AS number")))?;
        m.asn.insert(asn, conv(v)?);
    }
    for (k, v) in &r.subdivision {
        if !k.contains('-') {
            return Err(src.error(v.span(), format!("subdivision {k:?} must look like \"US-CA\"")));
        }
        m.subdivision.insert(k.to_ascii_uppercase(), conv(v)?);
    }
    for (k, v) in &r.country {
        if k.len() != 2 {
            return Err(src.error(v.span(), format!("country {k:?} must be an ISO 3166 two-letter code")));
        }
        m.country.insert(k.to_ascii_uppercase(), conv(v)?);
    }
    for (k, v) in &r.continent {
        if !["AF", "AN", "AS", "EU", "NA", "OC", "SA"].contains(&k.to_ascii_uppercase().as_str()) {
            return Err(src.error(v.span(), format!("continent {k:?} must be one of AF AN AS EU NA OC SA")));
        }
        m.continent.insert(k.to_ascii_uppercase(), conv(v)?);
    }
    if let Some(d) = &r.default {
        m.default = Some(conv(d)?);
    }
    m.sort_cidrs();
    Ok(m)
}

/// A service's owner name, lowercase, inside the zone.
pub fn service_name(src: &Source, origin: &Name, spec: &ServiceSpec) -> Result<Name, ConfigError> {
    let name_text = spec.name.get_ref();
    let name = if name_text == "@" {
        origin.clone()
    } else {
        Name::parse(name_text, Some(origin))
            .map_err(|e| src.error(spec.name.span(), format!("{name_text:?} is not a domain name: {e}")))?
    }
    .to_lowercase();
    if !origin.zone_of(&name) {
        return Err(src.error(spec.name.span(), format!("{name} is outside the zone {origin}")));
    }
    Ok(name)
}

pub fn build_service(
    src: &Source,
    origin: &Name,
    regions: &[Region],
    spec: &ServiceSpec,
    labels: &mut Labels,
) -> Result<(Name, Arc<Service>), ConfigError> {
    let name = service_name(src, origin, spec)?;
    let ids: Vec<RegionId> = match &spec.regions {
        Some(list) => list.iter().map(|n| region_id(src, regions, n.get_ref(), n.span())).collect::<Result<_, _>>()?,
        None => (0..regions.len()).collect(),
    };
    if ids.is_empty() {
        return Err(src.error(spec.name.span(), format!("service {name} has no regions (define [[regions]])")));
    }
    let mut chain = Vec::new();
    for step in spec.chain.get_ref() {
        let text = step.get_ref().trim();
        let mut words = text.split_whitespace();
        let kind = words.next().unwrap_or("");
        let args: Vec<&str> = words.collect();
        let no_args = |s: Step| {
            if args.is_empty() {
                Ok(s)
            } else {
                Err(src.error(step.span(), format!("step {kind:?} takes no arguments")))
            }
        };
        chain.push(match kind {
            "geo" => {
                let spec = spec.geo.as_ref().ok_or_else(|| {
                    src.error(step.span(), "step \"geo\" needs a [services.geo] table for this service")
                })?;
                no_args(Step::Geo(rules(src, spec, |v| region_list(src, regions, v))?))?
            }
            "latency" if args == ["probe"] => Step::LatencyProbe,
            "latency" => {
                let spec = spec.latency.as_ref().ok_or_else(|| {
                    src.error(step.span(), "step \"latency\" needs a [services.latency] table for this service")
                })?;
                no_args(Step::Latency(rules(src, spec, |v| {
                    v.get_ref().iter().map(|(r, ms)| Ok((region_id(src, regions, r, v.span())?, *ms))).collect()
                })?))?
            }
            "nearest" => no_args(Step::Nearest)?,
            "weighted" => no_args(Step::Weighted)?,
            "sticky" => no_args(Step::Sticky)?,
            "least_loaded" => no_args(Step::LeastLoaded)?,
            "shed" => match args.as_slice() {
                [] | ["nearest"] => Step::Shed(ShedFail::Nearest),
                ["headroom"] => Step::Shed(ShedFail::Headroom),
                _ => {
                    return Err(src.error(
                        step.span(),
                        "shed takes what to do when every candidate is busy: \"shed nearest\" (the default: keep \
                         the leading region) or \"shed headroom\" (spread by room under `high`)",
                    ))
                }
            },
            "failover" => {
                if args.is_empty() {
                    return Err(src.error(
                        step.span(),
                        "failover needs an ordered region list, e.g. \"failover eu-west us-east\"",
                    ));
                }
                Step::Failover(args.iter().map(|a| region_id(src, regions, a, step.span())).collect::<Result<_, _>>()?)
            }
            "multi" => match args.as_slice() {
                [n] => match n.parse::<usize>() {
                    Ok(n) if n >= 1 => Step::Multi(n),
                    _ => return Err(src.error(step.span(), format!("multi needs a count of at least 1, not {n:?}"))),
                },
                _ => return Err(src.error(step.span(), "multi needs one count, e.g. \"multi 3\"")),
            },
            other => {
                return Err(src.error(
                    step.span(),
                    format!(
                    "unknown step {other:?} (steps: geo, nearest, latency, weighted, sticky, failover, multi, shed, \
                         least_loaded)"
                ),
                ))
            }
        });
    }
    if spec.geo.is_some() && !chain.iter().any(|s| matches!(s, Step::Geo(_))) {
        return Err(src.error(spec.name.span(), "a [services.geo] table is given but the chain has no \"geo\" step"));
    }
    if spec.latency.is_some() && !chain.iter().any(|s| matches!(s, Step::Latency(_))) {
        return Err(
            src.error(spec.name.span(), "a [services.latency] table is given but the chain has no \"latency\" step")
        );
    }
    let fail = match &spec.fail {
        None => FailMode::Open,
        Some(f) => match f.get_ref().as_str() {
            "open" => FailMode::Open,
            "servfail" => FailMode::Servfail,
            region => FailMode::Fallback(region_id(src, regions, region, f.span())?),
        },
    };
    let ascii = name.to_ascii();
    let id = labels.add(&ascii);
    let svc = Service::new(ascii, id, spec.ttl, spec.ttl_degraded, ids, chain, fail);
    Ok((name, Arc::new(svc)))
}

pub fn build_expect(src: &Source, origin: &Name, spec: &ExpectSpec) -> Result<Expect, ConfigError> {
    let client_text = spec.client.get_ref();
    let client: IpNet = match client_text.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => client_text
            .parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| src.error(spec.client.span(), format!("{client_text:?} is not an address or subnet")))?,
    };
    let name = if spec.name.get_ref() == "@" {
        origin.clone()
    } else {
        Name::parse(spec.name.get_ref(), Some(origin))
            .map_err(|e| src.error(spec.name.span(), format!("bad name: {e}")))?
            .to_lowercase()
    };
    let rtype = match spec.rtype.get_ref().to_ascii_uppercase().as_str() {
        "A" => RecordType::A,
        "AAAA" => RecordType::AAAA,
        other => return Err(src.error(spec.rtype.span(), format!("expect type must be A or AAAA, not {other}"))),
    };
    let answer = match &spec.answer {
        Some(a) => Some(
            a.get_ref()
                .iter()
                .map(|s| s.parse::<IpAddr>().map_err(|_| src.error(a.span(), format!("{s:?} is not an address"))))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    if spec.region.is_none() && answer.is_none() {
        return Err(src.error(spec.client.span(), "an [[expect]] case needs `region` or `answer`"));
    }
    let (line, col) = src.line_col(spec.client.span().start);
    Ok(Expect {
        client,
        name,
        rtype,
        region: spec.region.as_ref().map(|r| r.get_ref().clone()),
        answer,
        at: format!("{}:{line}:{col}", src.path.display()),
    })
}

/// Service names must not also hold static A, AAAA or CNAME records.
pub fn check_no_clash(
    src: &Source,
    services: &HashMap<Name, Arc<Service>>,
    nodes: &super::Nodes,
    spans: &HashMap<Name, Range<usize>>,
) -> Result<(), ConfigError> {
    for name in services.keys() {
        if let Some(node) = nodes.get(name) {
            for t in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
                if node.get(t).is_some() {
                    return Err(src.error(
                        spans.get(name).cloned().unwrap_or(0..0),
                        format!("service {name} also has static {t} records: a service name answers A/AAAA itself"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Regions whose `probe_addr` table leaves out some of their addresses:
/// those are probed at the answered address itself, which is allowed (and
/// documented) but is often a forgotten line, so `check` and `serve` say so.
pub fn probe_addr_warnings(src: &Source, specs: &[Spanned<RegionSpec>]) -> Vec<String> {
    let mut out = Vec::new();
    for spec in specs {
        let r = spec.get_ref();
        let Some(p) = &r.probe else { continue };
        let Some(v) = &p.get_ref().probe_addr else { continue };
        let toml::Value::Table(t) = v.get_ref() else { continue };
        let missing: Vec<String> = r
            .addresses
            .iter()
            .map(|a| a.get_ref().trim().to_string())
            .filter(|a| !t.keys().any(|k| k.parse::<IpAddr>().ok() == a.parse::<IpAddr>().ok()))
            .collect();
        if !missing.is_empty() {
            let msg = format!(
                "warning: the probe_addr table of region {} has no entry for {}: probed at the answered address",
                r.name.get_ref(),
                missing.join(", ")
            );
            out.push(src.error(v.span(), msg).to_string());
        }
    }
    out
}

/// Regions whose addresses of one family, all answered at once, could not fit
/// one TCP message (65,535 bytes, RFC 1035 §4.2.2), as warnings for `check`:
/// such answers are served trimmed to the addresses that fit, and the rest
/// are never seen by a client. Counted for the longest question and an OPT
/// with ECS, so a warning-free region always fits whole.
pub fn oversized_region_warnings(file: &std::path::Path, regions: &[Region]) -> Vec<String> {
    const ROOM: usize = 65_535 - 12 - (255 + 4) - (11 + 4 + 20);
    let (fit4, fit6) = (ROOM / 16, ROOM / 28);
    let mut out = Vec::new();
    for r in regions {
        let v4 = r.addresses.iter().filter(|a| a.is_ipv4()).count();
        let v6 = r.addresses.len() - v4;
        if v4 > fit4 || v6 > fit6 {
            out.push(format!(
                "{}: warning: region {} has {v4} IPv4 and {v6} IPv6 addresses; one TCP answer holds at most \
                 {fit4} A or {fit6} AAAA records, so answers naming all of them are trimmed to those that fit",
                file.display(),
                r.name
            ));
        }
    }
    out
}
