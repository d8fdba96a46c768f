//! The two sites of the model: the edge rack and the cloud region.

use serde::{Deserialize, Serialize};

/// The two sites of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Site {
    /// The edge rack.
    Outpost,
    /// The cloud region, where the control plane lives.
    Region,
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Site::Outpost => "outpost",
            Site::Region => "region",
        })
    }
}
