//! The process backend: control plane, fault proxy, sample services and Envoys as child
//! processes on 127.0.0.1, with every cross-site connection through the fault proxy; or,
//! with a packet link, each site's processes in its own network namespace, the two joined
//! by a veth pair (and each reachable from the harness by one of its own).
//!
//! Children die with the harness ([`children`]): each is killed when its handle drops
//! (success, failure, panic) and, through `PR_SET_PDEATHSIG`, when the harness itself is
//! killed.

pub mod children;

pub use children::RUN_MARKER;

use super::links::Links;
use super::{BackendOptions, RunningTopology, commands, free_ports, http_ok};
use crate::envoy::AdminClient;
use crate::faults::FaultProxy;
use crate::faults::client::ToxiproxyClient;
use crate::faults::packet::{self, PacketLink};
use crate::plan::{LinkKind, Plan, Site};
use crate::timeline::Timeline;
use crate::topology::Placement;
use anyhow::{Context, Result};
use children::{Children, ControlPlaneCommand, spawn, wait_until};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

/// The start of the name of every network namespace a run makes.
pub const NAMESPACE_ROOT: &str = "tether";

/// A packet link for this run, reachable from the harness, after deleting the
/// namespaces of runs that were killed before they could.
fn packet_sites() -> Result<(PacketLink, packet::SiteAddresses)> {
    let _ = packet::cleanup_stale(NAMESPACE_ROOT);
    let link = PacketLink::create(&packet::unique_prefix(NAMESPACE_ROOT))
        .context("a packet link needs network namespaces")?;
    let sites = link
        .reach_from_host()
        .context("cannot reach the packet link's namespaces from the harness")?;
    Ok((link, sites))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Where each site's processes listen: loopback, or (with a packet link) each site's
/// address in its own network namespace.
#[derive(Debug, Clone, Default)]
struct Sites {
    /// (outpost, region) addresses and namespaces, with a packet link.
    packet: Option<(packet::SiteAddresses, String, String)>,
}

impl Sites {
    fn of(link: Option<&(PacketLink, packet::SiteAddresses)>) -> Sites {
        Sites {
            packet: link.map(|(link, addresses)| {
                (
                    *addresses,
                    link.outpost_ns().to_string(),
                    link.region_ns().to_string(),
                )
            }),
        }
    }

    fn ip(&self, site: Site) -> IpAddr {
        match &self.packet {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some((a, _, _)) if site == Site::Outpost => IpAddr::V4(a.outpost),
            Some((a, _, _)) => IpAddr::V4(a.region),
        }
    }

    /// The network namespace of `site`'s processes, with a packet link.
    fn netns(&self, site: Site) -> Option<String> {
        self.packet.as_ref().map(|(_, outpost, region)| match site {
            Site::Outpost => outpost.clone(),
            Site::Region => region.clone(),
        })
    }
}

/// The addresses of the parts that are not nodes: the control plane's xDS, the fault
/// proxy's API, where outpost sidecars reach xDS across the link; and the sites.
struct Addresses {
    xds: SocketAddr,
    fault_api: SocketAddr,
    xds_link: SocketAddr,
    sites: Sites,
}

/// Bring `plan` up as child processes. On error, what already started is stopped.
pub async fn up(
    plan: &Plan,
    opts: &BackendOptions,
    timeline: &Timeline,
) -> Result<RunningTopology> {
    let logs = opts.work_dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let deadline = Instant::now() + opts.ready_timeout;
    // How the sites are joined, and every address, decided up front.
    let packet_link = match plan.link {
        LinkKind::Proxy => None,
        LinkKind::Packet => Some(packet_sites()?),
    };
    let sites = Sites::of(packet_link.as_ref());
    let ports = free_ports(4 + Placement::addresses_needed(&plan.mesh, &plan.sites))?;
    let mut next_port = ports.into_iter();
    let mut next = || next_port.next().expect("free_ports gave enough ports");
    let region = sites.ip(Site::Region);
    let (xds, cp_admin, fault_api) = (
        SocketAddr::new(region, next()),
        SocketAddr::new(region, next()),
        loopback(next()),
    );
    // Outpost sidecars reach the control plane across the link: through its fault
    // proxy, or across the wire to the region's address.
    let xds_link = if sites.packet.is_some() {
        xds
    } else {
        loopback(next())
    };
    let placement = Placement::assign(
        &plan.mesh,
        &plan.sites,
        |_, site, _| SocketAddr::new(sites.ip(site), next()),
        sites.packet.is_none(),
    );
    let addresses = Addresses {
        xds,
        fault_api,
        xds_link,
        sites,
    };
    let control_plane = ControlPlaneCommand {
        program: opts.tether_bin.clone(),
        args: commands::control_plane(
            &plan.mesh_path,
            &opts.work_dir.join("placement.json"),
            &opts.work_dir,
            xds,
            cp_admin,
        ),
        log: logs.join("control-plane.log"),
        health: format!("http://{cp_admin}/healthz"),
        netns: addresses.sites.netns(Site::Region),
    };
    // From here on, an error drops `children`, which kills what already started.
    let children = Children::new(control_plane, timeline);
    let links = links(
        opts,
        &children,
        packet_link,
        &placement,
        &addresses,
        deadline,
    )
    .await?;
    std::fs::write(
        opts.work_dir.join("placement.json"),
        serde_json::to_vec_pretty(&placement)?,
    )?;
    children.start_control_plane(deadline).await?;
    let envoys = nodes(plan, opts, &children, &placement, &addresses, deadline).await?;
    Ok(RunningTopology::new(
        placement,
        Some(cp_admin),
        envoys,
        Box::new(links),
        Box::new(children),
    ))
}

/// The links: the fault proxy and its proxies, or the packet link.
async fn links(
    opts: &BackendOptions,
    children: &Children,
    packet: Option<(PacketLink, packet::SiteAddresses)>,
    placement: &Placement,
    at: &Addresses,
    deadline: Instant,
) -> Result<Links> {
    if let Some((link, _)) = packet {
        return Ok(Links::Packet {
            link,
            active: Default::default(),
        });
    }
    let log = opts.work_dir.join("logs").join("fault-proxy.log");
    let (program, toxiproxy) = match &opts.fault_proxy {
        FaultProxy::Tether => (opts.tether_bin.clone(), false),
        FaultProxy::Toxiproxy(path) => (path.clone(), true),
    };
    let args = commands::fault_proxy(toxiproxy, at.fault_api);
    let mut fp = spawn("fault proxy", &program, &args, &log, false, None)?;
    let api = ToxiproxyClient::new(&format!("http://{}", at.fault_api))?;
    let probe = api.clone();
    let ready = wait_until("fault proxy", &mut fp, deadline, &log, || {
        let c = probe.clone();
        async move { c.version().await.is_ok() }
    })
    .await;
    children.adopt(fp).await;
    ready?;
    Links::create_proxies(api, placement, at.xds_link, at.xds).await
}

/// Sample services, then their sidecars, each waited for; the Envoys' admin clients.
async fn nodes(
    plan: &Plan,
    opts: &BackendOptions,
    children: &Children,
    placement: &Placement,
    at: &Addresses,
    deadline: Instant,
) -> Result<BTreeMap<String, AdminClient>> {
    let netns = |site: Site| at.sites.netns(site);
    let logs = opts.work_dir.join("logs");
    for (name, node) in &placement.nodes {
        let Some(app) = node.app else { continue };
        let log = logs.join(format!("service-{name}.log"));
        let args = commands::service(name, app, node.egress);
        let what = format!("service {name}");
        let mut svc = spawn(
            &what,
            &opts.tether_bin,
            &args,
            &log,
            false,
            netns(node.site).as_deref(),
        )?;
        let url = format!("http://{app}/healthz");
        let ready = wait_until(&what, &mut svc, deadline, &log, || http_ok(&url)).await;
        children.adopt(svc).await;
        ready?;
    }
    let mut starting = Vec::new();
    for (name, node) in &placement.nodes {
        // Outpost sidecars reach the control plane across the link; region ones directly.
        let xds = if node.site == Site::Outpost {
            at.xds_link
        } else {
            at.xds
        };
        let args = commands::envoy(plan, &opts.work_dir, name, node.admin, xds)?;
        let log = logs.join(format!("envoy-{name}.log"));
        let envoy = spawn(
            &format!("envoy {name}"),
            &opts.envoy.path,
            &args,
            &log,
            false,
            netns(node.site).as_deref(),
        )?;
        starting.push((name.clone(), envoy, log, AdminClient::new(node.admin)));
    }
    let mut envoys = BTreeMap::new();
    for (name, mut envoy, log, admin) in starting {
        let probe = admin.clone();
        let ready = wait_until(&format!("envoy {name}"), &mut envoy, deadline, &log, || {
            let a = probe.clone();
            async move { a.ready().await }
        })
        .await;
        children.adopt(envoy).await;
        ready?;
        envoys.insert(name, admin);
    }
    Ok(envoys)
}
