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
}
