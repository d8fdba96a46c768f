//! Checks: each reads the timeline and gives a [`Verdict`]. None talks to a process.
//!
//! A check that cannot judge (no data where it needs some, or a panic inside it) says
//! [`Outcome::Unknown`] instead of passing; only [`Outcome::Passed`] counts as a pass.

mod figures;
mod judge;
pub mod names;
pub mod soak;
mod window;

pub use figures::{LatencyFigures, PhaseFigures, phase_figures};
pub use soak::{SoakJudge, SoakSummary};
pub use window::Window;

use crate::plan::Check;
use crate::timeline::Entry;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The verdicts a check can give; only `passed` is a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The property held.
    Passed,
    /// The property was broken.
    Failed,
    /// The run did not give the check what it needs to judge.
    Unknown,
    /// The figures judged are the load generator's limit, not the target's (it was
    /// saturated or fell behind its schedule): neither a pass nor a failure of the mesh.
    Invalid,
}

/// A measured figure, with the bound it was held to where there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Measurement {
    /// What was measured (e.g. `reconvergence_ms.client`).
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its unit (`ms`, `ratio`, `requests`).
    pub unit: String,
    /// The bound from the suite, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<f64>,
}

/// A check's judgement of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The check's name.
    pub name: String,
    /// Passed, failed or unknown.
    pub outcome: Outcome,
    /// One sentence a person can act on: what was measured against what bound.
    pub detail: String,
    /// The figures behind it.
    pub measurements: Vec<Measurement>,
    /// Where on the timeline (ms) the check failed, for reports to point at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at_ms: Option<u64>,
    /// The phase the check judged (`None`: the whole run, or a soak's every cycle), so
    /// reports can say how long it watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

impl Verdict {
    /// Did the check pass?
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }

    /// The figure called `name` the check measured, if it measured one.
    pub fn measurement(&self, name: &str) -> Option<&Measurement> {
        self.measurements.iter().find(|m| m.name == name)
    }
}

/// Whether a negative control failed the checks it exists to fail (its suite's
/// `expect_failing`): each of them judged (by name, or as `name@phase` where the suite
/// uses it more than once) and failed every time, not passed nor left unknown.
/// `judged` gives each verdict as (name, outcome, detail); `Err` names what did not fail.
pub fn failed_as_expected<'a>(
    judged: impl IntoIterator<Item = (&'a str, Outcome, &'a str)>,
    expect_failing: &[String],
) -> Result<(), String> {
    let judged: Vec<_> = judged.into_iter().collect();
    let mut wrong = Vec::new();
    for name in expect_failing {
        let mine: Vec<_> = judged
            .iter()
            .filter(|(n, ..)| crate::plan::CheckName::base_of(n) == name)
            .collect();
        if mine.is_empty() {
            wrong.push(format!("`{name}` was expected to fail and was not judged"));
        }
        for (n, outcome, detail) in mine {
            if *outcome != Outcome::Failed {
                wrong.push(format!(
                    "`{n}` was expected to fail and is {outcome:?}: {detail}"
                ));
            }
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

/// Each verdict as (name, outcome, detail), for [`failed_as_expected`].
pub fn judged(verdicts: &[Verdict]) -> impl Iterator<Item = (&str, Outcome, &str)> {
    verdicts
        .iter()
        .map(|v| (v.name.as_str(), v.outcome, v.detail.as_str()))
}

/// What checks need to know about the run besides its timeline.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The virtual nodes whose sidecars are on the outpost (behind the xDS link).
    pub outpost_nodes: Vec<String>,
    /// The virtual node whose sidecar the load enters through.
    pub load_through: String,
    /// A soak's warm-up (ms): memory samples before it do not count.
    pub warm_up_ms: u64,
    /// The control plane's xDS log is not on the timeline (a target's foreign control
    /// plane): the checks that read it judge from what each Envoy reports instead.
    pub judge_from_envoys: bool,
}

/// Judge `entries` with every check, in order. A check the suite uses more than once is
/// named `<check>@<phase>`, so every verdict has its own name.
pub fn evaluate(checks: &[Check], ctx: &Context, entries: &[Entry]) -> Vec<Verdict> {
    let repeated = |check: &Check| checks.iter().filter(|c| c.name() == check.name()).count() > 1;
    checks
        .iter()
        .map(|check| {
            let mut verdict = judge_one(check, ctx, entries);
            verdict.phase = check.phase().map(|p| p.to_string());
            if repeated(check) {
                let phase = check.phase().map_or("run", |p| p.as_str());
                verdict.name = format!("{}@{phase}", check.name());
            }
            verdict
        })
        .collect()
}

fn judge_one(check: &Check, ctx: &Context, entries: &[Entry]) -> Verdict {
    std::panic::catch_unwind(|| judge::judge(check, ctx, entries)).unwrap_or_else(|_| Verdict {
        name: check.name().to_string(),
        outcome: Outcome::Unknown,
        detail: "the check crashed while judging this timeline".into(),
        measurements: Vec::new(),
        failed_at_ms: None,
        phase: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(name: &str, outcome: Outcome) -> Verdict {
        Verdict {
            name: name.into(),
            outcome,
            detail: format!("{name} detail"),
            measurements: Vec::new(),
            failed_at_ms: None,
            phase: None,
        }
    }

    #[test]
    fn a_negative_control_holds_only_when_the_checks_it_names_failed() {
        let expect = ["propagation".to_string()];
        let failed = [
            verdict("propagation", Outcome::Failed),
            verdict("outpost_traffic_flows", Outcome::Passed),
        ];
        assert_eq!(failed_as_expected(judged(&failed), &expect), Ok(()));
        // Negative controls of the check: it passed, could not judge, or was not there.
        for outcome in [Outcome::Passed, Outcome::Unknown, Outcome::Invalid] {
            let err = failed_as_expected(judged(&[verdict("propagation", outcome)]), &expect)
                .unwrap_err();
            assert!(err.contains("`propagation` was expected to fail"), "{err}");
        }
        let err = failed_as_expected(judged(&failed[1..]), &expect).unwrap_err();
        assert!(err.contains("was not judged"), "{err}");
        assert_eq!(failed_as_expected(judged(&failed), &[]), Ok(()));
        // A check used in two phases is named `name@phase`: both must fail.
        let twice = [
            verdict("propagation@one", Outcome::Failed),
            verdict("propagation@two", Outcome::Passed),
        ];
        let err = failed_as_expected(judged(&twice), &expect).unwrap_err();
        assert!(
            err.contains("`propagation@two` was expected to fail"),
            "{err}"
        );
    }
}
