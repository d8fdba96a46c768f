//! The links between the sites of a running topology, as a [`LinkActuator`]: toxics on
//! the fault proxy's proxies through its Toxiproxy API ([`toxics`]), or rules and queues
//! on the packet link ([`packet`]).

mod packet;
pub mod toxics;

use super::actuators::LinkActuator;
use crate::faults::client::{FaultApiError, ToxiproxyClient};
use crate::faults::packet::PacketLink;
use crate::plan::{Fault, Link};
use crate::topology::Placement;
use anyhow::{Result, anyhow};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;

/// The links of a running topology.
pub enum Links {
    /// Every cross-site connection through a fault proxy.
    Proxy {
        /// The fault proxy's API.
        api: ToxiproxyClient,
        /// Its proxies per link (`xds`, `data`).
        proxies: BTreeMap<Link, Vec<String>>,
    },
    /// The sites as two network namespaces joined by a veth pair.
    Packet {
        /// The namespaces and the wire (deleted when dropped).
        link: PacketLink,
        /// The faults on the wire now; the wire's state is made from all of them.
        active: Mutex<Vec<Fault>>,
    },
}

impl Links {
    /// On the fault proxy at `api`: the `xds` proxy (`xds_link` to the control plane at
    /// `xds_addr`) and a `data-<node>` proxy per node the other site reaches.
    pub async fn create_proxies(
        api: ToxiproxyClient,
        placement: &Placement,
        xds_link: SocketAddr,
        xds_addr: SocketAddr,
    ) -> Result<Links> {
        let mut proxies = BTreeMap::new();
        api.create_proxy("xds", &xds_link.to_string(), &xds_addr.to_string())
            .await
            .map_err(|e| anyhow!("cannot create the xds link proxy: {e}"))?;
        proxies.insert(Link::Xds, vec!["xds".to_string()]);
        for (name, node) in &placement.nodes {
            if let (Some(remote), Some(ingress)) = (node.remote_ingress, node.ingress) {
                let proxy = format!("data-{name}");
                api.create_proxy(&proxy, &remote.to_string(), &ingress.to_string())
                    .await
                    .map_err(|e| anyhow!("cannot create the data link proxy {proxy}: {e}"))?;
                proxies
                    .entry(Link::Data)
                    .or_insert_with(Vec::new)
                    .push(proxy);
            }
        }
        Ok(Links::Proxy { api, proxies })
    }

    /// The proxies that carry `link` (every proxy for `all`).
    fn proxies(proxies: &BTreeMap<Link, Vec<String>>, link: Link) -> Vec<&String> {
        if link == Link::All {
            proxies.values().flatten().collect()
        } else {
            proxies.get(&link).into_iter().flatten().collect()
        }
    }

    /// Put `fault` on `link`, or take it off; when putting it on, says what was set.
    async fn set(&self, link: Link, fault: &Fault, on: bool) -> Result<Vec<String>> {
        let verb = if on { "apply" } else { "remove" };
        match self {
            Links::Proxy { api, proxies } => {
                let mut applied = Vec::new();
                for proxy in Self::proxies(proxies, link) {
                    set_on_proxy(api, proxy, fault, on).await.map_err(|e| {
                        anyhow!("fault proxy: cannot {verb} {fault} on {proxy}: {e}")
                    })?;
                    if on {
                        applied.extend(toxics::describe(proxy, fault));
                    }
                }
                Ok(applied)
            }
            Links::Packet { link, active } => {
                let faults = {
                    let mut active = active.lock().unwrap_or_else(|e| e.into_inner());
                    if on {
                        active.push(fault.clone());
                    } else if let Some(i) = active.iter().position(|f| f == fault) {
                        active.remove(i);
                    }
                    active.clone()
                };
                // A few `ip`/`iptables` commands of a few milliseconds each: run inline.
                let wire = packet::apply_to_wire(link, &faults)
                    .map_err(|e| anyhow!("packet link: cannot {verb} {fault}: {e}"))?;
                Ok(if on { wire } else { Vec::new() })
            }
        }
    }
}

#[async_trait]
impl LinkActuator for Links {
    async fn apply(&self, link: Link, fault: &Fault) -> Result<Vec<String>> {
        self.set(link, fault, true).await
    }

    async fn remove(&self, link: Link, fault: &Fault) -> Result<()> {
        self.set(link, fault, false).await.map(|_| ())
    }
}

/// One fault on one fault proxy: its toxics, or its `enabled` flag for `down`.
pub(crate) async fn set_on_proxy(
    api: &ToxiproxyClient,
    proxy: &str,
    fault: &Fault,
    on: bool,
) -> Result<(), FaultApiError> {
    if *fault == Fault::Down {
        return api.set_enabled(proxy, !on).await.map(|_| ());
    }
    for toxic in toxics::toxics(fault) {
        if on {
            api.add_toxic(proxy, &toxic).await?;
        } else {
            api.remove_toxic(proxy, &toxic.name).await?;
        }
    }
    Ok(())
}
