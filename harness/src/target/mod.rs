//! A target: a deployment tether did not start (a staging rack's sidecars, a control
//! plane in the region, a fault proxy on the service link), reached only by address.
//!
//! A target file ([`schema`]) names the sidecars by virtual node with their admin URLs
//! and sites, where load enters, the control plane (tether's reference one deployed
//! there, or the user's own), and how each link's faults are made (a Toxiproxy API and
//! its proxies, or commands). [`load`] reads it with file:line:col on every error;
//! [`Target::fits`] says what a suite needs that the target does not give. Credentials
//! (header values, passwords in URLs, commands' extra environment) are collected in
//! [`Target::secrets`] so nothing tether writes carries them ([`Redactor`]).

pub mod schema;

use crate::plan::{Change, Fault, Link, LinkKind, Plan, Site};
use crate::source::{InputError, Location};
use marked_yaml::{Span, Spanned};
use schema::{CommandSpec, ControlPlaneSpec, LinkSpec, TargetFile};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A target, read and checked.
#[derive(Debug, Clone)]
pub struct Target {
    /// The target file.
    pub path: PathBuf,
    /// Its name.
    pub name: String,
    /// SHA-256 of the file's text (hex), recorded in reports instead of the file.
    pub digest: String,
    /// The sidecars under test, by virtual node.
    pub sidecars: BTreeMap<String, Sidecar>,
    /// Where load enters, by virtual node.
    pub load: BTreeMap<String, LoadEntry>,
    /// The control plane.
    pub control_plane: ControlPlane,
    /// How each link's faults are made.
    pub links: BTreeMap<Link, LinkActuator>,
    /// Every credential in the file, to be redacted from whatever tether writes.
    pub secrets: Vec<String>,
    /// Where tether keeps state of its targets: `$TETHER_STATE_DIR`, else
    /// `$XDG_STATE_HOME/tether`, else `~/.local/state/tether`.
    pub state_base: PathBuf,
    /// Where each part of the file is, for errors about what it lacks.
    spans: Spans,
}

/// One sidecar of a target.
#[derive(Debug, Clone, PartialEq)]
pub struct Sidecar {
    /// Its Envoy admin endpoint.
    pub admin: reqwest::Url,
    /// Its site.
    pub site: Site,
}

/// Where load enters.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadEntry {
    /// The listener that takes the load.
    pub url: reqwest::Url,
    /// The `Host` header to send, when not the suite's service.
    pub host: Option<String>,
}

/// The control plane of a target.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlPlane {
    /// tether's reference control plane: its admin API and the headers it needs.
    Tether {
        /// Its admin API.
        api: reqwest::Url,
        /// Headers sent with every request.
        headers: BTreeMap<String, String>,
    },
    /// The user's own: a command per change kind.
    Foreign {
        /// Commands by change kind.
        changes: BTreeMap<String, Command>,
    },
}

/// How one link's faults are made.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkActuator {
    /// Toxics on these proxies of a Toxiproxy API.
    Toxiproxy {
        /// The API.
        api: reqwest::Url,
        /// The proxies that carry the link.
        proxies: Vec<String>,
    },
    /// Commands.
    Command {
        /// Puts a fault on.
        apply: Command,
        /// Takes it off.
        remove: Command,
        /// The fault kinds they make (None: every kind).
        faults: Option<Vec<String>>,
    },
}

/// A command of a target.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The program (resolved against the target file's folder) and its arguments.
    pub argv: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// How long it may take.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Default)]
struct Spans {
    name: Option<Span>,
    sidecars: HashMap<String, Span>,
    load: Option<Span>,
    links: Option<Span>,
    control_plane: Option<Span>,
}

/// Why a target cannot serve a suite: the suite needs what the target does not give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct Unfit(pub Vec<InputError>);

/// Read and check the target file at `path`.
pub fn load(path: &Path) -> Result<Target, InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::file(path, format!("cannot read the target file: {e}")))?;
    let file: TargetFile = crate::source::parse(path, &text)?;
    lower(path, &text, file)
}

