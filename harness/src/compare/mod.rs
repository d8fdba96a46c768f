//! Comparing runs: a candidate against a baseline, check by check and figure by figure.
//!
//! Each side is one run folder (it holds `result.json`) or a folder of run folders,
//! the repeats of one suite (`tether run --repeat N`). Every figure a side measured
//! (each check's measurements, each phase's throughput and latency) is summarised
//! over its runs by mean and spread (largest minus smallest). A difference between
//! the sides is flagged only when it exceeds the run-to-run noise, the larger of the
//! two sides' spreads; unless both sides ran more than once the noise is unknown
//! (one run says nothing of its own spread) and nothing is flagged. A check that
//! passed in every baseline run and failed in a candidate run is a regression
//! whatever the noise.

use crate::checks::Outcome;
use crate::result::RunResult;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One side of a comparison: the runs in one folder.
#[derive(Debug, Clone)]
pub struct RunSet {
    /// The folder given.
    pub dir: PathBuf,
    /// Its runs: the folder's own `result.json`, or one per repeat folder.
    pub runs: Vec<RunResult>,
    /// The folder of each run, in the order of `runs`.
    pub folders: Vec<PathBuf>,
}

/// Why a folder cannot be compared.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CompareError(String);

impl RunSet {
    /// Reads `dir/result.json`, or else `*/result.json` of its subfolders in name order.
    pub fn load(dir: &Path) -> Result<RunSet, CompareError> {
        if !dir.is_dir() {
            return Err(CompareError(format!(
                "{}: no such run folder",
                dir.display()
            )));
        }
        let own = dir.join("result.json");
        let files: Vec<PathBuf> = if own.is_file() {
            vec![own]
        } else {
            let mut repeats: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| CompareError(format!("{}: cannot read: {e}", dir.display())))?
                .flatten()
                .map(|entry| entry.path().join("result.json"))
                .filter(|path| path.is_file())
                .collect();
            repeats.sort();
            repeats
        };
        if files.is_empty() {
            return Err(CompareError(format!(
                "{}: no result.json, neither in the folder nor in its subfolders (a run folder, or the folder of `tether run --repeat N`)",
                dir.display()
            )));
        }
        let runs = files
            .iter()
            .map(|path| RunResult::read(path).map_err(CompareError))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RunSet {
            dir: dir.to_path_buf(),
            runs,
            folders: files
                .iter()
                .map(|f| f.parent().unwrap_or(dir).to_path_buf())
                .collect(),
        })
    }
}

/// Which way a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Smaller is better (times, latencies).
    Lower,
    /// Larger is better (throughput, success ratios).
    Higher,
    /// Neither (counts of requests or ACKs).
    Neither,
}

impl Better {
    /// The direction of a measurement, from its unit and name.
    fn of(name: &str, unit: &str) -> Better {
        match unit {
            "ms" => Better::Lower,
            "ratio" | "requests/s" => Better::Higher,
            _ if name.contains("per_second") => Better::Higher,
            _ => Better::Neither,
        }
    }
}

/// A figure over the runs of one side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stats {
    /// Runs that measured it.
    pub runs: usize,
    /// Their mean.
    pub mean: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Stats {
    fn of(values: &[f64]) -> Option<Stats> {
        let first = *values.first()?;
        let (min, max) = values
            .iter()
            .fold((first, first), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        Some(Stats {
            runs: values.len(),
            mean: values.iter().sum::<f64>() / values.len() as f64,
            min,
            max,
        })
    }

    /// Largest minus smallest: the run-to-run noise of this side.
    pub fn spread(&self) -> f64 {
        self.max - self.min
    }
}

/// What a figure's difference means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Better by more than the noise.
    Better,
    /// Worse by more than the noise.
    Worse,
    /// Changed by more than the noise, in a figure with no better direction.
    Changed,
    /// Within the noise.
    WithinNoise,
    /// A side ran only once: the noise is unknown, nothing is flagged.
    NoiseUnknown,
    /// Only one side measured it.
    OneSided,
}

