//! Faults on the parts themselves, which only the Docker backend can make: cut a
//! container off its network (a partition no proxy can model), freeze it, or kill it and
//! start it again.
//!
//! A suite writes them in a phase's `containers:` list:
//!
//! ```yaml
//! containers:
//!   - disconnect: fault-proxy       # the outpost loses the link for the whole phase
//!   - pause: control-plane          # frozen for the whole phase (connections stay open)
//!   - restart: sidecar/svc-v2       # killed (SIGKILL) and started again, 2s into the phase
//!     at: 2s
//! ```

use marked_yaml::Span;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A part of the running topology a container fault names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// The control plane, in the region (`control-plane`).
    ControlPlane,
    /// The fault proxy that carries the link (`fault-proxy`); disconnecting it cuts the
    /// outpost's side of every cross-site connection.
    FaultProxy,
    /// A virtual node's Envoy (`sidecar/<node>`).
    Sidecar(String),
    /// A virtual node's sample service (`service/<node>`).
    Service(String),
}

impl Part {
    /// Reads `control-plane`, `fault-proxy`, `sidecar/<node>` or `service/<node>`.
    pub fn parse(text: &str) -> Result<Part, String> {
        match text.split_once('/') {
            None if text == "control-plane" => Ok(Part::ControlPlane),
            None if text == "fault-proxy" => Ok(Part::FaultProxy),
            Some(("sidecar", node)) if !node.is_empty() => Ok(Part::Sidecar(node.into())),
            Some(("service", node)) if !node.is_empty() => Ok(Part::Service(node.into())),
            _ => Err(format!(
                "unknown part `{text}`; expected control-plane, fault-proxy, sidecar/<node> or service/<node>"
            )),
        }
    }

    /// The virtual node it belongs to, for sidecars and services.
    pub fn node(&self) -> Option<&str> {
        match self {
            Part::Sidecar(n) | Part::Service(n) => Some(n),
            Part::ControlPlane | Part::FaultProxy => None,
        }
    }
}

impl Serialize for Part {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Part {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Part::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::ControlPlane => f.write_str("control-plane"),
            Part::FaultProxy => f.write_str("fault-proxy"),
            Part::Sidecar(n) => write!(f, "sidecar/{n}"),
            Part::Service(n) => write!(f, "service/{n}"),
        }
    }
}

/// What a container fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Disconnected from its site's network for the whole phase, connected again (same
    /// address) at its end. The fault proxy leaves the outpost's network only.
    Disconnect,
    /// Paused (cgroup freezer) for the whole phase, unpaused at its end.
    Pause,
    /// Killed (SIGKILL) and started again, once, at `at`.
    Restart,
}

impl Action {
    /// The word a suite writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Disconnect => "disconnect",
            Action::Pause => "pause",
            Action::Restart => "restart",
        }
    }

    /// Held for the whole phase (and undone at its end), rather than done once.
    pub fn held(self) -> bool {
        !matches!(self, Action::Restart)
    }
}

/// A container fault placed in its phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerFault {
    /// What is done.
    pub action: Action,
    /// To which part.
    pub part: Part,
    /// When, from the start of the phase (held faults start with the phase).
    pub at: std::time::Duration,
    /// Where the suite names the part (for errors about it).
    pub span: Span,
}

impl fmt::Display for ContainerFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.action.as_str(), self.part)?;
        if !self.action.held() {
            write!(f, " at {}", humantime::format_duration(self.at))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_read_back_as_written() {
        for text in [
            "control-plane",
            "fault-proxy",
            "sidecar/svc-v1",
            "service/client",
        ] {
            assert_eq!(Part::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            Part::parse("sidecar/svc-v1").unwrap().node(),
            Some("svc-v1")
        );
        for bad in ["envoy/svc-v1", "sidecar/", "controlplane", ""] {
            let err = Part::parse(bad).unwrap_err();
            assert!(err.contains("expected control-plane, fault-proxy"), "{err}");
        }
    }
}
