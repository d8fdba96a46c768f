//! Link faults: a Toxiproxy-compatible fault proxy and tether's client for it.
//!
//! [`server`] serves Shopify Toxiproxy's HTTP API (same paths, JSON shapes and
//! status codes) and runs every toxic in its own relay (one hop per
//! connection, one loop per direction), so tether needs no Go binary: it runs
//! the fault proxy in-process. [`client`] is tether's typed async client for
//! that API; it works against a real Toxiproxy as well.
//!
//! A proxy forwards TCP from its `listen` address to its `upstream` address.
//! Toxics (latency, blackhole, bandwidth, reset_peer, ...) change what happens
//! to the bytes, and apply to connections that are already open as well as to
//! new ones. Disabling a proxy closes its connections and refuses new ones.
//! [`populate`] reads the proxy lists of `POST /populate` and of
//! `tether fault-proxy --config FILE`.
//!
//! [`packet`] is the other kind of link: the two sites as network namespaces
//! joined by a veth pair, with delay, loss, reordering, duplication, rate and
//! partitions applied to packets (netem, or iptables and NFQUEUE without it), so
//! nothing answers TCP keepalives on the far side's behalf.

pub mod client;
pub mod packet;
pub mod populate;
mod relay;
pub mod server;

/// The name of Shopify's Toxiproxy server binary.
pub const TOXIPROXY_SERVER: &str = "toxiproxy-server";

/// Which fault proxy a run is asked to use (`tether run --fault-proxy`, or
/// `TETHER_FAULT_PROXY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FaultProxyChoice {
    /// Shopify's `toxiproxy-server` where it is on `PATH`, tether's own otherwise.
    #[default]
    Auto,
    /// tether's own Toxiproxy-compatible server.
    Tether,
    /// Shopify's `toxiproxy-server`, which must be on `PATH`.
    Toxiproxy,
}

/// The fault proxy a run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultProxy {
    /// `tether fault-proxy`.
    Tether,
    /// A real Toxiproxy server binary.
    Toxiproxy(std::path::PathBuf),
}

impl FaultProxy {
    /// The fault proxy `choice` asks for on this machine; an error when it asks for
    /// Toxiproxy and none is on `PATH`.
    pub fn choose(choice: FaultProxyChoice) -> anyhow::Result<FaultProxy> {
        let on_path = || crate::envoy::provision::on_path(TOXIPROXY_SERVER);
        Ok(match choice {
            FaultProxyChoice::Tether => FaultProxy::Tether,
            FaultProxyChoice::Auto => on_path().map_or(FaultProxy::Tether, FaultProxy::Toxiproxy),
            FaultProxyChoice::Toxiproxy => match on_path() {
                Some(path) => FaultProxy::Toxiproxy(path),
                None => anyhow::bail!(
                    "--fault-proxy toxiproxy: no `{TOXIPROXY_SERVER}` on PATH (Shopify's \
                     releases: https://github.com/Shopify/toxiproxy/releases)"
                ),
            },
        })
    }
}

impl std::fmt::Display for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultProxy::Tether => f.write_str("tether's own Toxiproxy-compatible server"),
            FaultProxy::Toxiproxy(path) => write!(f, "Toxiproxy ({})", path.display()),
        }
    }
}

#[cfg(test)]
mod testutil;