/// One figure on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FigureChange {
    /// `<check>: <measurement>` or `phase <phase>: <figure>`.
    pub name: String,
    /// Its unit.
    pub unit: String,
    /// Which way is better.
    pub better: Better,
    /// The baseline's runs.
    pub baseline: Option<Stats>,
    /// The candidate's runs.
    pub candidate: Option<Stats>,
    /// Candidate mean minus baseline mean.
    pub change: Option<f64>,
    /// The change relative to the baseline mean.
    pub relative: Option<f64>,
    /// The run-to-run noise the change was held against, when known.
    pub noise: Option<f64>,
    /// What the change means.
    pub flag: Flag,
}

/// How a check's outcome moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckMove {
    /// Passed in every run on both sides.
    StillPasses,
    /// Failed somewhere on both sides.
    StillFails,
    /// Passed in every baseline run, failed in a candidate run.
    Regressed,
    /// Failed in a baseline run, passed in every candidate run.
    Fixed,
    /// Only the candidate has it.
    New,
    /// Only the baseline has it.
    Gone,
}

/// One check on both sides: how many runs it passed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckChange {
    /// The check's name.
    pub name: String,
    /// (passed, runs) in the baseline.
    pub baseline: (usize, usize),
    /// (passed, runs) in the candidate.
    pub candidate: (usize, usize),
    /// What happened to it.
    pub moved: CheckMove,
}

/// Where a side came from, for the comparison's header.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// The folder.
    pub dir: String,
    /// How many runs it holds.
    pub runs: usize,
    /// How many of them passed.
    pub passed: usize,
    /// The suites' names (one, unless different suites were compared).
    pub suites: Vec<String>,
    /// The Envoy versions of its runs.
    pub envoy_versions: Vec<String>,
    /// The tether revisions of its runs.
    pub git_revisions: Vec<String>,
    /// The xDS variants its runs spoke (a delta run is not a state-of-the-world run).
    pub xds: Vec<String>,
    /// The fault proxies that carried its runs' links.
    pub fault_proxies: Vec<String>,
}

/// A candidate against a baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The baseline side.
    pub baseline: Side,
    /// The candidate side.
    pub candidate: Side,
    /// Every check of either side.
    pub checks: Vec<CheckChange>,
    /// Every figure of either side.
    pub figures: Vec<FigureChange>,
    /// A check regressed or a figure got worse beyond the noise.
    pub regressed: bool,
    /// Ways the two sides did not measure the same thing (different suites, xDS
    /// variants or fault proxies), each a sentence saying how: the comparison still
    /// stands, but a move may be the setup's and not the change's.
    pub warnings: Vec<String>,
}

/// Compares `candidate` against `baseline`.
pub fn compare(baseline: &RunSet, candidate: &RunSet) -> Comparison {
    let checks = check_changes(baseline, candidate);
    let figures = figure_changes(baseline, candidate);
    let regressed = checks.iter().any(|c| c.moved == CheckMove::Regressed)
        || figures.iter().any(|f| f.flag == Flag::Worse);
    let (baseline, candidate) = (side(baseline), side(candidate));
    let warnings = warnings(&baseline, &candidate);
    Comparison {
        baseline,
        candidate,
        checks,
        figures,
        regressed,
        warnings,
    }
}

