//! What a run prints as it goes: a line per step, stamped with the run's clock, and a
//! summary of each phase's load once its last requests have answered or timed out.

use crate::checks;
use crate::timeline::Timeline;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// The progress lines of one run (silent when `enabled` is false).
#[derive(Clone)]
pub struct Console {
    enabled: bool,
    timeline: Timeline,
    /// How long a request may take: a phase's summary waits that long (and a margin).
    load_timeout: Duration,
    /// Summarise each phase's load (off in a soak: it prints a line per cycle instead).
    per_phase: bool,
    summaries: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Console {
    /// Lines stamped with `timeline`'s clock, on stderr when `enabled`.
    pub fn new(enabled: bool, timeline: &Timeline, load_timeout: Duration) -> Console {
        Console {
            enabled,
            timeline: timeline.clone(),
            load_timeout,
            per_phase: true,
            summaries: Arc::default(),
        }
    }

    /// The same console without the phase summaries: a soak prints a line per cycle
    /// (and keeps no timeline in memory to summarise from).
    pub fn per_cycle(self) -> Console {
        Console {
            per_phase: false,
            ..self
        }
    }

    /// Print `msg` as `[   5.7s] msg`.
    pub fn line(&self, msg: &str) {
        if self.enabled {
            eprintln!(
                "[{:>6.1}s] {msg}",
                self.timeline.elapsed_ms() as f64 / 1000.0
            );
        }
    }

    /// A phase is over: summarize its load once its last requests are on the timeline.
    pub fn phase_ended(&self, phase: &str) {
        if !self.enabled || !self.per_phase {
            return;
        }
        let (console, phase) = (self.clone(), phase.to_string());
        let task = tokio::spawn(async move {
            tokio::time::sleep(console.load_timeout + Duration::from_millis(3000)).await;
            console.summarize(&phase);
        });
        self.summaries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }

    /// Wait for every phase summary to be printed.
    pub async fn finish(&self) {
        let tasks: Vec<_> = self
            .summaries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }

    fn summarize(&self, phase: &str) {
        let entries = self.timeline.entries();
        let Some(figures) = checks::phase_figures(&entries)
            .into_iter()
            .find(|f| f.phase == phase)
        else {
            return;
        };
        let served: Vec<String> = figures
            .served_by
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let mut latency = figures.latency_ms.map_or_else(
            || "no answers".to_string(),
            |l| {
                format!(
                    "response time p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms",
                    l.p50, l.p99, l.p999
                )
            },
        );
        if let Some(s) = figures.service_ms {
            latency.push_str(&format!(
                " (service time p50 {:.1} ms, p99 {:.1} ms)",
                s.p50, s.p99
            ));
        }
        self.line(&format!(
            "  phase {phase} done: {}/{} requests ok ({:.1}%), {latency}; served by: {}",
            figures.ok,
            figures.requests,
            figures.success_ratio() * 100.0,
            served.join(", ")
        ));
    }
}
