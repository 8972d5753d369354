//! The announce/withdraw phases of `meridian anycast`, read from the shared
//! rise/fall counter (`health::rise_fall`): no I/O, no clock.
//!
//! ```text
//!             ok (rise-1 times)          ok → ANNOUNCE
//!  Starting ──ok──▶ Rising(n) ─────────────────────────▶ Up ◀──┐
//!     │                │ fail                             │     │ ok
//!     │ fail           ▼                     fail         ▼     │
//!     └──────────▶   Down  ◀──── WITHDRAW ◀──────── Falling(n) ─┘
//!                      ▲  (fail number `fall`)     (fail < fall)
//!                      └── ok starts Rising(1) again
//! ```
//!
//! * The route is announced only in `Up` and `Falling`: after `rise`
//!   consecutive successes, and until `fall` consecutive failures.
//! * A check that errors (timeout, refused, no result at all) is a failure:
//!   the machine only sees "healthy" or "not healthy".
//! * At start nothing is announced and the caller withdraws every prefix
//!   (a previous helper may have left a route in ExaBGP's RIB); the node must
//!   then pass `rise` checks, as after any failure.
//! * On shutdown (SIGTERM) the caller withdraws, whatever the state.

use std::fmt;

use crate::health::rise_fall::{ColdStart, RiseFall, Thresholds, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing checked yet; not announced.
    Starting,
    /// `n` consecutive successes, fewer than `rise`; not announced.
    Rising(u32),
    /// Announced and the last check passed.
    Up,
    /// Announced, `n` consecutive failures, fewer than `fall`.
    Falling(u32),
    /// Not announced, the last check failed.
    Down,
}

impl Phase {
    /// Whether the prefixes are announced in this phase.
    pub fn announced(self) -> bool {
        matches!(self, Phase::Up | Phase::Falling(_))
    }
}

/// What to tell ExaBGP about the prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteChange {
    Announce,
    Withdraw,
}

/// What one check result did to the phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseChange {
    pub from: Phase,
    pub to: Phase,
    /// What to tell ExaBGP now, if anything.
    pub route: Option<RouteChange>,
}

impl PhaseChange {
    pub fn changed(&self) -> bool {
        self.from != self.to
    }
}

/// The announce state: the shared rise/fall counter, read as phases. A node
/// with no verdict yet must prove itself with `rise` successes, and its first
/// failure is down (`ColdStart::ProveWithRise`).
#[derive(Debug, Clone)]
pub struct Announcer {
    thresholds: Thresholds,
    counter: RiseFall,
}

impl Announcer {
    /// `rise` and `fall` below 1 are taken as 1.
    pub fn new(rise: u32, fall: u32) -> Announcer {
        Announcer { thresholds: Thresholds::new(rise, fall, ColdStart::ProveWithRise), counter: RiseFall::default() }
    }

    pub fn phase(&self) -> Phase {
        let c = &self.counter;
        match c.verdict() {
            Verdict::Unknown | Verdict::Down if c.ok_streak() > 0 => Phase::Rising(c.ok_streak()),
            Verdict::Unknown => Phase::Starting,
            Verdict::Down => Phase::Down,
            Verdict::Up if c.fail_streak() > 0 => Phase::Falling(c.fail_streak()),
            Verdict::Up => Phase::Up,
        }
    }

    pub fn rise(&self) -> u32 {
        self.thresholds.rise
    }

    pub fn fall(&self) -> u32 {
        self.thresholds.fall
    }

    /// Feed one check result (`false` for a failed or errored check).
    pub fn observe(&mut self, healthy: bool) -> PhaseChange {
        let from = self.phase();
        let route = match self.counter.observe(healthy, self.thresholds) {
            Some((_, Verdict::Up)) => Some(RouteChange::Announce),
            Some((Verdict::Up, Verdict::Down)) => Some(RouteChange::Withdraw),
            _ => None,
        };
        PhaseChange { from, to: self.phase(), route }
    }

    /// Shutting down: always withdraw (harmless when nothing is announced).
    pub fn shutdown(&mut self) -> PhaseChange {
        let from = self.phase();
        self.counter.force(Verdict::Down);
        PhaseChange { from, to: Phase::Down, route: Some(RouteChange::Withdraw) }
    }

