//! `tether run --target ... --dry-run`: the schedule, and under each operation every API
//! call and command a run against the target would make, credentials redacted. It makes
//! none of them (it opens no connection and runs no command).

use super::slash;
use crate::plan::{Fault, Link, Operation, Plan, Schedule};
use crate::target::{Command, ControlPlane, LinkActuator, Redactor, Target};
use std::fmt::Write;

/// The dry run of `schedule` against `target`, as text.
pub fn render(plan: &Plan, target: &Target, schedule: &Schedule) -> String {
    let redactor = Redactor::of(target);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "dry run of {} against target `{}` (file {}, SHA-256 {}): nothing below is done",
        plan.name(),
        target.name,
        target.path.display(),
        target.digest
    );
    out.push_str("before the first phase:\n");
    for line in before(plan, target) {
        let _ = writeln!(out, "    {}", redactor.redact(&line));
    }
    out.push_str("while the run lasts:\n");
    for line in observers(plan, target) {
        let _ = writeln!(out, "    {}", redactor.redact(&line));
    }
    for timed in &schedule.operations {
        let _ = writeln!(out, "{:>9.3}s  {}", timed.at.as_secs_f64(), timed.op);
        for line in calls(plan, target, &timed.op) {
            let _ = writeln!(out, "              {}", redactor.redact(&line));
        }
    }
    out
}

/// What attaching does: reachability, the ledger, the clock, the log stream.
fn before(plan: &Plan, target: &Target) -> Vec<String> {
    let mut lines = vec![format!(
        "read {}/ledger.json: refuse to run if it holds faults",
        target.state_dir().display()
    )];
    for node in plan.sites.keys() {
        if let Some(sidecar) = target.sidecars.get(node) {
            lines.push(format!(
                "GET {}ready  (sidecar `{node}` answers)",
                slash(&sidecar.admin)
            ));
        }
    }
    if let Some(entry) = target.load.get(&plan.load.through) {
        lines.push(format!("TCP connect to {}  (load entry)", entry.url));
    }
    if let ControlPlane::Tether { api, .. } = &target.control_plane {
        lines.push(format!("GET {}healthz", slash(api)));
        lines.push(format!("GET {}clock  x8 (clock offset)", slash(api)));
        lines.push(format!(
            "GET {}log  (kept open: the xDS log onto the timeline)",
            slash(api)
        ));
    }
    for spec in target.links.values() {
        if let LinkActuator::Toxiproxy { api, proxies } = spec {
            for proxy in proxies {
                lines.push(format!("GET {}proxies/{proxy}", slash(api)));
            }
        }
    }
    lines
}

/// What the observers and the load ask of the target all along.
fn observers(plan: &Plan, target: &Target) -> Vec<String> {
    let mut lines: Vec<String> = plan
        .sites
        .keys()
        .filter_map(|node| target.sidecars.get(node).map(|s| (node, s)))
        .map(|(node, s)| {
            format!(
                "every 250 ms: GET {0}stats?format=json&filter=... and GET {0}ready  (`{node}`)",
                slash(&s.admin)
            )
        })
        .collect();
    if let ControlPlane::Tether { api, .. } = &target.control_plane {
        lines.push(format!(
            "every 1 s: GET {}memory; every 60 s: GET {0}clock x8",
            slash(api)
        ));
    }
    lines
}

/// The calls and commands of one operation.
fn calls(plan: &Plan, target: &Target, op: &Operation) -> Vec<String> {
    match op {
        Operation::On { disruption } | Operation::Off { disruption } => {
            let on = matches!(op, Operation::On { .. });
            match disruption {
                crate::plan::Disruption::Link { link, fault, .. } => {
                    let mut lines = Vec::new();
                    if on {
                        lines.push(format!("ledger: write `{fault}` on {link} down first"));
                    }
                    lines.extend(link_calls(target, *link, fault, on));
                    if !on {
                        lines.push(format!("ledger: cross `{fault}` on {link} out"));
                    }
                    lines
                }
                other => vec![format!("refused: a target cannot make {other}")],
            }
        }
        Operation::MeshChange { change, .. } => match &target.control_plane {
            ControlPlane::Tether { api, .. } => vec![format!(
                "POST {}changes {}",
                slash(api),
                serde_json::to_string(change).unwrap_or_default()
            )],
            ControlPlane::Foreign { changes } => match changes.get(change.kind()) {
                Some(command) => vec![command_line(
                    command,
                    &[],
                    &serde_json::to_value(change).unwrap_or_default(),
                )],
                None => vec![format!(
                    "refused: no command for `{}` changes",
                    change.kind()
                )],
            },
        },
        Operation::StartLoad { duration } => {
            let url = target
                .load
                .get(&plan.load.through)
                .map(|e| e.url.to_string())
                .unwrap_or_default();
            vec![format!(
                "open-loop load: {} req/s to {url} with Host {} for {}",
                plan.load.rate,
                plan.load.service,
                humantime::format_duration(*duration)
            )]
        }
        Operation::StartJourneys { .. } => vec!["goose journeys through the load entry".into()],
        _ => Vec::new(),
    }
}

