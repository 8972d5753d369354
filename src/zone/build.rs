//! Zone TOML (already parsed) → validated `Zone`. Records are written in
//! presentation format and parsed by hickory's RFC 1035 zone parser, so the
//! TOML and an included master file accept exactly the same RDATA syntax.

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::names::{wire_name, NameIndex, WireName};
use super::services::Labels;
use super::{Nodes, RRset, Rdatas, Zone, Zones};
use crate::config::{parse_zone_source, zone_sources, ConfigError, ParsedZoneFile, Source};

/// Types an operator may write in a zone (SOA comes from `[soa]`).
const ALLOWED: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::MX,
    RecordType::TXT,
    RecordType::SRV,
    RecordType::CAA,
    RecordType::PTR,
    RecordType::NS,
    // At a delegation only (checked in `validate`): the child's key digests,
    // signed when the zone is (docs/dnssec.md).
    RecordType::DS,
];

/// Load every `*.toml` zone in `dir`. The first error stops the load.
pub fn load_zones(dir: &Path) -> Result<Zones, ConfigError> {
    let mut zones = Zones::default();
    let mut labels = Labels::default();
    let mut region_names = super::shared_regions::RegionNames::default();
    let mut sources = Vec::new();
    for source in zone_sources(dir)? {
        let parsed = parse_zone_source(source)?;
        let zone = build_zone(&parsed, &mut labels)?;
        region_names.add(&parsed, &zone)?;
        if let Some(other) = zones.zones.iter().find(|z| z.origin == zone.origin) {
            let span = parsed.zone.origin.span();
            return Err(parsed
                .source
                .error(span, format!("zone {} is already defined in {}", zone.origin, other.file.display())));
        }
        zones.zones.push(zone);
        sources.push(parsed);
    }
    for (zone, parsed) in zones.zones.iter().zip(&sources) {
        check_services_in_child_zones(&zones, zone, parsed)?;
    }
    zones.labels = labels.finish();
    Ok(zones)
}

