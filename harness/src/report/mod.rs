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

use crate::checks::{SoakSummary, Verdict};
use crate::timeline::Entry;
use anyhow::{Context, Result};
use std::path::Path;

/// What the reports are rendered from: a run's verdicts with its timeline, or a soak's
/// verdicts with what its cycles gave (its timeline stays on disk).
#[derive(Debug, Clone, Copy)]
pub enum Judged<'a> {
    /// A run of phases: the timeline itself.
    Run(&'a [Entry]),
    /// A soak: its cycles.
    Soak(&'a SoakSummary),
}

/// Write `result.json`, `junit.xml`, `summary.yaml` and `report.html` into `dir`. Each
/// is written beside and then moved over the one before, so a run killed while writing
/// leaves the last whole report.
pub fn write_all(
    dir: &Path,
    info: &RunInfo,
    verdicts: &[Verdict],
    judged: Judged<'_>,
) -> Result<()> {
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        let partial = dir.join(format!(".{name}.partial"));
        std::fs::write(&partial, text)
            .and_then(|()| std::fs::rename(&partial, &path))
            .with_context(|| format!("cannot write {}", path.display()))
    };
    let (entries, soak) = match judged {
        Judged::Run(entries) => (entries, None),
        Judged::Soak(soak) => (&[][..], Some(soak)),
    };
    // Figures describe each phase; like verdicts they are read off the timeline.
    let phases = crate::checks::phase_figures(entries);
    write("result.json", json::render(info, verdicts, &phases, soak)?)?;
    write("junit.xml", junit::render(info, verdicts)?)?;
    write("summary.yaml", summary::render(info, verdicts, soak))?;
    write(
        "report.html",
        html::render(info, verdicts, &phases, entries, soak),
    )?;
    Ok(())
}
