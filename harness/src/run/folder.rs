//! A run folder holds everything needed to judge and render its run again: the suite as
//! run (`suite.yaml`, its text unchanged), the mesh fixture (`mesh.yaml`), the schedule
//! it carried out (`schedule.json`), what was known about the run (`run.json`) and the
//! timeline (`timeline.jsonl`, streamed as recorded).
//!
//! [`report`] is `tether report RUN_DIR`: it reads those files, judges the timeline again
//! with the suite's checks ([`checks::evaluate`]) and rewrites the reports, so a run that
//! was killed still yields reports, marked incomplete.

use super::exit;
use crate::checks::{self, SoakJudge, SoakSummary, Verdict};
use crate::plan::{Plan, Schedule};
use crate::report::{self, Judged};
use crate::result::RunInfo;
use crate::suite;
use crate::timeline::cycles::Cycles;
use crate::timeline::{Entry, Event, Timeline};
use anyhow::{Context, Result};
use std::path::Path;

/// The suite as run (its text unchanged; its `mesh:` is superseded by [`MESH`]).
pub const SUITE: &str = "suite.yaml";
/// The mesh fixture as run.
pub const MESH: &str = "mesh.yaml";
/// The schedule the run carried out: [`Schedule`] as JSON.
pub const SCHEDULE: &str = "schedule.json";
/// What was known about the run: [`RunInfo`] as JSON.
pub const RUN: &str = "run.json";
/// The timeline, one entry a line.
pub const TIMELINE: &str = "timeline.jsonl";

/// Keep the suite, mesh and schedule as run in `dir`, and fill in `info`'s texts.
pub fn write_inputs(
    dir: &Path,
    plan: &Plan,
    schedule: &Schedule,
    info: &mut RunInfo,
) -> Result<()> {
    info.mesh_text = std::fs::read_to_string(&plan.mesh_path)
        .with_context(|| format!("cannot read {}", plan.mesh_path.display()))?;
    let schedule = serde_json::to_string_pretty(schedule)? + "\n";
    for (name, text) in [
        (SUITE, &plan.suite_text),
        (MESH, &info.mesh_text),
        (SCHEDULE, &schedule),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    write_info(dir, info)
}

/// Write (or rewrite, as more becomes known) `run.json`.
pub fn write_info(dir: &Path, info: &RunInfo) -> Result<()> {
    let path = dir.join(RUN);
    let text = serde_json::to_string_pretty(info)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

/// Why `tether report` could not render a folder.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// A file is missing or malformed; the message names it (and line and column).
    #[error("{0}")]
    BadInput(String),
    /// The reports could not be written.
    #[error("{0:#}")]
    Write(anyhow::Error),
}

impl FolderError {
    /// The exit code of `tether report` for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            FolderError::BadInput(_) => exit::BAD_INPUT,
            FolderError::Write(_) => exit::ENVIRONMENT,
        }
    }
}

/// A run folder judged again.
#[derive(Debug, Clone)]
pub struct Rejudged {
    /// What the run was, as its folder tells it (`incomplete`, `interrupted` from its
    /// timeline).
    pub info: RunInfo,
    /// One verdict per check, in suite order.
    pub verdicts: Vec<Verdict>,
}

impl Rejudged {
    /// Did the run finish with every check passed?
    pub fn passed(&self) -> bool {
        self.info.passed(&self.verdicts)
    }

    /// The exit code, as `tether run` gives it: 0 passed, 130 interrupted, 1 otherwise
    /// (a failed check, or a run that never finished).
    pub fn exit_code(&self) -> i32 {
        if self.info.interrupted && !self.info.incomplete {
            exit::INTERRUPTED
        } else if self.passed() {
            exit::PASSED
        } else {
            exit::FAILED
        }
    }
}

/// What a folder's reports are rendered from besides its verdicts.
#[derive(Debug, Clone)]
pub enum Judgement {
    /// A run of phases: its timeline.
    Run(Vec<Entry>),
    /// A soak: what its cycles gave (its timeline was read a line at a time).
    Soak(SoakSummary),
}

