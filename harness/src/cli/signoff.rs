//! `tether run` of a folder or of several suites: a release sign-off. Every suite is
//! loaded first (bad input stops everything before anything runs), then run one after
//! another with the same options into its own folder of the sign-off folder, with a
//! progress line per suite; then each is judged ([`crate::signoff`]) and the sign-off's
//! `signoff.json`, `signoff.html` and `junit.xml` are written.

use super::suites::{SuiteOptions, interrupt_saying, run_until};
use crate::plan::Plan;
use crate::run::exit;
use crate::signoff::{Ran, SignOff, SuiteSignOff, Totals};
use crate::target::Target;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The suite files `paths` name: a file as it is, a folder's `*.yaml` in name order
/// (and, `with_negative`, its `negative/` folder's after them).
fn suite_files(paths: &[PathBuf], with_negative: bool) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut found = yaml_in(path)?;
        if with_negative && path.join("negative").is_dir() {
            found.extend(yaml_in(&path.join("negative"))?);
        }
        if found.is_empty() {
            return Err(format!(
                "{}: no suite files (*.yaml) in this folder",
                path.display()
            ));
        }
        files.extend(found);
    }
    Ok(files)
}

/// The `*.yaml` and `*.yml` files of `dir`, in name order.
fn yaml_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Every suite loaded, or the first one's error; two suites of one name are refused
/// (their folders would collide).
fn load_all(files: &[PathBuf], options: &SuiteOptions) -> Result<Vec<Plan>, String> {
    let mut plans: Vec<Plan> = Vec::new();
    for file in files {
        let mut plan = crate::suite::load(file).map_err(|e| e.to_string())?;
        if let Some(length) = &options.length {
            // A soak's length applies to the soaks; the other suites run their phases once.
            plan.set_soak_length(*length);
        }
        if let Some(other) = plans.iter().find(|p| p.name == plan.name) {
            return Err(format!(
                "{} and {} are both named `{}`: a sign-off gives each suite a folder of its name",
                other.suite_path.display(),
                file.display(),
                plan.name
            ));
        }
        plans.push(plan);
    }
    Ok(plans)
}

/// Why `plan` cannot run against `target` (if given) or on the options' backend.
fn cannot_run(plan: &Plan, target: Option<&Target>, options: &SuiteOptions) -> Option<String> {
    match target {
        Some(target) => {
            let unfit = target.fits(plan).err()?;
            let problems: Vec<String> = unfit.0.iter().map(|p| p.to_string()).collect();
            Some(format!("the target cannot run it: {}", problems.join("; ")))
        }
        None => crate::backend::check(plan, options.backend)
            .err()
            .map(|e| format!("the {} backend cannot run it: {e}", options.backend.name())),
    }
}

