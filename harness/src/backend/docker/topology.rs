//! A plan brought up as containers: the region and the outpost as two Docker networks,
//! the fault proxy on both carrying every cross-site connection, the control plane on
//! the region's, and per virtual node an Envoy container and a sample-service container
//! on its site's network.
//!
//! Every container gets a fixed address on its network (the networks are made with
//! subnets of their own for that), so the placement, the bootstraps and the control
//! plane's config are decided before anything starts, as on the process backend: the
//! endpoints the control plane hands out are addresses, as App Mesh's EDS are. Each
//! container is also known on its networks by the part it plays (`control-plane`,
//! `fault-proxy`, `sidecar-<node>`, `service-<node>`). The harness reaches admin
//! endpoints, the fault proxy's API and load targets through ports published on the
//! host's loopback (chosen free before each container is made and bound explicitly,
//! so a restarted or reconnected container gets the same ones), so it needs no route
//! into the networks. The run folder's `work/` is mounted into every
//! container at the same path (bootstraps, placement, the control plane's state);
//! each container's output is copied into `work/logs/`, the control plane's also onto
//! the timeline ([`super::parts`]). Containers and networks carry [`MANAGED_LABEL`] and
//! [`RUN_LABEL`] (the harness's pid), so a run removes what a killed run left.

use super::images::{ImageSpec, ensure};
use super::network::{make_networks, remove_stale};
use super::parts::{ContainerSpec, Containers, DockerParts, publish, wait_for};
use super::{MANAGED_LABEL, engine, named_image};
use crate::backend::links::Links;
use crate::backend::{BackendOptions, RunningTopology, commands, http_ok};
use crate::envoy::AdminClient;
use crate::faults::client::ToxiproxyClient;
use crate::plan::{Part, Plan, Site};
use crate::timeline::Timeline;
use crate::topology::{Placement, Role};
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

/// The label naming the process (pid) of the harness that made a container or network.
pub const RUN_LABEL: &str = "io.tether.run";

/// Ports inside containers (each container has an address of its own).
const ADMIN_PORT: u16 = 9901;
const EGRESS_PORT: u16 = 15001;
const INGRESS_PORT: u16 = 15000;
const TCP_EGRESS_BASE: u16 = 15100;
const APP_PORT: u16 = 8080;
const XDS_PORT: u16 = 18000;
/// The control plane's admin API inside its container.
pub(super) const CP_ADMIN_PORT: u16 = 18001;
const FAULT_API_PORT: u16 = 8474;
/// The fault proxy's data-link listeners: one per serving node, from here up.
const REMOTE_INGRESS_BASE: u16 = 20000;

/// The images a run uses, by reference.
struct Images {
    /// tether's: control plane, sample services, and the fault proxy unless named.
    tether: String,
    /// Envoy: built from the provisioned binary, or the suite's.
    envoy: String,
    /// A Toxiproxy image the suite names.
    toxiproxy: Option<String>,
    /// The Envoy containers' environment: an official image's entrypoint runs Envoy
    /// as uid 101 unless told otherwise, and the bootstraps are the harness's files.
    envoy_env: Vec<String>,
}

/// The images, built or found; the ones the suite names are found or pulled.
async fn images(plan: &Plan, opts: &BackendOptions) -> Result<Images> {
    let named = &plan.images;
    let tether = ensure(&ImageSpec::tether(&opts.tether_bin)).await?;
    let (envoy, envoy_env) = match named.envoy.as_ref() {
        Some(name) => (named_image(name).await?, vec!["ENVOY_UID=0".to_string()]),
        None => (
            ensure(&ImageSpec::envoy(&opts.envoy.path))
                .await?
                .reference(),
            Vec::new(),
        ),
    };
    let toxiproxy = match named.fault_proxy.as_ref() {
        Some(name) => Some(named_image(name).await?),
        None => None,
    };
    Ok(Images {
        tether: tether.reference(),
        envoy,
        toxiproxy,
        envoy_env,
    })
}

