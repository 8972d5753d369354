//! One health check of the local node: a DNS query over UDP to the local
//! Meridian (NOERROR, AA, a non-empty answer, within the timeout), and
//! optionally the admin API's `/status` (at least N regions up).

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

use super::config::AnycastConfig;

/// The result of one check. Both kinds of failure count the same for the
/// state machine; they only read differently in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    /// Healthy; the text says what was seen.
    Healthy(String),
    /// The node answered, but not well enough (SERVFAIL, no AA, too few regions up).
    Unhealthy(String),
    /// The check could not be completed (timeout, refused, garbage, no result).
    Error(String),
}

impl CheckResult {
    pub fn healthy(&self) -> bool {
        matches!(self, CheckResult::Healthy(_))
    }

    pub fn reason(&self) -> &str {
        match self {
            CheckResult::Healthy(s) | CheckResult::Unhealthy(s) | CheckResult::Error(s) => s,
        }
    }
}

impl std::fmt::Display for CheckResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckResult::Healthy(s) => write!(f, "healthy: {s}"),
            CheckResult::Unhealthy(s) => write!(f, "unhealthy: {s}"),
            CheckResult::Error(s) => write!(f, "check error: {s}"),
        }
    }
}

/// Everything one check needs, built once from the configuration.
pub struct Checker {
    pub dns: SocketAddr,
    pub name: Name,
    pub rtype: RecordType,
    pub timeout: Duration,
    pub regions: Option<RegionsCheck>,
}

/// The optional admin API part of the check.
pub struct RegionsCheck {
    pub url: String,
    pub min_up: u32,
    pub token_file: Option<PathBuf>,
    client: reqwest::Client,
}

impl Checker {
    pub fn new(cfg: &AnycastConfig) -> Result<Checker, reqwest::Error> {
        let regions = if cfg.min_regions_up > 0 {
            let client = reqwest::Client::builder()
                .timeout(cfg.timeout)
                .connect_timeout(cfg.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()?;
            Some(RegionsCheck {
                url: cfg.admin_url.clone(),
                min_up: cfg.min_regions_up,
                token_file: cfg.admin_token_file.clone(),
                client,
            })
        } else {
            None
        };
        Ok(Checker { dns: cfg.dns, name: cfg.check_name.clone(), rtype: cfg.check_type, timeout: cfg.timeout, regions })
    }

    /// Run the check; never takes much longer than the timeout.
    pub async fn check(&self) -> CheckResult {
        let dns = async {
            match tokio::time::timeout(self.timeout, dns_check(self.dns, &self.name, self.rtype)).await {
                Ok(o) => o,
                Err(_) => CheckResult::Error(format!(
                    "dns {}: no answer to {} {} within {}",
                    self.dns,
                    self.name,
                    self.rtype,
                    humantime::format_duration(self.timeout)
                )),
            }
        };
        let regions = async {
            match &self.regions {
                None => None,
                Some(r) => Some(match tokio::time::timeout(self.timeout, r.check()).await {
                    Ok(o) => o,
                    Err(_) => CheckResult::Error(format!(
                        "admin {}: no answer within {}",
                        r.url,
                        humantime::format_duration(self.timeout)
                    )),
                }),
            }
        };
        let (dns, regions) = tokio::join!(dns, regions);
        match (dns, regions) {
            (d @ (CheckResult::Unhealthy(_) | CheckResult::Error(_)), _) => d,
            (_, Some(r @ (CheckResult::Unhealthy(_) | CheckResult::Error(_)))) => r,
            (CheckResult::Healthy(d), Some(CheckResult::Healthy(r))) => CheckResult::Healthy(format!("{d}; {r}")),
            (d, _) => d,
        }
    }
}

/// Ask `server` for `name`/`rtype` once over UDP (the caller bounds the time).
pub async fn dns_check(server: SocketAddr, name: &Name, rtype: RecordType) -> CheckResult {
    let started = Instant::now();
    let bind: SocketAddr =
        if server.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => return CheckResult::Error(format!("dns: cannot open a UDP socket: {e}")),
    };
    // Connected, so an ICMP port unreachable (Meridian not running) comes
    // back at once as "connection refused" instead of a timeout.
    if let Err(e) = sock.connect(server).await {
        return CheckResult::Error(format!("dns {server}: {e}"));
    }
    let mut query = Message::query();
    query.metadata.recursion_desired = false;
    query.add_query(Query::query(name.clone(), rtype));
    let id = query.metadata.id;
    let packet = match query.to_vec() {
        Ok(p) => p,
        Err(e) => return CheckResult::Error(format!("dns: cannot encode the query: {e}")),
    };
    if let Err(e) = sock.send(&packet).await {
        return CheckResult::Error(format!("dns {server}: send: {e}"));
    }
    let mut buf = vec![0u8; 65535];
    loop {
        let n = match sock.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) => return CheckResult::Error(format!("dns {server}: {e}")),
        };
        let resp = match Message::from_vec(&buf[..n]) {
            Ok(m) => m,
            Err(e) => return CheckResult::Error(format!("dns {server}: undecodable response: {e}")),
        };
        // Not ours (a late answer to an earlier query would use another socket,
        // but be strict): keep waiting.
        if resp.metadata.id != id || resp.metadata.message_type != MessageType::Response {
            continue;
        }
        return judge(server, name, rtype, &resp, started.elapsed());
    }
}

