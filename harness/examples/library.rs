//! tether as a library from another crate, given no path to a `tether` executable: what
//! the README's "Using it from `cargo test`" shows (the part between the `README` marks
//! is that snippet, word for word; `harness/tests/library.rs` checks both that and that
//! this program runs a suite).
//!
//! `cargo run --example library -- SUITE REPORT_DIR` runs SUITE and exits as
//! `tether run` would (0 passed, 1 a check failed, 3 the environment failed). It finds
//! the `tether` executable for the control plane, fault proxy and services as any
//! other crate's code would: `$TETHER_BIN`, else `tether` on `PATH`.

// README:begin
use std::path::Path;
use tether::run::RunOptions;

/// Run a suite end to end and fail unless every check passed.
async fn suite_passes(suite: &str, report_dir: &str) -> anyhow::Result<()> {
    let plan = tether::suite::load(Path::new(suite))?;
    let outcome = tether::run::run(&plan, &RunOptions::new(report_dir)).await?;
    anyhow::ensure!(outcome.passed(), "{:#?}", outcome.verdicts);
    Ok(())
}

#[tokio::test]
async fn the_outpost_keeps_serving_through_a_partition() -> anyhow::Result<()> {
    suite_passes("suites/outpost-partition.yaml", "target/tether/outpost").await
}
// README:end

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [suite, report_dir] = args.as_slice() else {
        eprintln!("usage: library SUITE REPORT_DIR");
        std::process::exit(2);
    };
    let code = match suite_passes(suite, report_dir).await {
        Ok(()) => 0,
        Err(e) if e.is::<tether::source::InputError>() => {
            eprintln!("error: {e}");
            2
        }
        Err(e) if e.is::<tether::run::EnvironmentError>() => {
            eprintln!("error: {e:#}");
            3
        }
        Err(e) => {
            eprintln!("failed: {e}");
            1
        }
    };
    std::process::exit(code);
}
