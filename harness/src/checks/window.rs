//! Finding things on the timeline: phase windows, samples and events within them.

use crate::timeline::{Entry, Event};

/// A stretch of the timeline, `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start, ms since the run began.
    pub start_ms: u64,
    /// End (exclusive).
    pub end_ms: u64,
}

impl Window {
    /// The window of phase `name`, from its `PhaseStarted` entry.
    pub fn of_phase(entries: &[Entry], name: &str) -> Option<Window> {
        entries.iter().find_map(|e| match &e.event {
            Event::PhaseStarted { phase, duration_ms } if phase == name => Some(Window {
                start_ms: e.t_ms,
                end_ms: e.t_ms + duration_ms,
            }),
            _ => None,
        })
    }

    /// Is `t_ms` inside?
    pub fn contains(&self, t_ms: u64) -> bool {
        (self.start_ms..self.end_ms).contains(&t_ms)
    }

    /// Does the second of load `[t_ms, t_ms + 1000)` belong here? Load is recorded a
    /// second at a time on the run's clock while phases start when they are carried out,
    /// so a second can straddle two phases; it belongs to the one that holds its middle.
    /// Every second is then judged in exactly one phase, and never more than half of it
    /// in the wrong one (judged by its start, a second that began 190 ms before a heal
    /// counted the heal's first 810 ms, and their errors, in the partition).
    pub fn holds_second(&self, t_ms: u64) -> bool {
        self.contains(t_ms + 500)
    }
}
