//! Settings the schema accepts but that could only misbehave once served:
//! each is refused with FILE:LINE:COL and what to write instead. Runs on every
//! parse, so `check`, `serve` and a reload refuse the same things.

use std::collections::BTreeMap;
use toml::Spanned;

use super::zone_file::{LoadSpec, ProbeSpec, RuleSpec, ZoneFile};
use super::{countries, files, ConfigError, Source};

pub fn zone_file(src: &Source, z: &ZoneFile) -> Result<(), ConfigError> {
    for region in &z.regions {
        if let Some(p) = &region.get_ref().probe {
            probe(src, p.get_ref())?;
        }
        if let Some(l) = &region.get_ref().load {
            watermarks(src, l)?;
        }
    }
    for svc in &z.services {
        let s = svc.get_ref();
        if s.chain.get_ref().is_empty() {
            return Err(src.error(
                s.chain.span(),
                "`chain = []` has no steps: list at least one, e.g. [\"nearest\"] \
                 (steps: geo, nearest, latency, weighted, sticky, failover, multi, shed, least_loaded)",
            ));
        }
        if let Some(geo) = &s.geo {
            rule_keys(src, geo.get_ref())?;
            for (kind, list) in rule_values(geo.get_ref()) {
                if list.get_ref().is_empty() {
                    return Err(src.error(
                        list.span(),
                        format!(
                            "an empty region list: this {kind} rule would match, prefer no region and hide every \
                             less specific rule; name at least one region or remove the rule"
                        ),
                    ));
                }
            }
        }
        if let Some(latency) = &s.latency {
            rule_keys(src, latency.get_ref())?;
        }
    }
    Ok(())
}

/// Watermarks that could only shed wrongly: negative or not a number, only
/// one of the two, or `low` not below `high` (no band to grow the share in).
fn watermarks(src: &Source, l: &Spanned<LoadSpec>) -> Result<(), ConfigError> {
    let spec = l.get_ref();
    for (key, v) in [("low", &spec.low), ("high", &spec.high)] {
        if let Some(v) = v {
            if !v.get_ref().is_finite() || *v.get_ref() < 0.0 {
                return Err(
                    src.error(v.span(), format!("load {key} = {} must be a load figure of 0 or more", v.get_ref()))
                );
            }
        }
    }
    match (&spec.low, &spec.high) {
        (Some(low), Some(high)) if low.get_ref() >= high.get_ref() => Err(src.error(
            low.span(),
            format!(
                "load low = {} is not below high = {}: shedding grows from low to high, so low must be the \
                 smaller (e.g. low = 60, high = 80)",
                low.get_ref(),
                high.get_ref()
            ),
        )),
        (Some(_), None) | (None, Some(_)) => {
            Err(src.error(l.span(), "load watermarks come in pairs: set both `low` and `high`"))
        }
        _ => Ok(()),
    }
}

fn probe(src: &Source, p: &ProbeSpec) -> Result<(), ConfigError> {
    if let Some(host) = &p.host {
        // A CR or LF would end the Host header and start another header or request.
        if host.get_ref().chars().any(char::is_control) {
            return Err(src.error(
                host.span(),
                format!("probe host {:?} holds a control character (CR, LF, …): write one host name", host.get_ref()),
            ));
        }
    }
    if let Some(port) = &p.port {
        if *port.get_ref() == 0 {
            return Err(src.error(port.span(), "port 0 cannot be connected to: use the port the service listens on"));
        }
    }
    for (key, v, hint) in [
        ("fall", &p.fall, "fall = 1 marks an endpoint down at its first failed probe"),
        ("rise", &p.rise, "rise = 1 marks an endpoint up at its first good probe"),
    ] {
        if let Some(v) = v {
            if *v.get_ref() == 0 {
                return Err(src.error(v.span(), format!("{key} must be at least 1 ({hint})")));
            }
        }
    }
    if let (Some(ca), false) = (&p.ca, p.kind.get_ref() == "tcp") {
        ca_file(src, ca)?;
    }
    Ok(())
}

