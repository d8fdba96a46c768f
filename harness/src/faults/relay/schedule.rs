//! When each piece of a direction's data is due, under its timing toxics
//! (`latency`, `bandwidth`, `slicer`), computed when the data is read.

use super::{Effect, SplitMix64};
use bytes::Bytes;
use std::time::Duration;
use tokio::time::Instant;

/// A `bandwidth` toxic cuts chunks into pieces of at most this much of its rate.
const BANDWIDTH_PIECE: Duration = Duration::from_millis(100);

/// A piece of data and when it may be written.
pub(super) type Piece = (Bytes, Instant);

/// The timing toxics of one direction, in order, each with the earliest time
/// its next piece may leave it (which keeps the pieces in order).
pub(super) struct Schedule {
    stages: Vec<(Effect, Instant)>,
}

impl Schedule {
    /// A schedule for `timing`, starting `now`.
    pub fn new(timing: &[Effect], now: Instant) -> Self {
        Schedule {
            stages: timing.iter().map(|effect| (*effect, now)).collect(),
        }
    }

    /// Cuts `data`, read at `read_at`, into pieces with when each is due: it
    /// passes the stages in order, and each stage delays, paces or slices what
    /// comes out of the one before. `draws` gives jitter and slice sizes.
    pub fn pieces(&mut self, data: Bytes, read_at: Instant, draws: &mut SplitMix64) -> Vec<Piece> {
        let mut pieces = vec![(data, read_at)];
        for (effect, next) in &mut self.stages {
            pieces = match *effect {
                Effect::Latency { latency, jitter } => pieces
                    .into_iter()
                    .map(|(data, at)| {
                        let due = at
                            .checked_add(draws.jittered(latency, jitter))
                            .unwrap_or(at);
                        *next = due.max(*next);
                        (data, *next)
                    })
                    .collect(),
                Effect::Bandwidth { bytes_per_ms } => {
                    let most = usize::try_from(
                        bytes_per_ms.saturating_mul(BANDWIDTH_PIECE.as_millis() as u64),
                    )
                    .unwrap_or(usize::MAX);
                    let mut paced = Vec::with_capacity(pieces.len());
                    for (data, at) in pieces {
                        for part in split_every(data, most) {
                            // Serialised: it starts when it arrives or the previous one is done.
                            let takes = transmit_time(part.len(), bytes_per_ms);
                            let done = at.max(*next);
                            *next = done.checked_add(takes).unwrap_or(done);
                            paced.push((part, *next));
                        }
                    }
                    paced
                }
                Effect::Slicer {
                    average_size,
                    size_variation,
                    delay,
                } => {
                    let mut sliced = Vec::with_capacity(pieces.len());
                    for (mut data, at) in pieces {
                        while !data.is_empty() {
                            let size = draws.spread(average_size, size_variation).max(1);
                            let size = usize::try_from(size).unwrap_or(usize::MAX).min(data.len());
                            let due = at.max(*next);
                            *next = due.checked_add(delay).unwrap_or(due);
                            sliced.push((data.split_to(size), due));
                        }
                    }
                    sliced
                }
                // Only timing toxics are stages.
                _ => pieces,
            };
        }
        pieces
    }
}

/// `data` cut into parts of at most `most` bytes (at least 1).
fn split_every(mut data: Bytes, most: usize) -> Vec<Bytes> {
    let most = most.max(1);
    let mut parts = Vec::with_capacity(data.len().div_ceil(most));
    while data.len() > most {
        parts.push(data.split_to(most));
    }
    parts.push(data);
    parts
}

/// How long `len` bytes take at `bytes_per_ms` (above 0).
fn transmit_time(len: usize, bytes_per_ms: u64) -> Duration {
    let nanos = (len as u128 * 1_000_000) / u128::from(bytes_per_ms.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}
