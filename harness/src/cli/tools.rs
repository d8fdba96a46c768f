//! Tools a user runs on their own: `tether load` (the generator, as wrk is used).

use crate::run::exit;

pub(super) fn load(options: &crate::load::standalone::Options, json: bool) -> i32 {
    match crate::load::standalone::run(options) {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                print!("{}", crate::load::standalone::Printed(&report));
            }
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
