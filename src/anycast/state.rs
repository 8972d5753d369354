//! The announce/withdraw state machine: rise/fall counting, no I/O, no clock.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Announce,
    Withdraw,
}

/// What one check result did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub from: Phase,
    pub to: Phase,
    /// What to tell ExaBGP now, if anything.
    pub action: Option<Action>,
}

impl Step {
    pub fn changed(&self) -> bool {
        self.from != self.to
    }
}

#[derive(Debug, Clone)]
pub struct Machine {
    rise: u32,
    fall: u32,
    phase: Phase,
}

impl Machine {
    /// `rise` and `fall` below 1 are taken as 1.
    pub fn new(rise: u32, fall: u32) -> Machine {
        Machine { rise: rise.max(1), fall: fall.max(1), phase: Phase::Starting }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn rise(&self) -> u32 {
        self.rise
    }

    pub fn fall(&self) -> u32 {
        self.fall
    }

    /// Feed one check result (`false` for a failed or errored check).
    pub fn observe(&mut self, healthy: bool) -> Step {
        let from = self.phase;
        let (to, action) = match (from, healthy) {
            (Phase::Starting | Phase::Down, true) => self.rising(1),
            (Phase::Rising(n), true) => self.rising(n + 1),
            (Phase::Up | Phase::Falling(_), true) => (Phase::Up, None),
            (Phase::Starting | Phase::Rising(_) | Phase::Down, false) => (Phase::Down, None),
            (Phase::Up, false) => self.falling(1),
            (Phase::Falling(n), false) => self.falling(n + 1),
        };
        self.phase = to;
        Step { from, to, action }
    }

    /// Shutting down: always withdraw (harmless when nothing is announced).
    pub fn shutdown(&mut self) -> Step {
        let from = self.phase;
        self.phase = Phase::Down;
        Step { from, to: Phase::Down, action: Some(Action::Withdraw) }
    }

    fn rising(&self, n: u32) -> (Phase, Option<Action>) {
        if n >= self.rise {
            (Phase::Up, Some(Action::Announce))
        } else {
            (Phase::Rising(n), None)
        }
    }

    fn falling(&self, n: u32) -> (Phase, Option<Action>) {
        if n >= self.fall {
            (Phase::Down, Some(Action::Withdraw))
        } else {
            (Phase::Falling(n), None)
        }
    }

    /// The phase with its progress, e.g. `rising 2/3`.
    pub fn describe(&self, p: Phase) -> String {
        match p {
            Phase::Starting => "starting".into(),
            Phase::Rising(n) => format!("rising {n}/{}", self.rise),
            Phase::Up => "up (announced)".into(),
            Phase::Falling(n) => format!("falling {n}/{} (still announced)", self.fall),
            Phase::Down => "down (withdrawn)".into(),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Announce => "announce",
            Action::Withdraw => "withdraw",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(m: &mut Machine, results: &[bool]) -> Vec<Option<Action>> {
        results.iter().map(|&ok| m.observe(ok).action).collect()
    }

    const A: Option<Action> = Some(Action::Announce);
    const W: Option<Action> = Some(Action::Withdraw);

    #[test]
    fn announces_after_rise_successes_from_start() {
        let mut m = Machine::new(3, 3);
        assert!(!m.phase().announced());
        assert_eq!(feed(&mut m, &[true, true]), vec![None, None]);
        assert_eq!(m.phase(), Phase::Rising(2));
        assert!(!m.phase().announced());
        assert_eq!(m.observe(true).action, A);
        assert_eq!(m.phase(), Phase::Up);
        // Staying healthy repeats nothing.
        assert_eq!(feed(&mut m, &[true, true, true]), vec![None, None, None]);
    }

    #[test]
    fn withdraws_after_fall_failures() {
        let mut m = Machine::new(3, 3);
        feed(&mut m, &[true, true, true]);
        assert_eq!(feed(&mut m, &[false, false]), vec![None, None]);
        assert_eq!(m.phase(), Phase::Falling(2));
        assert!(m.phase().announced(), "still announced while falling");
        assert_eq!(m.observe(false).action, W);
        assert_eq!(m.phase(), Phase::Down);
        // Staying down repeats nothing.
        assert_eq!(feed(&mut m, &[false, false]), vec![None, None]);
    }

    #[test]
    fn failures_must_be_consecutive() {
        let mut m = Machine::new(3, 3);
        feed(&mut m, &[true, true, true]);
        assert_eq!(feed(&mut m, &[false, false, true, false, false, true]), vec![None; 6]);
        assert_eq!(m.phase(), Phase::Up);
        assert_eq!(feed(&mut m, &[false, false, false]), vec![None, None, W]);
    }

    #[test]
    fn successes_must_be_consecutive() {
        let mut m = Machine::new(3, 3);
        assert_eq!(feed(&mut m, &[true, true, false, true, true, false]), vec![None; 6]);
        assert_eq!(m.phase(), Phase::Down);
        assert_eq!(feed(&mut m, &[true, true, true]), vec![None, None, A]);
    }

    #[test]
    fn a_failure_at_start_is_down_without_an_action() {
        let mut m = Machine::new(2, 2);
        let s = m.observe(false);
        assert_eq!((s.from, s.to, s.action), (Phase::Starting, Phase::Down, None));
        assert!(s.changed());
    }

    #[test]
    fn rise_and_fall_of_one_act_at_once() {
        let mut m = Machine::new(1, 1);
        assert_eq!(feed(&mut m, &[true, false, true, false]), vec![A, W, A, W]);
        let mut m = Machine::new(0, 0);
        assert_eq!((m.rise(), m.fall()), (1, 1));
        assert_eq!(feed(&mut m, &[true]), vec![A]);
    }

    #[test]
    fn shutdown_always_withdraws() {
        for prefix in [&[][..], &[true, true, true][..], &[false][..], &[true][..]] {
            let mut m = Machine::new(3, 3);
            feed(&mut m, prefix);
            let s = m.shutdown();
            assert_eq!(s.action, W);
            assert_eq!(m.phase(), Phase::Down);
        }
    }

    #[test]
    fn describe_shows_progress() {
        let m = Machine::new(3, 2);
        assert_eq!(m.describe(Phase::Rising(1)), "rising 1/3");
        assert_eq!(m.describe(Phase::Falling(1)), "falling 1/2 (still announced)");
    }
}
