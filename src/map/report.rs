//! The map as text for people and as JSON for scripts.

use serde_json::{json, Value};
use std::fmt::Write;

use super::run::{FamilyMap, Map, Outcome, ServiceMap, Tally};

/// How to print.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportOptions {
    /// Scale each service's clients of one family to this many queries per second.
    pub qps: Option<f64>,
    /// Add the country → region table.
    pub countries: bool,
}

/// A region's expected load against its capacity.
struct Load {
    now: f64,
    after: Option<f64>,
    capacity: Option<u32>,
}

impl Load {
    fn over(&self, v: f64) -> bool {
        self.capacity.is_some_and(|c| v > f64::from(c))
    }
}

fn share(t: &Tally, o: Outcome) -> f64 {
    let total = t.total();
    if total > 0.0 {
        t.0.get(&o).copied().unwrap_or(0.0) / total
    } else {
        0.0
    }
}

/// Address counts: exact while they are small, then 3 significant digits.
fn weight(w: f64) -> String {
    if w < 1e15 {
        format!("{w}")
    } else {
        format!("{w:.3e}")
    }
}

fn pct(x: f64) -> String {
    // Not "0.0 %" for a share that is there (a few IPv4-sized networks among IPv6 ones).
    if x > 0.0 && x < 0.0005 {
        "<0.1 %".into()
    } else {
        format!("{:.1} %", x * 100.0)
    }
}

/// Every outcome either side of the change, in order.
fn outcomes(f: &FamilyMap) -> Vec<Outcome> {
    let mut all: Vec<Outcome> = f.now.0.keys().copied().collect();
    if let Some(a) = &f.after {
        all.extend(a.0.keys().copied());
    }
    all.sort();
    all.dedup();
    all
}

fn load(svc: &ServiceMap, f: &FamilyMap, o: Outcome, qps: f64) -> Load {
    let capacity = match o {
        Outcome::Region(i) => svc.regions[i].1,
        _ => None,
    };
    Load { now: share(&f.now, o) * qps, after: f.after.as_ref().map(|a| share(a, o) * qps), capacity }
}

/// "eu-west 100.0 %": a group's top outcome and its share of the group.
fn top(svc: &ServiceMap, t: &Tally) -> String {
    match t.top() {
        Some((o, w)) => format!("{} {}", svc.outcome_name(o), pct(w / t.total().max(f64::MIN_POSITIVE))),
        None => "-".into(),
    }
}

pub fn text(map: &Map, opts: ReportOptions) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "population: {}", map.source);
    if !map.change.is_empty() {
        let _ = writeln!(o, "change: {}", map.change);
    }
    for n in &map.notes {
        let _ = writeln!(o, "note: {n}");
    }
    for svc in &map.services {
        let _ = writeln!(o, "\nservice {} ({} queries)", svc.name, map.rtype);
        for (fam_name, f) in [("IPv4", &svc.v4), ("IPv6", &svc.v6)] {
            if f.networks == 0 {
                continue;
            }
            family_text(&mut o, svc, fam_name, f, opts);
        }
    }
    if !map.each.is_empty() {
        let _ = writeln!(o, "\nclients:");
        for e in &map.each {
            let svc = &map.services[e.service];
            let after = e.after.map(|a| format!(" -> {}", svc.outcome_name(a))).unwrap_or_default();
            let (net, w, now) = (e.net, weight(e.weight), svc.outcome_name(e.now));
            let _ = writeln!(o, "  {net} {w} {} {now}{after}", svc.name);
        }
    }
    o
}

fn family_text(o: &mut String, svc: &ServiceMap, fam_name: &str, f: &FamilyMap, opts: ReportOptions) {
    let _ = writeln!(o, "  {fam_name} clients: {} networks, weight {}", f.networks, weight(f.now.total()));
    let changed = f.after.is_some();
    let mut head = format!("    {:<16} {:>8}", "region", "now");
    if changed {
        head.push_str(&format!(" {:>8}", "after"));
    }
    if opts.qps.is_some() {
        head.push_str(&format!(" {:>10}", "qps now"));
        if changed {
            head.push_str(&format!(" {:>10}", "qps after"));
        }
        head.push_str(&format!(" {:>9}", "capacity"));
    }
    let _ = writeln!(o, "{head}");
    for out in outcomes(f) {
        let mut line = format!("    {:<16} {:>8}", svc.outcome_name(out), pct(share(&f.now, out)));
        if let Some(a) = &f.after {
            line.push_str(&format!(" {:>8}", pct(share(a, out))));
        }
        if let Some(q) = opts.qps {
            let l = load(svc, f, out, q);
            line.push_str(&format!(" {:>10.0}", l.now));
            if let Some(a) = l.after {
                line.push_str(&format!(" {a:>10.0}"));
            }
            line.push_str(&format!(" {:>9}", l.capacity.map_or("-".to_string(), |c| c.to_string())));
            let over: Vec<&str> = [("now", l.over(l.now)), ("after", l.after.is_some_and(|a| l.over(a)))]
                .iter()
                .filter(|(_, b)| *b)
                .map(|(w, _)| *w)
                .collect();
            if !over.is_empty() {
                line.push_str(&format!("  OVERLOAD ({})", over.join(", ")));
            }
        }
        let _ = writeln!(o, "{}", line.trim_end());
    }
    let total = f.now.total().max(f64::MIN_POSITIVE);
    for ((from, to), m) in &f.moves {
        let split: Vec<String> = m.by_continent.iter().map(|(c, w)| format!("{c} {}", pct(w / total))).collect();
        let _ = writeln!(
            o,
            "    moves: {} -> {} {} ({})",
            svc.outcome_name(*from),
            svc.outcome_name(*to),
            pct(m.weight / total),
            split.join(", ")
        );
    }
    groups_text(o, svc, "continent", &f.by_continent, changed);
    if opts.countries {
        groups_text(o, svc, "country", &f.by_country, changed);
    }
}