/// Where the two sides differ in what they ran, not in how it went.
fn warnings(baseline: &Side, candidate: &Side) -> Vec<String> {
    let differ = |what: &str, of: fn(&Side) -> &Vec<String>, why: &str| {
        (of(baseline) != of(candidate)).then(|| {
            format!(
                "the two sides ran different {what} (baseline {}, candidate {}): {why}",
                of(baseline).join(", "),
                of(candidate).join(", ")
            )
        })
    };
    [
        differ(
            "suites",
            |s| &s.suites,
            "checks and figures of the same name may measure different things",
        ),
        differ(
            "xDS variants",
            |s| &s.xds,
            "reconvergence and propagation differ between state of the world and delta",
        ),
        differ(
            "fault proxies",
            |s| &s.fault_proxies,
            "link faults act differently through each (run both with the same `--fault-proxy`)",
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn side(set: &RunSet) -> Side {
    let distinct = |f: &dyn Fn(&RunResult) -> &str| {
        let mut values: Vec<String> = set.runs.iter().map(|r| f(r).to_string()).collect();
        values.sort();
        values.dedup();
        values
    };
    Side {
        dir: set.dir.display().to_string(),
        runs: set.runs.len(),
        passed: set.runs.iter().filter(|r| r.passed).count(),
        suites: distinct(&|r| &r.suite),
        envoy_versions: distinct(&|r| &r.envoy_version),
        git_revisions: distinct(&|r| &r.git_revision),
        xds: distinct(&|r| if r.xds.is_empty() { "unknown" } else { &r.xds }),
        fault_proxies: distinct(&|r| {
            if r.fault_proxy.is_empty() {
                "unknown"
            } else {
                &r.fault_proxy
            }
        }),
    }
}

fn check_changes(baseline: &RunSet, candidate: &RunSet) -> Vec<CheckChange> {
    let tally = |set: &RunSet| {
        let mut by_name: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for check in set.runs.iter().flat_map(|r| &r.checks) {
            let entry = by_name.entry(check.name.clone()).or_default();
            entry.0 += usize::from(check.outcome == Outcome::Passed);
            entry.1 += 1;
        }
        by_name
    };
    let (before, after) = (tally(baseline), tally(candidate));
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let b = before.get(name).copied().unwrap_or_default();
            let c = after.get(name).copied().unwrap_or_default();
            let all_passed = |(passed, runs): (usize, usize)| passed == runs;
            let moved = match (b.1, c.1) {
                (0, _) => CheckMove::New,
                (_, 0) => CheckMove::Gone,
                _ => match (all_passed(b), all_passed(c)) {
                    (true, true) => CheckMove::StillPasses,
                    (true, false) => CheckMove::Regressed,
                    (false, true) => CheckMove::Fixed,
                    (false, false) => CheckMove::StillFails,
                },
            };
            CheckChange {
                name: name.clone(),
                baseline: b,
                candidate: c,
                moved,
            }
        })
        .collect()
}

/// Every figure of one run: name → (unit, value).
fn figures_of(run: &RunResult) -> BTreeMap<String, (String, f64)> {
    let mut figures = BTreeMap::new();
    for check in &run.checks {
        for m in &check.measurements {
            figures.insert(
                format!("{}: {}", check.name, m.name),
                (m.unit.clone(), m.value),
            );
        }
    }
    for phase in &run.phases {
        let name = |figure: &str| format!("phase {}: {figure}", phase.phase);
        figures.insert(
            name("ok_per_second"),
            ("requests/s".into(), phase.ok_per_second),
        );
        if phase.requests > 0 {
            figures.insert(
                name("success_ratio"),
                ("ratio".into(), phase.success_ratio()),
            );
        }
        // Response time keeps its old name (`latency_ms`), so older baselines compare.
        for (figure, latency) in [
            ("latency_ms", phase.latency_ms),
            ("service_ms", phase.service_ms),
        ] {
            let Some(latency) = latency else { continue };
            for (q, value) in [
                ("p50", latency.p50),
                ("p99", latency.p99),
                ("p99.9", latency.p999),
                ("max", latency.max),
            ] {
                figures.insert(name(&format!("{figure}.{q}")), ("ms".into(), value));
            }
        }
    }
    figures
}

fn figure_changes(baseline: &RunSet, candidate: &RunSet) -> Vec<FigureChange> {
    let collect = |set: &RunSet| {
        let mut all: BTreeMap<String, (String, Vec<f64>)> = BTreeMap::new();
        for run in &set.runs {
            for (name, (unit, value)) in figures_of(run) {
                let entry = all.entry(name).or_insert_with(|| (unit, Vec::new()));
                entry.1.push(value);
            }
        }
        all
    };
    let (before, after) = (collect(baseline), collect(candidate));
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let unit = before
                .get(name)
                .or_else(|| after.get(name))
                .map(|(unit, _)| unit.clone())
                .unwrap_or_default();
            let measurement = name.rsplit(": ").next().unwrap_or(name);
            let better = Better::of(measurement, &unit);
            let b = before.get(name).and_then(|(_, v)| Stats::of(v));
            let c = after.get(name).and_then(|(_, v)| Stats::of(v));
            judge_figure(name.clone(), unit, better, b, c)
        })
        .collect()
}

