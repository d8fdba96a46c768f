//! A release sign-off: every suite of a release run with the same options into one
//! folder, and the one verdict a release manager signs. Each suite is judged from its
//! own run folders (`result.json` of each repeat), as `tether compare` reads them: a
//! suite passed when every repeat passed; a negative control (a suite with
//! `expect_failing`) passed when every repeat failed the checks it names; a suite the
//! backend cannot run is listed as not run, with the reason. Against a baseline sign-off
//! folder each suite is compared with the same suite there, and a regression fails it.

pub mod seal;

use crate::checks::{Outcome, failed_as_expected};
use crate::compare::{RunSet, compare};
use crate::plan::CheckName;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `signoff.json` format's version.
pub const SCHEMA_VERSION: u32 = 1;

/// What became of one suite of the sign-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every repeat passed (a negative control: failed the checks it exists to fail).
    Passed,
    /// A repeat failed, could not judge, or regressed against the baseline.
    Failed,
    /// The suite could not run here (the reason says why).
    NotRun,
}

/// One check of one repeat of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SignedCheck {
    /// The check's name, as in `result.json`.
    pub name: String,
    /// Which repeat (1 when the suite ran once).
    pub repeat: u32,
    /// Its outcome.
    pub outcome: Outcome,
    /// Its one-sentence detail (figure against bound).
    pub detail: String,
    /// A negative control exists to fail this check.
    pub expected_to_fail: bool,
    /// Milliseconds into that run where the check failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at_ms: Option<u64>,
    /// The figures behind the verdict, each with its bound.
    pub measurements: Vec<crate::checks::Measurement>,
    /// That repeat's report folder, relative to the sign-off folder.
    pub report: String,
}

/// One suite of the sign-off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SuiteSignOff {
    /// The suite's name (its folder in the sign-off folder).
    pub name: String,
    /// The suite file, as given.
    pub file: String,
    /// The checks a negative control exists to fail (empty for any other suite).
    pub expect_failing: Vec<String>,
    /// A negative control of a soak's stop condition: it exists to be stopped early.
    pub expect_stopped: bool,
    /// What became of it.
    pub status: Status,
    /// Why, in a sentence.
    pub reason: String,
    /// Its report folder, relative to the sign-off folder (none when it did not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Seconds its runs took, repeats together.
    pub duration_s: f64,
    /// Every check of every repeat.
    pub checks: Vec<SignedCheck>,
    /// Against the baseline: it regressed (a check or a figure got worse beyond noise).
    pub regressed: bool,
    /// Envoy's version, as its first run reported it (empty when it did not run).
    pub envoy_version: String,
    /// When its first run started (RFC 3339; empty when it did not run).
    pub started_at: String,
}

/// A suite to sign off, as run: its name, file, negative-control checks and the folder
/// its runs went to (`None`: not run, for `reason`).
#[derive(Debug, Clone)]
pub struct Ran {
    /// The suite's name.
    pub name: String,
    /// The suite file.
    pub file: PathBuf,
    /// Its `expect_failing`.
    pub expect_failing: Vec<String>,
    /// Its `expect_stopped`.
    pub expect_stopped: bool,
    /// Its run folder (or folder of repeats), or why it did not run.
    pub dir: Result<PathBuf, String>,
}

/// Judge one suite from its run folder, against `baseline` (the baseline sign-off's
/// folder of the same suite) when there is one.
pub fn judge(ran: &Ran, root: &Path, baseline: Option<&Path>) -> SuiteSignOff {
    let mut entry = SuiteSignOff {
        name: ran.name.clone(),
        file: ran.file.display().to_string(),
        expect_failing: ran.expect_failing.clone(),
        expect_stopped: ran.expect_stopped,
        status: Status::NotRun,
        reason: String::new(),
        dir: None,
        duration_s: 0.0,
        checks: Vec::new(),
        regressed: false,
        envoy_version: String::new(),
        started_at: String::new(),
    };
    let dir = match &ran.dir {
        Ok(dir) => dir,
        Err(why) => {
            entry.reason = why.clone();
            return entry;
        }
    };
    entry.dir = Some(relative(root, dir));
    let runs = match RunSet::load(dir) {
        Ok(runs) => runs,
        Err(e) => {
            entry.status = Status::Failed;
            entry.reason = format!("no result to judge: {e}");
            return entry;
        }
    };
    entry.envoy_version = runs.runs[0].envoy_version.clone();
    entry.started_at = runs.runs[0].started_at.clone();
    let mut wrong = Vec::new();
    for (i, run) in runs.runs.iter().enumerate() {
        let repeat = i as u32 + 1;
        entry.duration_s += run.duration_s;
        for c in &run.checks {
            entry.checks.push(SignedCheck {
                name: c.name.clone(),
                repeat,
                outcome: c.outcome,
                detail: c.detail.clone(),
                expected_to_fail: ran
                    .expect_failing
                    .iter()
                    .any(|e| CheckName::base_of(&c.name) == e),
                failed_at_ms: c.failed_at_ms,
                measurements: c.measurements.clone(),
                report: relative(root, &runs.folders[i]),
            });
        }
        let judged = run
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.outcome, c.detail.as_str()));
        let held = match (ran.expect_stopped, ran.expect_failing.is_empty()) {
            (true, _) => stopped_as_expected(run)
                .and_then(|()| failed_as_expected(judged, &ran.expect_failing)),
            (false, true) => run.passed.then_some(()).ok_or_else(|| failing(run)),
            (false, false) => failed_as_expected(judged, &ran.expect_failing),
        };
        if let Err(e) = held {
            wrong.push(format!("repeat {repeat}: {e}"));
        }
    }
    if let Some(base) = baseline.filter(|b| b.is_dir()) {
        match RunSet::load(base) {
            Ok(base) => entry.regressed = compare(&base, &runs).regressed,
            Err(e) => wrong.push(format!("the baseline cannot be read: {e}")),
        }
        if entry.regressed {
            wrong.push("regressed against the baseline (see its comparison.html)".into());
        }
    }
    (entry.status, entry.reason) = match (wrong.is_empty(), !entry.negative()) {
        (true, true) => (
            Status::Passed,
            format!("{} of {} repeats passed", runs.runs.len(), runs.runs.len()),
        ),
        (true, false) => (Status::Passed, negative_reason(ran)),
        (false, _) => (Status::Failed, wrong.join("; ")),
    };
    entry
}

