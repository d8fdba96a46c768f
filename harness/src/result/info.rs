//! What is known about a run besides its verdicts: which suite, when, on what, with
//! which Envoy and tether; kept as the run folder's `run.json`.

use crate::checks::Verdict;
use serde::{Deserialize, Serialize};

/// This build of tether (`CARGO_PKG_VERSION`).
pub const TETHER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision tether was built from (`git rev-parse --short HEAD`), or `unknown`.
pub const GIT_REVISION: &str = env!("TETHER_GIT_REVISION");

fn unknown() -> String {
    "unknown".into()
}

/// Facts about a run that every report shows. Serialized (less the texts and what only
/// the timeline can tell) as the run folder's `run.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunInfo {
    /// Suite name.
    pub suite: String,
    /// Suite file.
    pub suite_path: String,
    /// Suite text as run.
    #[serde(skip)]
    pub suite_text: String,
    /// Mesh fixture text as run.
    #[serde(skip)]
    pub mesh_text: String,
    /// Start time (UTC, RFC 3339).
    pub started_at: String,
    /// Wall time of the whole run, bring-up and teardown included.
    #[serde(default)]
    pub duration_s: f64,
    /// Seed.
    #[serde(default)]
    pub seed: u64,
    /// `envoy --version` (`unknown` until Envoy is found).
    #[serde(default = "unknown")]
    pub envoy_version: String,
    /// Backend name (`target <name>` for a run against a target).
    pub backend: String,
    /// The target run against, if any: its name and the digest of its file (the file
    /// itself may hold credentials and is never copied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetInfo>,
    /// The xDS variant the sidecars spoke (`sotw`, `delta`, with the sidecars that
    /// differ, and `(--xds)` when the command line chose it).
    #[serde(default = "unknown")]
    pub xds: String,
    /// The fault proxy that carried the links (`tether's own ...`, `Toxiproxy (PATH)`,
    /// an image, `none (packet link)`, or `the target's`).
    #[serde(default = "unknown")]
    pub fault_proxy: String,
    /// The tether version that ran it.
    #[serde(default = "unknown")]
    pub tether_version: String,
    /// The git revision of that tether build.
    #[serde(default = "unknown")]
    pub git_revision: String,
    /// The machine it ran on.
    #[serde(default)]
    pub machine: Machine,
    /// What sampling the sidecars cost tether (absent before the run sampled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observer: Option<crate::observe::ObserverCost>,
    /// The run was interrupted before all phases ran.
    #[serde(skip)]
    pub interrupted: bool,
    /// The timeline has no `run_ended` entry: the run was killed or crashed.
    #[serde(skip)]
    pub incomplete: bool,
    /// A stop condition ended the run early: which, and what it saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

impl RunInfo {
    /// Did the run complete with every check passed?
    pub fn passed(&self, verdicts: &[Verdict]) -> bool {
        !self.interrupted
            && !self.incomplete
            && self.stopped.is_none()
            && verdicts.iter().all(Verdict::passed)
    }
}

/// Which target a run ran against, and its clock.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// The target's name.
    pub name: String,
    /// The target file, as given on the command line.
    pub path: String,
    /// SHA-256 of the target file.
    pub digest: String,
    /// `tether` (its xDS log followed) or `foreign` (checks judged from the Envoys).
    #[serde(default)]
    pub control_plane: String,
    /// The control plane's clock minus the harness's, µs, as first measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_us: Option<i64>,
    /// Within this, µs (half the best round trip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_uncertainty_us: Option<u64>,
}

/// The machine a run ran on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Machine {
    /// CPU cores available to tether.
    pub cores: usize,
    /// Total memory (`MemTotal` of `/proc/meminfo`), 0 when unknown.
    pub memory_bytes: u64,
}

impl Machine {
    /// This machine.
    pub fn this() -> Self {
        let memory_kb = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .unwrap_or(0);
        Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_bytes: memory_kb * 1024,
        }
    }

    /// `2 cores, 23.4 GiB memory`.
    pub fn describe(&self) -> String {
        format!(
            "{} cores, {:.1} GiB memory",
            self.cores,
            self.memory_bytes as f64 / (1u64 << 30) as f64
        )
    }
}