/// NOERROR, AA and at least one answer record.
pub fn judge(server: SocketAddr, name: &Name, rtype: RecordType, resp: &Message, took: Duration) -> CheckResult {
    let what = format!("dns {server} {name} {rtype}");
    if resp.metadata.op_code != OpCode::Query {
        return CheckResult::Error(format!("{what}: response opcode {:?}", resp.metadata.op_code));
    }
    if let Some(q) = resp.queries.first() {
        if q.name() != name || q.query_type() != rtype {
            return CheckResult::Error(format!(
                "{what}: response is for another question ({} {})",
                q.name(),
                q.query_type()
            ));
        }
    }
    let rcode = resp.metadata.response_code;
    if rcode != ResponseCode::NoError {
        return CheckResult::Unhealthy(format!("{what}: rcode {rcode}"));
    }
    if !resp.metadata.authoritative {
        return CheckResult::Unhealthy(format!("{what}: answer is not authoritative (no AA flag)"));
    }
    if resp.answers.is_empty() {
        let tc = if resp.metadata.truncation { " (truncated)" } else { "" };
        return CheckResult::Unhealthy(format!("{what}: empty answer section{tc}"));
    }
    CheckResult::Healthy(format!(
        "{what}: NOERROR aa, {} answer(s) in {:.1} ms",
        resp.answers.len(),
        took.as_secs_f64() * 1000.0
    ))
}

impl RegionsCheck {
    async fn check(&self) -> CheckResult {
        let mut req = self.client.get(&self.url);
        if let Some(path) = &self.token_file {
            match std::fs::read_to_string(path) {
                Ok(t) => req = req.header(reqwest::header::AUTHORIZATION, format!("Bearer {}", t.trim())),
                Err(e) => return CheckResult::Error(format!("admin token {}: {e}", path.display())),
            }
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return CheckResult::Error(format!("admin {}: {}", self.url, chain(&e))),
        };
        let status = resp.status();
        if !status.is_success() {
            return CheckResult::Error(format!("admin {}: HTTP {status}", self.url));
        }
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return CheckResult::Error(format!("admin {}: {}", self.url, chain(&e))),
        };
        judge_regions(&self.url, &body, self.min_up)
    }
}

