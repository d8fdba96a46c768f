//! The suite commands: `run` (once, repeated, against a baseline), `validate` (and the
//! schedule), `report` (judge a run folder again) and `compare`.

use crate::compare::RunSet;
use crate::plan::{Plan, Schedule, SoakLength};
use crate::report::console;
use crate::run::{self, RunOptions, exit};
use std::path::{Path, PathBuf};

/// `tether validate SUITE`: parse and check it; with a seed, print its schedule; with a
/// target, check that the target has every part the suite needs and that they answer.
pub(super) async fn validate(
    suite: &Path,
    schedule_seed: Option<u64>,
    length: Option<SoakLength>,
    target: Option<&Path>,
) -> i32 {
    match load(suite, length) {
        Ok(plan) => {
            let what = match &plan.soak {
                Some(soak) => format!(
                    "a soak of {} ({} cycles with seed {}), each of {} phases",
                    soak.length,
                    Schedule::of(&plan, schedule_seed.unwrap_or(1)).cycles(),
                    schedule_seed.unwrap_or(1),
                    plan.phases.len()
                ),
                None => format!(
                    "{} phases ({:.0} s)",
                    plan.phases.len(),
                    plan.total_duration().as_secs_f64()
                ),
            };
            println!(
                "{}: suite `{}` is valid: {} Envoys (virtual nodes and gateways), {what}, {} checks",
                suite.display(),
                plan.name(),
                plan.sites.len(),
                plan.checks.len()
            );
            if let Some(seed) = schedule_seed {
                print!("{}", Schedule::of(&plan, seed).render());
            }
            match target {
                Some(path) => super::targets::validate(&plan, path).await,
                None => exit::PASSED,
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::BAD_INPUT
        }
    }
}

/// Load a suite, with a soak's length from the command line.
fn load(suite: &Path, length: Option<SoakLength>) -> Result<Plan, String> {
    let mut plan = crate::suite::load(suite).map_err(|e| e.to_string())?;
    if let Some(length) = length
        && !plan.set_soak_length(length)
    {
        return Err(format!(
            "{}: `--for` and `--cycles` apply to a soak (a suite with `soak:`); this suite runs its phases once",
            suite.display()
        ));
    }
    Ok(plan)
}

/// What `tether run` was asked besides the suite.
#[derive(Clone)]
pub(super) struct SuiteOptions {
    pub backend: crate::backend::Backend,
    pub report_dir: Option<PathBuf>,
    pub seed: u64,
    pub envoy_bin: Option<PathBuf>,
    pub xds: Option<String>,
    pub fault_proxy: crate::faults::FaultProxyChoice,
    pub repeat: u32,
    pub baseline: Option<PathBuf>,
    pub length: Option<SoakLength>,
    pub target: Option<PathBuf>,
    pub dry_run: bool,
}

/// `tether run SUITE`: run it (repeated, against a baseline, as asked) until done or
/// interrupted (Ctrl-C, SIGTERM); the exit code.
pub(super) async fn run(suite: PathBuf, options: SuiteOptions) -> i32 {
    let interrupt =
        interrupt_saying("tether: interrupted; stopping everything and writing what was recorded");
    run_until(&suite, options, interrupt).await
}

/// Cancelled on Ctrl-C or SIGTERM, saying `message` on stderr when it is.
pub(super) fn interrupt_saying(message: &'static str) -> tokio_util::sync::CancellationToken {
    let interrupt = super::roles::shutdown_on_signal();
    let on_signal = interrupt.clone();
    tokio::spawn(async move {
        on_signal.cancelled().await;
        eprintln!("{message}");
    });
    interrupt
}

/// Run one suite as `tether run` does, stopping when `interrupt` is cancelled.
pub(super) async fn run_until(
    suite: &Path,
    options: SuiteOptions,
    interrupt: tokio_util::sync::CancellationToken,
) -> i32 {
    let mut plan = match load(suite, options.length) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    let target = match options
        .target
        .as_deref()
        .map(super::targets::load)
        .transpose()
    {
        Ok(target) => target.map(std::sync::Arc::new),
        Err(code) => return code,
    };
    match &target {
        Some(target) => {
            if let Err(code) = super::targets::fit(&mut plan, target) {
                return code;
            }
            if options.dry_run {
                let schedule = Schedule::of(&plan, options.seed);
                print!(
                    "{}",
                    crate::backend::target::dry_run::render(&plan, target, &schedule)
                );
                return exit::PASSED;
            }
        }
        None => {
            if let Err(e) = crate::backend::check(&plan, options.backend) {
                eprintln!("error: {e}");
                return exit::BAD_INPUT;
            }
        }
    }
    if options.backend == crate::backend::Backend::Process
        && (plan.images.envoy.is_some() || plan.images.fault_proxy.is_some())
    {
        eprintln!(
            "tether: note: the suite's `images:` apply to `--backend docker`; this run uses the provisioned Envoy and tether's fault proxy as processes"
        );
    }
    // A baseline that cannot be read is bad input: say so before running anything.
    let baseline = match options.baseline.as_deref().map(RunSet::load).transpose() {
        Ok(baseline) => baseline,
        Err(e) => {
            eprintln!("error: --baseline: {e}");
            return exit::BAD_INPUT;
        }
    };
    match options.xds.as_deref() {
        Some("delta") => plan.force_xds_variant(crate::plan::XdsVariant::Delta),
        Some(_) => plan.force_xds_variant(crate::plan::XdsVariant::Sotw),
        None => {}
    }
    let root = options.report_dir.unwrap_or_else(|| {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        PathBuf::from("reports").join(format!("{}-{stamp}", plan.name()))
    });
    let mut code = exit::PASSED;
    for round in 1..=options.repeat {
        let report_dir = if options.repeat == 1 {
            root.clone()
        } else {
            println!("repeat {round} of {}", options.repeat);
            root.join(format!("repeat-{round}"))
        };
        let opts = RunOptions {
            report_dir,
            envoy_bin: options.envoy_bin.clone(),
            tether_bin: None,
            seed: options.seed,
            progress: true,
            interrupt: interrupt.clone(),
            backend: options.backend,
            target: target.clone(),
            fault_proxy: options.fault_proxy,
        };
        let ran = run_healing(&plan, &opts).await;
        match ran {
            Ok(outcome) => {
                print!("{}", console::table(plan.name(), &outcome.verdicts));
                println!("reports: {}", outcome.report_dir.display());
                // The worst outcome of the repeats is the command's.
                code = code.max(outcome.exit_code());
            }
            Err(e) => {
                eprintln!("error: the environment could not run the suite: {e}");
                return exit::ENVIRONMENT;
            }
        }
        if interrupt.is_cancelled() {
            return code;
        }
    }
    match baseline {
        Some(baseline) => match compare_with(&baseline, &root, &root) {
            Ok(regressed) if regressed && code == exit::PASSED => exit::FAILED,
            Ok(_) => code,
            Err(e) => e,
        },
        None => code,
    }
}

/// One run; against a target, whatever its ledger still holds afterwards (a panic in
/// the run, a fault its own teardown could not remove) is removed, and said.
async fn run_healing(
    plan: &Plan,
    opts: &RunOptions,
) -> Result<run::Outcome, run::EnvironmentError> {
    use futures::FutureExt;
    let ran = std::panic::AssertUnwindSafe(run::run(plan, opts))
        .catch_unwind()
        .await;
    if let Some(target) = &opts.target {
        super::targets::heal_after(target, &opts.report_dir).await;
    }
    match ran {
        Ok(ran) => ran,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// `tether compare`: exit 0 without regression, 1 with one, 2 on bad input.
pub(super) fn compare(
    baseline: &std::path::Path,
    candidate: &std::path::Path,
    out: &std::path::Path,
) -> i32 {
    let baseline = match RunSet::load(baseline) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    match compare_with(&baseline, candidate, out) {
        Ok(true) => exit::FAILED,
        Ok(false) => exit::PASSED,
        Err(code) => code,
    }
}

/// Compares the runs in `candidate` against `baseline`, prints the summary and
/// writes the comparison into `out`. Whether it regressed, or the exit code of
/// what went wrong.
fn compare_with(
    baseline: &RunSet,
    candidate: &std::path::Path,
    out: &std::path::Path,
) -> Result<bool, i32> {
    let candidate = RunSet::load(candidate).map_err(|e| {
        eprintln!("error: {e}");
        exit::BAD_INPUT
    })?;
    let comparison = crate::compare::compare(baseline, &candidate);
    print!("{}", crate::report::comparison::console(&comparison));
    crate::report::comparison::write(out, &comparison).map_err(|e| {
        eprintln!("error: {e:#}");
        exit::ENVIRONMENT
    })?;
    println!("comparison: {}", out.join("comparison.html").display());
    Ok(comparison.regressed)
}

/// `tether report RUN_DIR`: judge the folder again and print the verdicts.
pub(super) fn report_folder(dir: &std::path::Path) -> i32 {
    match run::folder::report(dir) {
        Ok(judged) => {
            print!("{}", console::table(&judged.info.suite, &judged.verdicts));
            if judged.info.incomplete {
                println!(
                    "INCOMPLETE: the timeline has no run_ended entry (the run was killed or crashed); judged what it recorded"
                );
            } else if judged.info.interrupted {
                println!("INCOMPLETE: the run was interrupted before all phases ran");
            }
            println!("reports: {}", dir.display());
            judged.exit_code()
        }
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