fn lower(path: &Path, text: &str, file: TargetFile) -> Result<Target, InputError> {
    let err = |span: &Span, message: String| InputError::at(path, span, message);
    let mut secrets = Vec::new();
    let mut spans = Spans {
        name: Some(*file.name.span()),
        ..Spans::default()
    };
    let mut sidecars = BTreeMap::new();
    for (name, spec) in &file.sidecars {
        let admin = http_url(path, &spec.admin, &mut secrets)?;
        spans.sidecars.insert(name.to_string(), *name.span());
        sidecars.insert(
            name.to_string(),
            Sidecar {
                admin,
                site: *spec.site,
            },
        );
    }
    let mut load = BTreeMap::new();
    for (name, spec) in &file.load {
        spans.load.get_or_insert(*name.span());
        if !file.sidecars.keys().any(|k| **k == **name) {
            return Err(err(
                name.span(),
                format!(
                    "load enters through `{}`, which is not one of the sidecars",
                    name.as_str()
                ),
            ));
        }
        let url = http_url(path, &spec.url, &mut secrets)?;
        let host = spec.host.as_ref().map(|h| h.to_string());
        load.insert(name.to_string(), LoadEntry { url, host });
    }
    let control_plane = match &*file.control_plane {
        ControlPlaneSpec::Tether { api, headers } => {
            secrets.extend(headers.values().cloned());
            ControlPlane::Tether {
                api: http_url(path, api, &mut secrets)?,
                headers: headers.clone(),
            }
        }
        ControlPlaneSpec::Foreign { changes } => {
            let mut commands = BTreeMap::new();
            for (kind, spec) in changes {
                if !Change::KINDS.contains(&kind.as_str()) {
                    return Err(err(
                        kind.span(),
                        format!(
                            "unknown change kind `{}`: expected one of {}",
                            kind.as_str(),
                            Change::KINDS.join(", ")
                        ),
                    ));
                }
                commands.insert(kind.to_string(), command(path, spec, &mut secrets)?);
            }
            ControlPlane::Foreign { changes: commands }
        }
    };
    spans.control_plane = Some(*file.control_plane.span());
    let mut links = BTreeMap::new();
    for (name, spec) in &file.links {
        spans.links.get_or_insert(*name.span());
        let link = Link::EVERY
            .into_iter()
            .find(|l| l.as_str() == name.as_str())
            .ok_or_else(|| {
                err(
                    name.span(),
                    format!(
                        "unknown link `{}`: expected xds, data or all",
                        name.as_str()
                    ),
                )
            })?;
        links.insert(link, link_actuator(path, spec, &mut secrets)?);
    }
    secrets.retain(|s| !s.is_empty());
    Ok(Target {
        path: path.to_path_buf(),
        name: file.name.to_string(),
        digest: hex(&Sha256::digest(text.as_bytes())),
        sidecars,
        load,
        control_plane,
        links,
        secrets,
        state_base: state_base(),
        spans,
    })
}

fn link_actuator(
    path: &Path,
    spec: &LinkSpec,
    secrets: &mut Vec<String>,
) -> Result<LinkActuator, InputError> {
    Ok(match spec {
        LinkSpec::Toxiproxy { api, proxies } => {
            let url = http_url(path, api, secrets)?;
            if proxies.is_empty() {
                return Err(InputError::spanned(
                    path,
                    api,
                    "a Toxiproxy link needs at least one proxy in `proxies`",
                ));
            }
            LinkActuator::Toxiproxy {
                api: url,
                proxies: proxies.iter().map(|p| p.to_string()).collect(),
            }
        }
        LinkSpec::Command {
            apply,
            remove,
            faults,
        } => {
            for kind in faults.iter().flatten() {
                if !Fault::KINDS.contains(&kind.as_str()) {
                    return Err(InputError::spanned(
                        path,
                        kind,
                        format!(
                            "unknown fault kind `{}`: expected one of {}",
                            kind.as_str(),
                            Fault::KINDS.join(", ")
                        ),
                    ));
                }
            }
            LinkActuator::Command {
                apply: command(path, apply, secrets)?,
                remove: command(path, remove, secrets)?,
                faults: faults
                    .as_ref()
                    .map(|f| f.iter().map(|k| k.to_string()).collect()),
            }
        }
    })
}

fn command(
    path: &Path,
    spec: &CommandSpec,
    secrets: &mut Vec<String>,
) -> Result<Command, InputError> {
    let Some(program) = spec.run.first() else {
        return Err(InputError::spanned(
            path,
            &spec.run,
            "`run` needs a program: `run: [program, arg, ...]`",
        ));
    };
    let folder = path.parent().unwrap_or(Path::new("."));
    let program = if program.contains('/') && Path::new(program).is_relative() {
        folder.join(program).display().to_string()
    } else {
        program.clone()
    };
    secrets.extend(spec.env.values().cloned());
    let mut argv = spec.run.to_vec();
    argv[0] = program;
    Ok(Command {
        argv,
        env: spec.env.clone(),
        timeout: spec.timeout.map_or(Duration::from_secs(30), |d| d.0),
    })
}