/// `base.host`.
fn ip(base: [u8; 3], host: u8) -> Ipv4Addr {
    Ipv4Addr::new(base[0], base[1], base[2], host)
}

/// Brings `plan` up on Docker. On error, what already started is removed.
pub async fn up(
    plan: &Plan,
    opts: &BackendOptions,
    timeline: &Timeline,
) -> Result<RunningTopology> {
    let docker = engine()?;
    remove_stale(&docker).await;
    let deadline = Instant::now() + opts.ready_timeout;
    let logs = opts.work_dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let images = images(plan, opts).await?;
    let prefix = format!(
        "tether-{}-{}",
        std::process::id(),
        crate::timeline::now_unix_ms() % 100_000
    );
    let labels = HashMap::from([
        (MANAGED_LABEL.to_string(), "true".to_string()),
        (RUN_LABEL.to_string(), std::process::id().to_string()),
    ]);
    let [region, outpost] = make_networks(&docker, &prefix, &labels).await?;
    let mut parts = DockerParts {
        docker,
        networks: vec![region.0.clone(), outpost.0.clone()],
        containers: Vec::new(),
        specs: BTreeMap::new(),
        paused: BTreeSet::new(),
        logs,
        work: opts.work_dir.display().to_string(),
        labels,
        timeline: timeline.clone(),
        log_tasks: Vec::new(),
    };
    let sites = Sites { region, outpost };
    let run = Run {
        plan,
        opts,
        prefix: &prefix,
        deadline,
        images: &images,
        sites: &sites,
    };
    match run.bring_up(&mut parts).await {
        Ok((placement, cp_admin, envoys, links)) => Ok(RunningTopology::new(
            placement,
            Some(cp_admin),
            envoys,
            Box::new(links),
            Box::new(Containers(tokio::sync::Mutex::new(parts))),
        )),
        Err(e) => {
            parts.shutdown().await;
            Err(e)
        }
    }
}

/// The two networks: (name, first three octets).
struct Sites {
    region: (String, [u8; 3]),
    outpost: (String, [u8; 3]),
}

impl Sites {
    fn of(&self, site: Site) -> &(String, [u8; 3]) {
        match site {
            Site::Region => &self.region,
            Site::Outpost => &self.outpost,
        }
    }
}

/// One bring-up: what every step needs.
struct Run<'a> {
    plan: &'a Plan,
    opts: &'a BackendOptions,
    prefix: &'a str,
    deadline: Instant,
    images: &'a Images,
    sites: &'a Sites,
}

/// Each node's containers' addresses: (Envoy, app, the fault proxy's port for it).
type Hosts<'a> = BTreeMap<&'a str, (Ipv4Addr, Ipv4Addr, u16)>;

/// What a bring-up gives: the placement as the harness reaches it, the control plane's
/// admin API, the Envoys' admin clients and the links.
type Brought = (Placement, SocketAddr, BTreeMap<String, AdminClient>, Links);