/// `tether run PATHS...` as a sign-off into `options.report_dir` (default
/// `reports/signoff-<UTC time>/`); 0 when every suite that ran passed and none regressed.
pub(super) async fn run(paths: Vec<PathBuf>, with_negative: bool, options: SuiteOptions) -> i32 {
    let plans = match suite_files(&paths, with_negative).and_then(|f| load_all(&f, &options)) {
        Ok(plans) => plans,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    if options.dry_run {
        eprintln!("error: --dry-run takes one suite file");
        return exit::BAD_INPUT;
    }
    // A target file that cannot be read is bad input, said before anything runs.
    let target = match options
        .target
        .as_deref()
        .map(super::targets::load)
        .transpose()
    {
        Ok(target) => target,
        Err(code) => return code,
    };
    let root = options.report_dir.clone().unwrap_or_else(|| {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        PathBuf::from("reports").join(format!("signoff-{stamp}"))
    });
    let interrupt = interrupt_saying(
        "tether: interrupted; stopping the suite that runs and writing the sign-off of what ran",
    );
    let started = chrono::Utc::now();
    let mut clock = Progress::new(&plans, options.repeat);
    let mut judged: Vec<SuiteSignOff> = Vec::new();
    for plan in &plans {
        let ran = Ran {
            name: plan.name.clone(),
            file: plan.suite_path.clone(),
            expect_failing: plan.expect_failing.clone(),
            expect_stopped: plan.expect_stopped,
            dir: Err(String::new()),
        };
        let dir = root.join(&plan.name);
        let baseline = options.baseline.as_ref().map(|b| b.join(&plan.name));
        let ran = if interrupt.is_cancelled() {
            Ran {
                dir: Err("interrupted before it ran".into()),
                ..ran
            }
        } else if let Some(why) = cannot_run(plan, target.as_ref(), &options) {
            Ran {
                dir: Err(why),
                ..ran
            }
        } else {
            println!("{}", clock.line(plan, &judged));
            let suite_options = SuiteOptions {
                report_dir: Some(dir.clone()),
                baseline: baseline.clone().filter(|b| b.is_dir()),
                // `--for`/`--cycles` are the soaks'; the other suites run their phases.
                length: options.length.filter(|_| plan.soak.is_some()),
                ..options.clone()
            };
            // What it printed says how it went; its folder is judged below either way.
            run_until(&plan.suite_path, suite_options, interrupt.clone()).await;
            Ran {
                dir: Ok(dir),
                ..ran
            }
        };
        let entry = crate::signoff::judge(&ran, &root, baseline.as_deref());
        clock.done(plan, ran.dir.is_ok());
        judged.push(entry);
    }
    let ran_on = match &options.target {
        Some(target) => format!("target {}", target.display()),
        None => options.backend.name().to_string(),
    };
    let signoff = SignOff::new(
        judged,
        ran_on,
        std::env::args().collect::<Vec<_>>().join(" "),
        started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        options.baseline.as_deref(),
    );
    if let Err(e) = crate::report::signoff::write(&root, &signoff) {
        eprintln!(
            "error: cannot write the sign-off into {}: {e:#}",
            root.display()
        );
        return exit::ENVIRONMENT;
    }
    print!("{}", crate::report::signoff::console(&signoff));
    println!("sign-off: {}", root.join("signoff.html").display());
    match (interrupt.is_cancelled(), signoff.passed()) {
        (true, _) => exit::INTERRUPTED,
        (false, true) => exit::PASSED,
        (false, false) => exit::FAILED,
    }
}

/// The progress line before each suite: which, how many done and how they went, and
/// the time left, estimated from the suites' planned lengths at the pace seen so far.
struct Progress {
    started: Instant,
    total: usize,
    planned_left: Duration,
    planned_done: Duration,
    repeat: u32,
}

impl Progress {
    fn new(plans: &[Plan], repeat: u32) -> Self {
        Progress {
            started: Instant::now(),
            total: plans.len(),
            planned_left: plans.iter().map(|p| planned(p, repeat)).sum(),
            planned_done: Duration::ZERO,
            repeat,
        }
    }

    fn line(&self, plan: &Plan, judged: &[SuiteSignOff]) -> String {
        let totals = Totals::of(judged);
        let pace = match self.planned_done.as_secs_f64() {
            0.0 => 1.3,
            done => self.started.elapsed().as_secs_f64() / done,
        };
        let left = self.planned_left.as_secs_f64() * pace;
        format!(
            "[signoff {}/{}] {} ({} passed, {} failed, {} not run so far; about {} left)",
            judged.len() + 1,
            self.total,
            plan.name,
            totals.passed,
            totals.failed,
            totals.not_run,
            minutes(left)
        )
    }

    /// `plan` is done: it ran, or it was passed over (and took no time).
    fn done(&mut self, plan: &Plan, ran: bool) {
        let took = planned(plan, self.repeat);
        self.planned_left = self.planned_left.saturating_sub(took);
        if ran {
            self.planned_done += took;
        }
    }
}

/// A suite's planned length over its repeats.
fn planned(plan: &Plan, repeat: u32) -> Duration {
    plan.total_duration() * repeat
}

fn minutes(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{:.0} s", seconds)
    } else {
        format!("{:.0} min", seconds / 60.0)
    }
}

/// `tether signoff DIR --signed-by NAME`: record the signature in `signoff.json` (and
/// show it in `signoff.html`); a folder signed already is refused.
pub(super) fn sign(dir: &Path, name: &str) -> i32 {
    use crate::signoff::seal;
    let signed = seal::read(dir).and_then(|signoff| match &signoff.signature {
        Some(sig) => Err(seal::SealError::Unreadable(format!(
            "{}: signed already, by {} at {}",
            dir.display(),
            sig.signed_by,
            sig.signed_at
        ))),
        None => seal::sign(dir, signoff, name),
    });
    let signoff = match signed {
        Ok(signoff) => signoff,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    if let Err(e) = crate::report::signoff::write_document(dir, &signoff) {
        eprintln!("error: {e:#}");
        return exit::ENVIRONMENT;
    }
    let covered = signoff.signature.as_ref().map_or(0, |s| s.digests.len());
    println!(
        "signed by {name}: {} ({covered} files covered, each by its SHA-256)",
        dir.join("signoff.json").display()
    );
    exit::PASSED
}

/// `tether signoff --verify DIR`: 0 when every signed file and the verdicts are as
/// signed (and `signoff.html` is the rendering of them), 1 naming what changed.
pub(super) fn verify(dir: &Path) -> i32 {
    use crate::signoff::seal::{self, SealError};
    match seal::verify(dir) {
        Ok(sig) => {
            let page = std::fs::read_to_string(dir.join("signoff.html")).unwrap_or_default();
            let ours = seal::read(dir).map(|s| crate::report::signoff::html::render(&s));
            if ours.is_ok_and(|ours| ours != page) {
                println!("CHANGED: signoff.html is not the rendering of the signed signoff.json");
                return exit::FAILED;
            }
            println!(
                "VERIFIED: signed by {} at {}; {} files and the verdicts are as signed",
                sig.signed_by,
                sig.signed_at,
                sig.digests.len()
            );
            exit::PASSED
        }
        Err(e @ SealError::Changed { .. }) => {
            println!("CHANGED: {e}");
            exit::FAILED
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::BAD_INPUT
        }
    }
}
