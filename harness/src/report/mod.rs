//! Reporters: render verdicts and the timeline; they never judge.
//!
//! Every format is rendered from the same [`RunInfo`], verdicts and timeline entries:
//! the console table, `result.json`, `junit.xml` and `report.html`.

pub mod console;
pub mod html;
pub mod json;
pub mod junit;

use crate::checks::Verdict;
use crate::timeline::Entry;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

/// Facts about a run that every report shows.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// Suite name.
    pub suite: String,
    /// Suite file.
    pub suite_path: String,
    /// Suite text as run.
    pub suite_text: String,
    /// Start time (UTC, RFC 3339).
    pub started_at: String,
    /// Wall time of the whole run, bring-up and teardown included.
    pub duration_s: f64,
    /// Seed.
    pub seed: u64,
    /// `envoy --version`.
    pub envoy_version: String,
    /// Backend name.
    pub backend: String,
    /// The run was interrupted before all phases ran.
    pub interrupted: bool,
}

/// Write `result.json`, `junit.xml` and `report.html` into `dir`.
pub fn write_all(
    dir: &Path,
    info: &RunInfo,
    verdicts: &[Verdict],
    entries: &[Entry],
) -> Result<()> {
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write("result.json", json::render(info, verdicts)?)?;
    write("junit.xml", junit::render(info, verdicts)?)?;
    write("report.html", html::render(info, verdicts, entries))?;
    Ok(())
}