/// An `http://` or `https://` URL with a host; its password (or user) is a secret.
fn http_url(
    path: &Path,
    text: &Spanned<String>,
    secrets: &mut Vec<String>,
) -> Result<reqwest::Url, InputError> {
    let url = reqwest::Url::parse(text).map_err(|e| {
        InputError::spanned(
            path,
            text,
            format!("expected a URL like http://host:port: {e}"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(InputError::spanned(
            path,
            text,
            format!(
                "expected an http:// or https:// URL with a host, found `{}`",
                text.as_str()
            ),
        ));
    }
    secrets.extend(url.password().map(str::to_string));
    if url.password().is_some() {
        secrets.push(url.username().to_string());
    }
    Ok(url)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Target {
    /// Is the control plane tether's reference one (whose xDS log tether can follow)?
    pub fn follows_log(&self) -> bool {
        matches!(self.control_plane, ControlPlane::Tether { .. })
    }

    /// The folder of tether's state for this target (its fault ledger): one per target
    /// name and file, under [`Target::state_base`]`/targets`.
    pub fn state_dir(&self) -> PathBuf {
        let file = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let key = hex(&Sha256::digest(file.display().to_string().as_bytes()));
        self.state_base
            .join("targets")
            .join(format!("{}-{}", sanitize(&self.name), &key[..12]))
    }

    /// What `plan` needs that this target does not give: sidecars (on the same site),
    /// the load's entry, an actuator for every link a fault is put on that can make that
    /// fault, a way to make every change kind; and nothing a target cannot do (container
    /// faults, killing the control plane, a packet link, proxy-overhead measurements).
    pub fn fits(&self, plan: &Plan) -> Result<(), Unfit> {
        let mut problems = Vec::new();
        let mut say = |span: Option<&Span>, message: String| {
            problems.push(match span {
                Some(span) => InputError::at(&self.path, span, message),
                None => InputError {
                    location: Location {
                        file: self.path.clone(),
                        line: 1,
                        column: 1,
                    },
                    message,
                },
            })
        };
        let suite = plan.name();
        for (node, site) in &plan.sites {
            match self.sidecars.get(node) {
                None => say(
                    self.spans.sidecars.values().next(),
                    format!(
                        "suite `{suite}` runs virtual node `{node}` ({site}); the target has no such sidecar (it has: {})",
                        self.sidecars.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ),
                Some(s) if s.site != *site => say(
                    self.spans.sidecars.get(node),
                    format!(
                        "suite `{suite}` runs `{node}` on the {site}; the target has it on the {}",
                        s.site
                    ),
                ),
                Some(_) => {}
            }
        }
        if !self.load.contains_key(&plan.load.through) {
            say(
                self.spans.load.as_ref(),
                format!(
                    "suite `{suite}` drives load through `{}`; the target's `load` has no entry for it",
                    plan.load.through
                ),
            );
        }
        for (link, fault) in faults_of(plan) {
            if let Some(why) = self.cannot(link, &fault) {
                say(
                    self.spans.links.as_ref().or(self.spans.name.as_ref()),
                    format!("suite `{suite}` puts `{fault}` on the {link} link: {why}"),
                );
            }
        }
        for change in plan.phases.iter().flat_map(|p| &p.changes) {
            if let ControlPlane::Foreign { changes } = &self.control_plane {
                let kind = change.1.kind();
                if !changes.contains_key(kind) {
                    say(
                        self.spans.control_plane.as_ref(),
                        format!(
                            "suite `{suite}` makes a `{kind}` change; the foreign control plane has no command for it under `changes`"
                        ),
                    );
                }
            }
        }
        for why in cannot_on_a_target(plan) {
            say(self.spans.name.as_ref(), format!("suite `{suite}`: {why}"));
        }
        if let Some(check) = self.unsampled_check(plan) {
            say(
                self.spans.control_plane.as_ref(),
                format!(
                    "suite `{suite}` says `observe: {{ sidecars: none }}`, but against this target's control plane (not tether's: no xDS log) `{}` judges from the sidecars' samples",
                    check.name()
                ),
            );
        }
        problems.dedup();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Unfit(problems))
        }
    }

    /// A check of `plan` that would have no samples to judge: the suite samples no
    /// sidecar, and against this target's control plane the check reads them.
    fn unsampled_check<'p>(&self, plan: &'p Plan) -> Option<&'p crate::plan::Check> {
        let none = plan.observe.sidecars == crate::plan::Sidecars::None;
        let xds_log = self.follows_log();
        plan.checks.iter().find(|c| none && c.reads(xds_log).any())
    }

    /// How each link's faults are made, in words (credentials redacted).
    pub fn describe_links(&self) -> String {
        let redactor = Redactor::of(self);
        let links: Vec<String> = self
            .links
            .iter()
            .map(|(link, actuator)| match actuator {
                LinkActuator::Toxiproxy { api, proxies } => format!(
                    "{link} through the Toxiproxy API at {} (proxies {})",
                    redactor.redact(api.as_str()),
                    proxies.join(", ")
                ),
                LinkActuator::Command { apply, .. } => format!(
                    "{link} by commands (apply: `{}`)",
                    redactor.redact(&apply.argv.join(" "))
                ),
            })
            .collect();
        match links.is_empty() {
            true => format!("target `{}` names no link actuators", self.name),
            false => format!("target `{}`: {}", self.name, links.join("; ")),
        }
    }

    /// Why this target cannot make `fault` on `link`, if it cannot.
    fn cannot(&self, link: Link, fault: &Fault) -> Option<String> {
        let actuators = carrying(&self.links, link);
        if actuators.is_empty() {
            return Some(format!(
                "the target names no actuator for it under `links: {{{link}: ...}}`"
            ));
        }
        actuators.iter().find_map(|(_, a)| match a {
            LinkActuator::Toxiproxy { .. } => LinkKind::Proxy
                .cannot(fault)
                .map(|why| format!("its actuator is a Toxiproxy API, and {why}")),
            LinkActuator::Command {
                faults: Some(kinds),
                ..
            } => {
                // Flapping is made of `down` and its removal.
                let kind = match fault {
                    Fault::Flapping { .. } => "down",
                    other => other.kind(),
                };
                (!kinds.iter().any(|k| k == kind))
                    .then(|| format!("its commands make only {}", kinds.join(", ")))
            }
            LinkActuator::Command { faults: None, .. } => None,
        })
    }
}

/// The actuators of `actuators` (by link) that carry `link`: its own, or for `all`
/// without one of its own, every link's.
pub fn carrying<A>(actuators: &BTreeMap<Link, A>, link: Link) -> Vec<(Link, &A)> {
    match actuators.get(&link) {
        Some(a) => vec![(link, a)],
        None if link == Link::All => actuators.iter().map(|(l, a)| (*l, a)).collect(),
        None => Vec::new(),
    }
}

/// Every (link, fault) a plan may put on, drawn alternatives included.
fn faults_of(plan: &Plan) -> Vec<(Link, Fault)> {
    let mut out = Vec::new();
    for phase in &plan.phases {
        out.extend(phase.faults.iter().cloned());
        for (i, alternatives) in &phase.draws.faults {
            if let Some((link, _)) = phase.faults.get(*i) {
                out.extend(alternatives.iter().map(|f| (*link, f.clone())));
            }
        }
    }
    out.dedup();
    out
}

/// What a plan asks that no target can do.
fn cannot_on_a_target(plan: &Plan) -> Vec<String> {
    let mut why = Vec::new();
    if plan.link == LinkKind::Packet {
        why.push("`link: packet` builds its own network namespaces; a target's links are the ones it names".into());
    }
    if let Some(f) = plan.phases.iter().flat_map(|p| &p.containers).next() {
        why.push(format!(
            "`{}: {}` is a container fault; a target names no containers tether may stop",
            f.action.as_str(),
            f.part
        ));
    }
    if plan.phases.iter().any(|p| p.control_plane_down) {
        why.push("`control_plane: down` kills the control plane; tether does not kill a target's control plane".into());
    }
    if let Some(o) = plan.phases.iter().find_map(|p| p.overhead.as_ref()) {
        why.push(format!(
            "`proxy_overhead` of `{}` needs its app's own address, which a target does not give",
            o.node
        ));
    }
    why
}

fn state_base() -> PathBuf {
    std::env::var_os("TETHER_STATE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("tether")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/tether")))
        .unwrap_or_else(|| std::env::temp_dir().join("tether-state"))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Replaces a target's credentials with `***` in text tether writes.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor of `target`'s secrets.
    pub fn of(target: &Target) -> Redactor {
        let mut secrets = target.secrets.clone();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }

    /// `text` with every secret replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "***");
        }
        out
    }
}

#[cfg(test)]
mod tests;
