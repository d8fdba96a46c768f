//! A soak judged cycle by cycle: every check of the suite is judged on each cycle's
//! entries alone ([`crate::timeline::cycles`]), its outcomes counted over cycles and its
//! figures kept as distributions; `memory_drift` is judged over every cycle together;
//! the load and memory are kept per minute ([`minutes`]); [`stop`] watches the stop
//! conditions. Nothing here holds more than a few numbers per cycle.

pub mod minutes;
pub mod stop;

use super::judge::memory::Drift;
use super::{Context, Measurement, Outcome, Verdict, evaluate, phase_figures};
use crate::plan::Check;
use crate::timeline::Entry;
use crate::timeline::cycles::Cycle;
use minutes::{Minute, Minutes};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a soak's cycles gave: `result.json`'s `soak`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SoakSummary {
    /// Cycles the schedule has.
    pub cycles_planned: u32,
    /// Cycles that ran to their end and were judged.
    pub cycles_judged: u32,
    /// Each check's outcomes over the cycles, in suite order (`memory_drift` is judged
    /// over the whole soak and is not here).
    pub checks: Vec<CheckTally>,
    /// Every judged cycle, in order.
    pub cycles: Vec<CycleVerdicts>,
    /// Every figure the checks measured, as its distribution over cycles.
    pub figures: Vec<FigureSpread>,
    /// Load and memory per minute.
    pub minutes: Vec<Minute>,
}

/// One check's outcomes over the cycles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CheckTally {
    /// The check (as in `checks`).
    pub name: String,
    /// Cycles it passed.
    pub passed: u32,
    /// Cycles it failed.
    pub failed: u32,
    /// Cycles it could not judge (or whose figures were invalid).
    pub unknown: u32,
    /// The cycles it failed, by number.
    pub failed_cycles: Vec<u32>,
}

/// One cycle's verdicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CycleVerdicts {
    /// Its number, from 1.
    pub cycle: u32,
    /// Where it starts on the timeline (ms since the run began).
    pub start_ms: u64,
    /// Where it ends.
    pub end_ms: u64,
    /// What it drew.
    pub draws: Vec<String>,
    /// Every check passed in it.
    pub passed: bool,
    /// The checks that did not pass in it.
    pub not_passed: Vec<CycleCheck>,
}

/// A check that did not pass in a cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CycleCheck {
    /// The check.
    pub name: String,
    /// Failed, unknown or invalid.
    pub outcome: Outcome,
    /// Its sentence.
    pub detail: String,
    /// Where it failed (ms since the run began), if it says.
    pub failed_at_ms: Option<u64>,
}

/// A figure over the cycles that measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FigureSpread {
    /// The figure (a check's measurement, or `latency_ms.p99@<phase>`).
    pub name: String,
    /// Its unit.
    pub unit: String,
    /// Cycles that measured it.
    pub cycles: u32,
    /// Smallest.
    pub min: f64,
    /// Median over cycles.
    pub p50: f64,
    /// 99th percentile over cycles.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// One figure over the cycles.
struct Figure {
    /// The check that measured it (empty for a phase's latency).
    check: String,
    unit: String,
    bound: Option<f64>,
    values: Vec<f64>,
}

impl Figure {
    /// Its worst value over the cycles: the smallest share (a ratio), else the largest
    /// time or size.
    fn worst(&self) -> Option<f64> {
        let pick = if self.unit == "ratio" {
            f64::min
        } else {
            f64::max
        };
        self.values.iter().copied().reduce(pick)
    }
}

/// Judges a soak as its cycles come.
pub struct SoakJudge {
    checks: Vec<Check>,
    per_cycle: Vec<Check>,
    ctx: Context,
    summary: SoakSummary,
    /// Each figure, with one value per cycle that measured it.
    figures: BTreeMap<String, Figure>,
    /// The first failure of each check: (cycle, verdict).
    first_failure: BTreeMap<String, (u32, Verdict)>,
    drift: Drift,
    minutes: Minutes,
}