impl Judgement {
    /// As the reporters take it.
    pub fn judged(&self) -> Judged<'_> {
        match self {
            Judgement::Run(entries) => Judged::Run(entries),
            Judgement::Soak(summary) => Judged::Soak(summary),
        }
    }
}

/// Read a run folder, judge its timeline with its suite's checks and rewrite
/// `result.json`, `junit.xml` and `report.html` in it.
pub fn report(dir: &Path) -> Result<Rejudged, FolderError> {
    let (info, verdicts, judgement) = judge(dir)?;
    report::write_all(dir, &info, &verdicts, judgement.judged()).map_err(FolderError::Write)?;
    Ok(Rejudged { info, verdicts })
}

/// Read a run folder and judge its timeline, writing nothing.
pub fn judge(dir: &Path) -> Result<(RunInfo, Vec<Verdict>, Judgement), FolderError> {
    let bad = |e: String| FolderError::BadInput(e);
    if !dir.is_dir() {
        return Err(bad(format!("{}: no such run folder", dir.display())));
    }
    let need = |name: &str| {
        let path = dir.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(bad(format!(
                "{}: missing; a run folder holds {SUITE}, {MESH}, {RUN} and {TIMELINE}",
                path.display()
            )))
        }
    };
    let (suite_path, mesh_path, run_path, timeline_path) =
        (need(SUITE)?, need(MESH)?, need(RUN)?, need(TIMELINE)?);
    let plan =
        suite::load_with_mesh(&suite_path, Some(&mesh_path)).map_err(|e| bad(e.to_string()))?;
    let run_text = std::fs::read_to_string(&run_path)
        .map_err(|e| bad(format!("{}: cannot read: {e}", run_path.display())))?;
    let mut info: RunInfo = serde_json::from_str(&run_text).map_err(|e| {
        bad(format!(
            "{}:{}:{}: {e}",
            run_path.display(),
            e.line(),
            e.column()
        ))
    })?;
    info.suite_text = plan.suite_text.clone();
    info.mesh_text = std::fs::read_to_string(&mesh_path).unwrap_or_default();
    if plan.soak.is_some() {
        let ctx = super::checks_context(&plan, &info);
        let (verdicts, summary, ended) = judge_soak(dir, &plan, &ctx, &timeline_path)?;
        mark_ended(&mut info, ended);
        return Ok((info, verdicts, Judgement::Soak(summary)));
    }
    let entries = Timeline::read_jsonl(&timeline_path).map_err(|e| bad(e.to_string()))?;
    let ended = entries.iter().find_map(|e| match &e.event {
        Event::RunEnded { reason } => Some(reason.clone()),
        _ => None,
    });
    let last_ms = entries.last().map_or(0, |e| e.t_ms);
    mark_ended(&mut info, (ended, last_ms));
    let ctx = super::checks_context(&plan, &info);
    let verdicts = checks::evaluate(&plan.checks, &ctx, &entries);
    Ok((info, verdicts, Judgement::Run(entries)))
}

/// How a run ended, as its timeline says: why (none: it was killed), and its last time.
type Ended = (Option<String>, u64);

/// Mark `info` with how the run ended.
fn mark_ended(info: &mut RunInfo, (ended, last_ms): Ended) {
    info.incomplete = ended.is_none();
    info.interrupted = ended.as_deref() == Some("interrupted");
    if info.incomplete || info.duration_s <= 0.0 {
        // run.json got its duration only at the end: a killed run lasted what it recorded.
        info.duration_s = last_ms as f64 / 1000.0;
    }
}

