//! The timeline: one clock, an append-only list of everything that happened in a run.
//!
//! Every part of a run writes here (disruptions, mesh changes, xDS pushes and ACKs,
//! per-second load results, Envoy samples) and checks read only from here. Entries are
//! streamed to `timeline.jsonl` as they are recorded, so a killed run still leaves what
//! it saw. What can happen is [`Event`] ([`event`]); load figures are in [`load`].
//!
//! A long run (a soak) keeps nothing in memory ([`Timeline::keep_nothing`]): its entries
//! go to disk and to whoever listens ([`Timeline::listen`]), and [`cycles`] groups them
//! into the soak's cycles as they come, so each cycle is judged from what it recorded.

pub mod cycles;
pub mod event;
pub mod load;

pub use event::{Event, LoadKind, XdsKind};
pub use load::{
    Latency, LoadRun, LoadSecond, Percentiles, decode_histogram, encode_histogram, histogram,
    merge_histograms, merge_latency,
};

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the UNIX epoch: the one clock every process of a run shares.
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Now, in µs since the UNIX epoch (for clock offsets between machines).
pub fn now_unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// This process's resident memory in bytes (`/proc/self/statm`; 0 where there is none).
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(0) as u64
}

/// One entry: when it happened (ms since the run started) and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Milliseconds since the start of the run.
    pub t_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// An append-only timeline shared by every part of a run, streamed to disk as it grows.
#[derive(Clone)]
pub struct Timeline {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    start_unix_ms: u64,
    /// Set for a timeline on tokio's clock (tests with paused time).
    tokio_start: Option<tokio::time::Instant>,
    entries: Vec<Entry>,
    /// Keep entries in memory (false for a soak: they go to disk and listeners only).
    keep: bool,
    sink: Option<BufWriter<File>>,
    listeners: Vec<Listener>,
}

/// Called with every entry as it is recorded.
pub type Listener = Arc<dyn Fn(&Entry) + Send + Sync>;

impl std::fmt::Debug for Timeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeline").finish_non_exhaustive()
    }
}

impl Timeline {
    /// A timeline whose clock starts now, kept in memory only.
    pub fn new() -> Self {
        Self::starting_at(now_unix_ms())
    }

    /// A timeline whose clock started at `start_unix_ms`.
    pub fn starting_at(start_unix_ms: u64) -> Self {
        Timeline {
            inner: Arc::new(Mutex::new(Inner {
                start_unix_ms,
                tokio_start: None,
                entries: Vec::new(),
                keep: true,
                sink: None,
                listeners: Vec::new(),
            })),
        }
    }

    /// Also write every entry, as it is recorded, to a JSONL file at `path`.
    pub fn stream_to(&self, path: &Path) -> std::io::Result<()> {
        let file = BufWriter::new(File::create(path)?);
        self.lock().sink = Some(file);
        Ok(())
    }

    /// Keep no entry in memory from now on: they go to the stream and the listeners
    /// only, so a run of any length holds none of its timeline ([`Timeline::entries`]
    /// is then empty).
    pub fn keep_nothing(&self) {
        let mut inner = self.lock();
        inner.keep = false;
        inner.entries = Vec::new();
    }

