//! The result of a run as data: what was known about it ([`RunInfo`], the run folder's
//! `run.json`) and `result.json` as one typed model, [`RunResult`], that its writer,
//! `tether compare`'s reader and library users share. Its JSON Schema
//! (`harness/schema/result.schema.json`) is generated from the type ([`schema`]).

mod info;

pub use info::{GIT_REVISION, Machine, RunInfo, TETHER_VERSION, TargetInfo};

use crate::checks::{Measurement, Outcome, PhaseFigures, SoakSummary, Verdict, names};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The schema version of `result.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// The machine-readable result of one tether run (or of `tether report RUN_DIR`),
/// schema version 1. A result written by an earlier tether lacks the fields it did not
/// have yet; reading it gives their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "tether result.json", deny_unknown_fields)]
pub struct RunResult {
    /// Version of this format; it changes when a field changes meaning or goes away.
    #[serde(default)]
    #[schemars(range(min = 1, max = 1))]
    pub schema_version: u32,
    /// The suite's `name`.
    #[schemars(length(min = 1))]
    pub suite: String,
    /// True only when the run finished (neither interrupted nor incomplete) and every
    /// check passed. An unknown verdict is not a pass.
    pub passed: bool,
    /// The timeline has no `run_ended` entry: the run was killed or crashed, and the
    /// verdicts judge only what it recorded.
    #[serde(default)]
    pub incomplete: bool,
    /// The run was interrupted (Ctrl-C, SIGTERM) before all its phases ran.
    #[serde(default)]
    pub interrupted: bool,
    /// A stop condition (`stop_when`) ended the run early: which, and what it saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// When the run started, UTC, RFC 3339 (e.g. 2026-01-01T12:00:00Z).
    #[serde(default)]
    #[schemars(regex(
        pattern = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
    ))]
    pub started_at: String,
    /// Wall time of the whole run in seconds, bring-up and teardown included; for an
    /// incomplete run, the time of the last timeline entry.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub duration_s: f64,
    /// The seed of everything random in the run (`tether run --seed`).
    #[serde(default)]
    pub seed: u64,
    /// `envoy --version` of the Envoy under test, or a text starting with `unknown`.
    #[serde(default)]
    pub envoy_version: String,
    /// Where the mesh ran (`process`, `docker`).
    #[serde(default)]
    pub backend: String,
    /// The xDS variant the sidecars spoke: `sotw` or `delta`, with the sidecars that
    /// differ in brackets, and `(--xds)` when the command line chose it (empty in
    /// results written before it was recorded).
    #[serde(default)]
    pub xds: String,
    /// The fault proxy that carried the links: tether's own, Shopify's Toxiproxy (with
    /// its path or image), `none (packet link)`, or `the target's` (empty in results
    /// written before it was recorded).
    #[serde(default)]
    pub fault_proxy: String,
    /// Version of the tether build that ran it.
    #[serde(default)]
    pub tether_version: String,
    /// Short git revision of that tether build, or `unknown`.
    #[serde(default)]
    pub git_revision: String,
    /// One verdict per check of the suite, in suite order.
    pub checks: Vec<CheckResult>,
    /// Per outpost sidecar (virtual node name): milliseconds from the heal until it
    /// ACKed the newest config of every type, from the `reconvergence` check's
    /// measurements. Empty when the suite has no such check or it could not measure.
    #[serde(default)]
    pub reconvergence_ms: BTreeMap<String, f64>,
    /// What each phase measured, in the order the phases ran, with no bound (figures,
    /// not verdicts): what `tether compare` sets side by side. Empty for a soak.
    #[serde(default)]
    pub phases: Vec<PhaseFigures>,
    /// A soak's cycles: each check's outcomes over them, every cycle's verdicts, each
    /// figure's distribution and the load and memory per minute. A soak's `checks` give
    /// one verdict per check over every cycle (passed only when it passed in all of
    /// them), with each figure at its worst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakSummary>,
}