/// Count the regions that are up in a status document: `{"regions": [{"name",
/// "state"}, …]}`. `"up"` and `"forced-up"` count as up; anything else
/// (`"down"`, `"drained"`, `"forced-down"`, missing) does not. Unknown fields are ignored.
pub fn judge_regions(url: &str, body: &[u8], min_up: u32) -> CheckResult {
    let doc: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return CheckResult::Error(format!("admin {url}: not JSON: {e}")),
    };
    let Some(regions) = doc.get("regions").and_then(|r| r.as_array()) else {
        return CheckResult::Error(format!("admin {url}: no \"regions\" array in the status document"));
    };
    let mut up = Vec::new();
    let mut not_up = Vec::new();
    for (i, r) in regions.iter().enumerate() {
        let name = r.get("name").and_then(|n| n.as_str()).map(str::to_string).unwrap_or_else(|| format!("#{i}"));
        let state = r.get("state").and_then(|s| s.as_str()).unwrap_or("").to_ascii_lowercase();
        if state == "up" || state == "forced-up" {
            up.push(name);
        } else {
            not_up.push(format!("{name}={}", if state.is_empty() { "?" } else { &state }));
        }
    }
    let summary = format!("{}/{} region(s) up", up.len(), regions.len());
    if (up.len() as u64) < min_up as u64 {
        let detail = if not_up.is_empty() { String::new() } else { format!(" (not up: {})", not_up.join(", ")) };
        CheckResult::Unhealthy(format!("admin: {summary}, need {min_up}{detail}"))
    } else {
        CheckResult::Healthy(format!("admin: {summary}"))
    }
}