    /// Call `listener` with every entry recorded from now on (outside the timeline's
    /// lock, in the recording task: it must be quick).
    pub fn listen(&self, listener: Listener) {
        self.lock().listeners.push(listener);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave an entry half-written, so keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The UNIX time (ms) the clock started at.
    pub fn start_unix_ms(&self) -> u64 {
        self.lock().start_unix_ms
    }

    /// A timeline whose clock is tokio's and starts now, so a test with paused time
    /// (`#[tokio::test(start_paused = true)]`) records exactly the times it sleeps to.
    /// Times reported by other processes (UNIX ms) are still taken as they come.
    pub fn on_tokio_clock() -> Self {
        let timeline = Self::new();
        timeline.lock().tokio_start = Some(tokio::time::Instant::now());
        timeline
    }

    /// Milliseconds since the start of the run.
    pub fn elapsed_ms(&self) -> u64 {
        let inner = self.lock();
        match inner.tokio_start {
            Some(start) => start.elapsed().as_millis() as u64,
            None => now_unix_ms().saturating_sub(inner.start_unix_ms),
        }
    }

    /// Record an event that happens now.
    pub fn record(&self, event: Event) {
        let t_ms = self.elapsed_ms();
        self.record_at(t_ms, event);
    }

    /// Record an event that happened at a UNIX time (ms), as other processes report it.
    pub fn record_at_unix(&self, unix_ms: u64, event: Event) {
        let t_ms = unix_ms.saturating_sub(self.start_unix_ms());
        self.record_at(t_ms, event);
    }

    /// Record an event at `t_ms` since the start.
    pub fn record_at(&self, t_ms: u64, event: Event) {
        let entry = Entry { t_ms, event };
        let listeners = {
            let mut inner = self.lock();
            if let Some(sink) = inner.sink.as_mut() {
                // Losing the disk copy must not stop the run; the in-memory copy (or the
                // listeners') still holds it.
                let _ = serde_json::to_writer(&mut *sink, &entry);
                let _ = sink.write_all(b"\n");
                let _ = sink.flush();
            }
            let listeners = inner.listeners.clone();
            if inner.keep {
                inner.entries.push(entry.clone());
            }
            listeners
        };
        for listener in listeners {
            listener(&entry);
        }
    }

    /// A copy of every entry so far, in time order.
    pub fn entries(&self) -> Vec<Entry> {
        let mut entries = self.lock().entries.clone();
        entries.sort_by_key(|e| e.t_ms);
        entries
    }

    /// Read a timeline back from a JSONL file written by [`Timeline::stream_to`], in time
    /// order. A last line cut short (no newline after it: the writer was killed
    /// mid-line) is left out; any other bad line is an error naming `file:line:column`.
    pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        Self::each_jsonl(path, |e| entries.push(e))?;
        entries.sort_by_key(|e| e.t_ms);
        Ok(entries)
    }

    /// Call `each` with every entry of a JSONL timeline, in the order written, one line
    /// in memory at a time (as [`Timeline::read_jsonl`] reads it).
    pub fn each_jsonl(path: &Path, mut each: impl FnMut(Entry)) -> anyhow::Result<()> {
        let file = File::open(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read the timeline: {e}", path.display()))?;
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        let mut number = 0;
        loop {
            line.clear();
            let read = reader.read_line(&mut line).map_err(|e| {
                anyhow::anyhow!("{}: cannot read the timeline: {e}", path.display())
            })?;
            if read == 0 {
                return Ok(());
            }
            number += 1;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Entry>(&line) {
                Ok(entry) => each(entry),
                // Only the last line can lack its newline.
                Err(_) if !line.ends_with('\n') => return Ok(()),
                Err(e) => {
                    let message = e.to_string();
                    let suffix = format!(" at line {} column {}", e.line(), e.column());
                    anyhow::bail!(
                        "{}:{}:{}: {}",
                        path.display(),
                        number,
                        e.column().max(1),
                        message.strip_suffix(&suffix).unwrap_or(&message)
                    );
                }
            }
        }
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_entries_to_jsonl_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timeline.jsonl");
        let timeline = Timeline::starting_at(1_000);
        timeline.stream_to(&path).unwrap();
        let disruption = crate::plan::Disruption::Link {
            link: crate::plan::Link::Xds,
            fault: crate::plan::Fault::Blackhole,
            flapping: false,
        };
        timeline.record_at_unix(
            3_500,
            Event::FaultApplied {
                draw: disruption.draw(),
                disruption,
                applied: vec!["xds: timeout downstream {\"timeout\":0}".into()],
            },
        );
        timeline.record_at(
            1_000,
            Event::PhaseStarted {
                phase: "baseline".into(),
                duration_ms: 5_000,
            },
        );
        let back = Timeline::read_jsonl(&path).unwrap();
        assert_eq!(back, timeline.entries());
        assert_eq!(back[0].t_ms, 1_000);
        assert_eq!(back[1].t_ms, 2_500);
    }

    #[test]
    fn a_line_cut_by_a_kill_is_left_out_and_a_bad_line_is_named_by_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timeline.jsonl");
        let good = r#"{"t_ms":5,"kind":"run_ended","reason":"completed"}"#;
        std::fs::write(&path, format!("{good}\n{{\"t_ms\":7,\"kind\":\"pha")).unwrap();
        assert_eq!(Timeline::read_jsonl(&path).unwrap().len(), 1);
        std::fs::write(&path, format!("{good}\n{{\"t_ms\": true}}\n{good}\n")).unwrap();
        let err = Timeline::read_jsonl(&path).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:2:", path.display())), "{err}");
        assert!(!err.contains(" at line "), "{err}");
    }
}
