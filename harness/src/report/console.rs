//! The verdict table printed at the end of `tether run`.

use crate::checks::{Outcome, Verdict};
use std::fmt::Write;

/// The verdict table as text.
pub fn table(suite: &str, verdicts: &[Verdict]) -> String {
    let width = verdicts
        .iter()
        .map(|v| v.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = String::new();
    let _ = writeln!(out, "\nsuite {suite}");
    let _ = writeln!(out, "  {:<7} {:<width$}  detail", "verdict", "check");
    for v in verdicts {
        let mark = match v.outcome {
            Outcome::Passed => "PASS",
            Outcome::Failed => "FAIL",
            Outcome::Unknown => "UNKNOWN",
            Outcome::Invalid => "INVALID",
        };
        let _ = writeln!(out, "  {mark:<7} {:<width$}  {}", v.name, v.detail);
    }
    let count = |o: Outcome| verdicts.iter().filter(|v| v.outcome == o).count();
    let _ = writeln!(
        out,
        "checks: {} passed, {} failed, {} unknown{}",
        count(Outcome::Passed),
        count(Outcome::Failed),
        count(Outcome::Unknown),
        match count(Outcome::Invalid) {
            0 => String::new(),
            n => format!(", {n} invalid (the load generator was the limit)"),
        }
    );
    out
}