/// A service whose name lies in a child zone served here is never asked of
/// its own zone: the child answers for it (NXDOMAIN, or its own data).
fn check_services_in_child_zones(zones: &Zones, zone: &Zone, parsed: &ParsedZoneFile) -> Result<(), ConfigError> {
    for spec in &parsed.zone.services {
        let spec = spec.get_ref();
        let Ok(name) = super::services::service_name(&parsed.source, &zone.origin, spec) else { continue };
        if let Some(child) = zones.find(&name).filter(|z| z.origin != zone.origin) {
            return Err(parsed.source.error(
                spec.name.span(),
                format!(
                    "service {name} is inside the zone {} ({}), which answers for it: define the service there",
                    child.origin,
                    child.file.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Builds one zone, checking names, types, RDATA and the CNAME rules.
/// Its services and regions get their ids in `labels`, shared by the snapshot.
pub fn build_zone(parsed: &ParsedZoneFile, labels: &mut Labels) -> Result<Zone, ConfigError> {
    let src = &parsed.source;
    let z = &parsed.zone;
    let origin = parse_origin(src, z.origin.get_ref(), z.origin.span())?;
    let mut b = Builder { src, origin: origin.clone(), nodes: Nodes::default() };

    let soa_spec = z.soa.get_ref();
    let mname = b.name(soa_spec.mname.get_ref(), soa_spec.mname.span())?;
    let rname = b.name(soa_spec.rname.get_ref(), soa_spec.rname.span())?;
    let soa_rdata =
        SOA::new(mname, rname, soa_spec.serial, soa_spec.refresh, soa_spec.retry, soa_spec.expire, soa_spec.minimum);
    let soa = Record::from_rdata(origin.clone(), soa_spec.ttl.unwrap_or(z.ttl), RData::SOA(soa_rdata));

    for ns in &z.ns {
        b.add_text("@", z.ttl, "NS", ns.get_ref(), ns.span())?;
    }
    for rec in &z.records {
        let r = rec.get_ref();
        let rtype = r.rtype.get_ref().to_ascii_uppercase();
        check_type(src, &rtype, r.rtype.span())?;
        let ttl = r.ttl.unwrap_or(z.ttl);
        for (data, span) in data_items(src, &r.data)? {
            b.add_text(r.name.get_ref(), ttl, &rtype, &data, span)?;
        }
        let _ = rec.span();
    }
    if let Some(inc) = &z.include {
        for (file, span) in data_items(src, inc)? {
            b.include(&file, span, z.ttl)?;
        }
    }
    b.validate(z.soa.span())?;

    let regions = super::services::build_regions(src, &z.regions, labels)?;
    let mut services = HashMap::new();
    let mut spans = HashMap::new();
    for spec in &z.services {
        let (name, svc) = super::services::build_service(src, &origin, &regions, spec.get_ref(), labels)?;
        if services.insert(name.clone(), svc).is_some() {
            return Err(src.error(spec.get_ref().name.span(), format!("service {name} is defined twice")));
        }
        spans.insert(name, spec.get_ref().name.span());
    }
    super::services::check_no_clash(src, &services, &b.nodes, &spans)?;
    for (name, svc) in services {
        b.nodes.entry(name).or_default().service = Some(svc);
    }
    let expects = z
        .expect
        .iter()
        .map(|e| super::services::build_expect(src, &origin, e.get_ref()))
        .collect::<Result<Vec<_>, _>>()?;

    // What a retired key's signatures may outlive in caches (docs/dnssec.md).
    let largest_ttl = b
        .nodes
        .values()
        .flat_map(|n| n.rrsets.iter().map(|s| s.ttl))
        .chain(z.services.iter().map(|s| s.get_ref().ttl))
        .fold(soa.ttl.max(z.ttl), u32::max);
    // The apex node holds the SOA too, so `SOA` queries and ANY see it.
    let apex = b.nodes.entry(origin.clone()).or_default();
    apex.rrsets.insert(0, RRset { rtype: RecordType::SOA, ttl: soa.ttl, rdata: Rdatas::one(soa.data.clone()) });
    let mut key_warnings = Vec::new();
    let signer = match &z.dnssec {
        Some(spec) => {
            let ttls = super::signed::Ttls { dnskey: z.ttl, largest: largest_ttl };
            let (signer, warnings) = super::signed::load_signer(src, &origin, spec, &ttls, crate::dnssec::unix_now())?;
            key_warnings = warnings;
            super::signed::publish_keys(&origin, z.ttl, &signer, apex);
            Some(Arc::new(signer))
        }
        None => None,
    };
    add_empty_non_terminals(&origin, &mut b.nodes);
    for set in b.nodes.values_mut().flat_map(|n| &mut n.rrsets) {
        set.rdata.shrink_to_fit();
    }
    let names = NameIndex::build(&origin, &b.nodes);
    check_services_answer(src, &names, &spans)?;
    let mut warnings = super::services::probe_addr_warnings(src, &z.regions);
    warnings.extend(super::services::oversized_region_warnings(&src.path, &regions));
    warnings.extend(key_warnings);
    let names = Arc::new(names);
    Ok(Zone { origin, soa, nodes: b.nodes, names, regions, expects, file: src.path.clone(), warnings, signer })
}

fn parse_origin(src: &Source, text: &str, span: Range<usize>) -> Result<Name, ConfigError> {
    let mut name = Name::from_ascii(text)
        .map_err(|e| src.error(span.clone(), format!("origin {text:?} is not a domain name: {e}")))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

/// `data` may be one string or a list of strings; each is one record.
fn data_items(src: &Source, v: &toml::Spanned<toml::Value>) -> Result<Vec<(String, Range<usize>)>, ConfigError> {
    let span = v.span();
    match v.get_ref() {
        toml::Value::String(s) => Ok(vec![(s.clone(), span)]),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                toml::Value::String(s) => Ok((s.clone(), span.clone())),
                other => Err(src.error(span.clone(), format!("expected a string, found {}", other.type_str()))),
            })
            .collect(),
        other => Err(src.error(span, format!("expected a string or a list of strings, found {}", other.type_str()))),
    }
}

struct Builder<'a> {
    src: &'a Source,
    origin: Name,
    nodes: Nodes,
}

impl Builder<'_> {
    fn name(&self, text: &str, span: Range<usize>) -> Result<Name, ConfigError> {
        if text == "@" {
            return Ok(self.origin.clone());
        }
        // hickory reads `\DDD` as octal: the text is rewritten first (`zone::master_lines`).
        let bad = |e: String| self.src.error(span.clone(), format!("{text:?} is not a domain name: {e}"));
        let fixed = super::master_lines::name_for_hickory(text).map_err(bad)?;
        Name::parse(&fixed, Some(&self.origin)).map(|n| n.to_lowercase()).map_err(|e| bad(e.to_string()))
    }

    /// Parse one record in presentation format with hickory's zone parser.
    fn add_text(
        &mut self,
        owner: &str,
        ttl: u32,
        rtype: &str,
        data: &str,
        span: Range<usize>,
    ) -> Result<(), ConfigError> {
        let owner_name = self.name(owner, span.clone())?;
        let rt = check_type(self.src, rtype, span.clone())?;
        if data.contains(['\n', '\r', ';']) && rt != RecordType::TXT {
            return Err(self.src.error(span, "record data must be one line without comments"));
        }
        let data = if rt == RecordType::TXT && !data.trim_start().starts_with('"') {
            quote_txt(data)
        } else {
            data.to_string()
        };
        let line = format!("{} {ttl} IN {rtype} {data}\n", owner_name.to_ascii());
        // Escapes in the data as RFC 1035 reads them (`zone::master_lines`).
        let line = super::master_lines::for_hickory(&line, &self.origin.to_ascii())
            .map_err(|(_, e)| self.src.error(span.clone(), format!("bad {rtype} data {data:?}: {e}")))?;
        let parsed = Parser::new(line.as_str(), None, Some(self.origin.clone()))
            .parse()
            .map_err(|e| self.src.error(span.clone(), format!("bad {rtype} data {data:?}: {e}")))?;
        for (_, set) in parsed.1 {
            for rec in set.records_without_rrsigs() {
                let mut rec = rec.clone();
                rec.name = rec.name.to_lowercase();
                if let Some(problem) = record_problem(Some(&self.origin), &rec) {
                    return Err(self.src.error(span.clone(), problem));
                }
                self.insert(rec);
            }
        }
        Ok(())
    }

    fn include(&mut self, file: &str, span: Range<usize>, ttl: u32) -> Result<(), ConfigError> {
        let base = self.src.path.parent().unwrap_or(Path::new("."));
        let path = base.join(file);
        let inc = Source::read(&path).map_err(|e| self.src.error(span.clone(), e.to_string()))?;
        // A plain file (most big zones) is read by our own reader, which
        // gives what hickory's parser would, faster (`zone::master`).
        // Its owners come lowercase and inside the zone (`checked`).
        let (records, checked): (Box<dyn Iterator<Item = Record>>, bool) =
            match super::master::read_plain(&inc.text, &self.origin, ttl) {
                Some(records) => {
                    // About one name per record in a big zone: grown once, not
                    // rehashed a dozen times on the way.
                    self.nodes.reserve(records.len());
                    (Box::new(records), true)
                }
                None => {
                    // hickory's parser misreads escapes, and quoted strings in
                    // parentheses: it gets the file rewritten, `$INCLUDE`s expanded
                    // and checked (`zone::master_lines`), after a `$TTL` of `ttl`
                    // for lines without one.
                    let text = super::master_lines::file_for_hickory(&path, &inc.text, &self.origin.to_ascii(), ttl)
                        .map_err(located)?;
                    let parsed = Parser::new(text.as_str(), Some(path.clone()), Some(self.origin.clone())).parse();
                    let (_, sets) =
                        parsed.map_err(|e| self.bad_line(&path, &inc.text, ttl, span.clone(), e.to_string()))?;
                    // Taken by value: each record moves into the zone, not a copy of it.
                    (Box::new(sets.into_values().flat_map(|set| set.into_parts().records)), false)
                }
            };
        for mut rec in records {
            if !checked {
                rec.name = rec.name.to_lowercase();
            }
            if rec.record_type() == RecordType::SOA {
                continue; // the TOML's [soa] is the zone's SOA
            }
            // Owners from our own reader were found inside the zone as they were read.
            if let Some(problem) = record_problem((!checked).then_some(&self.origin), &rec) {
                return Err(self.bad_line(&path, &inc.text, ttl, span, problem));
            }
            self.insert(rec);
        }
        Ok(())
    }

    /// The error for an included master file refused as a whole (`problem`):
    /// at its first bad line (`master_lines::first_bad_line`), or, if no
    /// line is wrong alone, at the file, naming the TOML line that includes it.
    fn bad_line(&self, path: &Path, text: &str, ttl: u32, span: Range<usize>, problem: String) -> ConfigError {
        let origin = self.origin.clone();
        let mut check = |alone: &str| -> Result<(), String> {
            let (_, sets) = Parser::new(alone, None, Some(origin.clone())).parse().map_err(|e| {
                // hickory's message names no field: the line as read says which.
                let line = alone.lines().last().unwrap_or("").trim();
                match line.char_indices().nth(100) {
                    Some((cut, _)) => format!("{e}, in `{}...`", &line[..cut]),
                    None => format!("{e}, in `{line}`"),
                }
            })?;
            let mut records = sets.into_values().flat_map(|set| set.into_parts().records);
            match records.find_map(|mut rec| {
                rec.name = rec.name.to_lowercase();
                (rec.record_type() != RecordType::SOA).then(|| record_problem(Some(&origin), &rec)).flatten()
            }) {
                Some(problem) => Err(problem),
                None => Ok(()),
            }
        };
        match super::master_lines::first_bad_line(path, text, &self.origin.to_ascii(), ttl, &mut check) {
            Some(e) => located(e),
            None => {
                let (l, c) = self.src.line_col(span.start);
                ConfigError {
                    file: path.to_path_buf(),
                    line: 0,
                    col: 0,
                    message: format!("{problem} (included from {}:{l}:{c})", self.src.path.display()),
                }
            }
        }
    }

    /// Add a record whose owner is lowercase and inside the zone.
    fn insert(&mut self, rec: Record) {
        let rtype = rec.record_type();
        let node = self.nodes.entry(rec.name).or_default();
        match node.rrsets.iter_mut().find(|s| s.rtype == rtype) {
            Some(set) => {
                if set.rdata.contains(&rec.data) {
                    return; // a duplicate RR is the same RR (RFC 2181 §5)
                }
                // RFC 2181 §5.2: one TTL per RRset; the lowest wins, as BIND does.
                set.ttl = set.ttl.min(rec.ttl);
                set.rdata.push(rec.data);
            }
            None => {
                // Most names hold one type: no room for four (Vec's first growth).
                node.rrsets.reserve_exact(1);
                node.rrsets.push(RRset { rtype, ttl: rec.ttl, rdata: Rdatas::one(rec.data) });
            }
        }
    }

    /// Rules a zone must keep: CNAME alone at its name (RFC 1034 §3.6.2) and
    /// never at the apex; NS at the apex.
    fn validate(&self, soa_span: Range<usize>) -> Result<(), ConfigError> {
        for (name, node) in &self.nodes {
            if let Some(cname) = node.get(RecordType::CNAME) {
                if node.rrsets.len() > 1 {
                    return Err(self.src.whole(format!("{name} has a CNAME and other records: a CNAME must be alone")));
                }
                if cname.rdata.len() > 1 {
                    return Err(self.src.whole(format!("{name} has more than one CNAME")));
                }
                if *name == self.origin {
                    return Err(self.src.whole(format!("the zone apex {name} cannot be a CNAME")));
                }
            }
            if node.get(RecordType::DS).is_some() && (*name == self.origin || node.get(RecordType::NS).is_none()) {
                return Err(self.src.whole(format!(
                    "{name} has a DS record but is not a delegation: DS belongs at a name with NS records below the apex"
                )));
            }
        }
        let apex_ns = self.nodes.get(&self.origin).and_then(|n| n.get(RecordType::NS));
        if apex_ns.is_none() {
            return Err(self.src.error(soa_span, "the zone has no NS records at its apex (set `ns = [...]`)"));
        }
        Ok(())
    }
}

/// RFC 4592 needs every ancestor of an owner name to exist: add the empty ones.
/// Labels are counted with `iter()`: `num_labels()` leaves out a leading `*`,
/// which once left `v` missing when `*.v` was the only name under it.
fn add_empty_non_terminals(origin: &Name, nodes: &mut Nodes) {
    let apex_labels = origin.iter().count();
    // Only names two or more labels below the apex have ancestors to add.
    let names: Vec<Name> = nodes.keys().filter(|n| n.iter().count() > apex_labels + 1).cloned().collect();
    for name in names {
        let mut n = name.iter().count();
        while n > apex_labels + 1 {
            n -= 1;
            nodes.entry(name.trim_to(n)).or_default();
        }
    }
}

/// A service at or below a delegation would never be asked: the child zone
/// answers for those names. Refused, rather than answered one way by the
/// fast index and another by the general path.
fn check_services_answer(
    src: &Source,
    names: &NameIndex,
    spans: &HashMap<Name, Range<usize>>,
) -> Result<(), ConfigError> {
    let mut services: Vec<(&Name, &Range<usize>)> = spans.iter().collect();
    services.sort_by_key(|(_, span)| span.start);
    for (name, span) in services {
        let wire = wire_name(name);
        let Some(w) = WireName::parse(&wire) else { continue };
        let cut = (0..w.labels()).rev().find(|&k| names.get(w.suffix(k)).is_some_and(|f| f.cut));
        if let Some(k) = cut {
            let cut = name.trim_to(w.labels() - k);
            let place = if k == 0 { "at the delegation" } else { "below the delegation" };
            return Err(src.error(
                span.clone(),
                format!(
                    "service {name} is {place} {cut}: resolvers are referred to the child zone for it \
                     (move the service into the child zone, or remove the NS records of {cut})"
                ),
            ));
        }
    }
    Ok(())
}

/// What the zone refuses in a record (lowercase owner, not the SOA), or
/// `None`: a type it does not serve, data over the wire's limits (which the
/// parser does not enforce), an owner outside `origin` if given (our own
/// reader checks its owners as it reads them).
fn record_problem(origin: Option<&Name>, rec: &Record) -> Option<String> {
    if !ALLOWED.contains(&rec.record_type()) {
        return Some(format!("record type {} is not supported", rec.record_type()));
    }
    if let RData::TXT(txt) = &rec.data {
        if let Some(long) = txt.txt_data.iter().find(|s| s.len() > 255) {
            return Some(format!(
                "a TXT character-string is {} bytes; the limit is 255 (split it into several quoted strings)",
                long.len()
            ));
        }
    }
    match origin {
        Some(origin) if !origin.zone_of(&rec.name) => Some(format!("{} is outside the zone {origin}", rec.name)),
        _ => None,
    }
}

/// A master-file problem as a configuration error (column 1: the line's start).
fn located(e: super::master_lines::FileError) -> ConfigError {
    ConfigError { file: e.file, line: e.line, col: 1, message: e.message }
}

fn check_type(src: &Source, rtype: &str, span: Range<usize>) -> Result<RecordType, ConfigError> {
    let rt: RecordType =
        rtype.parse().map_err(|_| src.error(span.clone(), format!("unknown record type {rtype:?}")))?;
    if !ALLOWED.contains(&rt) {
        return Err(src.error(
            span,
            format!(
                "record type {rtype} is not supported here (use one of A, AAAA, CNAME, MX, TXT, SRV, CAA, PTR, NS, DS)"
            ),
        ));
    }
    Ok(rt)
}

/// An unquoted TXT value as quoted character-strings, split every 255 bytes
/// (a character-string's limit) as operators expect of SPF/DKIM records.
fn quote_txt(s: &str) -> String {
    let mut parts = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        if chunk.len() + c.len_utf8() > 255 {
            parts.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    parts.push(chunk);
    parts.iter().map(|p| format!("\"{}\"", p.replace('\\', "\\\\").replace('"', "\\\""))).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_zone_source;

    fn zone_with(record: &str) -> Result<Zone, ConfigError> {
        let text = format!(
            "origin = \"t.test.\"\nns = [\"ns1\"]\n[soa]\nmname = \"ns1\"\nrname = \"h\"\nserial = 1\n\
             [[records]]\nname = \"ns1\"\ntype = \"A\"\ndata = \"192.0.2.1\"\n{record}"
        );
        build_zone(&parse_zone_source(Source { path: "t.toml".into(), text })?, &mut Labels::default())
    }

    #[test]
    fn long_txt_is_split_or_refused() {
        let long = "x".repeat(600);
        let z = zone_with(&format!("[[records]]\nname = \"spf\"\ntype = \"TXT\"\ndata = \"{long}\"\n")).unwrap();
        let name = Name::from_ascii("spf.t.test.").unwrap();
        let Some(RData::TXT(txt)) = z.nodes[&name].get(RecordType::TXT).unwrap().rdata.get(0) else { panic!() };
        let lens: Vec<usize> = txt.txt_data.iter().map(|s| s.len()).collect();
        assert_eq!(lens, vec![255, 255, 90]);
        let quoted = format!("'\"{}\"'", "y".repeat(300));
        let err = zone_with(&format!("[[records]]\nname = \"q\"\ntype = \"TXT\"\ndata = {quoted}\n")).unwrap_err();
        assert!(err.message.contains("limit is 255"), "{err}");
        assert_eq!(err.line, 14, "points at the data line");
    }

    /// RFC 1035 §5.1: `\DDD` is decimal in a TOML name and data too
    /// (hickory alone read `\065` as octal in names, garbage in strings).
    #[test]
    fn toml_escapes_are_decimal() {
        let z = zone_with(
            "[[records]]\nname = '\\065b'\ntype = 'TXT'\ndata = '\"\\065\\\\\"'\n\
             [[records]]\nname = 'm'\ntype = 'MX'\ndata = '10 m\\097il'\n",
        )
        .unwrap();
        let name = Name::from_ascii("ab.t.test.").unwrap();
        let Some(RData::TXT(txt)) = z.nodes[&name].get(RecordType::TXT).unwrap().rdata.get(0) else { panic!() };
        assert_eq!(&*txt.txt_data[0], b"A\\");
        let m = Name::from_ascii("m.t.test.").unwrap();
        let Some(RData::MX(mx)) = z.nodes[&m].get(RecordType::MX).unwrap().rdata.get(0) else { panic!() };
        assert_eq!(mx.exchange.to_ascii(), "mail.t.test.");
    }

    #[test]
    fn cname_must_be_alone() {
        let err = zone_with(
            "[[records]]\nname = \"a\"\ntype = \"CNAME\"\ndata = \"b\"\n[[records]]\nname = \"a\"\ntype = \"A\"\ndata = \"192.0.2.9\"\n",
        )
        .unwrap_err();
        assert!(err.message.contains("must be alone"), "{err}");
    }

    const REGION: &str = "[[regions]]\nname = \"r1\"\naddresses = [\"198.51.100.1\"]\n";

    /// Issue 18 item 2: a service the child zone would answer for.
    #[test]
    fn a_service_at_or_below_a_delegation_is_refused_with_its_position() {
        let cut = "[[records]]\nname = \"c\"\ntype = \"NS\"\ndata = \"ns.example.\"\n";
        for (svc, place) in [("c", "at the delegation c.t.test."), ("x.y.c", "below the delegation c.t.test.")] {
            let text = format!("{cut}{REGION}[[services]]\nname = \"{svc}\"\nchain = [\"weighted\"]\n");
            let err = zone_with(&text).unwrap_err();
            assert!(err.message.contains(place) && err.message.contains("move the service"), "{err}");
            assert_eq!((err.line, err.col), (19, 8), "{err}");
        }
        let beside = format!("{cut}{REGION}[[services]]\nname = \"d\"\nchain = [\"weighted\"]\n");
        assert!(zone_with(&beside).is_ok());
    }

    /// Issue 18 item 5 (RFC 2181 §5).
    #[test]
    fn a_region_listing_an_address_twice_is_refused_with_its_position() {
        let text = "[[regions]]\nname = \"r1\"\naddresses = [\"198.51.100.1\", \"2001:db8::1\", \"198.51.100.1\"]\n";
        let err = zone_with(text).unwrap_err();
        assert!(err.message.contains("198.51.100.1 is listed twice in region r1"), "{err}");
        assert_eq!((err.line, err.col), (13, 45), "{err}");
    }

    /// A name outside the zone in an included file is refused by either
    /// reader (the fast one leaves such a file to hickory's), naming it.
    #[test]
    fn an_included_name_outside_the_zone_is_refused() {
        let dir = std::env::temp_dir().join(format!("meridian-include-outside-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (i, body) in
            ["a A 192.0.2.1\nx.other.test. A 192.0.2.2\n", "a A ( 192.0.2.1 )\nx.other.test. A 192.0.2.2\n"]
                .iter()
                .enumerate()
        {
            std::fs::write(dir.join(format!("inc{i}.zone")), body).unwrap();
            let text = format!(
                "origin = \"t.test.\"\nns = [\"ns1\"]\ninclude = \"inc{i}.zone\"\n[soa]\nmname = \"ns1\"\nrname = \"h\"\nserial = 1\n"
            );
            let parsed = parse_zone_source(Source { path: dir.join("t.toml"), text }).unwrap();
            let err = build_zone(&parsed, &mut Labels::default()).unwrap_err();
            assert!(err.message.contains("x.other.test. is outside the zone t.test."), "{i}: {err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Issue 18 item 1: `num_labels()` leaves out a leading `*`.
    #[test]
    fn a_lone_wildcard_makes_its_parent_exist() {
        let z = zone_with("[[records]]\nname = \"*.v\"\ntype = \"A\"\ndata = \"192.0.2.7\"\n").unwrap();
        let v = Name::from_ascii("v.t.test.").unwrap();
        assert!(z.nodes.get(&v).is_some_and(|n| n.rrsets.is_empty()), "v is an empty non-terminal");
        assert!(z.names.get(&wire_name(&v)).is_some_and(|f| f.wildcard_child));
    }
}