    /// The phase with its progress, e.g. `rising 2/3`.
    pub fn describe(&self, p: Phase) -> String {
        match p {
            Phase::Starting => "starting".into(),
            Phase::Rising(n) => format!("rising {n}/{}", self.rise()),
            Phase::Up => "up (announced)".into(),
            Phase::Falling(n) => format!("falling {n}/{} (still announced)", self.fall()),
            Phase::Down => "down (withdrawn)".into(),
        }
    }
}

impl fmt::Display for RouteChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RouteChange::Announce => "announce",
            RouteChange::Withdraw => "withdraw",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(m: &mut Announcer, results: &[bool]) -> Vec<Option<RouteChange>> {
        results.iter().map(|&ok| m.observe(ok).route).collect()
    }

    const A: Option<RouteChange> = Some(RouteChange::Announce);
    const W: Option<RouteChange> = Some(RouteChange::Withdraw);

    #[test]
    fn announces_after_rise_successes_from_start() {
        let mut m = Announcer::new(3, 3);
        assert!(!m.phase().announced());
        assert_eq!(feed(&mut m, &[true, true]), vec![None, None]);
        assert_eq!(m.phase(), Phase::Rising(2));
        assert!(!m.phase().announced());
        assert_eq!(m.observe(true).route, A);
        assert_eq!(m.phase(), Phase::Up);
        // Staying healthy repeats nothing.
        assert_eq!(feed(&mut m, &[true, true, true]), vec![None, None, None]);
    }

    #[test]
    fn withdraws_after_fall_failures() {
        let mut m = Announcer::new(3, 3);
        feed(&mut m, &[true, true, true]);
        assert_eq!(feed(&mut m, &[false, false]), vec![None, None]);
        assert_eq!(m.phase(), Phase::Falling(2));
        assert!(m.phase().announced(), "still announced while falling");
        assert_eq!(m.observe(false).route, W);
        assert_eq!(m.phase(), Phase::Down);
        // Staying down repeats nothing.
        assert_eq!(feed(&mut m, &[false, false]), vec![None, None]);
    }

    #[test]
    fn failures_must_be_consecutive() {
        let mut m = Announcer::new(3, 3);
        feed(&mut m, &[true, true, true]);
        assert_eq!(feed(&mut m, &[false, false, true, false, false, true]), vec![None; 6]);
        assert_eq!(m.phase(), Phase::Up);
        assert_eq!(feed(&mut m, &[false, false, false]), vec![None, None, W]);
    }

    #[test]
    fn successes_must_be_consecutive() {
        let mut m = Announcer::new(3, 3);
        assert_eq!(feed(&mut m, &[true, true, false, true, true, false]), vec![None; 6]);
        assert_eq!(m.phase(), Phase::Down);
        assert_eq!(feed(&mut m, &[true, true, true]), vec![None, None, A]);
    }

    #[test]
    fn a_failure_at_start_is_down_without_an_action() {
        let mut m = Announcer::new(2, 2);
        let s = m.observe(false);
        assert_eq!((s.from, s.to, s.route), (Phase::Starting, Phase::Down, None));
        assert!(s.changed());
    }

    #[test]
    fn rise_and_fall_of_one_act_at_once() {
        let mut m = Announcer::new(1, 1);
        assert_eq!(feed(&mut m, &[true, false, true, false]), vec![A, W, A, W]);
        let mut m = Announcer::new(0, 0);
        assert_eq!((m.rise(), m.fall()), (1, 1));
        assert_eq!(feed(&mut m, &[true]), vec![A]);
    }

    #[test]
    fn shutdown_always_withdraws() {
        for prefix in [&[][..], &[true, true, true][..], &[false][..], &[true][..]] {
            let mut m = Announcer::new(3, 3);
            feed(&mut m, prefix);
            let s = m.shutdown();
            assert_eq!(s.route, W);
            assert_eq!(m.phase(), Phase::Down);
        }
    }

    #[test]
    fn describe_shows_progress() {
        let m = Announcer::new(3, 2);
        assert_eq!(m.describe(Phase::Rising(1)), "rising 1/3");
        assert_eq!(m.describe(Phase::Falling(1)), "falling 1/2 (still announced)");
    }
}
