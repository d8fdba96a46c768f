//! `result.json`: the machine-readable result (schema version 1).
//!
//! ```text
//! { "schema_version": 1, "suite", "passed", "incomplete", "interrupted", "started_at",
//!   "duration_s", "seed", "envoy_version", "backend", "tether_version", "git_revision",
//!   "checks": [ { "name", "passed", "outcome", "detail", "measurements": [..],
//!                 "failed_at_ms" } ],
//!   "reconvergence_ms": { "<node>": ms },
//!   "phases": [ { "phase", "start_ms", "end_ms", "requests", "ok", "ok_per_second",
//!                 "latency_ms": { "p50", "p99", "p999", "max" } | null, "served_by" } ] }
//! ```
//!
//! Every field is documented in `harness/schema/result.schema.json` (JSON Schema 2020-12).

use super::RunInfo;
use crate::checks::{PhaseFigures, Verdict};
use serde_json::{Map, Value, json};

/// The schema version of `result.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// Render `result.json`.
pub fn render(
    info: &RunInfo,
    verdicts: &[Verdict],
    phases: &[PhaseFigures],
) -> serde_json::Result<String> {
    let passed = info.passed(verdicts);
    let checks: Vec<Value> = verdicts
        .iter()
        .map(|v| {
            json!({
                "name": v.name,
                "passed": v.passed(),
                "outcome": v.outcome,
                "detail": v.detail,
                "measurements": v.measurements,
                "failed_at_ms": v.failed_at_ms,
            })
        })
        .collect();
    let mut reconvergence = Map::new();
    for m in verdicts.iter().flat_map(|v| &v.measurements) {
        if let Some(node) = m.name.strip_prefix("reconvergence_ms.") {
            reconvergence.insert(node.to_string(), json!(m.value));
        }
    }
    serde_json::to_string_pretty(&json!({
        "schema_version": SCHEMA_VERSION,
        "suite": info.suite,
        "passed": passed,
        "incomplete": info.incomplete,
        "interrupted": info.interrupted,
        "started_at": info.started_at,
        "duration_s": info.duration_s,
        "seed": info.seed,
        "envoy_version": info.envoy_version,
        "backend": info.backend,
        "tether_version": info.tether_version,
        "git_revision": info.git_revision,
        "checks": checks,
        "reconvergence_ms": reconvergence,
        "phases": phases,
    }))
}