/// A CA file must hold a certificate: an empty bundle would trust nothing,
/// and every https probe would fail with a TLS error instead of at `check`.
fn ca_file(src: &Source, ca: &Spanned<String>) -> Result<(), ConfigError> {
    let path = src.path.parent().unwrap_or(std::path::Path::new(".")).join(ca.get_ref());
    let at = |m: String| src.error(ca.span(), format!("ca file {}: {m}", path.display()));
    let pem = files::read_bytes(&path).map_err(at)?;
    // The same parser the prober uses, so what passes here loads there.
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(()),
        Ok(_) => Err(at("holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)".into())),
        Err(e) => Err(at(format!("is not a PEM certificate bundle: {e}"))),
    }
}

/// Country codes (and the country part of subdivisions) must be ones a GeoIP
/// database can return, or the rule silently never matches.
fn rule_keys<T>(src: &Source, r: &RuleSpec<T>) -> Result<(), ConfigError> {
    let countries = r.country.iter().map(|(k, v)| (k.as_str(), k, v.span()));
    let subdivisions = r.subdivision.iter().map(|(k, v)| (k.split('-').next().unwrap_or(""), k, v.span()));
    for (code, key, span) in countries.chain(subdivisions) {
        let code = code.to_ascii_uppercase();
        if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) && !countries::is_country(&code) {
            let hint = countries::hint(&code).unwrap_or("not an ISO 3166-1 alpha-2 country code");
            return Err(src.error(span, format!("country {code:?} (in {key:?}) does not exist: {hint}")));
        }
    }
    Ok(())
}

