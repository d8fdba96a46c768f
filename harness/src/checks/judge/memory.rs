//! Memory drift: no part's memory grows faster than a bound, judged by the slope of a
//! straight line fitted (least squares) through its samples, as Istio's long-running
//! tests judge a sidecar by its growth rather than its level.
//!
//! [`Drift`] keeps only sums per part, so a soak of any length is judged in a few bytes.

use super::{Judged, measure, verdict};
use crate::checks::names;
use crate::timeline::{Entry, Event};
use std::collections::BTreeMap;

/// Fewest samples of a part, and shortest stretch, a slope is fitted over.
const MIN_SAMPLES: f64 = 10.0;
const MIN_SPAN_MS: u64 = 10_000;

/// The running sums of a least-squares line through one part's samples.
#[derive(Debug, Clone, Default, PartialEq)]
struct Fit {
    /// The first sample (ms, bytes): the origin, which keeps the sums small.
    origin: Option<(u64, u64)>,
    n: f64,
    st: f64,
    sy: f64,
    stt: f64,
    sty: f64,
    last: (u64, u64),
}

impl Fit {
    fn add(&mut self, t_ms: u64, bytes: u64) {
        let (t0, y0) = *self.origin.get_or_insert((t_ms, bytes));
        let t = t_ms.saturating_sub(t0) as f64 / 3_600_000.0;
        let y = bytes as f64 - y0 as f64;
        self.n += 1.0;
        self.st += t;
        self.sy += y;
        self.stt += t * t;
        self.sty += t * y;
        self.last = (t_ms, bytes);
    }

    /// Bytes per hour, when there are enough samples over a long enough stretch.
    fn slope(&self) -> Option<f64> {
        let (t0, _) = self.origin?;
        let denominator = self.n * self.stt - self.st * self.st;
        let enough = self.n >= MIN_SAMPLES && self.last.0.saturating_sub(t0) >= MIN_SPAN_MS;
        (enough && denominator > 0.0).then(|| (self.n * self.sty - self.st * self.sy) / denominator)
    }
}

/// Memory samples of every part, fitted as they come.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drift {
    /// From when samples count, and until when (ms since the run began).
    from_ms: u64,
    until_ms: u64,
    /// Only these parts (all when empty).
    parts: Vec<String>,
    fits: BTreeMap<String, Fit>,
}

impl Drift {
    /// Fit the samples in `[from_ms, until_ms)` of `parts` (all when empty).
    pub fn new(from_ms: u64, until_ms: u64, parts: Vec<String>) -> Drift {
        Drift {
            from_ms,
            until_ms,
            parts,
            fits: BTreeMap::new(),
        }
    }

    /// Take one entry: a memory sample counts, anything else is ignored.
    pub fn add(&mut self, entry: &Entry) {
        let (part, bytes) = match &entry.event {
            Event::EnvoySample {
                node,
                memory_allocated: Some(bytes),
                ..
            } => (format!("envoy/{node}"), *bytes),
            Event::ProcessMemory { part, rss_bytes } => (part.clone(), *rss_bytes),
            _ => return,
        };
        let counted = (self.from_ms..self.until_ms).contains(&entry.t_ms)
            && (self.parts.is_empty() || self.parts.contains(&part));
        if counted {
            self.fits.entry(part).or_default().add(entry.t_ms, bytes);
        }
    }

    /// The verdict: every part's slope at most `max_per_hour`.
    pub fn judge(&self, max_per_hour: f64) -> Judged {
        if self.fits.is_empty() {
            return Err(
                "no memory samples to judge (is the run long enough after its warm-up?)".into(),
            );
        }
        let mut measurements = Vec::new();
        let mut over = Vec::new();
        let mut shown = Vec::new();
        let mut worst_at = None;
        for (part, fit) in &self.fits {
            let Some(slope) = fit.slope() else {
                return Err(format!(
                    "too few memory samples of `{part}` to fit a line (at least {MIN_SAMPLES} over {} s)",
                    MIN_SPAN_MS / 1000
                ));
            };
            measurements.push(measure(
                names::MEMORY_DRIFT.of(part),
                slope,
                "bytes/h",
                Some(max_per_hour),
            ));
            measurements.push(measure(
                names::MEMORY_BYTES.of(part),
                fit.last.1 as f64,
                "bytes",
                None,
            ));
            shown.push(format!("{part} {}/h", size(slope)));
            if slope > max_per_hour {
                over.push(format!("{part} grew {}/h", size(slope)));
                worst_at = Some(fit.last.0);
            }
        }
        let passed = over.is_empty();
        let detail = if passed {
            format!(
                "no part's memory grew faster than {}/h: {}",
                size(max_per_hour),
                shown.join(", ")
            )
        } else {
            format!(
                "memory grew faster than {}/h: {}",
                size(max_per_hour),
                over.join("; ")
            )
        };
        Ok(verdict(passed, detail, measurements, worst_at))
    }
}

/// `1.2 MiB`, `-3.4 KiB`.
fn size(bytes: f64) -> String {
    let abs = bytes.abs();
    if abs >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", bytes / 1024.0 / 1024.0)
    } else if abs >= 1024.0 {
        format!("{:.1} KiB", bytes / 1024.0)
    } else {
        format!("{bytes:.0} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_ms: u64, part: &str, bytes: u64) -> Entry {
        Entry {
            t_ms,
            event: Event::ProcessMemory {
                part: part.into(),
                rss_bytes: bytes,
            },
        }
    }

    #[test]
    fn a_flat_part_passes_a_growing_one_fails_and_too_few_samples_cannot_judge() {
        let mut drift = Drift::new(0, u64::MAX, Vec::new());
        for i in 0..60u64 {
            // Flat with noise; the other grows 1 KiB a second (3.5 MiB an hour).
            drift.add(&sample(i * 1000, "tether", 50_000_000 + (i % 3) * 4096));
            drift.add(&sample(i * 1000, "control-plane", 20_000_000 + i * 1024));
        }
        let v = drift.judge(1024.0 * 1024.0).unwrap();
        assert!(!v.passed(), "{}", v.detail);
        assert!(
            v.detail.contains("control-plane grew 3.5 MiB/h"),
            "{}",
            v.detail
        );
        assert!(!v.detail.contains("tether grew"), "{}", v.detail);
        let mut only_tether = Drift::new(0, u64::MAX, vec!["tether".into()]);
        for i in 0..60u64 {
            only_tether.add(&sample(i * 1000, "tether", 50_000_000 + (i % 3) * 4096));
            only_tether.add(&sample(i * 1000, "control-plane", 20_000_000 + i * 1024));
        }
        assert!(only_tether.judge(1024.0 * 1024.0).unwrap().passed());
        let mut few = Drift::new(0, u64::MAX, Vec::new());
        few.add(&sample(0, "tether", 1));
        assert!(few.judge(1.0).is_err());
        assert!(Drift::default().judge(1.0).is_err());
    }

    #[test]
    fn samples_before_the_warm_up_ends_do_not_count() {
        let mut drift = Drift::new(30_000, u64::MAX, Vec::new());
        for i in 0..90u64 {
            // Grows fast while warming up, then flat.
            let bytes = 10_000_000 + i.min(30) * 100_000;
            drift.add(&sample(i * 1000, "tether", bytes));
        }
        assert!(drift.judge(1024.0).unwrap().passed());
    }
}
