//! Reporters: render verdicts and the timeline; they never judge.
//!
//! Every format is rendered from the same [`RunInfo`], verdicts and timeline entries:
//! the console table, `result.json` (the typed [`crate::result::RunResult`]),
//! `junit.xml`, `summary.yaml` and `report.html`.

pub mod comparison;
pub mod console;
pub mod html;
pub mod json;
pub mod junit;
pub mod summary;

use crate::result::RunInfo;

use crate::checks::Verdict;
use crate::timeline::Entry;
use anyhow::{Context, Result};
use std::path::Path;

/// Write `result.json`, `junit.xml`, `summary.yaml` and `report.html` into `dir`.
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
    // Figures describe each phase; like verdicts they are read off the timeline.
    let phases = crate::checks::phase_figures(entries);
    write("result.json", json::render(info, verdicts, &phases)?)?;
    write("junit.xml", junit::render(info, verdicts)?)?;
    write("summary.yaml", summary::render(info, verdicts))?;
    write(
        "report.html",
        html::render(info, verdicts, &phases, entries),
    )?;
    Ok(())
}
