//! A soak: a plan's phases repeated in cycles for hours, each cycle drawing its own
//! values (a phase's length, which fault, when a change is made) from the run's seed.
//!
//! The [`Soak`] says how long by default and when to stop early; [`PhaseDraws`] says
//! what a phase draws; [`Rng`] is the seeded generator every draw comes from, so the
//! same seed gives the same schedule.

use super::{Fault, PlannedPhase};
use std::time::Duration;

/// How a soak runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Soak {
    /// How long (the suite's default, or `tether run --cycles` / `--for`).
    pub length: SoakLength,
    /// Load without faults before the first cycle.
    pub warm_up: Duration,
    /// When the run ends early.
    pub stop_when: StopWhen,
}

/// How long a soak runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoakLength {
    /// This many cycles.
    Cycles(u32),
    /// As many whole cycles as fit in this time (at least one).
    For(Duration),
}

impl std::fmt::Display for SoakLength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SoakLength::Cycles(n) => write!(f, "{n} cycles"),
            SoakLength::For(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
    }
}

/// Stop conditions: the run ends early, heals and reports when one holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StopWhen {
    /// The outpost's load succeeds below a ratio for a number of seconds on end.
    pub success_below: Option<SuccessBelow>,
    /// This many cycles have failed a check.
    pub failed_cycles: Option<u32>,
}

/// A success ratio held too low for too long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuccessBelow {
    /// The ratio (0-1).
    pub ratio: f64,
    /// Seconds on end.
    pub seconds: u64,
}

/// What a phase draws each time it runs; empty for a phase that draws nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhaseDraws {
    /// Its length is drawn from `(shortest, longest)`.
    pub duration: Option<(Duration, Duration)>,
    /// The fault at this index of the phase's faults is drawn from these.
    pub faults: Vec<(usize, Vec<Fault>)>,
    /// The change at this index of the phase's changes is made at a time drawn from
    /// `(earliest, latest)` after the phase starts.
    pub changes_at: Vec<(usize, Duration, Duration)>,
}

/// A small seeded generator (splitmix64): the same seed and salt give the same draws.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`, told apart from others of the same seed by `salt`.
    pub fn new(seed: u64, salt: &str) -> Rng {
        let salted = salt.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        Rng(seed ^ salted)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A duration from `min` to `max`, to the millisecond.
    pub fn between(&mut self, min: Duration, max: Duration) -> Duration {
        let span = max.saturating_sub(min).as_millis() as u64;
        min + Duration::from_millis(self.next_u64() % (span + 1))
    }

    /// An index below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

impl PlannedPhase {
    /// This phase as one cycle runs it, starting at `start`: every drawn value drawn from
    /// `rng`, with a line per draw saying what was drawn.
    pub fn drawn(&self, start: Duration, rng: &mut Rng) -> (PlannedPhase, Vec<String>) {
        let mut phase = self.clone();
        phase.start = start;
        let mut said = Vec::new();
        if let Some((min, max)) = self.draws.duration {
            phase.duration = rng.between(min, max);
            said.push(format!(
                "{}: {}",
                self.name,
                humantime::format_duration(phase.duration)
            ));
        }
        for (i, choices) in &self.draws.faults {
            let fault = choices[rng.below(choices.len())].clone();
            said.push(format!("{}: {} {fault}", self.name, phase.faults[*i].0));
            phase.faults[*i].1 = fault;
        }
        for (i, min, max) in &self.draws.changes_at {
            // Never past the end of a phase drawn shorter.
            let latest = (*max).min(phase.duration.saturating_sub(Duration::from_millis(1)));
            let at = rng.between((*min).min(latest), latest);
            said.push(format!(
                "{}: change {} at {}",
                self.name,
                i + 1,
                humantime::format_duration(at)
            ));
            phase.changes[*i].0 = at;
        }
        phase.draws = PhaseDraws::default();
        (phase, said)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_values_and_another_seed_others() {
        let draw = |seed| {
            let mut rng = Rng::new(seed, "soak");
            (0..8)
                .map(|_| rng.between(Duration::from_secs(30), Duration::from_secs(90)))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert!(
            draw(7)
                .iter()
                .all(|d| d.as_secs() >= 30 && d.as_secs() <= 90)
        );
        let mut rng = Rng::new(1, "x");
        assert!((0..100).all(|_| rng.below(3) < 3));
    }
}
