//! Issue 18 items 8 and 10: override durations are bounded and nothing stored
//! can break `/status`; an override that cannot be saved is refused (nothing
//! changed) and an unreadable overrides file is a loud error at start.

use crate::common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `meridian serve` on the shipped zones with its admin API; `extra` flags appended.
fn serve(extra: &[&str]) -> (Server, SocketAddr) {
    let admin: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let admin_s = admin.to_string();
    let mut args = vec!["--admin", admin_s.as_str()];
    args.extend(extra);
    (Server::start_with(&args, None), admin)
}

/// One HTTP/1.0 request (the server closes the connection); status and body.
/// Status 0 when the server sent no response at all (a panicking handler).
fn http(addr: SocketAddr, method: &str, path: &str, token: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the admin API");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

fn token(file: &Path) -> String {
    std::fs::read_to_string(file).expect("token file").trim().to_string()
}

fn status(admin: SocketAddr) -> serde_json::Value {
    let (code, body) = http_get(admin, "/status");
    assert_eq!(code, 200, "/status must answer: {body:?}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("/status is not JSON ({e}): {body}"))
}

fn region_state(st: &serde_json::Value, name: &str) -> String {
    st["regions"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap()["state"].as_str().unwrap().to_string()
}

#[test]
fn huge_drain_durations_are_refused_and_nothing_stored_breaks_status() {
    let dir = TempDir::new("huge-drain");
    let state = dir.path().join("state");
    let state_s = state.display().to_string();
    let (server, admin) = serve(&["--state-dir", &state_s]);
    let tok = token(&state.join("admin.token"));

    for long in ["999999999h", "18446744073709551615s", "367days"] {
        let (code, body) = http(admin, "POST", &format!("/regions/eu-west/drain?for={long}"), &tok);
        assert_eq!(code, 400, "for={long}: {body:?}");
        assert!(body.contains("for=") && body.contains("error"), "a clear message for {long}: {body}");
        let st = status(admin);
        assert_eq!(st["overrides"].as_array().unwrap().len(), 0, "nothing stored for {long}: {st}");
    }
    let (code, body) = http(admin, "POST", "/regions/eu-west/drain?for=365d", &tok);
    assert_eq!(code, 200, "a year is fine: {body}");
    assert_eq!(region_state(&status(admin), "eu-west"), "drained");
    drop(server);

    // A state file written by an older version with an expiry past 9999 (and
    // one set "after" it): those entries are ignored with a warning, the
    // sane one is kept, and /status answers.
    let file = state.join("overrides.json");
    let sane = r#"{"scope":{"region":"us-east"},"kind":"drain","until":null,"set_at":1700000000}"#;
    let far = r#"{"scope":{"region":"eu-west"},"kind":"drain","until":3600001700000000,"set_at":1700000000}"#;
    let late = r#"{"scope":{"region":"ap-northeast"},"kind":"force-down","until":null,"set_at":18446744073709551615}"#;
    std::fs::write(&file, format!("[{sane},{far},{late}]")).unwrap();
    let (server, admin) = serve(&["--state-dir", &state_s]);
    let st = status(admin);
    assert_eq!(st["overrides"].as_array().unwrap().len(), 1, "{st}");
    assert_eq!(region_state(&st, "us-east"), "drained");
    assert_eq!(region_state(&st, "eu-west"), "up");
    assert_eq!(region_state(&st, "ap-northeast"), "up");
    let log = server.log_text();
    assert_eq!(log.matches("ignoring an override entry").count(), 2, "one warning per bad entry:\n{log}");
    assert!(log.lines().any(|l| l.contains("WARN") && l.contains("overrides.json")), "{log}");
}

#[test]
fn an_override_that_cannot_be_saved_is_refused_and_changes_nothing() {
    let dir = TempDir::new("unwritable-state");
    // A file where the state directory should be: no one, root included, can create it.
    std::fs::write(dir.path().join("blocked"), "").unwrap();
    let state = dir.path().join("blocked/state");
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, "0123456789abcdef0123456789abcdef\n").unwrap();
    let conf = dir.path().join("meridian.toml");
    std::fs::write(
        &conf,
        format!(
            "zones = \"{}\"\nstate_dir = \"{}\"\nadmin_token_file = \"{}\"\n",
            repo().join("zones").display(),
            state.display(),
            token_file.display()
        ),
    )
    .unwrap();
    let conf_s = conf.display().to_string();
    let (_server, admin) = serve(&["--config", &conf_s, "--state-dir", &state.display().to_string()]);
    let tok = token(&token_file);

    let (code, body) = http(admin, "POST", "/regions/eu-west/drain", &tok);
    assert_eq!(code, 503, "a drain that cannot be saved is an error: {body}");
    assert!(body.contains("overrides.json") && body.contains("nothing was changed"), "says why: {body}");
    assert_eq!(region_state(&status(admin), "eu-west"), "up", "and it did not take effect");

    // The CLI prints the reason and exits non-zero.
    let admin_s = admin.to_string();
    let out = meridian(&["admin", "drain", "eu-west", "--admin", &admin_s, "--config", &conf_s], &repo());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status: {:?}, stdout {:?}", out.status, String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("503") && stderr.contains("cannot save overrides"), "{stderr}");
    assert_eq!(region_state(&status(admin), "eu-west"), "up");
}

#[test]
fn an_unreadable_overrides_file_is_a_loud_error_at_start() {
    let dir = TempDir::new("unreadable-overrides");
    let state = dir.path().join("state");
    // A directory where the file should be: unreadable, even for root.
    std::fs::create_dir_all(state.join("overrides.json")).unwrap();
    let state_s = state.display().to_string();
    let (server, _admin) = serve(&["--state-dir", &state_s]);
    let log = server.log_text();
    assert!(
        log.lines().any(|l| l.contains("ERROR") && l.contains("overrides.json") && l.contains("cannot read")),
        "an ERROR naming the file:\n{log}"
    );
    drop(server);

    // Undecodable: an ERROR too, and the file is moved aside so the next
    // change does not overwrite what the operator may want back.
    std::fs::remove_dir(state.join("overrides.json")).unwrap();
    std::fs::write(state.join("overrides.json"), "{ torn").unwrap();
    let (server, _admin) = serve(&["--state-dir", &state_s]);
    let log = server.log_text();
    assert!(log.lines().any(|l| l.contains("ERROR") && l.contains("overrides.json")), "{log}");
    assert_eq!(std::fs::read_to_string(state.join("overrides.json.unreadable")).unwrap(), "{ torn");
}
