//! Which toxics are active on one direction of a connection, and what they add up to.

use super::{Effect, RelayToxic, SplitMix64, lock};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// What the toxics active on one direction of a connection do, combined.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Active {
    /// The stream's timing toxics (`latency`, `bandwidth`, `slicer`), active or
    /// not, by name and revision: when this changes, what they hold goes out.
    pub timing_key: Vec<(String, u64)>,
    /// The active timing toxics, in the order they were added.
    pub timing: Vec<Effect>,
    /// The reset timeout (the shortest, if several `reset_peer` toxics are active).
    pub reset: Option<Duration>,
    /// Whether an active `timeout` toxic drops the data.
    pub drop: bool,
    /// When an active `timeout` toxic closes the connection (the earliest).
    pub close_at: Option<Instant>,
    /// The byte limit of the stream (the lowest, if several `limit_data` toxics are active).
    pub limit: Option<u64>,
    /// How late the end of the stream is passed on (active `slow_close` delays, added up).
    pub slow_close: Duration,
}

/// Whether each toxic is active on one direction of a connection, decided
/// once per toxic revision.
#[derive(Debug, Default)]
pub(super) struct Decisions {
    /// Toxic name → (revision decided for, since when it is active, if it is).
    by_name: HashMap<String, (u64, Option<Instant>)>,
}

impl Decisions {
    /// What the toxics of `rules` on this direction do now, drawing a decision
    /// from `rng` for every toxic revision not seen before.
    pub fn active(
        &mut self,
        rules: &[RelayToxic],
        upstream: bool,
        rng: &Mutex<SplitMix64>,
        now: Instant,
    ) -> Active {
        self.by_name
            .retain(|name, _| rules.iter().any(|rule| rule.name == *name));
        let mut active = Active::default();
        for rule in rules.iter().filter(|rule| rule.upstream == upstream) {
            let timing = matches!(
                rule.effect,
                Effect::Latency { .. } | Effect::Bandwidth { .. } | Effect::Slicer { .. }
            );
            if timing {
                active.timing_key.push((rule.name.clone(), rule.revision));
            }
            let since = match self.by_name.get(&rule.name) {
                Some((revision, since)) if *revision == rule.revision => *since,
                _ => {
                    let since = (lock(rng).next_f32() < rule.toxicity).then_some(now);
                    self.by_name
                        .insert(rule.name.clone(), (rule.revision, since));
                    since
                }
            };
            let Some(since) = since else { continue };
            match rule.effect {
                Effect::Latency { .. } | Effect::Bandwidth { .. } | Effect::Slicer { .. } => {
                    active.timing.push(rule.effect);
                }
                Effect::ResetPeer { timeout } => {
                    active.reset = Some(active.reset.map_or(timeout, |armed| armed.min(timeout)));
                }
                Effect::Timeout { close_after } => {
                    active.drop = true;
                    if let Some(close_at) = close_after.and_then(|after| since.checked_add(after)) {
                        active.close_at =
                            Some(active.close_at.map_or(close_at, |c| c.min(close_at)));
                    }
                }
                Effect::LimitData { bytes } => {
                    active.limit = Some(active.limit.map_or(bytes, |limit| limit.min(bytes)));
                }
                Effect::SlowClose { delay } => {
                    active.slow_close = active.slow_close.saturating_add(delay);
                }
            }
        }
        active
    }
}
