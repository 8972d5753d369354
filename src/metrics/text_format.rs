//! The two exposition formats `/metrics` speaks, chosen by the scraper's
//! `Accept` header: OpenMetrics 1.0 (what prometheus-client writes, and the
//! default) and the Prometheus text format 0.0.4, converted from it here.
//! prometheus-client has no 0.0.4 encoder; the formats differ only in a few
//! places, all in the metadata lines, so converting is a pass over lines:
//! - a counter's HELP and TYPE name its sample (`x_total`), not the family (`x`);
//! - an `info` family (`x`, sample `x_info`) becomes a gauge named `x_info`;
//! - `unknown` is `untyped`; `# UNIT`, `_created` samples, exemplars and
//!   `# EOF` do not exist in 0.0.4.

/// The wire format of one scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    Text004,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text004 => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// The format an `Accept` header prefers: `text/plain` when it weighs
    /// more (q) than OpenMetrics; OpenMetrics when both weigh the same, for
    /// `*/*`, and without the header (what `/metrics` always served).
    pub fn from_accept(accept: Option<&str>) -> Format {
        let Some(accept) = accept else { return Format::OpenMetrics };
        let (mut om, mut text) = (0.0f32, 0.0f32);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let mut q = 1.0f32;
            let mut version = None;
            for p in parts {
                if let Some((k, v)) = p.split_once('=') {
                    match k.trim().to_ascii_lowercase().as_str() {
                        "q" => q = v.trim().parse().unwrap_or(0.0),
                        "version" => version = Some(v.trim().trim_matches('"').to_string()),
                        _ => {}
                    }
                }
            }
            match media.as_str() {
                "application/openmetrics-text" => om = om.max(q),
                // text/plain of another version (1.0.0 is OpenMetrics' old name) is not 0.0.4.
                "text/plain" if version.as_deref().is_none_or(|v| v == "0.0.4") => text = text.max(q),
                "*/*" | "application/*" => om = om.max(q),
                _ => {}
            }
        }
        if text > om {
            Format::Text004
        } else {
            Format::OpenMetrics
        }
    }
}

/// Prometheus text 0.0.4 from prometheus-client's OpenMetrics text.
pub fn to_text004(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // HELP comes before TYPE: held until the TYPE says what to call the family.
    let mut help: Option<(&str, &str)> = None;
    let mut created: Option<String> = None; // a counter's `_created` sample name
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" | "histogram" | "summary" => (name.to_string(), kind),
                _ => (name.to_string(), "untyped"),
            };
            created = (kind == "counter").then(|| format!("{}_created", &name[..name.len() - "_total".len()]));
            if let Some((_, text)) = help.take() {
                // OpenMetrics escapes `"` in HELP; 0.0.4 escapes only `\` and newline.
                out.push_str(&format!("# HELP {name} {}\n", text.replace("\\\"", "\"")));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
        } else if line.starts_with('#') {
            // `# UNIT`, `# EOF`: not in 0.0.4.
        } else if !line.is_empty() {
            let sample_name = line.split(['{', ' ']).next().unwrap_or("");
            if created.as_deref() == Some(sample_name) {
                continue;
            }
            // An exemplar follows ` # ` after the value; a label value may
            // hold ` # ` itself, so look past the label set only.
            let value_at = labels_end(line);
            let end = line[value_at..].find(" # ").map_or(line.len(), |i| value_at + i);
            out.push_str(&line[..end]);
            out.push('\n');
        }
    }
    out
}

/// Where a sample's label set ends (past its `}`, quotes and escapes
/// respected), or where its name ends when it has none.
fn labels_end(line: &str) -> usize {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return i + 1,
            ' ' if !quoted && !line[..i].contains('{') => return i,
            _ => {}
        }
    }
    line.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_choose_the_format() {
        use Format::*;
        let cases: &[(Option<&str>, Format)] = &[
            (None, OpenMetrics),
            (Some("*/*"), OpenMetrics),
            (Some("text/plain;version=0.0.4"), Text004),
            (Some("text/plain"), Text004),
            (Some("text/plain; version=0.0.4; charset=utf-8"), Text004),
            (Some("application/openmetrics-text;version=1.0.0"), OpenMetrics),
            // Prometheus 2.x's scrape header: OpenMetrics weighs more.
            (
                Some("application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
                OpenMetrics,
            ),
            // With OpenMetrics turned off (scrape_protocols) it asks for text first.
            (Some("text/plain;version=0.0.4;q=0.5,*/*;q=0.1"), Text004),
            (Some("text/plain;version=1.0.0"), OpenMetrics),
            (Some("TEXT/PLAIN"), Text004),
            // Garbage: the default, never an error.
            (Some(";;,,=q=;"), OpenMetrics),
            (Some("text/plain;q=abc"), OpenMetrics),
            (Some("\u{0}\u{ff}"), OpenMetrics),
        ];
        for (accept, want) in cases {
            assert_eq!(Format::from_accept(*accept), *want, "{accept:?}");
        }
    }

    #[test]
    fn counters_infos_units_and_eof_are_converted() {
        let om = "# HELP a_requests Requests \\\"served\\\".\n# TYPE a_requests counter\n\
                  a_requests_total{x=\"1 } # 2\"} 3 # {trace=\"t\"} 1.0\na_requests_created 1.7e9\n\
                  # HELP a_build Build.\n# TYPE a_build info\na_build_info{version=\"1\"} 1\n\
                  # HELP a_latency_seconds Latency.\n# TYPE a_latency_seconds histogram\n# UNIT a_latency_seconds seconds\n\
                  a_latency_seconds_bucket{le=\"+Inf\"} 2\na_latency_seconds_sum 0.5\na_latency_seconds_count 2\n\
                  # HELP a_thing Thing.\n# TYPE a_thing unknown\na_thing 1\n# EOF\n";
        let want = "# HELP a_requests_total Requests \"served\".\n# TYPE a_requests_total counter\n\
                    a_requests_total{x=\"1 } # 2\"} 3\n\
                    # HELP a_build_info Build.\n# TYPE a_build_info gauge\na_build_info{version=\"1\"} 1\n\
                    # HELP a_latency_seconds Latency.\n# TYPE a_latency_seconds histogram\n\
                    a_latency_seconds_bucket{le=\"+Inf\"} 2\na_latency_seconds_sum 0.5\na_latency_seconds_count 2\n\
                    # HELP a_thing Thing.\n# TYPE a_thing untyped\na_thing 1\n";
        assert_eq!(to_text004(om), want);
    }
}
