//! The endpoint state machine (rise/fall with a cold-start `unknown`) and
//! operator overrides. Pure logic: no I/O, no clocks of its own.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::SystemTime;

use super::probe::ProbeResult;

/// What the probes have concluded about one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No verdict yet (cold start): counted as up unless configured otherwise.
    Unknown,
    Up,
    Down,
}

/// Smoothing of the probe RTT (weight of the newest sample).
const RTT_ALPHA: f64 = 0.3;

#[derive(Debug, Clone)]
pub struct TargetState {
    pub verdict: Verdict,
    pub ok_streak: u32,
    pub fail_streak: u32,
    pub last: Option<ProbeResult>,
    pub last_at: Option<SystemTime>,
    pub last_failure: Option<(String, SystemTime)>,
    /// Time of the last transition (or of creation while unknown).
    pub since: SystemTime,
    pub rtt_ewma_ms: Option<f64>,
    pub transitions: u64,
}

impl TargetState {
    pub fn new(now: SystemTime) -> TargetState {
        TargetState {
            verdict: Verdict::Unknown,
            ok_streak: 0,
            fail_streak: 0,
            last: None,
            last_at: None,
            last_failure: None,
            since: now,
            rtt_ewma_ms: None,
            transitions: 0,
        }
    }

    /// Feed one result; returns the transition it caused, if any.
    /// Unknown becomes up on the first success and down after `fall` failures;
    /// up needs `fall` consecutive failures to go down, down `rise` successes to come up.
    pub fn observe(&mut self, r: &ProbeResult, rise: u32, fall: u32, now: SystemTime) -> Option<(Verdict, Verdict)> {
        if r.ok {
            self.ok_streak += 1;
            self.fail_streak = 0;
            let ms = r.rtt.as_secs_f64() * 1000.0;
            self.rtt_ewma_ms = Some(self.rtt_ewma_ms.map_or(ms, |prev| prev + RTT_ALPHA * (ms - prev)));
        } else {
            self.fail_streak += 1;
            self.ok_streak = 0;
            self.last_failure = Some((r.detail.clone(), now));
        }
        self.last = Some(r.clone());
        self.last_at = Some(now);
        let next = match (self.verdict, r.ok) {
            (Verdict::Unknown, true) => Verdict::Up,
            (Verdict::Down, true) if self.ok_streak >= rise.max(1) => Verdict::Up,
            (Verdict::Unknown | Verdict::Up, false) if self.fail_streak >= fall.max(1) => Verdict::Down,
            (v, _) => v,
        };
        if next == self.verdict {
            return None;
        }
        let from = self.verdict;
        self.verdict = next;
        self.since = now;
        self.transitions += 1;
        Some((from, next))
    }
}

/// What an operator imposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverrideKind {
    ForceUp,
    ForceDown,
    /// Take out of service on purpose (maintenance): no new answers.
    Drain,
}

/// What an override applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Region(String),
    Endpoint(String, IpAddr),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub scope: Scope,
    pub kind: OverrideKind,
    /// Seconds since the epoch at which it clears itself.
    pub until: Option<u64>,
    pub set_at: u64,
}

impl Override {
    pub fn expired(&self, now: SystemTime) -> bool {
        self.until.is_some_and(|u| epoch_secs(now) >= u)
    }
}

pub fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn res(ok: bool) -> ProbeResult {
        ProbeResult { ok, rtt: Duration::from_millis(10), detail: if ok { "ok".into() } else { "refused".into() } }
    }

    #[test]
    fn unknown_up_down_up_with_rise_and_fall() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut s = TargetState::new(t0);
        assert_eq!(s.observe(&res(true), 2, 3, t0), Some((Verdict::Unknown, Verdict::Up)));
        assert_eq!(s.observe(&res(false), 2, 3, t0), None);
        assert_eq!(s.observe(&res(false), 2, 3, t0), None);
        assert_eq!(s.observe(&res(false), 2, 3, t0), Some((Verdict::Up, Verdict::Down)));
        assert_eq!(s.last_failure.as_ref().unwrap().0, "refused");
        assert_eq!(s.observe(&res(true), 2, 3, t0), None);
        assert_eq!(s.observe(&res(false), 2, 3, t0), None, "a failure resets the rise streak");
        assert_eq!(s.observe(&res(true), 2, 3, t0), None);
        assert_eq!(s.observe(&res(true), 2, 3, t0), Some((Verdict::Down, Verdict::Up)));
        assert_eq!(s.transitions, 3);
    }

    #[test]
    fn unknown_needs_fall_failures_to_go_down() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut s = TargetState::new(t0);
        assert_eq!(s.observe(&res(false), 2, 2, t0), None);
        assert_eq!(s.verdict, Verdict::Unknown);
        assert_eq!(s.observe(&res(false), 2, 2, t0), Some((Verdict::Unknown, Verdict::Down)));
    }

    #[test]
    fn expiry() {
        let o = Override { scope: Scope::Region("eu".into()), kind: OverrideKind::Drain, until: Some(100), set_at: 0 };
        assert!(!o.expired(SystemTime::UNIX_EPOCH + Duration::from_secs(99)));
        assert!(o.expired(SystemTime::UNIX_EPOCH + Duration::from_secs(100)));
    }
}