impl SoakJudge {
    /// A judge of `checks` for a soak of `cycles_planned` cycles.
    pub fn new(checks: &[Check], ctx: &Context, cycles_planned: u32) -> SoakJudge {
        let per_cycle: Vec<Check> = checks
            .iter()
            .filter(|c| !matches!(c, Check::MemoryDrift { .. }))
            .cloned()
            .collect();
        let parts = checks
            .iter()
            .find_map(|c| match c {
                Check::MemoryDrift { parts, after, .. } => Some((parts, after)),
                _ => None,
            })
            .map(|(parts, after)| {
                let from = after.map_or(ctx.warm_up_ms, |a| a.0.as_millis() as u64);
                (from, parts.iter().map(|p| p.to_string()).collect())
            });
        let (from, parts) = parts.unwrap_or((ctx.warm_up_ms, Vec::new()));
        SoakJudge {
            checks: checks.to_vec(),
            per_cycle,
            ctx: ctx.clone(),
            summary: SoakSummary {
                cycles_planned,
                ..SoakSummary::default()
            },
            figures: BTreeMap::new(),
            first_failure: BTreeMap::new(),
            drift: Drift::new(from, u64::MAX, parts),
            minutes: Minutes::default(),
        }
    }

    /// Take one entry of the run, as it comes (memory and per-minute figures).
    pub fn observe(&mut self, entry: &Entry) {
        self.drift.add(entry);
        self.minutes.add(entry);
    }

    /// Judge one cycle; gives its verdicts.
    pub fn cycle(&mut self, cycle: &Cycle) -> &CycleVerdicts {
        let verdicts = evaluate(&self.per_cycle, &self.ctx, &cycle.entries);
        if self.summary.checks.is_empty() {
            self.summary.checks = verdicts
                .iter()
                .map(|v| CheckTally {
                    name: v.name.clone(),
                    passed: 0,
                    failed: 0,
                    unknown: 0,
                    failed_cycles: Vec::new(),
                })
                .collect();
        }
        let mut not_passed = Vec::new();
        for (tally, v) in self.summary.checks.iter_mut().zip(&verdicts) {
            match v.outcome {
                Outcome::Passed => tally.passed += 1,
                Outcome::Failed => {
                    tally.failed += 1;
                    tally.failed_cycles.push(cycle.cycle);
                }
                Outcome::Unknown | Outcome::Invalid => tally.unknown += 1,
            }
            if !v.passed() {
                self.first_failure
                    .entry(v.name.clone())
                    .or_insert_with(|| (cycle.cycle, v.clone()));
                not_passed.push(CycleCheck {
                    name: v.name.clone(),
                    outcome: v.outcome,
                    detail: v.detail.clone(),
                    failed_at_ms: v.failed_at_ms,
                });
            }
        }
        // Each figure once a cycle (a phase's latency is also its traffic check's).
        let mut kept = std::collections::BTreeSet::new();
        for v in &verdicts {
            for m in &v.measurements {
                self.keep(&v.name, m, &mut kept);
            }
        }
        for phase in phase_figures(&cycle.entries) {
            if let Some(l) = phase.latency_ms {
                for (q, value) in [("p50", l.p50), ("p99", l.p99)] {
                    let m = Measurement {
                        name: format!("latency_ms.{q}@{}", phase.phase),
                        value,
                        unit: "ms".into(),
                        bound: None,
                    };
                    self.keep("", &m, &mut kept);
                }
            }
        }
        self.summary.cycles_judged += 1;
        self.summary.cycles.push(CycleVerdicts {
            cycle: cycle.cycle,
            start_ms: cycle.start_ms,
            end_ms: cycle.end_ms,
            draws: cycle.draws.clone(),
            passed: not_passed.is_empty(),
            not_passed,
        });
        let last = self.summary.cycles.len() - 1;
        &self.summary.cycles[last]
    }

    /// Keep a cycle's value of a figure, unless this cycle gave it already (`kept`).
    fn keep(
        &mut self,
        check: &str,
        m: &Measurement,
        kept: &mut std::collections::BTreeSet<String>,
    ) {
        // A check the suite uses in several phases (`reconvergence@heal`) measures the
        // same names in each: keep them apart (`reconvergence_ms.client@heal`).
        let name = match check.split_once('@') {
            Some((_, phase)) => format!("{}@{phase}", m.name),
            None => m.name.clone(),
        };
        if !kept.insert(name.clone()) {
            return;
        }
        let figure = self.figures.entry(name).or_insert_with(|| Figure {
            check: check.to_string(),
            unit: m.unit.clone(),
            bound: m.bound,
            values: Vec::new(),
        });
        figure.values.push(m.value);
    }

