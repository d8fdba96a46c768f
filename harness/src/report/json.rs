//! `result.json`: the machine-readable result, [`RunResult`] as JSON (its schema,
//! generated from the type, is `harness/schema/result.schema.json`).

use crate::checks::{PhaseFigures, SoakSummary, Verdict};
use crate::result::{RunInfo, RunResult};

/// Render `result.json`.
pub fn render(
    info: &RunInfo,
    verdicts: &[Verdict],
    phases: &[PhaseFigures],
    soak: Option<&SoakSummary>,
) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&RunResult::new(info, verdicts, phases, soak))
}
