//! The one rise/fall counter: consecutive results with hysteresis. Health
//! (`endpoint_state`) and anycast (`announce`) both count with it; they differ
//! only in how a target with no verdict yet leaves that state (`ColdStart`).
//! Pure: no I/O, no clock.

use serde::{Deserialize, Serialize};

/// What the results so far have concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No verdict yet (cold start).
    Unknown,
    Up,
    Down,
}

/// Lowercase, as `/status` and the metrics say it.
impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Unknown => "unknown",
            Verdict::Up => "up",
            Verdict::Down => "down",
        })
    }
}

/// How a counter with no verdict yet reaches its first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColdStart {
    /// The first success is up; `fall` failures are down (health: answer an
    /// endpoint as soon as it is seen working).
    TrustFirstSuccess,
    /// `rise` successes are up; the first failure is down (anycast: announce
    /// a route only once the node has proven itself, as after any failure).
    ProveWithRise,
}

/// The thresholds: `rise` consecutive successes bring a down target up,
/// `fall` consecutive failures take an up one down. Below 1 counts as 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub rise: u32,
    pub fall: u32,
    pub cold: ColdStart,
}

impl Thresholds {
    pub fn new(rise: u32, fall: u32, cold: ColdStart) -> Thresholds {
        Thresholds { rise: rise.max(1), fall: fall.max(1), cold }
    }

    /// Successes needed to go up from `from`.
    fn successes_to_up(&self, from: Verdict) -> u32 {
        match (from, self.cold) {
            (Verdict::Unknown, ColdStart::TrustFirstSuccess) => 1,
            _ => self.rise.max(1),
        }
    }

    /// Failures needed to go down from `from`.
    fn failures_to_down(&self, from: Verdict) -> u32 {
        match (from, self.cold) {
            (Verdict::Unknown, ColdStart::ProveWithRise) => 1,
            _ => self.fall.max(1),
        }
    }
}

/// A verdict and the streaks that lead to the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiseFall {
    verdict: Verdict,
    ok_streak: u32,
    fail_streak: u32,
}

impl Default for RiseFall {
    fn default() -> Self {
        RiseFall { verdict: Verdict::Unknown, ok_streak: 0, fail_streak: 0 }
    }
}

impl RiseFall {
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Consecutive successes up to now (0 after a failure).
    pub fn ok_streak(&self) -> u32 {
        self.ok_streak
    }

    /// Consecutive failures up to now (0 after a success).
    pub fn fail_streak(&self) -> u32 {
        self.fail_streak
    }

    /// Count one result; returns the verdict change it caused, if any.
    pub fn observe(&mut self, ok: bool, t: Thresholds) -> Option<(Verdict, Verdict)> {
        if ok {
            self.ok_streak = self.ok_streak.saturating_add(1);
            self.fail_streak = 0;
        } else {
            self.fail_streak = self.fail_streak.saturating_add(1);
            self.ok_streak = 0;
        }
        let from = self.verdict;
        let to = match (from, ok) {
            (Verdict::Unknown | Verdict::Down, true) if self.ok_streak >= t.successes_to_up(from) => Verdict::Up,
            (Verdict::Unknown | Verdict::Up, false) if self.fail_streak >= t.failures_to_down(from) => Verdict::Down,
            (v, _) => v,
        };
        self.verdict = to;
        (from != to).then_some((from, to))
    }

    /// Take the verdict `to` now (e.g. down on shutdown), streaks cleared.
    pub fn force(&mut self, to: Verdict) {
        *self = RiseFall { verdict: to, ok_streak: 0, fail_streak: 0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUST: ColdStart = ColdStart::TrustFirstSuccess;
    const PROVE: ColdStart = ColdStart::ProveWithRise;

    fn feed(c: &mut RiseFall, t: Thresholds, results: &[bool]) -> Vec<Option<(Verdict, Verdict)>> {
        results.iter().map(|&ok| c.observe(ok, t)).collect()
    }

    use Verdict::{Down, Unknown, Up};

    #[test]
    fn trusting_cold_start_is_up_at_the_first_success_and_down_after_fall() {
        let t = Thresholds::new(2, 3, TRUST);
        let mut c = RiseFall::default();
        assert_eq!(c.observe(true, t), Some((Unknown, Up)));
        let mut c = RiseFall::default();
        assert_eq!(feed(&mut c, t, &[false, false]), vec![None, None]);
        assert_eq!(c.verdict(), Unknown);
        assert_eq!(c.observe(false, t), Some((Unknown, Down)));
    }

    #[test]
    fn proving_cold_start_needs_rise_successes_and_one_failure_is_down() {
        let t = Thresholds::new(3, 3, PROVE);
        let mut c = RiseFall::default();
        assert_eq!(feed(&mut c, t, &[true, true]), vec![None, None]);
        assert_eq!((c.verdict(), c.ok_streak()), (Unknown, 2));
        assert_eq!(c.observe(true, t), Some((Unknown, Up)));
        let mut c = RiseFall::default();
        assert_eq!(feed(&mut c, t, &[true, true, false]), vec![None, None, Some((Unknown, Down))]);
    }

    #[test]
    fn up_needs_fall_consecutive_failures_and_down_rise_consecutive_successes() {
        for cold in [TRUST, PROVE] {
            let t = Thresholds::new(2, 3, cold);
            let mut c = RiseFall::default();
            feed(&mut c, t, &[true, true]);
            assert_eq!(c.verdict(), Up);
            assert_eq!(feed(&mut c, t, &[false, false, true, false, false]), vec![None; 5], "{cold:?}");
            assert_eq!(c.fail_streak(), 2);
            assert_eq!(c.observe(false, t), Some((Up, Down)));
            assert_eq!(feed(&mut c, t, &[true, false, true]), vec![None; 3], "a failure resets the rise streak");
            assert_eq!(c.observe(true, t), Some((Down, Up)));
            assert_eq!(feed(&mut c, t, &[true, true]), vec![None, None], "staying up repeats nothing");
        }
    }

    #[test]
    fn thresholds_below_one_count_as_one() {
        let t = Thresholds::new(0, 0, PROVE);
        assert_eq!((t.rise, t.fall), (1, 1));
        let mut c = RiseFall::default();
        assert_eq!(
            feed(&mut c, t, &[true, false, true]),
            vec![Some((Unknown, Up)), Some((Up, Down)), Some((Down, Up))]
        );
    }

    #[test]
    fn force_clears_the_streaks() {
        let t = Thresholds::new(2, 2, TRUST);
        let mut c = RiseFall::default();
        feed(&mut c, t, &[true, false]);
        c.force(Down);
        assert_eq!((c.verdict(), c.ok_streak(), c.fail_streak()), (Down, 0, 0));
    }
}