fn groups_text(
    o: &mut String,
    svc: &ServiceMap,
    what: &str,
    g: &std::collections::BTreeMap<String, (Tally, Tally)>,
    changed: bool,
) {
    let _ = writeln!(o, "    by {what}:");
    for (k, (now, after)) in g {
        let mut line = format!("      {k:<3} {}", top(svc, now));
        if changed {
            line.push_str(&format!("  ->  {}", top(svc, after)));
        }
        let _ = writeln!(o, "{line}");
    }
}

fn tally_json(svc: &ServiceMap, t: &Tally) -> Value {
    let total = t.total().max(f64::MIN_POSITIVE);
    Value::Object(t.0.iter().map(|(o, w)| (svc.outcome_name(*o).to_string(), json!(w / total))).collect())
}

fn family_json(svc: &ServiceMap, name: &str, f: &FamilyMap, opts: ReportOptions) -> Value {
    let regions: Vec<Value> = outcomes(f)
        .into_iter()
        .map(|out| {
            let mut v = json!({
                "region": svc.outcome_name(out),
                "now": share(&f.now, out),
                "after": f.after.as_ref().map(|a| share(a, out)),
            });
            if let Some(q) = opts.qps {
                let l = load(svc, f, out, q);
                v["capacity"] = json!(l.capacity);
                v["qps_now"] = json!(l.now);
                v["qps_after"] = json!(l.after);
                v["overload_now"] = json!(l.over(l.now));
                v["overload_after"] = json!(l.after.is_some_and(|a| l.over(a)));
            }
            v
        })
        .collect();
    let total = f.now.total().max(f64::MIN_POSITIVE);
    let moves: Vec<Value> = f
        .moves
        .iter()
        .map(|((from, to), m)| {
            let split: serde_json::Map<String, Value> =
                m.by_continent.iter().map(|(c, w)| (c.clone(), json!(w / total))).collect();
            json!({"from": svc.outcome_name(*from), "to": svc.outcome_name(*to), "share": m.weight / total, "by_continent": split})
        })
        .collect();
    let groups = |g: &std::collections::BTreeMap<String, (Tally, Tally)>| -> Value {
        Value::Object(
            g.iter()
                .map(|(k, (now, after))| {
                    let after = f.after.as_ref().map(|_| tally_json(svc, after));
                    (k.clone(), json!({"now": tally_json(svc, now), "after": after}))
                })
                .collect(),
        )
    };
    json!({
        "family": name,
        "networks": f.networks,
        "weight": f.now.total(),
        "regions": regions,
        "moves": moves,
        "continents": groups(&f.by_continent),
        "countries": groups(&f.by_country),
    })
}

pub fn json(map: &Map, opts: ReportOptions) -> Value {
    let services: Vec<Value> = map
        .services
        .iter()
        .map(|svc| {
            let fams: Vec<Value> = [("ipv4", &svc.v4), ("ipv6", &svc.v6)]
                .into_iter()
                .filter(|(_, f)| f.networks > 0)
                .map(|(n, f)| family_json(svc, n, f, opts))
                .collect();
            json!({"service": svc.name.to_ascii(), "zone": svc.zone.to_ascii(), "families": fams})
        })
        .collect();
    let clients: Vec<Value> = map
        .each
        .iter()
        .map(|e| {
            let svc = &map.services[e.service];
            json!({
                "client": e.net.to_string(),
                "weight": e.weight,
                "service": svc.name.to_ascii(),
                "now": svc.outcome_name(e.now),
                "after": e.after.map(|a| svc.outcome_name(a)),
            })
        })
        .collect();
    let mut v = json!({
        "population": map.source,
        "qtype": map.rtype.to_string(),
        "fail": map.request.fail,
        "drain": map.request.drain,
        "change": map.change,
        "notes": map.notes,
        "qps": opts.qps,
        "services": services,
    });
    if map.request.each {
        v["clients"] = Value::Array(clients);
    }
    v
}