/// One check's verdict in a [`RunResult`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    deny_unknown_fields,
    extend(
        "if" = {"properties": {"outcome": {"const": "passed"}}},
        "then" = {"properties": {"passed": {"const": true}}},
        "else" = {"properties": {"passed": {"const": false}}}
    )
)]
pub struct CheckResult {
    /// The check's name (`outpost_traffic_flows`, `config_frozen`, ...; see the README's
    /// checks); `<check>@<phase>` when a suite uses a check more than once.
    #[schemars(regex(pattern = r"^[a-z_]+(@.+)?$"))]
    pub name: String,
    /// `outcome` is `passed`.
    #[serde(default)]
    pub passed: bool,
    /// The verdict.
    pub outcome: Outcome,
    /// One sentence a person can act on: what was measured against which bound.
    #[serde(default)]
    pub detail: String,
    /// The figures behind the verdict.
    pub measurements: Vec<Measurement>,
    /// Milliseconds since the start of the run where the check failed (the moment the
    /// HTML report marks on its chart), or null.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub failed_at_ms: Option<u64>,
}

impl RunResult {
    /// The result of a run: what is known about it, its verdicts, its phases' figures
    /// and, for a soak, its cycles.
    pub fn new(
        info: &RunInfo,
        verdicts: &[Verdict],
        phases: &[PhaseFigures],
        soak: Option<&SoakSummary>,
    ) -> RunResult {
        let reconvergence_ms = verdicts
            .iter()
            .flat_map(|v| &v.measurements)
            .filter_map(|m| Some((names::RECONVERGENCE_MS.key(&m.name)?.to_string(), m.value)))
            .collect();
        RunResult {
            schema_version: SCHEMA_VERSION,
            suite: info.suite.clone(),
            passed: info.passed(verdicts),
            incomplete: info.incomplete,
            interrupted: info.interrupted,
            stopped: info.stopped.clone(),
            started_at: info.started_at.clone(),
            duration_s: info.duration_s,
            seed: info.seed,
            envoy_version: info.envoy_version.clone(),
            backend: info.backend.clone(),
            xds: info.xds.clone(),
            fault_proxy: info.fault_proxy.clone(),
            tether_version: info.tether_version.clone(),
            git_revision: info.git_revision.clone(),
            checks: verdicts.iter().map(CheckResult::of).collect(),
            reconvergence_ms,
            phases: phases.to_vec(),
            soak: soak.cloned(),
        }
    }

    /// Reads a `result.json`, naming the file, line and column of a mistake.
    pub fn read(path: &Path) -> Result<RunResult, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}:{}:{}: not a tether result.json: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })
    }
}

impl CheckResult {
    /// A verdict as `result.json` holds it.
    pub fn of(v: &Verdict) -> CheckResult {
        CheckResult {
            name: v.name.clone(),
            passed: v.passed(),
            outcome: v.outcome,
            detail: v.detail.clone(),
            measurements: v.measurements.clone(),
            failed_at_ms: v.failed_at_ms,
        }
    }
}

/// The JSON Schema of `result.json` (draft 2020-12), as `harness/schema/result.schema.json`
/// holds it.
pub fn schema() -> String {
    // What tether writes: every field it always writes is required.
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<RunResult>();
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema file is the one the type gives; `TETHER_BLESS=1 cargo test` writes it
    /// anew after the type changed.
    #[test]
    fn the_schema_file_is_generated_from_the_result_type() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/result.schema.json");
        let generated = schema();
        if std::env::var("TETHER_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap();
        assert!(
            committed == generated,
            "{} is not what RunResult gives; run `TETHER_BLESS=1 cargo test --lib result` and review the diff",
            path.display()
        );
    }

    #[test]
    fn a_result_of_an_earlier_tether_reads_with_defaults() {
        let old = serde_json::json!({
            "suite": "s",
            "passed": true,
            "checks": [{"name": "reconvergence", "outcome": "passed", "measurements": []}]
        });
        let result: RunResult = serde_json::from_value(old).unwrap();
        assert_eq!(result.xds, "");
        assert!(result.phases.is_empty());
    }
}