/// Why a negative control passed, in a sentence.
fn negative_reason(ran: &Ran) -> String {
    let mut what = Vec::new();
    if ran.expect_stopped {
        what.push("was stopped by its stop condition".to_string());
    }
    if !ran.expect_failing.is_empty() {
        what.push(format!("failed {}", ran.expect_failing.join(", ")));
    }
    format!("a negative control: {} as it exists to", what.join(" and "))
}

/// A negative control of a stop condition held: the run was stopped by it.
fn stopped_as_expected(run: &crate::result::RunResult) -> Result<(), String> {
    match &run.stopped {
        Some(_) => Ok(()),
        None => {
            Err("it was expected to be stopped by its stop condition and ran to its end".into())
        }
    }
}

impl SuiteSignOff {
    /// A negative control: a suite that exists to fail (checks, or its stop condition).
    pub fn negative(&self) -> bool {
        self.expect_stopped || !self.expect_failing.is_empty()
    }
}

/// `path` relative to `root`, as the sign-off's files link to it.
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The checks of `run` that did not pass, named.
fn failing(run: &crate::result::RunResult) -> String {
    let names: Vec<&str> = run
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    match (names.is_empty(), &run.stopped) {
        (_, Some(why)) => format!("stopped early: {why}"),
        (true, None) if run.interrupted => {
            "interrupted (Ctrl-C, SIGTERM) before it finished".into()
        }
        (true, None) => "the run did not finish".into(),
        (false, None) => format!("did not pass: {}", names.join(", ")),
    }
}

/// The whole sign-off: what ran, how, and each suite's verdict (`signoff.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "tether signoff.json", deny_unknown_fields)]
pub struct SignOff {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When the sign-off was made (RFC 3339).
    pub created_at: String,
    /// The command that made it, to reproduce it.
    pub command: String,
    /// tether's version and revision.
    pub tether_version: String,
    /// Where the suites ran: `process`, `docker`, or `target <file>`.
    pub ran_on: String,
    /// The machine tether ran on.
    pub machine: crate::result::Machine,
    /// Envoy's version, as the first suite that ran reported it.
    pub envoy_version: String,
    /// The baseline sign-off folder, if compared with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// Every suite, in the order they ran.
    pub suites: Vec<SuiteSignOff>,
    /// Suites passed, failed and not run.
    pub totals: Totals,
    /// Who signed it, when, and a digest of every file it covers (`tether signoff
    /// --signed-by`); none until signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// A signature: who signed, when, and what exactly they signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Signature {
    /// The name given to `--signed-by`.
    pub signed_by: String,
    /// When (RFC 3339).
    pub signed_at: String,
    /// SHA-256 (hex) of the sign-off itself as signed: `signoff.json` without its
    /// signature, so its verdicts cannot change either.
    pub document: String,
    /// SHA-256 (hex) of every file of the sign-off folder but `signoff.json` and
    /// `signoff.html`, by path relative to the folder.
    pub digests: std::collections::BTreeMap<String, String>,
}

/// Counts of suites by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Totals {
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Not run.
    pub not_run: usize,
}

impl Totals {
    /// The counts of `suites`.
    pub fn of(suites: &[SuiteSignOff]) -> Totals {
        let count = |s: Status| suites.iter().filter(|e| e.status == s).count();
        Totals {
            passed: count(Status::Passed),
            failed: count(Status::Failed),
            not_run: count(Status::NotRun),
        }
    }
}

impl SignOff {
    /// The sign-off of `suites` (judged, in the order they ran), run on `ran_on` by
    /// `command` from `created_at` on, against `baseline` if given.
    pub fn new(
        suites: Vec<SuiteSignOff>,
        ran_on: String,
        command: String,
        created_at: String,
        baseline: Option<&Path>,
    ) -> SignOff {
        let envoy_version = suites
            .iter()
            .map(|s| s.envoy_version.clone())
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        SignOff {
            schema_version: SCHEMA_VERSION,
            created_at,
            command,
            tether_version: format!(
                "{} ({})",
                crate::result::TETHER_VERSION,
                crate::result::GIT_REVISION
            ),
            ran_on,
            machine: crate::result::Machine::this(),
            envoy_version,
            baseline: baseline.map(|b| b.display().to_string()),
            totals: Totals::of(&suites),
            suites,
            signature: None,
        }
    }

    /// Every suite that ran passed and none regressed, and at least one ran. A suite
    /// not run does not fail the sign-off (a Docker-only suite on the process backend),
    /// but the document lists it with the reason: it was not shown to hold there.
    pub fn passed(&self) -> bool {
        self.totals.failed == 0 && self.totals.passed > 0
    }
}

/// The JSON Schema of `signoff.json` (draft 2020-12), as
/// `harness/schema/signoff.schema.json` holds it.
pub fn schema() -> String {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<SignOff>();
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests;