    /// Cycles judged so far that failed a check.
    pub fn failed_cycles(&self) -> u32 {
        self.summary.cycles.iter().filter(|c| !c.passed).count() as u32
    }

    /// The figure of `family` with the largest value over the cycles so far.
    pub fn worst_of(&self, family: crate::checks::names::Keyed) -> Option<(&str, f64)> {
        self.figures
            .iter()
            .filter_map(|(name, f)| {
                Some((
                    family.key(name)?,
                    f.values.iter().copied().reduce(f64::max)?,
                ))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// What the cycles so far gave.
    pub fn summary(&self) -> SoakSummary {
        let mut summary = self.summary.clone();
        summary.figures = self
            .figures
            .iter()
            .map(|(name, f)| spread(name, &f.unit, &f.values))
            .collect();
        summary.minutes = self.minutes.all();
        summary
    }

    /// One verdict per check of the suite, in suite order: a per-cycle check passes when
    /// it passed in every cycle (and at least one was judged), its figures are their
    /// worst over cycles (the smallest ratio, the largest time); `memory_drift` is judged over every cycle together.
    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut tallies = self.summary.checks.iter();
        self.checks
            .iter()
            .map(|check| match check {
                Check::MemoryDrift { max_per_hour, .. } => {
                    super::judge::named(check, self.drift.judge(max_per_hour.0))
                }
                _ => match tallies.next() {
                    Some(tally) => self.over_cycles(tally),
                    None => super::judge::named(check, Err("no cycle finished".into())),
                },
            })
            .collect()
    }

    /// One check's verdict over every cycle.
    fn over_cycles(&self, tally: &CheckTally) -> Verdict {
        let judged = tally.passed + tally.failed + tally.unknown;
        let first = self.first_failure.get(&tally.name);
        let outcome = if tally.failed > 0 {
            Outcome::Failed
        } else if tally.unknown > 0 || judged == 0 {
            first.map_or(Outcome::Unknown, |(_, v)| v.outcome)
        } else {
            Outcome::Passed
        };
        let mut detail = format!("passed in {} of {judged} cycles", tally.passed);
        if !tally.failed_cycles.is_empty() {
            let cycles: Vec<String> = tally.failed_cycles.iter().map(u32::to_string).collect();
            detail.push_str(&format!("; failed in cycle {}", cycles.join(", ")));
        }
        if let Some((cycle, v)) = first {
            detail.push_str(&format!("; first in cycle {cycle}: {}", v.detail));
        }
        Verdict {
            name: tally.name.clone(),
            outcome,
            detail,
            measurements: self.worst_measurements(&tally.name),
            failed_at_ms: first.and_then(|(_, v)| v.failed_at_ms),
            phase: None,
        }
    }

    /// A check's figures at their worst over cycles, with their bounds.
    fn worst_measurements(&self, check: &str) -> Vec<Measurement> {
        self.figures
            .iter()
            .filter(|(_, f)| f.check == check)
            .filter_map(|(name, f)| {
                Some(Measurement {
                    name: name.clone(),
                    value: f.worst()?,
                    unit: f.unit.clone(),
                    bound: f.bound,
                })
            })
            .collect()
    }
}

/// A figure's distribution over cycles.
fn spread(name: &str, unit: &str, values: &[f64]) -> FigureSpread {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
        sorted.get(i).copied().unwrap_or(0.0)
    };
    FigureSpread {
        name: name.to_string(),
        unit: unit.to_string(),
        cycles: sorted.len() as u32,
        min: sorted.first().copied().unwrap_or(0.0),
        p50: at(0.5),
        p99: at(0.99),
        max: sorted.last().copied().unwrap_or(0.0),
    }
}

#[cfg(test)]
mod tests;