impl Run<'_> {
    /// The fault proxy's address on `site`'s network (`.2` on both).
    fn fault_proxy_ip(&self, site: Site) -> Ipv4Addr {
        ip(self.sites.of(site).1, 2)
    }

    /// The control plane's address (`.3` on the region's network).
    fn control_plane_ip(&self) -> Ipv4Addr {
        ip(self.sites.region.1, 3)
    }

    /// Every part, started in order and waited for.
    async fn bring_up(&self, parts: &mut DockerParts) -> Result<Brought> {
        let hosts = self.hosts()?;
        let placement = self.placement(&hosts);
        let links = self.start_fault_proxy(parts, &placement).await?;
        let cp_admin = self.start_control_plane(parts, &placement).await?;
        self.start_services(parts, &placement, &hosts).await?;
        let envoys = self.start_envoys(parts, &placement, &hosts).await?;
        Ok((parts.host_view(&placement)?, cp_admin, envoys, links))
    }

    /// Fixed addresses: per node an Envoy and its app, from `.10` up on its site's network.
    fn hosts(&self) -> Result<Hosts<'_>> {
        let mut hosts = Hosts::new();
        let mut next_host = [10u8, 10u8];
        for (index, (name, site)) in self.plan.sites.iter().enumerate() {
            let slot = &mut next_host[usize::from(*site == Site::Outpost)];
            if *slot > 250 {
                bail!("the Docker backend places at most 120 virtual nodes per site");
            }
            let base = self.sites.of(*site).1;
            hosts.insert(
                name,
                (
                    ip(base, *slot),
                    ip(base, *slot + 1),
                    REMOTE_INGRESS_BASE + index as u16,
                ),
            );
            *slot += 2;
        }
        Ok(hosts)
    }

    /// Every node's addresses inside the networks; the other site dials a node through
    /// the fault proxy's address on its own network.
    fn placement(&self, hosts: &Hosts) -> Placement {
        Placement::assign(
            &self.plan.mesh,
            &self.plan.sites,
            |node, site, role| {
                let (envoy, app, remote) = hosts[node];
                match role {
                    Role::Admin => SocketAddr::from((envoy, ADMIN_PORT)),
                    Role::Egress => SocketAddr::from((envoy, EGRESS_PORT)),
                    Role::Ingress => SocketAddr::from((envoy, INGRESS_PORT)),
                    Role::App => SocketAddr::from((app, APP_PORT)),
                    Role::RemoteIngress => {
                        let other = if site == Site::Outpost {
                            Site::Region
                        } else {
                            Site::Outpost
                        };
                        SocketAddr::from((self.fault_proxy_ip(other), remote))
                    }
                    Role::TcpEgress(i) => SocketAddr::from((envoy, TCP_EGRESS_BASE + i as u16)),
                }
            },
            true,
        )
    }

    /// The fault proxy, on both networks, with one proxy per cross-site connection.
    async fn start_fault_proxy(
        &self,
        parts: &mut DockerParts,
        placement: &Placement,
    ) -> Result<Links> {
        let listen = SocketAddr::from((Ipv4Addr::UNSPECIFIED, FAULT_API_PORT));
        let (image, args) = match &self.images.toxiproxy {
            Some(toxiproxy) => (toxiproxy.clone(), commands::fault_proxy(true, listen)),
            None => (
                self.images.tether.clone(),
                commands::fault_proxy(false, listen),
            ),
        };
        let fp = ContainerSpec {
            part: Part::FaultProxy,
            name: format!("{}-fault-proxy", self.prefix),
            image,
            args,
            networks: vec![
                (
                    self.sites.region.0.clone(),
                    self.fault_proxy_ip(Site::Region),
                ),
                (
                    self.sites.outpost.0.clone(),
                    self.fault_proxy_ip(Site::Outpost),
                ),
            ],
            xds_log: false,
            publish: publish(&[FAULT_API_PORT])?,
            env: Vec::new(),
        };
        parts.start(&fp).await?;
        let fault_api_addr = parts.mapped(&Part::FaultProxy, FAULT_API_PORT)?;
        let api = ToxiproxyClient::new(&format!("http://{fault_api_addr}"))?;
        wait_for("the fault proxy", &fp.name, self.deadline, || {
            let api = api.clone();
            async move { api.version().await.is_ok() }
        })
        .await?;
        let xds_addr = SocketAddr::from((self.control_plane_ip(), XDS_PORT));
        let xds_link = SocketAddr::from((self.fault_proxy_ip(Site::Outpost), XDS_PORT));
        Links::create_proxies(api, placement, xds_link, xds_addr).await
    }

    /// The control plane, in the region; its admin API as the harness reaches it.
    async fn start_control_plane(
        &self,
        parts: &mut DockerParts,
        placement: &Placement,
    ) -> Result<SocketAddr> {
        let (plan, work) = (self.plan, &self.opts.work_dir);
        let mesh_file = work.join("mesh.yaml");
        std::fs::copy(&plan.mesh_path, &mesh_file).with_context(|| {
            format!(
                "cannot copy {} into the work folder",
                plan.mesh_path.display()
            )
        })?;
        let placement_file = work.join("placement.json");
        std::fs::write(&placement_file, serde_json::to_vec_pretty(placement)?)?;
        let cp_ip = self.control_plane_ip();
        let control_plane = ContainerSpec {
            part: Part::ControlPlane,
            name: format!("{}-control-plane", self.prefix),
            image: self.images.tether.clone(),
            args: commands::control_plane(
                &mesh_file,
                &placement_file,
                work,
                SocketAddr::from((cp_ip, XDS_PORT)),
                SocketAddr::from((cp_ip, CP_ADMIN_PORT)),
            ),
            networks: vec![(self.sites.region.0.clone(), cp_ip)],
            xds_log: true,
            publish: publish(&[CP_ADMIN_PORT])?,
            env: Vec::new(),
        };
        parts.specs.insert(Part::ControlPlane, control_plane);
        parts.start_control_plane(self.deadline).await?;
        parts.mapped(&Part::ControlPlane, CP_ADMIN_PORT)
    }

    /// Every node's sample service, each waited for.
    async fn start_services(
        &self,
        parts: &mut DockerParts,
        placement: &Placement,
        hosts: &Hosts<'_>,
    ) -> Result<()> {
        for (name, node) in &placement.nodes {
            let Some(app) = node.app else { continue };
            let spec = ContainerSpec {
                part: Part::Service(name.clone()),
                name: format!("{}-service-{name}", self.prefix),
                image: self.images.tether.clone(),
                args: commands::service(name, app, node.egress),
                networks: vec![(self.sites.of(node.site).0.clone(), hosts[name.as_str()].1)],
                xds_log: false,
                publish: publish(&[app.port()])?,
                env: Vec::new(),
            };
            parts.start(&spec).await?;
            let url = format!("http://{}/healthz", parts.mapped(&spec.part, app.port())?);
            wait_for(
                &format!("service {name}"),
                &spec.name,
                self.deadline,
                || {
                    let url = url.clone();
                    async move { http_ok(&url).await }
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Every node's Envoy, all started, then each waited for; their admin clients.
    async fn start_envoys(
        &self,
        parts: &mut DockerParts,
        placement: &Placement,
        hosts: &Hosts<'_>,
    ) -> Result<BTreeMap<String, AdminClient>> {
        let xds_addr = SocketAddr::from((self.control_plane_ip(), XDS_PORT));
        let xds_link = SocketAddr::from((self.fault_proxy_ip(Site::Outpost), XDS_PORT));
        let mut envoys = BTreeMap::new();
        for (name, node) in &placement.nodes {
            let xds = if node.site == Site::Outpost {
                xds_link
            } else {
                xds_addr
            };
            let ports: Vec<u16> = [Some(node.admin), Some(node.egress), node.ingress]
                .into_iter()
                .flatten()
                .chain(node.tcp_egress.values().copied())
                .map(|a| a.port())
                .collect();
            let spec = ContainerSpec {
                part: Part::Sidecar(name.clone()),
                name: format!("{}-envoy-{name}", self.prefix),
                image: self.images.envoy.clone(),
                args: commands::envoy(self.plan, &self.opts.work_dir, name, node.admin, xds)?,
                networks: vec![(self.sites.of(node.site).0.clone(), hosts[name.as_str()].0)],
                xds_log: false,
                publish: publish(&ports)?,
                env: self.images.envoy_env.clone(),
            };
            parts.start(&spec).await?;
            let admin = parts.mapped(&spec.part, node.admin.port())?;
            envoys.insert(name.clone(), (spec.name, AdminClient::new(admin)));
        }
        let mut ready = BTreeMap::new();
        for (name, (container, admin)) in envoys {
            let probe = admin.clone();
            wait_for(&format!("envoy {name}"), &container, self.deadline, || {
                let a = probe.clone();
                async move { a.ready().await }
            })
            .await?;
            ready.insert(name, admin);
        }
        Ok(ready)
    }
}
