//! The ExaBGP process API: commands are lines on our stdout (flushed one by
//! one), and ExaBGP's answers and events are lines on our stdin.
//!
//! With `encoder text` (what `examples/anycast/exabgp.conf` uses) stdin
//! carries `done` / `error` acknowledgements (ExaBGP 4's `exabgp.api.ack`,
//! on by default), `neighbor 10.0.0.2 up`, `neighbor 10.0.0.2 down - reason`
//! (when the process subscribes to neighbor changes), `shutdown PID PPID`
//! when ExaBGP stops, and empty lines. `encoder json` sends JSON objects for
//! events; both are understood. Nothing else must ever reach stdout: logs go
//! to stderr.

use std::collections::VecDeque;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// One line read from ExaBGP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The oldest unacknowledged command was accepted.
    Done,
    /// The oldest unacknowledged command was rejected.
    Error,
    /// ExaBGP is stopping (it tears the BGP sessions down itself).
    Shutdown,
    /// A BGP session changed state (`up`, `down`, `connected`, …).
    Neighbor { peer: String, state: String, detail: String },
    /// Nothing (an empty line).
    Empty,
    /// Anything else (received updates, other notifications): logged at debug.
    Other(String),
}

/// Parse one line from ExaBGP's side (text or JSON encoder).
pub fn parse_event(line: &str) -> Event {
    let line = line.trim();
    if line.is_empty() {
        return Event::Empty;
    }
    if line.starts_with('{') {
        return parse_json(line);
    }
    let mut words = line.split_whitespace();
    match words.next() {
        Some("done") if words.next().is_none() => Event::Done,
        Some("error") if words.next().is_none() => Event::Error,
        Some("shutdown") => Event::Shutdown,
        Some("neighbor") => {
            let peer = words.next().unwrap_or("").to_string();
            match words.next() {
                Some(state @ ("up" | "down" | "connected")) => {
                    let rest: Vec<&str> = words.collect();
                    let detail = rest.join(" ").trim_start_matches('-').trim().to_string();
                    Event::Neighbor { peer, state: state.to_string(), detail }
                }
                _ => Event::Other(line.to_string()),
            }
        }
        _ => Event::Other(line.to_string()),
    }
}

fn parse_json(line: &str) -> Event {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        return Event::Other(line.to_string());
    };
    let kind = v.get("type").and_then(|t| t.as_str()).unwrap_or("");
    match kind {
        "notification" if v.get("notification").and_then(|n| n.as_str()) == Some("shutdown") => Event::Shutdown,
        "state" => {
            let n = v.get("neighbor");
            let peer = n.and_then(|n| n.pointer("/address/peer")).and_then(|p| p.as_str()).unwrap_or("").to_string();
            let state = n.and_then(|n| n.get("state")).and_then(|s| s.as_str()).unwrap_or("").to_string();
            let detail = n.and_then(|n| n.get("reason")).and_then(|s| s.as_str()).unwrap_or("").to_string();
            Event::Neighbor { peer, state, detail }
        }
        _ => Event::Other(line.to_string()),
    }
}

/// Writes API commands, remembering the recent ones so that an `error`
/// acknowledgement can be matched to the command it rejected.
pub struct Api<W> {
    out: W,
    unacked: VecDeque<String>,
}

/// How many commands are remembered for acknowledgements (ExaBGP may run
/// with acknowledgements off; then nothing is ever popped).
const REMEMBER: usize = 64;

impl<W: AsyncWrite + Unpin> Api<W> {
    pub fn new(out: W) -> Api<W> {
        Api { out, unacked: VecDeque::new() }
    }

    /// Write one command and flush it, so ExaBGP sees it now.
    pub async fn send(&mut self, command: &str) -> std::io::Result<()> {
        debug_assert!(!command.contains('\n'));
        let mut line = String::with_capacity(command.len() + 1);
        line.push_str(command);
        line.push('\n');
        self.out.write_all(line.as_bytes()).await?;
        self.out.flush().await?;
        if self.unacked.len() == REMEMBER {
            self.unacked.pop_front();
        }
        self.unacked.push_back(command.to_string());
        Ok(())
    }

    /// Several commands, each flushed.
    pub async fn send_all(&mut self, commands: &[String]) -> std::io::Result<()> {
        for c in commands {
            self.send(c).await?;
        }
        Ok(())
    }

    /// The command an acknowledgement belongs to (the oldest one not yet acknowledged).
    pub fn acknowledged(&mut self) -> Option<String> {
        self.unacked.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_events() {
        assert_eq!(parse_event("done"), Event::Done);
        assert_eq!(parse_event("error\n"), Event::Error);
        assert_eq!(parse_event(""), Event::Empty);
        assert_eq!(parse_event("shutdown 123 1"), Event::Shutdown);
        assert_eq!(
            parse_event("neighbor 10.99.0.2 up"),
            Event::Neighbor { peer: "10.99.0.2".into(), state: "up".into(), detail: String::new() }
        );
        assert_eq!(
            parse_event("neighbor 10.99.0.2 down - peer reset, message (notification) error (hold timer expired)"),
            Event::Neighbor {
                peer: "10.99.0.2".into(),
                state: "down".into(),
                detail: "peer reset, message (notification) error (hold timer expired)".into()
            }
        );
        assert!(matches!(parse_event("neighbor 10.99.0.2 receive update start"), Event::Other(_)));
    }

    #[test]
    fn json_events() {
        assert_eq!(
            parse_event(r#"{ "exabgp": "4.0.1", "time": 1.0, "type": "notification", "notification": "shutdown"}"#),
            Event::Shutdown
        );
        assert_eq!(
            parse_event(
                r#"{"exabgp":"4.0.1","type":"state","neighbor":{"address":{"local":"10.99.0.1","peer":"10.99.0.2"},"asn":{},"state":"down","reason":"out of time"}}"#
            ),
            Event::Neighbor { peer: "10.99.0.2".into(), state: "down".into(), detail: "out of time".into() }
        );
        assert!(matches!(parse_event(r#"{"type":"update"}"#), Event::Other(_)));
        assert!(matches!(parse_event("{not json"), Event::Other(_)));
    }

    #[tokio::test]
    async fn commands_are_lines_and_acks_match_them() {
        let mut buf = Vec::new();
        {
            let mut api = Api::new(&mut buf);
            api.send("announce route 192.0.2.53/32 next-hop self").await.unwrap();
            api.send("withdraw route 192.0.2.53/32").await.unwrap();
            assert_eq!(api.acknowledged().as_deref(), Some("announce route 192.0.2.53/32 next-hop self"));
            assert_eq!(api.acknowledged().as_deref(), Some("withdraw route 192.0.2.53/32"));
            assert_eq!(api.acknowledged(), None);
        }
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "announce route 192.0.2.53/32 next-hop self\nwithdraw route 192.0.2.53/32\n"
        );
    }
}