/// The calls that put `fault` on `link` (or take it off).
fn link_calls(target: &Target, link: Link, fault: &Fault, on: bool) -> Vec<String> {
    let mut lines = Vec::new();
    for (which, actuator) in crate::target::carrying(&target.links, link) {
        match actuator {
            LinkActuator::Toxiproxy { api, proxies } => {
                for proxy in proxies {
                    let base = format!("{}proxies/{proxy}", slash(api));
                    if *fault == Fault::Down {
                        lines.push(format!("POST {base} {{\"enabled\":{}}}", !on));
                    }
                    for toxic in crate::backend::links::toxics::toxics(fault) {
                        lines.push(match on {
                            true => format!(
                                "POST {base}/toxics {}",
                                serde_json::to_string(&toxic).unwrap_or_default()
                            ),
                            false => format!("DELETE {base}/toxics/{}", toxic.name),
                        });
                    }
                }
            }
            LinkActuator::Command { apply, remove, .. } => {
                let action = if on { "apply" } else { "remove" };
                let env = [
                    format!("TETHER_ACTION={action}"),
                    format!("TETHER_LINK={which}"),
                    format!("TETHER_FAULT={}", fault.kind()),
                ];
                let input = serde_json::json!({
                    "action": action, "link": which, "fault": fault, "target": target.name,
                });
                lines.push(command_line(if on { apply } else { remove }, &env, &input));
            }
        }
    }
    lines
}

fn command_line(command: &Command, env: &[String], input: &serde_json::Value) -> String {
    let extra: Vec<String> = command
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "run `{}` with {} and stdin {input}",
        command.argv.join(" "),
        env.iter()
            .chain(&extra)
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(path: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path)
    }

    #[test]
    fn a_dry_run_names_every_call_and_hides_credentials() {
        let plan = crate::suite::load(&repo("suites/outpost-partition.yaml")).unwrap();
        let target = crate::target::load(&repo("fixtures/racks/compose/target.yaml")).unwrap();
        let text = render(&plan, &target, &Schedule::of(&plan, 1));
        assert!(text.contains("POST http://127.0.0.1:23474/proxies/xds/toxics {\"name\":\"tether_blackhole_upstream\""), "{text}");
        assert!(
            text.contains(
                "DELETE http://127.0.0.1:23474/proxies/xds/toxics/tether_blackhole_downstream"
            ),
            "{text}"
        );
        assert!(
            text.contains("POST http://127.0.0.1:23300/changes {\"set_route_weights\""),
            "{text}"
        );
        assert!(text.contains("GET http://127.0.0.1:23300/log"), "{text}");
        assert!(
            text.contains("ledger: write `blackhole` on xds down first"),
            "{text}"
        );
        assert!(!text.contains("rack-token"), "{text}");

        let commands =
            crate::target::load(&repo("fixtures/racks/compose/target-commands.yaml")).unwrap();
        let plan =
            crate::suite::load(&repo("fixtures/racks/compose/suites/region-calls.yaml")).unwrap();
        let text = render(&plan, &commands, &Schedule::of(&plan, 1));
        assert!(
            text.contains(
                "data-link.sh` with TETHER_ACTION=apply TETHER_LINK=data TETHER_FAULT=blackhole"
            ),
            "{text}"
        );
        assert!(text.contains("TETHER_ACTION=remove"), "{text}");
    }
}
