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
pub mod signoff;
pub mod summary;

use crate::result::RunInfo;

use crate::checks::{Outcome, SoakSummary, Verdict};
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
    write("junit.xml", junit::render(info, verdicts, &phases)?)?;
    write("summary.yaml", summary::render(info, verdicts, soak))?;
    write(
        "report.html",
        html::render(info, verdicts, &phases, entries, soak),
    )?;
    Ok(())
}

/// The verdicts `junit.xml` and `summary.yaml` list: the checks', and, when the run did
/// not finish, one more unknown verdict (`run_complete`) saying so, so that no CI system
/// or conformance reader takes an unfinished run for a green one.
pub fn listed(info: &RunInfo, verdicts: &[Verdict]) -> Vec<Verdict> {
    let mut listed = verdicts.to_vec();
    if info.incomplete || info.interrupted {
        listed.push(Verdict {
            name: RUN_COMPLETE.into(),
            outcome: Outcome::Unknown,
            detail: if info.incomplete {
                "the run did not finish (killed or crashed): its timeline has no run_ended entry; the verdicts judge only what it recorded"
            } else {
                "the run was interrupted before all phases ran"
            }
            .into(),
            measurements: Vec::new(),
            failed_at_ms: None,
            phase: None,
        });
    }
    listed
}

/// The name of the verdict [`listed`] adds for a run that did not finish.
pub const RUN_COMPLETE: &str = "run_complete";
