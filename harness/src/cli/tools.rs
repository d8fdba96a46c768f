//! Tools a user runs on their own: `tether load` (the generator, as wrk is used) and
//! `tether bench` (benchmarks: the generator against wrk, the fault proxy).

use crate::run::exit;

pub(super) fn load(options: &crate::load::standalone::Options, json: bool) -> i32 {
    match crate::load::standalone::run(options) {
        Ok(report) => {
            use std::io::Write;
            let text = if json {
                serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
            } else {
                crate::load::standalone::Printed(&report).to_string()
            };
            // A reader that stops early (`| head`) is not an error of the run.
            let _ = std::io::stdout().write_all(text.as_bytes());
            if report.valid {
                exit::PASSED
            } else {
                exit::INVALID
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::BAD_INPUT
        }
    }
}

/// Runs a benchmark on a blocking thread: 0 when it finished, 3 when it could not run
/// (a tool or Envoy is missing).
pub(super) async fn bench<T: Send + 'static>(
    run: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> i32 {
    match tokio::task::spawn_blocking(run).await {
        Ok(Ok(_)) => exit::PASSED,
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            exit::ENVIRONMENT
        }
        Err(_) => exit::ENVIRONMENT,
    }
}
