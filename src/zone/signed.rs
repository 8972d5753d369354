//! A signed zone's keys: loaded from the files `[dnssec]` names (each error
//! names the key file: `FILE: message`), their roles and schedules checked
//! (`FILE:LINE:COL: message`), and the keys published now put at the apex
//! as DNSKEY, CDS and CDNSKEY (RFC 7344) so that queries for them take the
//! ordinary lookup, and the name index knows the apex holds them.

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::dnssec::PublicKey;
use hickory_proto::rr::{Name, RData, RecordType};
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

use super::{Node, RRset};
use crate::config::zone_file::{DnssecSpec, KeySpec};
use crate::config::{ConfigError, Source};
use crate::dnssec::{format_time, load_key, KeyRole, KeyState, KeyTiming, Signer, ZoneKey};

/// Signature validity when the zone does not say (days).
const DEFAULT_SIGNATURE_DAYS: u32 = 14;

/// A listed key before its file is read: where it is named, its role and
/// schedule, and the span of each time (for errors about that time).
struct Listed {
    file: Spanned<String>,
    role: KeyRole,
    timing: KeyTiming,
    times: Vec<(&'static str, u32, Range<usize>)>,
}

/// TTLs the key schedule is checked against (warnings, not errors: an
/// emergency rollover may have to cut corners).
pub(super) struct Ttls {
    /// The DNSKEY set's TTL.
    pub dnskey: u32,
    /// The largest TTL of a signed RRset in the zone.
    pub largest: u32,
}

/// The zone's signer, made as at Unix time `now`, and warnings about its schedule.
pub(super) fn load_signer(
    src: &Source,
    origin: &Name,
    spec: &Spanned<DnssecSpec>,
    ttls: &Ttls,
    now: u32,
) -> Result<(Signer, Vec<String>), ConfigError> {
    let table = spec.span();
    let spec = spec.get_ref();
    let days = match &spec.signature_days {
        Some(d) if !(1..=365).contains(d.get_ref()) => {
            return Err(src.error(d.span(), format!("signature_days {} is not between 1 and 365", d.get_ref())))
        }
        Some(d) => *d.get_ref(),
        None => DEFAULT_SIGNATURE_DAYS,
    };
    let mut listed: Vec<Listed> = spec
        .keys
        .iter()
        .flat_map(|k| k.get_ref().iter())
        .map(|f| Listed { file: f.clone(), role: KeyRole::Csk, timing: KeyTiming::default(), times: Vec::new() })
        .collect();
    for k in &spec.key {
        listed.push(listed_key(src, k.get_ref())?);
    }
    if listed.is_empty() {
        return Err(src.error(table, "[dnssec] names no key: list key files in keys, or add [[dnssec.key]] tables"));
    }
    let base = src.path.parent().unwrap_or(Path::new("."));
    let mut keys: Vec<ZoneKey> = Vec::new();
    for l in &listed {
        let path = base.join(l.file.get_ref());
        let mut key = load_key(&path, origin, l.role).map_err(|message| ConfigError {
            file: path.clone(),
            line: 0,
            col: 0,
            message,
        })?;
        let public = key.dnskey.public_key().public_bytes();
        if keys.iter().any(|k| k.dnskey.public_key().public_bytes() == public) {
            return Err(src.error(l.file.span(), format!("{} is the same key as one listed before it", path.display())));
        }
        key.timing = l.timing;
        keys.push(key);
    }
    check_always_signed(src, table, &listed, now)?;
    let warnings = schedule_warnings(src, &listed, ttls);
    Ok((Signer::made_at(origin.clone(), keys, days, now), warnings))
}

/// One `[[dnssec.key]]`: its role, and a fixed state or times in order.
fn listed_key(src: &Source, k: &KeySpec) -> Result<Listed, ConfigError> {
    let role = match &k.role {
        None => KeyRole::Csk,
        Some(r) => KeyRole::parse(r.get_ref())
            .ok_or_else(|| src.error(r.span(), format!("unknown key role {:?}: csk, ksk or zsk", r.get_ref())))?,
    };
    let mut times = Vec::new();
    for (field, value) in
        [("publish", &k.publish), ("activate", &k.activate), ("retire", &k.retire), ("remove", &k.remove)]
    {
        if let Some(v) = value {
            times.push((field, unix_time(src, field, v)?, v.span()));
        }
    }
    // Each time at or after the ones before it: publish ≤ activate ≤ retire ≤ remove.
    for (i, (later, t, span)) in times.iter().enumerate() {
        if let Some((earlier, e, _)) = times[..i].iter().find(|(_, e, _)| e > t) {
            return Err(src.error(
                span.clone(),
                format!("{later} ({}) is before {earlier} ({})", format_time(*t), format_time(*e)),
            ));
        }
    }
    let timing = match &k.state {
        Some(s) => {
            let state = KeyState::parse(s.get_ref()).ok_or_else(|| {
                src.error(s.span(), format!("unknown key state {:?}: published, active or retired", s.get_ref()))
            })?;
            if !times.is_empty() {
                return Err(src.error(
                    s.span(),
                    "a key has a state or times (publish, activate, retire, remove), not both".to_string(),
                ));
            }
            KeyTiming::Fixed(state)
        }
        None => {
            let at = |f: &str| times.iter().find(|(n, _, _)| *n == f).map(|(_, t, _)| *t);
            KeyTiming::Times {
                publish: at("publish"),
                activate: at("activate"),
                retire: at("retire"),
                remove: at("remove"),
            }
        }
    };
    Ok(Listed { file: k.file.clone(), role, timing, times })
}

/// A time as RFC 3339 with an offset (a string or a TOML datetime), or Unix seconds.
fn unix_time(src: &Source, field: &str, v: &Spanned<toml::Value>) -> Result<u32, ConfigError> {
    let bad = |why: &str| {
        src.error(v.span(), format!("{field}: {why}: write a UTC time like \"2026-12-03T14:00:00Z\" or Unix seconds"))
    };
    let dt = match v.get_ref() {
        toml::Value::Integer(n) => return u32::try_from(*n).map_err(|_| bad("out of range")),
        toml::Value::Datetime(d) => *d,
        toml::Value::String(s) => s.parse::<toml::value::Datetime>().map_err(|_| bad("not a date and time"))?,
        other => return Err(bad(&format!("a {}", other.type_str()))),
    };
    let (Some(date), Some(time), Some(offset)) = (dt.date, dt.time, dt.offset) else {
        return Err(bad("a date, a time and an offset (Z) are all needed"));
    };
    let offset_min = match offset {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => i64::from(minutes),
    };
    let secs = days_from_civil(i64::from(date.year), date.month.into(), date.day.into()) * 86_400
        + i64::from(time.hour) * 3600
        + i64::from(time.minute) * 60
        + i64::from(time.second)
        - offset_min * 60;
    u32::try_from(secs).map_err(|_| bad("out of range"))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// From `now` on, at every key event, some active key signs the data
/// (csk or zsk) and some signs the DNSKEY set (csk or ksk): a gap would make
/// every answer bogus to validators.
fn check_always_signed(src: &Source, table: Range<usize>, listed: &[Listed], now: u32) -> Result<(), ConfigError> {
    let mut moments: Vec<u32> = listed.iter().flat_map(|l| l.timing.events()).filter(|&t| t > now).collect();
    moments.push(now);
    moments.sort_unstable();
    moments.dedup();
    for t in moments {
        let active = |wants: fn(KeyRole) -> bool| {
            listed.iter().any(|l| wants(l.role) && l.timing.state_at(t) == KeyState::Active)
        };
        let missing = match (active(KeyRole::signs_data), active(KeyRole::signs_keys)) {
            (true, true) => continue,
            (false, _) => "the zone's data (a csk or zsk)",
            (true, false) => "the DNSKEY set (a csk or ksk)",
        };
        let message =
            |when: String| format!("no active key signs {missing} {when}: validators would find every answer bogus");
        if t == now {
            return Err(src.error(table, message(format!("now ({})", format_time(t)))));
        }
        // Blame the time that opens the gap.
        let span =
            listed.iter().flat_map(|l| &l.times).find(|(_, at, _)| *at == t).map_or(table, |(_, _, s)| s.clone());
        return Err(src.error(span, message(format!("from {}", format_time(t)))));
    }
    Ok(())
}

/// Pre-publish and post-publish periods shorter than the TTLs they must outlast.
fn schedule_warnings(src: &Source, listed: &[Listed], ttls: &Ttls) -> Vec<String> {
    let mut out = Vec::new();
    for l in listed {
        let KeyTiming::Times { publish, activate, retire, remove } = l.timing else { continue };
        let span = |f: &str| l.times.iter().find(|(n, _, _)| *n == f).map(|(_, _, s)| s.clone());
        if let (Some(p), Some(a), Some(s)) = (publish, activate, span("activate")) {
            if a - p < ttls.dnskey {
                out.push(src.error(s, format!(
                    "warning: {} signs {} s after it is published, less than the DNSKEY TTL ({} s): a resolver holding the DNSKEY set from before cannot check its signatures",
                    l.file.get_ref(), a - p, ttls.dnskey
                )).to_string());
            }
        }
        if let (Some(r), Some(x), Some(s)) = (retire, remove, span("remove")) {
            if x - r < ttls.largest {
                out.push(src.error(s, format!(
                    "warning: {} leaves the DNSKEY set {} s after it retires, less than the zone's largest TTL ({} s): resolvers may still hold answers it signed",
                    l.file.get_ref(), x - r, ttls.largest
                )).to_string());
            }
        }
    }
    out
}

/// DNSKEY, CDS and CDNSKEY RRsets at the apex, one record per key.
pub(super) fn publish_keys(origin: &Name, ttl: u32, signer: &Signer, apex: &mut Node) {
    let mut dnskey = Vec::new();
    let mut cds = Vec::new();
    let mut cdnskey = Vec::new();
    for k in signer.published() {
        let rec = RData::DNSSEC;
        dnskey.push(rec(DNSSECRData::DNSKEY(k.dnskey.clone())));
        // CDS/CDNSKEY for the keys a DS may name (not ZSKs). A key whose
        // digest cannot be made was refused when it loaded.
        if let Some(Ok((c, ck))) = k.role.signs_keys().then(|| k.cds(origin)) {
            cds.push(rec(DNSSECRData::CDS(c)));
            cdnskey.push(rec(DNSSECRData::CDNSKEY(ck)));
        }
    }
    for (rtype, rdata) in [(RecordType::DNSKEY, dnskey), (RecordType::CDS, cds), (RecordType::CDNSKEY, cdnskey)] {
        if rdata.is_empty() {
            continue;
        }
        apex.rrsets.push(RRset { rtype, ttl, rdata: super::Rdatas::from_all(rdata) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_unix_seconds() {
        let src = Source { path: "z.toml".into(), text: String::new() };
        let at = |v: toml::Value| unix_time(&src, "publish", &Spanned::new(0..0, v));
        assert_eq!(at(toml::Value::String("1970-01-02T00:00:01Z".into())).unwrap(), 86_401);
        assert_eq!(at(toml::Value::String("2026-12-03T14:00:00Z".into())).unwrap(), 1_796_306_400);
        assert_eq!(at(toml::Value::String("2026-12-03T15:00:00+01:00".into())).unwrap(), 1_796_306_400);
        assert_eq!(at(toml::Value::Integer(42)).unwrap(), 42);
        let err = at(toml::Value::String("2026-12-03T14:00:00".into())).unwrap_err();
        assert!(err.message.contains("an offset (Z)"), "{}", err.message);
        assert!(at(toml::Value::String("soon".into())).is_err() && at(toml::Value::Integer(-1)).is_err());
    }
}
