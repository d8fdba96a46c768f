//! A target file as written: the serde shapes of its YAML, every value a user might get
//! wrong with its position.

use crate::plan::Site;
use crate::source::Duration;
use marked_yaml::Spanned;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// A target file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFile {
    /// The target's name (in reports and in tether's state folder).
    pub name: Spanned<String>,
    /// The sidecars under test, by virtual node.
    pub sidecars: HashMap<Spanned<String>, SidecarSpec>,
    /// Where load enters, by the virtual node whose egress (or gateway) it is.
    pub load: HashMap<Spanned<String>, LoadEntrySpec>,
    /// The control plane the sidecars follow.
    pub control_plane: Spanned<ControlPlaneSpec>,
    /// How faults are put on each link (`xds`, `data`).
    #[serde(default)]
    pub links: HashMap<Spanned<String>, LinkSpec>,
}

/// One sidecar that already runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SidecarSpec {
    /// Its Envoy admin endpoint, `http://host:port`.
    pub admin: Spanned<String>,
    /// The site it runs on.
    pub site: Spanned<Site>,
}

/// Where load enters the mesh.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadEntrySpec {
    /// The listener that takes the load, `http://host:port`.
    pub url: Spanned<String>,
    /// The `Host` header to send (default: the suite's `load.service`).
    #[serde(default)]
    pub host: Option<Spanned<String>>,
}

/// The control plane: tether's reference control plane deployed elsewhere, or the
/// user's own xDS server.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlPlaneSpec {
    /// tether's reference control plane, reached through its admin API.
    Tether {
        /// Its admin API (change API, xDS log stream, clock), `http://host:port`.
        api: Spanned<String>,
        /// Headers sent with every request (credentials: redacted everywhere).
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
    /// The user's own xDS server: changes are made by commands, checks judge from what
    /// each Envoy reports.
    Foreign {
        /// A command per change kind (`set_route_weights`, ...).
        #[serde(default)]
        changes: HashMap<Spanned<String>, CommandSpec>,
    },
}

/// How faults are put on one link.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LinkSpec {
    /// A Toxiproxy API (Shopify's, or `tether fault-proxy`) on the link's path.
    Toxiproxy {
        /// The API, `http://host:port` (a password in it is redacted everywhere).
        api: Spanned<String>,
        /// The proxies that carry the link.
        proxies: Vec<Spanned<String>>,
    },
    /// Commands that apply and remove a fault.
    Command {
        /// Puts the fault on.
        apply: CommandSpec,
        /// Takes it off.
        remove: CommandSpec,
        /// The fault kinds the commands make (`[blackhole, down]`); every kind when
        /// not given. A suite that needs another is refused before anything runs.
        #[serde(default)]
        faults: Option<Vec<Spanned<String>>>,
    },
}

/// A command tether runs: the fault or change as `TETHER_*` environment variables and
/// as JSON on its standard input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// The program and its arguments; a relative program path with a `/` is taken from
    /// the target file's folder.
    pub run: Spanned<Vec<String>>,
    /// More environment variables (their values are treated as credentials).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// How long it may take (default 30 s).
    #[serde(default)]
    pub timeout: Option<Duration>,
}