/// An error with its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record};

    fn name() -> Name {
        Name::from_ascii("www.gslb.example.test.").unwrap()
    }

    /// A one-shot fake DNS server: answers the first query with what `make` builds.
    async fn fake_server(make: impl Fn(&Message) -> Option<Message> + Send + 'static) -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let (n, from) = sock.recv_from(&mut buf).await.unwrap();
            let q = Message::from_vec(&buf[..n]).unwrap();
            if let Some(r) = make(&q) {
                sock.send_to(&r.to_vec().unwrap(), from).await.unwrap();
            }
        });
        addr
    }

    fn reply(q: &Message, rcode: ResponseCode, aa: bool, answers: usize) -> Message {
        let mut r = Message::response(q.metadata.id, OpCode::Query);
        r.metadata.response_code = rcode;
        r.metadata.authoritative = aa;
        r.add_queries(q.queries.clone());
        for i in 0..answers {
            r.add_answer(Record::from_rdata(name(), 30, RData::A(A::new(192, 0, 2, i as u8 + 1))));
        }
        r
    }

    async fn ask(addr: SocketAddr) -> CheckResult {
        match tokio::time::timeout(Duration::from_millis(300), dns_check(addr, &name(), RecordType::A)).await {
            Ok(o) => o,
            Err(_) => CheckResult::Error("timeout".into()),
        }
    }

    #[tokio::test]
    async fn healthy_needs_noerror_aa_and_answers() {
        let addr = fake_server(|q| Some(reply(q, ResponseCode::NoError, true, 2))).await;
        let o = ask(addr).await;
        assert!(o.healthy(), "{o}");
        assert!(o.reason().contains("2 answer(s)"), "{o}");
    }

    #[tokio::test]
    async fn servfail_no_aa_and_empty_answers_are_unhealthy() {
        let addr = fake_server(|q| Some(reply(q, ResponseCode::ServFail, true, 1))).await;
        let o = ask(addr).await;
        assert!(matches!(&o, CheckResult::Unhealthy(r) if r.contains("rcode")), "{o}");
        let addr = fake_server(|q| Some(reply(q, ResponseCode::NoError, false, 1))).await;
        let o = ask(addr).await;
        assert!(matches!(&o, CheckResult::Unhealthy(r) if r.contains("AA")), "{o}");
        let addr = fake_server(|q| Some(reply(q, ResponseCode::NoError, true, 0))).await;
        let o = ask(addr).await;
        assert!(matches!(&o, CheckResult::Unhealthy(r) if r.contains("empty answer")), "{o}");
    }

    #[tokio::test]
    async fn a_wrong_id_is_ignored_and_silence_times_out() {
        let addr = fake_server(|q| {
            let mut r = reply(q, ResponseCode::NoError, true, 1);
            r.metadata.id = q.metadata.id.wrapping_add(1);
            Some(r)
        })
        .await;
        assert_eq!(ask(addr).await, CheckResult::Error("timeout".into()));
        let addr = fake_server(|_| None).await;
        assert_eq!(ask(addr).await, CheckResult::Error("timeout".into()));
    }

    #[tokio::test]
    async fn a_closed_port_is_an_error_at_once() {
        let addr = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap()
        };
        let t = Instant::now();
        let o = ask(addr).await;
        assert!(matches!(&o, CheckResult::Error(r) if r.contains("refused")), "{o}");
        assert!(t.elapsed() < Duration::from_millis(250));
    }

    #[tokio::test]
    async fn checker_bounds_the_time_by_its_timeout() {
        let addr = fake_server(|_| None).await;
        let c = Checker {
            dns: addr,
            name: name(),
            rtype: RecordType::A,
            timeout: Duration::from_millis(100),
            regions: None,
        };
        let t = Instant::now();
        let o = c.check().await;
        assert!(matches!(&o, CheckResult::Error(r) if r.contains("within 100ms")), "{o}");
        assert!(t.elapsed() < Duration::from_millis(300));
    }

    #[test]
    fn regions_are_counted_tolerantly() {
        let body = br#"{"generated":"x","regions":[
            {"name":"eu","state":"up","endpoints":[]},
            {"name":"us","state":"DOWN"},
            {"name":"ap","state":"forced-up"},
            {"name":"sa","state":"drained"},
            {"state":"up"}]}"#;
        let o = judge_regions("u", body, 3);
        assert_eq!(o, CheckResult::Healthy("admin: 3/5 region(s) up".into()));
        let o = judge_regions("u", body, 4);
        assert_eq!(o, CheckResult::Unhealthy("admin: 3/5 region(s) up, need 4 (not up: us=down, sa=drained)".into()));
        assert!(matches!(judge_regions("u", b"{}", 1), CheckResult::Error(_)));
        assert!(matches!(judge_regions("u", b"<html>", 1), CheckResult::Error(_)));
        assert!(matches!(judge_regions("u", br#"{"regions":[]}"#, 1), CheckResult::Unhealthy(_)));
    }

    #[tokio::test]
    async fn regions_over_http() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for _ in 0..2 {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let body = r#"{"regions":[{"name":"eu","state":"up"},{"name":"us","state":"down"}]}"#;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(resp.as_bytes()).await.unwrap();
            }
        });
        let dns = fake_server(|q| Some(reply(q, ResponseCode::NoError, true, 1))).await;
        let cfg_text = format!(
            "check_name = \"www.gslb.example.test.\"\ncheck_type = \"A\"\ndns = \"{dns}\"\nmin_regions_up = 1\nadmin_url = \"http://127.0.0.1:{port}/status\"\n[[prefixes]]\nprefix = \"192.0.2.53/32\"\n"
        );
        let cfg = AnycastConfig::parse(crate::config::Source { path: "a.toml".into(), text: cfg_text }).unwrap();
        let c = Checker::new(&cfg).unwrap();
        let o = c.check().await;
        assert!(o.healthy(), "{o}");
        assert!(o.reason().contains("1/2 region(s) up"), "{o}");
        let mut c = c;
        c.regions.as_mut().unwrap().min_up = 2;
        c.dns = fake_server(|q| Some(reply(q, ResponseCode::NoError, true, 1))).await;
        let o = c.check().await;
        assert!(matches!(&o, CheckResult::Unhealthy(r) if r.contains("need 2")), "{o}");
    }
}
