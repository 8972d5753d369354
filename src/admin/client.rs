//! `meridian admin`: talk to a running server's admin API.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// What to ask the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminCommand {
    Status,
    Drain,
    Undrain,
    ForceUp,
    ForceDown,
    /// Report a load for a region or an endpoint (by address).
    Load,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub command: AdminCommand,
    pub region: Option<String>,
    pub endpoint: Option<IpAddr>,
    /// Expiry of the override (drain, force-up, force-down).
    pub for_: Option<Duration>,
    /// The load to report (`load`).
    pub value: Option<f64>,
}

/// Run `req` against the API at `addr`; returns what to print.
/// Mutations read the bearer token from `token_file`.
pub fn run(addr: SocketAddr, token_file: &Path, req: &Request) -> anyhow::Result<String> {
    validate(req)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(call(addr, token_file, req))
}

fn validate(req: &Request) -> anyhow::Result<()> {
    if req.command != AdminCommand::Status && req.region.is_none() {
        anyhow::bail!("which region? e.g. `meridian admin drain eu-west`");
    }
    if req.command == AdminCommand::Load {
        if req.endpoint.is_some() || req.for_.is_some() {
            anyhow::bail!("load takes REGION|ADDR VALUE, without --endpoint or --for");
        }
        match req.value {
            Some(v) if v.is_finite() && v >= 0.0 => {}
            Some(v) => anyhow::bail!("load {v} must be a figure of 0 or more"),
            None => anyhow::bail!("which load? e.g. `meridian admin load eu-west 70`"),
        }
    } else if req.value.is_some() {
        anyhow::bail!("a VALUE only goes with `load`");
    }
    if req.endpoint.is_some() && req.region.is_none() {
        anyhow::bail!("--endpoint needs a region: `meridian admin drain REGION --endpoint ADDR`");
    }
    if req.for_.is_some() && matches!(req.command, AdminCommand::Status | AdminCommand::Undrain) {
        anyhow::bail!("--for applies to drain, force-up and force-down");
    }
    if req.for_.is_some_and(|d| d.is_zero()) {
        anyhow::bail!("--for must be more than zero");
    }
    let max = crate::health::overrides::MAX_OVERRIDE_FOR;
    if req.for_.is_some_and(|d| d > max) {
        anyhow::bail!(
            "--for is at most {} (the server refuses longer); for longer, set no --for and undrain by hand",
            humantime::format_duration(max)
        );
    }
    Ok(())
}

/// Where to connect: a wildcard listening address is reached over loopback.
fn connect_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(a) if a.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(a) if a.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// Percent-encode one path segment (everything but unreserved characters and ':').
fn segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn call(addr: SocketAddr, token_file: &Path, req: &Request) -> anyhow::Result<String> {
    let base = format!("http://{}", connect_addr(addr));
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build()?;
    let unreachable = |e: reqwest::Error| {
        anyhow::anyhow!(
            "cannot reach the admin API at {base}: {}\nIs `meridian serve` running with the same --admin / --config?",
            crate::health::probe::describe(&e)
        )
    };
    if req.command == AdminCommand::Status {
        let resp = client.get(format!("{base}/status")).send().await.map_err(unreachable)?;
        let (code, body) = (resp.status(), resp.text().await.map_err(unreachable)?);
        let mut v = parse(code, &body, token_file)?;
        if let Some(region) = &req.region {
            let found =
                v["regions"].as_array().and_then(|rs| rs.iter().find(|r| r["name"] == region.as_str())).cloned();
            v = found.ok_or_else(|| anyhow::anyhow!("unknown region {region:?} (see `meridian admin status`)"))?;
        }
        return Ok(format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let token = super::token::read(token_file).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the admin token file {}: {e}\n(it is created by `meridian serve`; pass the same --state-dir or --config)",
            token_file.display()
        )
    })?;
    let region = req.region.as_deref().unwrap_or_default();
    if req.command == AdminCommand::Load {
        let value = req.value.unwrap_or_default();
        let url = format!("{base}/load/{}?value={value}", segment(region));
        let resp = client.post(url).bearer_auth(&token).send().await.map_err(unreachable)?;
        let (code, body) = (resp.status(), resp.text().await.map_err(unreachable)?);
        parse(code, &body, token_file)?;
        return Ok(format!("{region}: load {value} reported\n"));
    }
    let mut path = format!("/regions/{}", segment(region));
    if let Some(ep) = req.endpoint {
        path.push_str(&format!("/endpoints/{}", segment(&ep.to_string())));
    }
    let builder = match req.command {
        AdminCommand::Undrain => client.delete(format!("{base}{path}/override")),
        kind => {
            let name = match kind {
                AdminCommand::Drain => "drain",
                AdminCommand::ForceUp => "force-up",
                _ => "force-down",
            };
            let mut url = format!("{base}{path}/{name}");
            if let Some(d) = req.for_ {
                url.push_str(&format!("?for={}ms", d.as_millis()));
            }
            client.post(url)
        }
    };
    let resp = builder.bearer_auth(&token).send().await.map_err(unreachable)?;
    let (code, body) = (resp.status(), resp.text().await.map_err(unreachable)?);
    let v = parse(code, &body, token_file)?;
    let what = match req.endpoint {
        Some(ep) => format!("{region} endpoint {ep}"),
        None => region.to_string(),
    };
    Ok(confirmation(&what, req.command, &v))
}

