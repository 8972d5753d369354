//! What the probes have seen of one target: its rise/fall verdict (with a
//! cold-start `unknown`), the last result and failure, and a smoothed RTT.
//! Pure logic: no I/O, no clocks of its own.

use std::time::SystemTime;

use super::probe::ProbeResult;
use super::rise_fall::{ColdStart, RiseFall, Thresholds, Verdict};

/// Smoothing of the probe RTT (weight of the newest sample).
const RTT_ALPHA: f64 = 0.3;

#[derive(Debug, Clone)]
pub struct TargetState {
    counter: RiseFall,
    pub last: Option<ProbeResult>,
    pub last_at: Option<SystemTime>,
    pub last_failure: Option<(String, SystemTime)>,
    /// Time of the last transition (or of creation while unknown).
    pub since: SystemTime,
    pub rtt_ewma_ms: Option<f64>,
    pub transitions: u64,
    /// Failed probes since the last transition: a target that stays down is
    /// logged once, at the transition, and counted here.
    pub failures_since_transition: u64,
}

impl TargetState {
    pub fn new(now: SystemTime) -> TargetState {
        TargetState {
            counter: RiseFall::default(),
            last: None,
            last_at: None,
            last_failure: None,
            since: now,
            rtt_ewma_ms: None,
            transitions: 0,
            failures_since_transition: 0,
        }
    }

    pub fn verdict(&self) -> Verdict {
        self.counter.verdict()
    }

    pub fn ok_streak(&self) -> u32 {
        self.counter.ok_streak()
    }

    pub fn fail_streak(&self) -> u32 {
        self.counter.fail_streak()
    }

    /// Feed one result; returns the transition it caused, if any.
    /// Unknown becomes up on the first success and down after `fall` failures;
    /// up needs `fall` consecutive failures to go down, down `rise` successes to come up.
    pub fn observe(&mut self, r: &ProbeResult, rise: u32, fall: u32, now: SystemTime) -> Option<(Verdict, Verdict)> {
        if r.ok {
            let ms = r.rtt.as_secs_f64() * 1000.0;
            self.rtt_ewma_ms = Some(self.rtt_ewma_ms.map_or(ms, |prev| prev + RTT_ALPHA * (ms - prev)));
        } else {
            self.last_failure = Some((r.detail.clone(), now));
            self.failures_since_transition += 1;
        }
        self.last = Some(r.clone());
        self.last_at = Some(now);
        let change = self.counter.observe(r.ok, Thresholds::new(rise, fall, ColdStart::TrustFirstSuccess))?;
        self.since = now;
        self.transitions += 1;
        self.failures_since_transition = 0;
        Some(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn res(ok: bool) -> ProbeResult {
        ProbeResult {
            ok,
            rtt: Duration::from_millis(10),
            detail: if ok { "ok".into() } else { "refused".into() },
            load: None,
        }
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
        assert_eq!(s.verdict(), Verdict::Unknown);
        assert_eq!(s.observe(&res(false), 2, 2, t0), Some((Verdict::Unknown, Verdict::Down)));
    }

    #[test]
    fn failures_after_a_transition_are_counted_not_transitions() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut s = TargetState::new(t0);
        assert!(s.observe(&res(false), 1, 1, t0).is_some());
        assert_eq!(s.failures_since_transition, 0, "the failure that caused the transition is in it");
        for _ in 0..5 {
            assert_eq!(s.observe(&res(false), 1, 1, t0), None);
        }
        assert_eq!(s.failures_since_transition, 5);
        assert!(s.observe(&res(true), 1, 1, t0).is_some());
        assert_eq!(s.failures_since_transition, 0);
    }
}