/// Every region list of a `geo` rule table, with the kind of rule it is.
fn rule_values<T>(r: &RuleSpec<T>) -> Vec<(&'static str, &Spanned<T>)> {
    fn of<'a, T>(
        kind: &'static str,
        m: &'a BTreeMap<String, Spanned<T>>,
    ) -> impl Iterator<Item = (&'static str, &'a Spanned<T>)> {
        m.values().map(move |v| (kind, v))
    }
    of("cidr", &r.cidr)
        .chain(of("asn", &r.asn))
        .chain(of("subdivision", &r.subdivision))
        .chain(of("country", &r.country))
        .chain(of("continent", &r.continent))
        .chain(r.default.iter().map(|v| ("default", v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::{parse_zone_source, ConfigError, Source};

    const BASE: &str = "origin = \"t.test.\"\nns = [\"ns1\"]\n[soa]\nmname = \"ns1\"\nrname = \"h\"\nserial = 1\n";

    /// Parse `BASE` + `extra` as `dir/t.toml`; the error, if any.
    fn parse_in(dir: &std::path::Path, extra: &str) -> Result<(), ConfigError> {
        let text = format!("{BASE}{extra}");
        parse_zone_source(Source { path: dir.join("t.toml"), text }).map(|_| ())
    }

    fn parse(extra: &str) -> Result<(), ConfigError> {
        parse_in(std::path::Path::new("."), extra)
    }

    /// The error's line (1-based) and message, which must contain `want`.
    fn refused(extra: &str, want: &str) -> (usize, usize) {
        let e = parse(extra).expect_err(extra);
        assert!(e.message.contains(want), "{extra}: {e}");
        (e.line, e.col)
    }

    fn region(probe: &str) -> String {
        format!("[[regions]]\nname = \"r\"\naddresses = [\"192.0.2.1\"]\n[regions.probe]\n{probe}\n")
    }

    fn service(chain: &str, geo: &str) -> String {
        format!(
            "[[regions]]\nname = \"r\"\naddresses = [\"192.0.2.1\"]\n\
             [[services]]\nname = \"www\"\nchain = {chain}\n{geo}"
        )
    }

    #[test]
    fn country_codes_that_do_not_exist_are_refused_with_a_hint() {
        let geo = |k: &str| service("[\"geo\"]", &format!("[services.geo]\ncountry = {{ {k} = [\"r\"] }}\n"));
        assert_eq!(refused(&geo("UK"), "did you mean GB?"), (14, 18));
        refused(&geo("ZZ"), "\"ZZ\" (in \"ZZ\") does not exist: not an ISO 3166-1");
        refused(&geo("uk"), "did you mean GB?");
        let sub = service("[\"geo\"]", "[services.geo]\nsubdivision = { UK-ENG = [\"r\"] }\n");
        refused(&sub, "did you mean GB?");
        let lat = service("[\"latency\"]", "[services.latency]\ncountry = { ZZ = { r = 10 } }\n");
        refused(&lat, "does not exist");
        parse(&geo("GB")).unwrap();
        parse(&geo("XK")).unwrap();
    }

    #[test]
    fn control_characters_in_a_probe_host_are_refused() {
        let (line, col) =
            refused(&region("type = \"http\"\nurl = \"http://{addr}/\"\nhost = \"a.test\\r\\nX-Evil: 1\""), "CR, LF");
        assert_eq!((line, col), (13, 8));
        refused(&region("type = \"http\"\nurl = \"http://{addr}/\"\nhost = \"a.test\\n\""), "control character");
        parse(&region("type = \"http\"\nurl = \"http://{addr}/\"\nhost = \"a.test\"")).unwrap();
    }

    #[test]
    fn tcp_port_zero_is_refused() {
        assert_eq!(refused(&region("type = \"tcp\"\nport = 0"), "port 0"), (12, 8));
        parse(&region("type = \"tcp\"\nport = 443")).unwrap();
    }

    #[test]
    fn fall_or_rise_zero_is_refused() {
        assert_eq!(refused(&region("type = \"tcp\"\nport = 80\nfall = 0"), "fall must be at least 1"), (13, 8));
        refused(&region("type = \"tcp\"\nport = 80\nrise = 0"), "rise must be at least 1");
        parse(&region("type = \"tcp\"\nport = 80\nfall = 1\nrise = 1")).unwrap();
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_refused() {
        let dir = std::env::temp_dir().join(format!("meridian-validate-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let probe = region("type = \"https\"\nurl = \"https://{addr}/\"\nca = \"ca.pem\"");
        for junk in ["", "just text\n", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"] {
            std::fs::write(dir.join("ca.pem"), junk).unwrap();
            let e = parse_in(&dir, &probe).expect_err(junk);
            assert!(e.message.contains("holds no certificate") || e.message.contains("not a PEM"), "{junk:?}: {e}");
            assert_eq!((e.line, e.col), (13, 6), "{e}");
        }
        let cert = rcgen::generate_simple_self_signed(vec!["ca.test".into()]).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.cert.pem()).unwrap();
        parse_in(&dir, &probe).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn loaded(load: &str) -> String {
        format!("[[regions]]\nname = \"r\"\naddresses = [\"192.0.2.1\"]\n[regions.load]\n{load}\n")
    }

    #[test]
    fn watermarks_that_make_no_sense_are_refused_at_their_line() {
        assert_eq!(refused(&loaded("low = 80\nhigh = 60"), "low = 80 is not below high = 60"), (11, 7));
        refused(&loaded("low = 70\nhigh = 70"), "is not below high");
        assert_eq!(refused(&loaded("low = -5\nhigh = 60"), "load low = -5 must be"), (11, 7));
        assert_eq!(refused(&loaded("low = 5\nhigh = -1"), "load high = -1 must be"), (12, 8));
        refused(&loaded("low = nan\nhigh = 60"), "must be a load figure");
        refused(&loaded("low = 5"), "come in pairs");
        parse(&loaded("low = 60\nhigh = 80\nmax_age = \"20s\"")).unwrap();
        parse(&loaded("low = 0\nhigh = 0.5")).unwrap();
        parse(&loaded("max_age = \"20s\"")).unwrap();
    }

    #[test]
    fn an_empty_chain_is_refused() {
        assert_eq!(refused(&service("[]", ""), "has no steps"), (12, 9));
        parse(&service("[\"nearest\"]", "")).unwrap();
    }

    #[test]
    fn an_empty_geo_region_list_is_refused() {
        let geo = |t: &str| service("[\"geo\"]", &format!("[services.geo]\n{t}\n"));
        assert_eq!(refused(&geo("continent = { EU = [] }"), "empty region list"), (14, 20));
        refused(&geo("country = { GB = [] }"), "this country rule");
        refused(&geo("default = []"), "this default rule");
        parse(&geo("continent = { EU = [\"r\"] }")).unwrap();
    }
}
