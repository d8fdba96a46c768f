//! How a sidecar's xDS connection behaves: the ADS variant, its keepalive, its reconnect
//! backoff, and how long a starting sidecar waits for its first config. The defaults are
//! App Mesh's.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which form of the ADS protocol a sidecar speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum XdsVariant {
    /// State of the world: every response carries the whole set of a type.
    #[default]
    Sotw,
    /// Delta (incremental): responses carry only what changed.
    Delta,
}

/// How a sidecar finds out that its xDS connection went silent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepaliveKind {
    /// HTTP/2 PINGs, answered by the control plane itself (App Mesh's setting).
    #[default]
    Http2,
    /// TCP keepalive probes only, answered by whatever terminates the TCP connection, so
    /// a TCP-terminating fault proxy answers them for a control plane it cannot reach.
    Tcp,
}

/// How the sidecar's xDS connection behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct XdsSettings {
    /// State-of-the-world or delta ADS.
    pub variant: XdsVariant,
    /// HTTP/2 or TCP keepalive on the xDS connection.
    pub keepalive: KeepaliveKind,
    /// HTTP/2 PING interval on the xDS connection (App Mesh: 10 s).
    pub keepalive_interval: Duration,
    /// How long a PING may go unanswered before the connection is closed (App Mesh: 20 s).
    pub keepalive_timeout: Duration,
    /// First reconnect backoff (App Mesh: 10 s).
    pub backoff_base: Duration,
    /// Largest reconnect backoff (App Mesh: 120 s).
    pub backoff_max: Duration,
    /// How long a starting Envoy waits for its first config before it serves without
    /// it (App Mesh: 0, for ever: a sidecar started during a partition never gets ready).
    pub initial_fetch_timeout: Duration,
}

impl Default for XdsSettings {
    /// App Mesh's values.
    fn default() -> Self {
        XdsSettings {
            variant: XdsVariant::Sotw,
            keepalive: KeepaliveKind::Http2,
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(20),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(120),
            initial_fetch_timeout: Duration::ZERO,
        }
    }
}

/// One sidecar's xDS settings where they differ from the suite's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum NodeXds {
    /// Just another variant: `svc-v2: delta`.
    Variant(XdsVariant),
    /// Variant and keepalive kind: `svc-v2: { variant: delta, keepalive: tcp }`.
    Settings {
        /// ADS variant.
        #[serde(default)]
        variant: Option<XdsVariant>,
        /// Keepalive kind.
        #[serde(default)]
        keepalive: Option<KeepaliveKind>,
    },
}

impl XdsVariant {
    /// The name a suite (and `--xds`) writes.
    pub fn as_str(self) -> &'static str {
        match self {
            XdsVariant::Sotw => "sotw",
            XdsVariant::Delta => "delta",
        }
    }
}

impl XdsSettings {
    /// These settings with a sidecar's own where they differ.
    pub fn with(self, node: Option<&NodeXds>) -> XdsSettings {
        match node {
            None => self,
            Some(NodeXds::Variant(variant)) => XdsSettings {
                variant: *variant,
                ..self
            },
            Some(NodeXds::Settings { variant, keepalive }) => XdsSettings {
                variant: variant.unwrap_or(self.variant),
                keepalive: keepalive.unwrap_or(self.keepalive),
                ..self
            },
        }
    }
}
