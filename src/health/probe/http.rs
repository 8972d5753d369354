//! HTTP/HTTPS probe with reqwest: status in range, optional body substring
//! within a read limit, redirects not followed (a 3xx is a status like any).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use super::super::target::{HttpProbe, LoadSource};

/// One reqwest client per TLS setting, shared by every target using it.
#[derive(Default)]
pub struct HttpClients {
    clients: Mutex<HashMap<(bool, Option<PathBuf>), reqwest::Client>>,
}

impl HttpClients {
    fn get(&self, verify: bool, ca: &Option<PathBuf>) -> Result<reqwest::Client, String> {
        let key = (verify, ca.clone());
        let mut map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(&key) {
            return Ok(c.clone());
        }
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A fresh connection per check: a pooled one could hide a dead listener.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("meridian-health/", env!("CARGO_PKG_VERSION")))
            .no_proxy();
        if let Some(path) = ca {
            let pem = std::fs::read(path).map_err(|e| format!("CA file {}: {e}", path.display()))?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("CA file {}: {e}", path.display()))?;
            b = b.tls_certs_only(certs);
        }
        if !verify {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        let client = b.build().map_err(|e| format!("HTTP client: {e}"))?;
        map.insert(key, client.clone());
        Ok(client)
    }
}

pub async fn check(p: &HttpProbe, clients: &HttpClients) -> Result<(String, Option<f64>), String> {
    let client = clients.get(p.verify_tls, &p.ca_file)?;
    let method = reqwest::Method::from_bytes(p.method.as_bytes()).map_err(|e| format!("method: {e}"))?;
    let mut req = client.request(method, &p.url);
    if let Some(h) = &p.host {
        req = req.header(reqwest::header::HOST, h);
    }
    let mut resp = req.send().await.map_err(|e| with_hint(describe(&e)))?;
    let status = resp.status().as_u16();
    if status < p.status.0 || status > p.status.1 {
        return Err(format!("status {status} not in {}-{}", p.status.0, p.status.1));
    }
    let header_load = match &p.load {
        Some(LoadSource::Header(name)) => {
            Some(resp.headers().get(name.as_str()).and_then(|v| number(v.to_str().ok()?)))
        }
        _ => None,
    };
    let wants_body = p.body.is_some() || matches!(p.load, Some(LoadSource::Json(_)));
    let mut body = Vec::new();
    if wants_body {
        while body.len() < p.body_limit {
            match resp.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return Err(format!("reading body: {}", describe(&e))),
            }
        }
        body.truncate(p.body_limit);
    }
    if let Some(want) = &p.body {
        if !String::from_utf8_lossy(&body).contains(want.as_str()) {
            return Err(format!("status {status}, body (first {} bytes) lacks {want:?}", p.body_limit));
        }
    }
    let load = match &p.load {
        None => return Ok((format!("status {status}"), None)),
        Some(LoadSource::Header(_)) => header_load.flatten(),
        Some(LoadSource::Json(path)) => json_field(&body, path),
    };
    // A missing or malformed report leaves the load unknown; health is judged as before.
    Ok(match load {
        Some(l) => (format!("status {status}, load {l}"), Some(l)),
        None => (format!("status {status}, no load report"), None),
    })
}

/// A load figure: finite and not negative, else no report.
fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// The number at `path` (`a.b.c`) in a JSON body; a numeric string counts.
fn json_field(body: &[u8], path: &str) -> Option<f64> {
    let root: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut v = &root;
    for key in path.split('.') {
        v = v.get(key)?;
    }
    match v {
        serde_json::Value::Number(n) => n.as_f64().filter(|x| x.is_finite() && *x >= 0.0),
        serde_json::Value::String(s) => number(s),
        _ => None,
    }
}

/// A probe failure with a hint for the TLS failures whose names alone do not
/// say what to change.
fn with_hint(detail: String) -> String {
    let hint = if detail.contains("CaUsedAsEndEntity") {
        "hint: the server presents a CA certificate (CA:TRUE, e.g. a self-signed one made as a CA) as its own; \
         TLS needs a leaf (CA:FALSE) certificate for the server, issued by the CA named in `ca`"
    } else if detail.contains("UnknownIssuer") {
        "hint: the server's certificate is not issued by a trusted CA; set `ca` to the PEM file of the CA that \
         issued it"
    } else {
        return detail;
    };
    format!("{detail} ({hint})")
}

/// reqwest's error with its causes (TLS failures hide the reason in the source chain).
pub fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn tls_failures_get_a_hint() {
        let ca = super::with_hint("invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))".into());
        assert!(ca.contains("CA:TRUE") && ca.contains("leaf"), "{ca}");
        assert!(super::with_hint("invalid peer certificate: UnknownIssuer".into()).contains("set `ca`"));
        assert_eq!(super::with_hint("connection refused".into()), "connection refused");
    }

    #[test]
    fn load_reports_are_read_from_json_fields_and_bad_ones_are_no_report() {
        let body = br#"{"load": 42.5, "stats": {"cpu": "0.7"}, "neg": -1, "text": "busy"}"#;
        assert_eq!(super::json_field(body, "load"), Some(42.5));
        assert_eq!(super::json_field(body, "stats.cpu"), Some(0.7));
        assert_eq!(super::json_field(body, "neg"), None, "a negative load is no report");
        assert_eq!(super::json_field(body, "text"), None);
        assert_eq!(super::json_field(body, "missing"), None);
        assert_eq!(super::json_field(b"not json", "load"), None);
        assert_eq!(super::number(" 7 "), Some(7.0));
        assert_eq!(super::number("NaN"), None);
        assert_eq!(super::number("inf"), None);
    }
}