/// A soak's timeline judged cycle by cycle, read a line at a time.
fn judge_soak(
    dir: &Path,
    plan: &Plan,
    ctx: &checks::Context,
    timeline: &Path,
) -> Result<(Vec<Verdict>, SoakSummary, Ended), FolderError> {
    // The cycles the run planned (`--cycles` or `--for` may have changed the suite's).
    let planned = std::fs::read_to_string(dir.join(SCHEDULE))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|s| {
            let ops = s["operations"].as_array()?;
            Some(ops.iter().filter(|o| o["op"] == "cycle_start").count() as u32)
        })
        .unwrap_or(0);
    let mut judge = SoakJudge::new(&plan.checks, ctx, planned);
    let mut cycles = Cycles::new(plan.load.timeout.as_millis() as u64 + 3_000);
    let (mut ended, mut last_ms) = (None, 0);
    Timeline::each_jsonl(timeline, |entry| {
        judge.observe(&entry);
        last_ms = last_ms.max(entry.t_ms);
        if let Event::RunEnded { reason } = &entry.event {
            ended = Some(reason.clone());
        }
        for cycle in cycles.push(entry) {
            judge.cycle(&cycle);
        }
    })
    .map_err(|e| FolderError::BadInput(e.to_string()))?;
    for cycle in cycles.finish() {
        judge.cycle(&cycle);
    }
    Ok((judge.verdicts(), judge.summary(), (ended, last_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::LoadSecond;

    fn folder_with(timeline: &[Entry]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let plan = suite::load(&repo.join("suites/negative/data-path-partition.yaml")).unwrap();
        let mut info = RunInfo {
            suite: plan.name().into(),
            suite_path: "suites/negative/data-path-partition.yaml".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            seed: 7,
            backend: "process".into(),
            ..RunInfo::default()
        };
        write_inputs(dir.path(), &plan, &Schedule::of(&plan, 7), &mut info).unwrap();
        let text: String = timeline
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        std::fs::write(dir.path().join(TIMELINE), text).unwrap();
        dir
    }

    fn at(t_ms: u64, event: Event) -> Entry {
        Entry { t_ms, event }
    }

    fn load(t_ms: u64, sent: u64, ok: u64) -> Entry {
        at(
            t_ms,
            Event::LoadSecond(LoadSecond {
                sent,
                ok,
                ..LoadSecond::default()
            }),
        )
    }

    fn partition() -> Entry {
        at(
            4_000,
            Event::PhaseStarted {
                phase: "partition".into(),
                duration_ms: 6_000,
            },
        )
    }

    #[test]
    fn a_killed_run_is_judged_from_what_it_recorded_and_marked_incomplete() {
        let dir = folder_with(&[partition(), load(5_000, 50, 10), load(6_000, 50, 0)]);
        let judged = report(dir.path()).unwrap();
        assert!(judged.info.incomplete);
        assert_eq!(judged.exit_code(), exit::FAILED);
        assert_eq!(judged.verdicts[0].name, "outpost_traffic_flows");
        assert!(!judged.verdicts[0].passed());
        let result: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("result.json")).unwrap())
                .unwrap();
        assert_eq!(result["incomplete"], true);
        assert_eq!(result["passed"], false);
        assert_eq!(result["seed"], 7);
        assert_eq!(result["duration_s"], 6.0);
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert!(html.contains("INCOMPLETE"));
        assert!(html.contains("name: data-path-partition"), "suite as run");
        assert!(html.contains("virtualNodes"), "mesh as run");
        assert!(dir.path().join("junit.xml").is_file());
    }

    #[test]
    fn a_finished_run_that_held_passes_again() {
        let ended = at(
            16_000,
            Event::RunEnded {
                reason: "completed".into(),
            },
        );
        let dir = folder_with(&[partition(), load(5_000, 50, 50), ended]);
        let judged = report(dir.path()).unwrap();
        assert!(!judged.info.incomplete);
        assert_eq!(judged.exit_code(), exit::PASSED, "{:?}", judged.verdicts);
    }

    #[test]
    fn missing_files_and_bad_lines_are_bad_input() {
        let dir = folder_with(&[partition()]);
        std::fs::write(dir.path().join(TIMELINE), "{\"t_ms\": 1}\n").unwrap();
        let err = report(dir.path()).unwrap_err();
        assert_eq!(err.exit_code(), exit::BAD_INPUT);
        assert!(err.to_string().contains("timeline.jsonl:1:"), "{err}");
        std::fs::remove_file(dir.path().join(RUN)).unwrap();
        let err = report(dir.path()).unwrap_err();
        assert!(err.to_string().contains("run.json: missing"), "{err}");
        let err = report(&dir.path().join("nope")).unwrap_err();
        assert_eq!(err.exit_code(), exit::BAD_INPUT);
    }
}
