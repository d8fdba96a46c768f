//! The load a suite drives through the outpost for the whole run.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which load generator a suite runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generator {
    /// tether's own generator: open loop at `rate` through the sidecar.
    #[default]
    HotPath,
    /// goose user journeys.
    Goose,
    /// Both at once.
    Both,
}

impl Generator {
    /// Does it run tether's own open-loop generator?
    pub fn hot_path(self) -> bool {
        matches!(self, Generator::HotPath | Generator::Both)
    }

    /// Does it run goose journeys?
    pub fn goose(self) -> bool {
        matches!(self, Generator::Goose | Generator::Both)
    }
}

/// Constant-rate load into one sidecar, addressed to one virtual service.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    /// The virtual node whose sidecar the load enters (its egress listener).
    pub through: String,
    /// The virtual service the requests are for (their `Host`).
    pub service: String,
    /// Requests per second.
    pub rate: u32,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Which generator drives it.
    pub generator: Generator,
    /// The goose user journeys, with `generator: goose` or `both`.
    pub journeys: Option<JourneysPlan>,
}

/// goose user journeys: each user visits the load's service (the front), then asks it for
/// something it calls `calls` (the back) for, through both sidecars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneysPlan {
    /// The back virtual service the front calls.
    pub calls: String,
    /// Concurrent users.
    pub users: usize,
}
