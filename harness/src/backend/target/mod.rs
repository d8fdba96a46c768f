//! The target backend: a deployment tether did not start ([`crate::target::Target`]),
//! attached to instead of brought up. Its sidecars are observed through their admin URLs,
//! load enters where the target says, link faults go through the target's Toxiproxy APIs
//! or commands ([`links`]) and into its [`ledger`] first, and the reference control
//! plane's xDS log is followed over its `GET /log` stream with its clock offset measured
//! ([`follow`]). Nothing of the target is started or stopped; at the end, whatever the
//! ledger still holds is removed.

pub mod command;
pub mod dry_run;
pub mod follow;
pub mod ledger;
pub mod links;
pub mod settings;

use super::running::{Parts, RunningTopology};
use crate::control_plane::admin::ChangeClient;
use crate::envoy::AdminClient;
use crate::plan::{Action, Change, Plan};
use crate::target::{ControlPlane, Target};
use crate::timeline::Timeline;
use crate::topology::{NodePlacement, Placement};
use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use ledger::Ledger;
use links::TargetLinks;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Attach to `target` for `plan`: refuses while the target's ledger holds faults a
/// killed run left; checks every part the plan needs answers; starts following the
/// control plane's log (after measuring its clock offset).
pub async fn attach(
    plan: &Plan,
    target: &Target,
    run_dir: &Path,
    timeline: &Timeline,
) -> Result<RunningTopology> {
    let left = ledger::pending(target)?;
    if !left.is_empty() {
        bail!(
            "target `{}` still has {} fault(s) a killed run left on it (first: {} on the {} link, by {}); run `tether heal --target {}` first",
            target.name,
            left.len(),
            left[0].fault,
            left[0].link,
            left[0].run,
            target.path.display()
        );
    }
    let problems = reach(target, plan).await;
    if !problems.is_empty() {
        bail!(
            "target `{}` is not all there:\n  {}",
            target.name,
            problems.join("\n  ")
        );
    }
    let differ = settings::mismatches(plan, target).await;
    if !differ.is_empty() {
        bail!(
            "target `{}`: the sidecars do not run the suite's xDS settings, so its bounds would not hold for them:\n  {}\nset the suite's `xds:` to the rack's",
            target.name,
            differ.join("\n  ")
        );
    }
    let ledger = Arc::new(Ledger::open(target, Some(run_dir))?);
    let links = Arc::new(TargetLinks::new(target, ledger)?);
    let placement = placement(plan, target).await?;
    let envoys = plan
        .sites
        .keys()
        .map(|node| {
            (
                node.clone(),
                AdminClient::at(target.sidecars[node].admin.as_str()),
            )
        })
        .collect::<BTreeMap<_, _>>();
    let stop = CancellationToken::new();
    let mut parts = TargetParts {
        links: links.clone(),
        stop: stop.clone(),
        followers: Vec::new(),
        commands: BTreeMap::new(),
        redactor: crate::target::Redactor::of(target),
    };
    let topo = match &target.control_plane {
        ControlPlane::Tether { api, headers } => {
            let changes = ChangeClient::at(api, headers)?;
            let (offset, follower) = follow::start(changes.clone(), timeline.clone(), stop).await?;
            parts.followers.push(follower);
            let admin = Some(resolve(api).await?);
            let mut topo =
                RunningTopology::new(placement, admin, envoys, Box::new(links), Box::new(parts))
                    .with_changes(changes);
            topo.clock_offset = Some((offset.offset_us, offset.uncertainty_us));
            topo
        }
        ControlPlane::Foreign { changes } => {
            parts.commands = changes.clone();
            RunningTopology::new(placement, None, envoys, Box::new(links), Box::new(parts))
        }
    };
    Ok(topo)
}

/// Where the load of `plan` enters, as a placement of its one node.
async fn placement(plan: &Plan, target: &Target) -> Result<Placement> {
    let node = &plan.load.through;
    let entry = target
        .load
        .get(node)
        .with_context(|| format!("the target has no load entry for `{node}`"))?;
    let sidecar = &target.sidecars[node];
    let mut placement = Placement::default();
    placement.nodes.insert(
        node.clone(),
        NodePlacement {
            site: sidecar.site,
            ingress: None,
            egress: resolve(&entry.url).await?,
            admin: resolve(&sidecar.admin).await?,
            app: None,
            remote_ingress: None,
            tcp_egress: BTreeMap::new(),
            gateway_hop: None,
        },
    );
    Ok(placement)
}

/// The address of `url`'s host and port.
async fn resolve(url: &reqwest::Url) -> Result<SocketAddr> {
    let host = url.host_str().context("URL without a host")?;
    let port = url.port_or_known_default().context("URL without a port")?;
    tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))
}