/// The body of a successful answer, or an error saying what went wrong.
fn parse(code: reqwest::StatusCode, body: &str, token_file: &Path) -> anyhow::Result<Value> {
    let v: Option<Value> = serde_json::from_str(body).ok();
    if code.is_success() {
        return v.ok_or_else(|| anyhow::anyhow!("the admin API answered {code} with a body that is not JSON"));
    }
    let msg = v.as_ref().and_then(|v| v["error"].as_str()).map_or_else(|| body.trim().to_string(), str::to_string);
    if code == reqwest::StatusCode::UNAUTHORIZED {
        anyhow::bail!(
            "{code}: the server did not accept the token in {} ({msg}); is it the server's token file \
             (same --state-dir, or admin_token_file)?",
            token_file.display()
        );
    }
    anyhow::bail!("{code}: {msg}")
}

fn confirmation(what: &str, command: AdminCommand, v: &Value) -> String {
    if command == AdminCommand::Undrain {
        return if v["cleared"].as_bool() == Some(true) {
            format!("{what}: override cleared\n")
        } else {
            format!("{what}: no override was set\n")
        };
    }
    let state = match command {
        AdminCommand::Drain => "drained",
        AdminCommand::ForceUp => "forced up",
        _ => "forced down",
    };
    match v["override"]["until"].as_str() {
        Some(until) => format!("{what}: {state} until {until}\n"),
        None => format!("{what}: {state} until cleared (`meridian admin undrain`)\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_longer_than_an_override_may_last_is_refused_before_asking() {
        let req = |secs: u64| Request {
            command: AdminCommand::Drain,
            region: Some("eu-west".into()),
            endpoint: None,
            for_: Some(Duration::from_secs(secs)),
            value: None,
        };
        assert!(validate(&req(3600)).is_ok());
        for secs in [367 * 86_400, 999_999_999 * 3600, u64::MAX] {
            let e = validate(&req(secs)).unwrap_err().to_string();
            assert!(e.contains("--for is at most"), "{e}");
        }
    }

    #[test]
    fn a_load_needs_a_figure_of_zero_or_more() {
        let req = |value: Option<f64>| Request {
            command: AdminCommand::Load,
            region: Some("eu-west".into()),
            endpoint: None,
            for_: None,
            value,
        };
        assert!(validate(&req(Some(70.0))).is_ok());
        assert!(validate(&req(Some(-1.0))).unwrap_err().to_string().contains("0 or more"));
        assert!(validate(&req(None)).unwrap_err().to_string().contains("which load"));
    }
}