/// Holds the change of one figure against the noise of the sides that repeated.
fn judge_figure(
    name: String,
    unit: String,
    better: Better,
    baseline: Option<Stats>,
    candidate: Option<Stats>,
) -> FigureChange {
    let (Some(b), Some(c)) = (baseline, candidate) else {
        return FigureChange {
            name,
            unit,
            better,
            baseline,
            candidate,
            change: None,
            relative: None,
            noise: None,
            flag: Flag::OneSided,
        };
    };
    let change = c.mean - b.mean;
    let relative = (b.mean != 0.0).then(|| change / b.mean.abs());
    let noise = (b.runs > 1 && c.runs > 1).then(|| b.spread().max(c.spread()));
    let flag = match noise {
        None => Flag::NoiseUnknown,
        Some(noise) if change.abs() <= noise => Flag::WithinNoise,
        Some(_) => match better {
            Better::Lower if change < 0.0 => Flag::Better,
            Better::Higher if change > 0.0 => Flag::Better,
            Better::Neither => Flag::Changed,
            _ => Flag::Worse,
        },
    };
    FigureChange {
        name,
        unit,
        better,
        baseline,
        candidate,
        change: Some(change),
        relative,
        noise,
        flag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(passed: bool, reconvergence_ms: f64, ok_per_second: f64) -> RunResult {
        let json = serde_json::json!({
            "suite": "outpost-partition",
            "passed": passed,
            "envoy_version": "envoy 1.40.0",
            "git_revision": "abc",
            "checks": [{
                "name": "reconvergence",
                "outcome": if passed { "passed" } else { "failed" },
                "measurements": [
                    {"name": "reconvergence_ms.client", "value": reconvergence_ms, "unit": "ms", "bound": 10000.0},
                    {"name": "propagation.acks", "value": 3.0, "unit": "acks"}
                ]
            }],
            "phases": [{
                "phase": "partition", "start_ms": 0, "end_ms": 1000, "requests": 100, "ok": 100,
                "ok_per_second": ok_per_second,
                "latency_ms": {"p50": 1.0, "p99": 2.0, "p999": 3.0, "max": 4.0},
                "served_by": {}
            }]
        });
        serde_json::from_value(json).expect("a result")
    }

    fn set(runs: Vec<RunResult>) -> RunSet {
        RunSet {
            dir: PathBuf::from("x"),
            folders: runs.iter().map(|_| PathBuf::from("x")).collect(),
            runs,
        }
    }

    fn figure<'a>(comparison: &'a Comparison, name: &str) -> &'a FigureChange {
        comparison
            .figures
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no figure {name}"))
    }

    #[test]
    fn single_runs_show_changes_but_flag_none() {
        let comparison = compare(
            &set(vec![run(true, 1_000.0, 50.0)]),
            &set(vec![run(true, 3_000.0, 20.0)]),
        );
        let reconvergence = figure(&comparison, "reconvergence: reconvergence_ms.client");
        assert_eq!(reconvergence.change, Some(2_000.0));
        assert_eq!(reconvergence.relative, Some(2.0));
        assert_eq!(reconvergence.flag, Flag::NoiseUnknown);
        assert!(!comparison.regressed);
    }

    #[test]
    fn changes_beyond_the_noise_are_flagged_by_direction() {
        let baseline = set(vec![run(true, 1_000.0, 50.0), run(true, 1_200.0, 52.0)]);
        // Reconvergence 2 s slower with a spread of 200 ms; throughput within its noise.
        let slower = set(vec![run(true, 3_000.0, 51.0), run(true, 3_100.0, 50.0)]);
        let comparison = compare(&baseline, &slower);
        let reconvergence = figure(&comparison, "reconvergence: reconvergence_ms.client");
        assert_eq!(reconvergence.noise, Some(200.0));
        assert_eq!(reconvergence.flag, Flag::Worse);
        assert_eq!(
            figure(&comparison, "phase partition: ok_per_second").flag,
            Flag::WithinNoise
        );
        assert!(comparison.regressed);
        // The other way round it is an improvement, and nothing regressed.
        let back = compare(&slower, &baseline);
        assert_eq!(
            figure(&back, "reconvergence: reconvergence_ms.client").flag,
            Flag::Better
        );
        assert!(!back.regressed);
        // Higher throughput beyond the noise is better.
        let faster = set(vec![run(true, 1_100.0, 90.0), run(true, 1_100.0, 91.0)]);
        assert_eq!(
            figure(
                &compare(&baseline, &faster),
                "phase partition: ok_per_second"
            )
            .flag,
            Flag::Better
        );
    }

    #[test]
    fn a_check_failing_in_the_candidate_is_a_regression() {
        let comparison = compare(
            &set(vec![run(true, 1_000.0, 50.0)]),
            &set(vec![run(true, 1_000.0, 50.0), run(false, 1_000.0, 50.0)]),
        );
        assert_eq!(comparison.checks[0].moved, CheckMove::Regressed);
        assert_eq!(comparison.checks[0].candidate, (1, 2));
        assert!(comparison.regressed);
        let fixed = compare(
            &set(vec![run(false, 1_000.0, 50.0)]),
            &set(vec![run(true, 1_000.0, 50.0)]),
        );
        assert_eq!(fixed.checks[0].moved, CheckMove::Fixed);
        assert!(!fixed.regressed);
    }

    #[test]
    fn sides_that_ran_different_suites_variants_or_fault_proxies_are_warned_of() {
        let same = compare(
            &set(vec![run(true, 1_000.0, 50.0)]),
            &set(vec![run(true, 1_000.0, 50.0)]),
        );
        assert_eq!(same.warnings, Vec::<String>::new());
        let mut other = run(true, 1_000.0, 50.0);
        other.suite = "outpost-partition-delta".into();
        other.xds = "delta".into();
        other.fault_proxy = "Toxiproxy (/usr/bin/toxiproxy-server)".into();
        let differ = compare(&set(vec![run(true, 1_000.0, 50.0)]), &set(vec![other]));
        assert_eq!(differ.warnings.len(), 3, "{:#?}", differ.warnings);
        assert!(differ.warnings[0].starts_with(
            "the two sides ran different suites (baseline outpost-partition, candidate outpost-partition-delta)"
        ));
        assert!(differ.warnings[1].contains("xDS variants (baseline unknown, candidate delta)"));
        assert!(differ.warnings[2].contains("--fault-proxy"));
    }

    #[test]
    fn counts_have_no_better_direction() {
        let twice = || set(vec![run(true, 1_000.0, 50.0), run(true, 1_000.0, 50.0)]);
        let comparison = compare(&twice(), &twice());
        let acks = figure(&comparison, "reconvergence: propagation.acks");
        assert_eq!(acks.better, Better::Neither);
        assert_eq!(acks.flag, Flag::WithinNoise);
    }

    #[test]
    fn the_noise_needs_repeats_on_both_sides() {
        // A 3x slower reconvergence, but the baseline ran once: its spread is unknown.
        let comparison = compare(
            &set(vec![run(true, 1_000.0, 50.0)]),
            &set(vec![run(true, 3_000.0, 50.0), run(true, 3_100.0, 50.0)]),
        );
        let reconvergence = figure(&comparison, "reconvergence: reconvergence_ms.client");
        assert_eq!(reconvergence.flag, Flag::NoiseUnknown);
        assert_eq!(reconvergence.noise, None);
        assert!(!comparison.regressed);
    }

    #[test]
    fn loading_names_what_is_missing_or_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let err = RunSet::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no result.json"), "{err}");
        std::fs::create_dir(dir.path().join("repeat-1")).unwrap();
        std::fs::write(
            dir.path().join("repeat-1/result.json"),
            "{\n  \"suite\": 3\n}",
        )
        .unwrap();
        let err = RunSet::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("repeat-1/result.json:2:"), "{err}");
    }
}