/// What of `target` that `plan` needs does not answer, a line each (empty: all there).
pub async fn reach(target: &Target, plan: &Plan) -> Vec<String> {
    let redact = crate::target::Redactor::of(target);
    let mut problems = Vec::new();
    let timeout = Duration::from_secs(3);
    for node in plan.sites.keys() {
        let Some(sidecar) = target.sidecars.get(node) else {
            continue;
        };
        if let Err(e) = answers(&format!("{}ready", slash(&sidecar.admin)), timeout).await {
            problems.push(format!(
                "sidecar `{node}`: its admin endpoint {} does not answer: {e:#}",
                sidecar.admin
            ));
        }
    }
    if let Some(entry) = target.load.get(&plan.load.through) {
        let addr = resolve(&entry.url).await;
        let open = match addr {
            Ok(a) => tokio::time::timeout(timeout, tokio::net::TcpStream::connect(a))
                .await
                .map_err(|_| anyhow!("timed out"))
                .and_then(|r| r.map_err(anyhow::Error::from)),
            Err(e) => Err(e),
        };
        if let Err(e) = open {
            problems.push(format!(
                "load entry `{}` {}: {e:#}",
                plan.load.through, entry.url
            ));
        }
    }
    if let ControlPlane::Tether { api, headers } = &target.control_plane {
        let healthy = match ChangeClient::at(api, headers) {
            Ok(client) => client.healthy(timeout).await,
            Err(e) => Err(e),
        };
        if let Err(e) = healthy {
            problems.push(format!(
                "control plane API {}: {e:#}",
                redact.redact(api.as_str())
            ));
        }
    }
    for (link, spec) in &target.links {
        if let crate::target::LinkActuator::Toxiproxy { api, proxies } = spec {
            let shown = redact.redact(api.as_str());
            match crate::faults::client::ToxiproxyClient::new(api.as_str()) {
                Err(e) => problems.push(format!("{link} link: {e}")),
                Ok(client) => {
                    for proxy in proxies {
                        if let Err(e) = client.proxy(proxy).await {
                            problems.push(format!(
                                "{link} link: proxy `{proxy}` on the fault proxy {shown}: {}",
                                redact.redact(&e.to_string())
                            ));
                        }
                    }
                }
            }
        }
    }
    problems.iter().map(|p| redact.redact(p)).collect()
}

/// `url` with one trailing slash.
pub(crate) fn slash(url: &reqwest::Url) -> String {
    format!("{}/", url.as_str().trim_end_matches('/'))
}

/// Any HTTP answer within `timeout` (an Envoy that is not LIVE yet still answers).
async fn answers(url: &str, timeout: Duration) -> Result<()> {
    reqwest::Client::new()
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map(|_| ())
        .map_err(anyhow::Error::from)
}

/// Remove every fault `target`'s ledger holds (only those the run into `run_dir` put on,
/// when given); says what it removed, a line each.
pub async fn heal(target: &Target, run_dir: Option<&Path>) -> Result<Vec<String>> {
    let links = TargetLinks::new(target, Arc::new(Ledger::open(target, None)?))?;
    let of_run = |run: &str| run_dir.is_none_or(|d| d.display().to_string() == run);
    let mut removed = Vec::new();
    for entry in links.left().into_iter().rev().filter(|e| of_run(&e.run)) {
        removed.push(links.take_off(&entry).await?);
    }
    Ok(removed)
}

/// What a target run holds: its links (with their ledger), the control plane's log
/// follower, and the commands that make a foreign control plane's changes.
struct TargetParts {
    links: Arc<TargetLinks>,
    stop: CancellationToken,
    followers: Vec<JoinHandle<()>>,
    commands: BTreeMap<String, crate::target::Command>,
    redactor: crate::target::Redactor,
}

#[async_trait]
impl Parts for TargetParts {
    async fn kill_control_plane(&self) -> Result<()> {
        bail!("tether does not kill a target's control plane")
    }

    async fn restart_control_plane(&self) -> Result<()> {
        bail!("tether does not restart a target's control plane")
    }

    async fn container_fault(
        &self,
        part: &crate::plan::Part,
        _: Action,
        _: bool,
    ) -> Result<Vec<String>> {
        bail!("a target names no containers (asked for {part})")
    }

    async fn change(&self, change: &Change) -> Result<String> {
        let command = self.commands.get(change.kind()).with_context(|| {
            format!("the target has no command for `{}` changes", change.kind())
        })?;
        command::change(command, change, &self.redactor).await
    }

    async fn shutdown(self: Box<Self>) {
        // Whatever is still on the target (a run cut short by an error, a panic in the
        // interpreter) comes off now.
        for entry in self.links.left().into_iter().rev() {
            let _ = self.links.take_off(&entry).await;
        }
        self.stop.cancel();
        for follower in self.followers {
            let _ = follower.await;
        }
    }
}
