//! `meridian admin status` for people: the `/status` document as a table of
//! regions, each followed by its endpoints (`--json` prints the document).

use serde_json::Value;

/// Columns padded to their widest cell, two spaces apart, `indent` before each row.
fn columns(rows: &[Vec<String>], indent: &str) -> String {
    let width = |i: usize| rows.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count())).max().unwrap_or(0);
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len)).map(width).collect();
    let mut out = String::new();
    for row in rows {
        let mut line = indent.to_string();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn ms(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |m| format!("{m:.1} ms"))
}

fn override_text(o: &Value) -> String {
    if o.is_null() {
        return "-".into();
    }
    match o["until"].as_str() {
        Some(until) => format!("{} until {until}", text(&o["kind"])),
        None => text(&o["kind"]),
    }
}

/// One region (an element of `/status`'s `regions`) and its endpoints.
fn region(r: &Value, out: &mut Vec<Vec<String>>, endpoints: &mut String) {
    let load = match &r["load"] {
        Value::Null => "-".to_string(),
        l => text(l),
    };
    out.push(vec![
        text(&r["name"]),
        text(&r["state"]),
        format!("{} (min {})", text(&r["healthy_endpoints"]), text(&r["min_healthy"])),
        ms(&r["rtt_ms"]),
        load,
        override_text(&r["override"]),
    ]);
    let mut rows = vec![["ADDRESS", "STATE", "VERDICT", "RTT", "PROBE", "LAST FAILURE"].map(String::from).to_vec()];
    for ep in r["endpoints"].as_array().into_iter().flatten() {
        let failure = match &ep["last_failure"] {
            Value::Null => "-".to_string(),
            f => format!("{} ({})", text(&f["reason"]), text(&f["at"])),
        };
        rows.push(vec![
            text(&ep["address"]),
            text(&ep["state"]),
            text(&ep["verdict"]),
            ms(&ep["rtt_ms"]),
            text(&ep["probe"]),
            failure,
        ]);
    }
    endpoints.push_str(&format!("\n{}:\n", text(&r["name"])));
    endpoints.push_str(&columns(&rows, "  "));
}

/// The whole `/status` document, or one region of it (`one`).
pub fn status(v: &Value, one: bool) -> String {
    let header = ["REGION", "STATE", "HEALTHY", "RTT", "LOAD", "OVERRIDE"].map(String::from).to_vec();
    let mut rows = vec![header];
    let mut endpoints = String::new();
    if one {
        region(v, &mut rows, &mut endpoints);
    } else {
        for r in v["regions"].as_array().into_iter().flatten() {
            region(r, &mut rows, &mut endpoints);
        }
    }
    let mut out = columns(&rows, "");
    out.push_str(&endpoints);
    if !one {
        let overrides: Vec<&Value> = v["overrides"].as_array().into_iter().flatten().collect();
        if !overrides.is_empty() {
            out.push_str("\noverrides:\n");
            for o in overrides {
                let scope = &o["scope"];
                let what = match scope["endpoint"].as_str() {
                    Some(ep) => format!("endpoint {ep} of region {}", text(&scope["region"])),
                    None => format!("region {}", text(&scope["region"])),
                };
                out.push_str(&format!("  {what}: {}\n", override_text(o)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn regions_and_endpoints_line_up_in_columns() {
        let doc = json!({
            "regions": [
                {"name": "eu-west", "state": "drained", "healthy_endpoints": 1, "min_healthy": 1, "rtt_ms": 1.25,
                 "load": null, "override": {"kind": "drain", "until": "2026-12-03T12:00:00Z", "scope": {"region": "eu-west"}},
                 "endpoints": [{"address": "198.51.100.10", "state": "up", "verdict": "up", "rtt_ms": 1.25,
                                "probe": "GET http://127.0.0.1:8080/health", "last_failure": null}]},
                {"name": "us", "state": "up", "healthy_endpoints": 0, "min_healthy": 1, "rtt_ms": null, "load": 70.0,
                 "override": null, "endpoints": [{"address": "192.0.2.10", "state": "down", "verdict": "down",
                 "rtt_ms": null, "probe": null, "last_failure": {"reason": "connection refused", "at": "2026-12-03T11:00:00Z"}}]}
            ],
            "overrides": [{"kind": "drain", "until": "2026-12-03T12:00:00Z", "scope": {"region": "eu-west"}}]
        });
        let t = status(&doc, false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "REGION   STATE    HEALTHY    RTT     LOAD  OVERRIDE");
        assert_eq!(lines[1], "eu-west  drained  1 (min 1)  1.2 ms  -     drain until 2026-12-03T12:00:00Z");
        assert_eq!(lines[2], "us       up       0 (min 1)  -       70.0  -");
        assert!(t.contains("  198.51.100.10  up     up       1.2 ms  GET http://127.0.0.1:8080/health  -\n"), "{t}");
        assert!(t.contains("connection refused (2026-12-03T11:00:00Z)"), "{t}");
        assert!(t.ends_with("overrides:\n  region eu-west: drain until 2026-12-03T12:00:00Z\n"), "{t}");
        assert!(!t.contains('{') && !t.contains('"'), "no JSON in the table: {t}");
    }
}
