//! The links between the sites of a running topology, and how a suite's faults are put on
//! them: toxics on the fault proxy's proxies, or rules and queues on the packet link.

use crate::faults::client::ToxiproxyClient;
use crate::faults::link::{Direction, Fault};
use crate::faults::packet::{self, Impairment, PacketLink};
use anyhow::{Result, anyhow};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The links of a running topology.
pub enum Links {
    /// Every cross-site connection through the fault proxy.
    Proxy {
        /// The fault proxy's API.
        api: ToxiproxyClient,
        /// Its proxies per link name (`xds`, `data`).
        proxies: BTreeMap<String, Vec<String>>,
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
    /// Put `fault` on `link` (`xds`, `data` or `all`), or take it off. When putting
    /// it on, says what was set, one line each: every toxic with its attributes on
    /// each fault proxy, or the packet link's settings after the change.
    pub async fn set(&self, link: &str, fault: &Fault, on: bool) -> Result<Vec<String>> {
        match self {
            Links::Proxy { api, proxies } => {
                let names: Vec<&String> = if link == "all" {
                    proxies.values().flatten().collect()
                } else {
                    proxies.get(link).into_iter().flatten().collect()
                };
                let mut applied = Vec::new();
                for proxy in names {
                    set_on_proxy(api, proxy, fault, on).await.map_err(|e| {
                        anyhow!(
                            "fault proxy: cannot {} {fault} on {proxy}: {e}",
                            if on { "apply" } else { "remove" }
                        )
                    })?;
                    if on {
                        applied.extend(describe_on_proxy(proxy, fault));
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
                let wire = apply_to_wire(link, &faults).map_err(|e| {
                    anyhow!(
                        "packet link: cannot {} {fault}: {e}",
                        if on { "apply" } else { "remove" }
                    )
                })?;
                Ok(if on { wire } else { Vec::new() })
            }
        }
    }
}

/// What putting `fault` on `proxy` sets, one line per toxic (as the API shows it).
fn describe_on_proxy(proxy: &str, fault: &Fault) -> Vec<String> {
    if *fault == Fault::Down {
        return vec![format!("{proxy}: enabled false")];
    }
    fault
        .toxics()
        .iter()
        .map(|toxic| {
            format!(
                "{proxy}: {} {} {} toxicity {}",
                toxic.kind, toxic.stream, toxic.attributes, toxic.toxicity
            )
        })
        .collect()
}

/// One fault on one fault proxy: its toxics, or its `enabled` flag for `down`.
async fn set_on_proxy(
    api: &ToxiproxyClient,
    proxy: &str,
    fault: &Fault,
    on: bool,
) -> Result<(), crate::faults::client::FaultApiError> {
    if *fault == Fault::Down {
        return api.set_enabled(proxy, !on).await.map(|_| ());
    }
    for toxic in fault.toxics() {
        if on {
            api.add_toxic(proxy, &toxic).await?;
        } else {
            api.remove_toxic(proxy, &toxic.name).await?;
        }
    }
    Ok(())
}

/// Make the wire what `faults` together say: partitions (each way) and one impairment
/// (delay, jitter, rate and loss added up) both ways. Says what the wire is now.
fn apply_to_wire(
    link: &PacketLink,
    faults: &[Fault],
) -> Result<Vec<String>, packet::PacketLinkError> {
    let (mut to_region_cut, mut to_outpost_cut) = (false, false);
    let mut imp = Impairment::default();
    for fault in faults {
        match fault {
            Fault::Blackhole | Fault::Down | Fault::Flapping { .. } => {
                (to_region_cut, to_outpost_cut) = (true, true)
            }
            Fault::OneWay {
                to: Direction::ToRegion,
            } => to_region_cut = true,
            Fault::OneWay {
                to: Direction::ToOutpost,
            } => to_outpost_cut = true,
            Fault::Latency { delay, jitter } => {
                imp.delay += delay.0;
                imp.jitter += jitter.map(|j| j.0).unwrap_or_default();
            }
            Fault::Bandwidth { rate } => {
                let kbit = (rate.bits_per_second / 1000).max(1);
                imp.rate_kbit = Some(imp.rate_kbit.map_or(kbit, |r| r.min(kbit)));
            }
            Fault::Loss { percent } => {
                imp.loss_percent = (imp.loss_percent + percent).min(100.0);
            }
            Fault::Duplicate { percent } => {
                imp.duplicate_percent = (imp.duplicate_percent + percent).min(100.0);
            }
            Fault::Reorder { percent, delay } => {
                imp.reorder_percent = (imp.reorder_percent + percent).min(100.0);
                imp.delay = imp.delay.max(delay.0);
            }
            // Refused for packet links when the suite is read.
            Fault::Reset | Fault::SlowClose { .. } | Fault::LimitData { .. } => {}
        }
    }
    let mut wire = Vec::new();
    for (cut, direction, name) in [
        (to_region_cut, packet::Direction::ToRegion, "to region"),
        (to_outpost_cut, packet::Direction::ToOutpost, "to outpost"),
    ] {
        if cut {
            link.partition(direction)?;
            wire.push(format!("packets {name} dropped (iptables DROP)"));
        } else {
            link.reconnect(direction)?;
        }
    }
    if imp == Impairment::default() {
        link.clear(packet::Direction::Both)?;
    } else {
        link.impair(packet::Direction::Both, &imp)?;
        wire.push(format!("both ways: netem {}", imp.netem_args().join(" ")));
    }
    Ok(wire)
}
