//! Disruptions: everything tether does to the system under test, as one value that the
//! schedule carries (put on, take off) and the timeline records, with how a report draws
//! its window (Jepsen's faults as data, with their plot metadata).

use super::container::{Action, Part};
use super::link::{Fault, Link};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Something tether does to the system under test for a while.
#[derive(Debug, Clone, PartialEq)]
pub enum Disruption {
    /// A fault on a link between the sites.
    Link {
        /// Which link.
        link: Link,
        /// What happens to it.
        fault: Fault,
        /// One outage of a flapping link (the fault is then `down`).
        flapping: bool,
    },
    /// A fault on a part's container (Docker backend).
    Container {
        /// Which part.
        part: Part,
        /// What is done to it.
        action: Action,
    },
    /// The control plane is killed (SIGKILL), as a crash in the region, and later started
    /// again from its persisted state.
    ControlPlaneDown,
}

/// How a report draws a disruption's window: its label and its kind of shading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draw {
    /// The window's label, e.g. `blackhole on xds`.
    pub label: String,
    /// Its kind, which picks the shading.
    pub class: DrawClass,
}

/// The kinds of disruption windows a report tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrawClass {
    /// Nothing crosses the link (or one way of it).
    Partition,
    /// The link carries traffic, worse.
    Degraded,
    /// One outage of a flapping link.
    Flap,
    /// A container disconnected, paused or restarted.
    Container,
    /// The control plane is down.
    ControlPlane,
}

/// The name a control-plane kill has on the timeline (`link`, `fault`).
const CONTROL_PLANE: (&str, &str) = ("control_plane", "killed");

impl Disruption {
    /// What it acts on, as the timeline's `link` field names it (`xds`, `sidecar/svc-v2`,
    /// `control_plane`).
    pub fn target(&self) -> String {
        match self {
            Disruption::Link { link, .. } => link.to_string(),
            Disruption::Container { part, .. } => part.to_string(),
            Disruption::ControlPlaneDown => CONTROL_PLANE.0.to_string(),
        }
    }

    /// The restarted sidecar's virtual node, for a sidecar restart.
    pub fn restarted_sidecar(&self) -> Option<&str> {
        match self {
            Disruption::Container {
                part: Part::Sidecar(node),
                action: Action::Restart,
            } => Some(node),
            _ => None,
        }
    }

    /// How a report draws its window.
    pub fn draw(&self) -> Draw {
        let class = match self {
            Disruption::Link { flapping: true, .. } => DrawClass::Flap,
            Disruption::Link { fault, .. } => match fault {
                Fault::Blackhole | Fault::OneWay { .. } | Fault::Reset | Fault::Down => {
                    DrawClass::Partition
                }
                _ => DrawClass::Degraded,
            },
            Disruption::Container { .. } => DrawClass::Container,
            Disruption::ControlPlaneDown => DrawClass::ControlPlane,
        };
        Draw {
            label: self.to_string(),
            class,
        }
    }
}

impl fmt::Display for Disruption {
    /// `blackhole on xds`, `down (flapping) on xds`, `restart sidecar/svc-v2`,
    /// `control plane killed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disruption::Link {
                link,
                fault,
                flapping,
            } => {
                let flap = if *flapping { " (flapping)" } else { "" };
                write!(f, "{fault}{flap} on {link}")
            }
            Disruption::Container { part, action } => write!(f, "{} {part}", action.as_str()),
            Disruption::ControlPlaneDown => f.write_str("control plane killed"),
        }
    }
}

/// The fields a disruption has on the timeline, flattened into its event.
#[derive(Serialize, Deserialize)]
struct Fields {
    link: String,
    fault: serde_json::Value,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    flapping: bool,
}

impl Serialize for Disruption {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let (fault, flapping) = match self {
            Disruption::Link {
                fault, flapping, ..
            } => (
                serde_json::to_value(fault).map_err(S::Error::custom)?,
                *flapping,
            ),
            Disruption::Container { action, .. } => (action.as_str().into(), false),
            Disruption::ControlPlaneDown => (CONTROL_PLANE.1.into(), false),
        };
        Fields {
            link: self.target(),
            fault,
            flapping,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Disruption {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let Fields {
            link,
            fault,
            flapping,
        } = Fields::deserialize(d)?;
        if (link.as_str(), fault.as_str()) == (CONTROL_PLANE.0, Some(CONTROL_PLANE.1)) {
            return Ok(Disruption::ControlPlaneDown);
        }
        if let Some(link) = Link::parse(&link) {
            let fault = Fault::deserialize(fault).map_err(D::Error::custom)?;
            return Ok(Disruption::Link {
                link,
                fault,
                flapping,
            });
        }
        let part = Part::parse(&link).map_err(D::Error::custom)?;
        let action = Action::deserialize(fault).map_err(D::Error::custom)?;
        Ok(Disruption::Container { part, action })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Duration;

    #[test]
    fn disruptions_read_back_as_written_with_link_and_fault_fields() {
        let latency = Fault::Latency {
            delay: Duration(std::time::Duration::from_millis(90)),
            jitter: None,
        };
        let cases = [
            (
                Disruption::Link {
                    link: Link::Xds,
                    fault: Fault::Blackhole,
                    flapping: false,
                },
                r#"{"link":"xds","fault":"blackhole"}"#,
            ),
            (
                Disruption::Link {
                    link: Link::Xds,
                    fault: latency,
                    flapping: false,
                },
                r#"{"link":"xds","fault":{"latency":{"delay":"90ms"}}}"#,
            ),
            (
                Disruption::Link {
                    link: Link::Data,
                    fault: Fault::Down,
                    flapping: true,
                },
                r#"{"link":"data","fault":"down","flapping":true}"#,
            ),
            (
                Disruption::Container {
                    part: Part::Sidecar("svc-v2".into()),
                    action: Action::Restart,
                },
                r#"{"link":"sidecar/svc-v2","fault":"restart"}"#,
            ),
            (
                Disruption::ControlPlaneDown,
                r#"{"link":"control_plane","fault":"killed"}"#,
            ),
        ];
        for (disruption, json) in cases {
            assert_eq!(serde_json::to_string(&disruption).unwrap(), json);
            let back: Disruption = serde_json::from_str(json).unwrap();
            assert_eq!(back, disruption);
        }
        assert!(serde_json::from_str::<Disruption>(r#"{"link":"xds","fault":"lost"}"#).is_err());
        assert_eq!(
            cases_label(Part::Sidecar("svc-v2".into())),
            "restart sidecar/svc-v2"
        );
    }

    fn cases_label(part: Part) -> String {
        Disruption::Container {
            part,
            action: Action::Restart,
        }
        .draw()
        .label
    }
}
