//! The target commands: reading a target file for `run --target` and
//! `validate --target` (exit 2 when the file is wrong, 3 when the target cannot serve the
//! suite or does not answer), and `tether heal --target`.

use crate::plan::Plan;
use crate::run::exit;
use crate::target::Target;
use std::path::Path;

/// Read the target file at `path`; exit 2 with file:line:col when it is wrong.
pub(super) fn load(path: &Path) -> Result<Target, i32> {
    crate::target::load(path).map_err(|e| {
        eprintln!("error: {e}");
        exit::BAD_INPUT
    })
}

/// Check that `target` has what `plan` needs (exit 3 naming each part it lacks), and send
/// the load with the `Host` the target gives for it, if it gives one.
pub(super) fn fit(plan: &mut Plan, target: &Target) -> Result<(), i32> {
    if let Err(unfit) = target.fits(plan) {
        for problem in &unfit.0 {
            eprintln!("error: {problem}");
        }
        return Err(exit::ENVIRONMENT);
    }
    if let Some(host) = target
        .load
        .get(&plan.load.through)
        .and_then(|entry| entry.host.clone())
    {
        plan.load.service = host;
    }
    Ok(())
}

/// `tether validate SUITE --target FILE`: the target has every part and they answer.
pub(super) async fn validate(plan: &Plan, path: &Path) -> i32 {
    let target = match load(path) {
        Ok(target) => target,
        Err(code) => return code,
    };
    let mut plan = plan.clone();
    if let Err(code) = fit(&mut plan, &target) {
        return code;
    }
    let mut problems = crate::backend::target::reach(&target, &plan).await;
    if problems.is_empty() {
        problems = crate::backend::target::settings::mismatches(&plan, &target).await;
    }
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("error: {}: {problem}", path.display());
        }
        return exit::ENVIRONMENT;
    }
    match crate::backend::target::ledger::pending(&target) {
        Ok(left) if !left.is_empty() => {
            eprintln!(
                "error: {}: {} fault(s) a killed run left are still on target `{}`; run `tether heal --target {}`",
                path.display(),
                left.len(),
                target.name,
                path.display()
            );
            return exit::ENVIRONMENT;
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::ENVIRONMENT;
        }
    }
    println!(
        "{}: target `{}` has every part suite `{}` needs, and each answers",
        path.display(),
        target.name,
        plan.name()
    );
    exit::PASSED
}

/// `tether heal --target FILE`: remove what the ledger says is on the target.
pub(super) async fn heal(path: &Path) -> i32 {
    let target = match load(path) {
        Ok(target) => target,
        Err(code) => return code,
    };
    match crate::backend::target::heal(&target, None).await {
        Ok(removed) if removed.is_empty() => {
            println!("target `{}`: no fault left on it", target.name);
            exit::PASSED
        }
        Ok(removed) => {
            for line in &removed {
                println!("removed {line}");
            }
            println!(
                "target `{}`: removed {} fault(s); its ledger is empty",
                target.name,
                removed.len()
            );
            exit::PASSED
        }
        Err(e) => {
            eprintln!("error: target `{}`: {e:#}", target.name);
            exit::ENVIRONMENT
        }
    }
}

/// After a run into `run_dir` against `target`: remove what the ledger says that run
/// still has on it, saying so.
pub(super) async fn heal_after(target: &Target, run_dir: &Path) {
    let mine = |e: &crate::backend::target::ledger::Entry| e.run == run_dir.display().to_string();
    match crate::backend::target::ledger::pending(target) {
        Ok(left) if !left.iter().any(mine) => {}
        _ => match crate::backend::target::heal(target, Some(run_dir)).await {
            Ok(removed) => {
                for line in removed {
                    eprintln!("tether: removed {line}, which the run left on the target");
                }
            }
            Err(e) => eprintln!(
                "error: target `{}`: cannot remove what the run left ({e:#}); run `tether heal --target {}`",
                target.name,
                target.path.display()
            ),
        },
    }
}
