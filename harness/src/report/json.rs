//! `result.json`: the machine-readable result (schema version 1).
//!
//! ```text
//! { "schema_version": 1, "suite", "passed", "interrupted", "started_at", "duration_s",
//!   "seed", "envoy_version", "backend",
//!   "checks": [ { "name", "passed", "outcome", "detail", "measurements": [..] } ],
//!   "reconvergence_ms": { "<node>": ms } }
//! ```

use super::RunInfo;
use crate::checks::Verdict;
use serde_json::{Map, Value, json};

/// The schema version of `result.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// Render `result.json`.
pub fn render(info: &RunInfo, verdicts: &[Verdict]) -> serde_json::Result<String> {
    let passed = !info.interrupted && verdicts.iter().all(Verdict::passed);
    let checks: Vec<Value> = verdicts
        .iter()
        .map(|v| {
            json!({
                "name": v.name,
                "passed": v.passed(),
                "outcome": v.outcome,
                "detail": v.detail,
                "measurements": v.measurements,
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
        "interrupted": info.interrupted,
        "started_at": info.started_at,
        "duration_s": info.duration_s,
        "seed": info.seed,
        "envoy_version": info.envoy_version,
        "backend": info.backend,
        "checks": checks,
        "reconvergence_ms": reconvergence,
    }))
}
