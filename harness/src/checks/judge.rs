//! The checks themselves.

use super::{Context, Measurement, Outcome, Verdict, Window};
use crate::suite::Check;
use crate::timeline::{Entry, Event, LoadSecond, XdsKind};
use std::collections::{BTreeMap, BTreeSet};

mod restart;

pub(super) fn judge(check: &Check, ctx: &Context, entries: &[Entry]) -> Verdict {
    let name = check.name();
    let result = match check {
        Check::OutpostTrafficFlows {
            phase,
            min_success_ratio,
        } => traffic_flows(entries, phase, **min_success_ratio),
        Check::ConfigFrozen { phase } => config_frozen(ctx, entries, phase),
        Check::ChangeAppliedAfterHeal {
            phase,
            within,
            min_share,
        } => change_applied(
            ctx,
            entries,
            phase,
            within.0.as_millis() as u64,
            min_share.as_ref().map(|s| **s).unwrap_or(0.95),
        ),
        Check::XdsStaysConnected { phase } => xds_stays_connected(ctx, entries, phase),
        Check::PartitionNoticed {
            phase,
            within,
            nodes,
        } => partition_noticed(
            &chosen(ctx, nodes),
            entries,
            phase,
            Some(within.0.as_millis() as u64),
        ),
        Check::PartitionUnnoticed { phase, nodes } => {
            partition_noticed(&chosen(ctx, nodes), entries, phase, None)
        }
        Check::Propagation { phase, within } => {
            propagation(entries, phase, within.0.as_millis() as u64)
        }
        Check::Reconvergence { phase, within } => {
            reconvergence(ctx, entries, phase, within.0.as_millis() as u64)
        }
        Check::JourneysSucceed {
            phase,
            min_success_ratio,
        } => journeys_succeed(entries, phase, **min_success_ratio),
        Check::RestartWaitsForHeal { phase, within } => {
            restart::waits_for_heal(entries, phase, within.0.as_millis() as u64)
        }
        Check::ProxyOverhead {
            phase,
            min_throughput_ratio,
            max_added_p99,
        } => proxy_overhead(
            entries,
            phase,
            **min_throughput_ratio,
            max_added_p99.0.as_micros() as u64,
        ),
    };
    let mut verdict = result.unwrap_or_else(|detail| Verdict {
        name: String::new(),
        outcome: Outcome::Unknown,
        detail,
        measurements: Vec::new(),
        failed_at_ms: None,
    });
    verdict.name = name.to_string();
    verdict
}

/// A verdict under construction; `Err` is an unknown verdict's detail.
type Judged = Result<Verdict, String>;

fn verdict(
    passed: bool,
    detail: String,
    measurements: Vec<Measurement>,
    failed_at_ms: Option<u64>,
) -> Verdict {
    Verdict {
        name: String::new(),
        outcome: if passed {
            Outcome::Passed
        } else {
            Outcome::Failed
        },
        detail,
        measurements,
        failed_at_ms: if passed { None } else { failed_at_ms },
    }
}

fn measure(name: impl Into<String>, value: f64, unit: &str, bound: Option<f64>) -> Measurement {
    Measurement {
        name: name.into(),
        value,
        unit: unit.into(),
        bound,
    }
}

fn phase_window(entries: &[Entry], phase: &str) -> Result<Window, String> {
    Window::of_phase(entries, phase)
        .ok_or_else(|| format!("phase `{phase}` never started in this run"))
}

fn load_seconds(entries: &[Entry]) -> impl Iterator<Item = (u64, &LoadSecond)> {
    entries.iter().filter_map(|e| match &e.event {
        Event::LoadSecond(s) => Some((e.t_ms, s)),
        _ => None,
    })
}

/// One look at one Envoy's admin endpoint, as the timeline holds it.
#[derive(Debug, Clone, Copy)]
struct Sample<'a> {
    t: u64,
    connected: Option<bool>,
    route: Option<&'a str>,
    cluster: Option<&'a str>,
    listener: Option<&'a str>,
    keepalive_timeouts: Option<u64>,
    ready: Option<bool>,
}

impl<'a> Sample<'a> {
    /// The versions of the config it served (routes, clusters, listeners).
    fn config(&self) -> [Option<&'a str>; 3] {
        [self.route, self.cluster, self.listener]
    }

    fn has_config(&self) -> bool {
        self.config().iter().any(Option::is_some)
    }
}

/// The samples of one node, in time order.
fn samples<'a>(entries: &'a [Entry], node: &'a str) -> impl Iterator<Item = Sample<'a>> + 'a {
    entries.iter().filter_map(move |e| match &e.event {
        Event::EnvoySample {
            node: n,
            connected,
            route_version,
            cluster_version,
            listener_version,
            xds_keepalive_timeouts,
            ready,
        } if n == node => Some(Sample {
            t: e.t_ms,
            connected: *connected,
            route: route_version.as_deref(),
            cluster: cluster_version.as_deref(),
            listener: listener_version.as_deref(),
            keepalive_timeouts: *xds_keepalive_timeouts,
            ready: *ready,
        }),
        _ => None,
    })
}

/// Is config version `v` the version `want` or a newer one? (Versions are counters.)
fn at_least(v: &str, want: &str) -> bool {
    match (v.parse::<u64>(), want.parse::<u64>()) {
        (Ok(v), Ok(want)) => v >= want,
        _ => v == want,
    }
}

/// Did `node` lose its control plane between `from` and `to` (ms): a sample says
/// disconnected, or its keepalive timeout count grew?
fn lost_control_plane_between(entries: &[Entry], node: &str, from: u64, to: u64) -> bool {
    let at_from = samples(entries, node)
        .filter(|s| s.t <= from)
        .filter_map(|s| s.keepalive_timeouts)
        .last();
    samples(entries, node)
        .filter(|s| s.t > from && s.t < to)
        .any(|s| {
            s.connected == Some(false) || (at_from.is_some() && s.keepalive_timeouts > at_from)
        })
}

/// `client 1.2 s, svc-v1 0.8 s` from measurements named `<prefix><node>` in ms.
fn per_node(measurements: &[Measurement], prefix: &str) -> Vec<String> {
    measurements
        .iter()
        .map(|m| {
            format!(
                "{} {}",
                m.name.trim_start_matches(prefix),
                secs(m.value as u64)
            )
        })
        .collect()
}

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// Outpost traffic keeps flowing: the share of successful requests in the phase.
fn traffic_flows(entries: &[Entry], phase: &str, min: f64) -> Judged {
    let w = phase_window(entries, phase)?;
    let (mut sent, mut ok, mut first_failure) = (0u64, 0u64, None);
    let mut errors: BTreeMap<&str, u64> = BTreeMap::new();
    for (t, s) in load_seconds(entries).filter(|(t, _)| w.contains(*t)) {
        sent += s.sent;
        ok += s.ok;
        for (kind, n) in &s.errors {
            *errors.entry(kind).or_default() += n;
        }
        if s.ok < s.sent && first_failure.is_none() {
            first_failure = Some(t);
        }
    }
    if sent == 0 {
        return Err(format!("no requests were recorded during `{phase}`"));
    }
    let ratio = ok as f64 / sent as f64;
    let mut detail = format!(
        "{:.2}% of {sent} requests succeeded during `{phase}` (bound >= {:.2}%)",
        ratio * 100.0,
        min * 100.0
    );
    if !errors.is_empty() {
        let e: Vec<String> = errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        detail.push_str(&format!("; errors: {}", e.join(", ")));
    }
    // The phase's latency: every second's histogram merged, nothing lost.
    let latency = crate::timeline::merge_latency(
        load_seconds(entries)
            .filter(|(t, _)| w.contains(*t))
            .map(|(_, s)| s),
    );
    let mut measurements = vec![
        measure("success_ratio", ratio, "ratio", Some(min)),
        measure("requests", sent as f64, "requests", None),
    ];
    if !latency.is_empty() {
        for (name, q) in [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)] {
            measurements.push(measure(
                format!("latency_ms.{name}"),
                latency.value_at_quantile(q) as f64 / 1000.0,
                "ms",
                None,
            ));
        }
    }
    Ok(verdict(ratio >= min, detail, measurements, first_failure))
}

/// No outpost sidecar's served config changes during the phase.
fn config_frozen(ctx: &Context, entries: &[Entry], phase: &str) -> Judged {
    let w = phase_window(entries, phase)?;
    let mut measurements = Vec::new();
    let mut changed = Vec::new();
    let mut failed_at = None;
    for node in &ctx.outpost_nodes {
        let before = samples(entries, node)
            .filter(|s| s.t < w.start_ms && s.has_config())
            .last()
            .map(|s| s.config())
            .ok_or_else(|| format!("no config sample of `{node}` before `{phase}`"))?;
        let during: Vec<Sample> = samples(entries, node).filter(|s| w.contains(s.t)).collect();
        if !during.iter().any(Sample::has_config) {
            return Err(format!("`{node}` reported no config during `{phase}`"));
        }
        if let Some(s) = during
            .iter()
            .find(|s| s.has_config() && s.config() != before)
        {
            let show = |c: [Option<&str>; 3]| c.map(|v| v.unwrap_or("-")).join("/");
            changed.push(format!(
                "`{node}` went from routes/clusters/listeners {} to {} at {}",
                show(before),
                show(s.config()),
                secs(s.t)
            ));
            failed_at = failed_at.or(Some(s.t));
        }
        if let Some(t) = noticed_at(entries, node, w) {
            measurements.push(measure(
                format!("disconnect_noticed_ms.{node}"),
                (t - w.start_ms) as f64,
                "ms",
                None,
            ));
        }
    }
    let passed = changed.is_empty();
    let detail = if passed {
        format!(
            "the config of all {} outpost sidecars stayed as it was during `{phase}`",
            ctx.outpost_nodes.len()
        )
    } else {
        format!("config changed during `{phase}`: {}", changed.join("; "))
    };
    Ok(verdict(passed, detail, measurements, failed_at))
}

/// The last mesh change before `t_ms`: (time, version, target node).
fn last_change_before(entries: &[Entry], t_ms: u64) -> Option<(u64, &str, Option<&str>)> {
    entries
        .iter()
        .rev()
        .filter(|e| e.t_ms < t_ms)
        .find_map(|e| match &e.event {
            Event::MeshChange {
                version, target, ..
            } => Some((e.t_ms, version.as_str(), target.as_deref())),
            _ => None,
        })
}

/// A change made before the heal is not applied before it (in no outpost sidecar's config,
/// nor in traffic), and is applied after it, in the config of the sidecar the load enters
/// and in which version serves the traffic.
fn change_applied(
    ctx: &Context,
    entries: &[Entry],
    phase: &str,
    within_ms: u64,
    min_share: f64,
) -> Judged {
    let heal = phase_window(entries, phase)?;
    let (changed_at, version, target) = last_change_before(entries, heal.start_ms)
        .ok_or_else(|| format!("no mesh change was made before `{phase}`"))?;
    let target = target.ok_or("the mesh change before the heal routes no traffic")?;
    let share = |s: &LoadSecond| {
        if s.sent == 0 {
            0.0
        } else {
            *s.served_by.get(target).unwrap_or(&0) as f64 / s.sent as f64
        }
    };

    // Not applied while partitioned.
    let early_config = ctx.outpost_nodes.iter().find_map(|node| {
        samples(entries, node)
            .find(|s| {
                (changed_at..heal.start_ms).contains(&s.t)
                    && s.route.is_some_and(|r| at_least(r, version))
            })
            .map(|s| (node, s.t))
    });
    if let Some((node, t)) = early_config {
        let detail = format!(
            "version {version} reached `{node}` at {} before the heal at {}",
            secs(t),
            secs(heal.start_ms)
        );
        return Ok(verdict(false, detail, Vec::new(), Some(t)));
    }
    let early_traffic = load_seconds(entries)
        .find(|(t, s)| *t >= changed_at && *t < heal.start_ms && share(s) >= min_share);
    if let Some((t, _)) = early_traffic {
        let detail = format!(
            "`{target}` already served the traffic at {}, before the heal at {}",
            secs(t),
            secs(heal.start_ms)
        );
        return Ok(verdict(false, detail, Vec::new(), Some(t)));
    }

    // Applied after the heal: in the config of the sidecar the traffic enters, then in traffic.
    let node = &ctx.load_through;
    let Some(config_t) = samples(entries, node)
        .find(|s| s.t >= heal.start_ms && s.route.is_some_and(|r| at_least(r, version)))
        .map(|s| s.t)
    else {
        let detail = format!("`{node}` never served version {version} after the heal");
        return Ok(verdict(false, detail, Vec::new(), Some(heal.end_ms)));
    };
    let config_ms = config_t - heal.start_ms;
    let Some((switch_t, _)) =
        load_seconds(entries).find(|(t, s)| *t >= heal.start_ms && share(s) >= min_share)
    else {
        let detail = format!(
            "`{target}` never served {:.0}% of the traffic after the heal",
            min_share * 100.0
        );
        return Ok(verdict(false, detail, Vec::new(), Some(heal.end_ms)));
    };
    // A second's traffic counts from the end of that second: the switch is done by then.
    let traffic_ms = (switch_t + 1000).saturating_sub(heal.start_ms);
    let passed = config_ms <= within_ms && traffic_ms <= within_ms;
    let detail = format!(
        "version {version} was not applied while partitioned; after the heal `{node}` served it within {} and `{target}` served >= {:.0}% of traffic within {} (bound {})",
        secs(config_ms),
        min_share * 100.0,
        secs(traffic_ms),
        secs(within_ms)
    );
    Ok(verdict(
        passed,
        detail,
        vec![
            measure(
                "config_applied_ms",
                config_ms as f64,
                "ms",
                Some(within_ms as f64),
            ),
            measure(
                "traffic_switched_ms",
                traffic_ms as f64,
                "ms",
                Some(within_ms as f64),
            ),
        ],
        Some(heal.start_ms + within_ms),
    ))
}

/// Every outpost sidecar ACKs the newest config sent to it, for every type it subscribes,
/// within the bound after the heal.
fn reconvergence(ctx: &Context, entries: &[Entry], phase: &str, within_ms: u64) -> Judged {
    let heal = phase_window(entries, phase)?;
    let latest = last_change_before(entries, heal.start_ms)
        .map(|(_, v, _)| v.to_string())
        .unwrap_or_else(|| "1".into());
    let mut measurements = Vec::new();
    let mut slow = Vec::new();
    let mut worst = 0;
    for node in &ctx.outpost_nodes {
        let suffix = format!("/virtualNode/{node}");
        let xds: Vec<(u64, &str, XdsKind, &str)> = entries
            .iter()
            .filter_map(|e| match &e.event {
                Event::Xds {
                    node: n,
                    type_name,
                    xds,
                    version,
                    ..
                } if n.ends_with(&suffix) => {
                    Some((e.t_ms, type_name.as_str(), *xds, version.as_str()))
                }
                _ => None,
            })
            .collect();
        let types: BTreeSet<&str> = xds
            .iter()
            .filter(|x| x.2 == XdsKind::Push)
            .map(|x| x.1)
            .collect();
        if types.is_empty() {
            return Err(format!("the control plane never pushed to `{node}`"));
        }
        let mut ready_at = Some(heal.start_ms);
        for ty in types {
            // The newest config of this type the control plane sent this sidecar (with
            // delta xDS an unchanged type is not sent again, so this can be older than
            // the newest mesh version).
            let target = xds
                .iter()
                .filter(|x| x.1 == ty && x.2 == XdsKind::Push && x.0 < heal.end_ms)
                .filter_map(|x| x.3.parse::<u64>().ok())
                .max()
                .map(|v| v.to_string())
                .unwrap_or_else(|| latest.clone());
            let acks = || xds.iter().filter(move |x| x.1 == ty && x.2 == XdsKind::Ack);
            // Current at the heal: it had ACKed the target and kept its connection since.
            // Otherwise it must ACK the target after the heal.
            let current_at_heal = acks().rfind(|x| x.0 < heal.start_ms).is_some_and(|x| {
                at_least(x.3, &target)
                    && !lost_control_plane_between(entries, node, x.0, heal.start_ms)
            });
            let at = if current_at_heal {
                Some(heal.start_ms)
            } else {
                acks()
                    .find(|x| x.0 >= heal.start_ms && at_least(x.3, &target))
                    .map(|x| x.0)
            };
            ready_at = match (ready_at, at) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
        }
        match ready_at {
            Some(t) => {
                let ms = t - heal.start_ms;
                worst = worst.max(ms);
                measurements.push(measure(
                    format!("reconvergence_ms.{node}"),
                    ms as f64,
                    "ms",
                    Some(within_ms as f64),
                ));
                if ms > within_ms {
                    slow.push(format!("`{node}` took {}", secs(ms)));
                }
            }
            None => slow.push(format!(
                "`{node}` never ACKed version {latest} after the heal"
            )),
        }
    }
    let passed = slow.is_empty();
    let per_node = per_node(&measurements, "reconvergence_ms.");
    // The distribution across proxies, for the report's reconvergence table.
    let mut times: Vec<u64> = measurements.iter().map(|m| m.value as u64).collect();
    times.sort_unstable();
    if let (Some(min), Some(max)) = (times.first(), times.last()) {
        measurements.extend([
            measure("reconvergence_spread_ms.min", *min as f64, "ms", None),
            measure(
                "reconvergence_spread_ms.p50",
                quantile(&times, 0.5) as f64,
                "ms",
                None,
            ),
            measure("reconvergence_spread_ms.max", *max as f64, "ms", None),
        ]);
    }
    let detail = if passed {
        format!(
            "all {} outpost sidecars ACKed version {latest} within {} of the heal (bound {}): {}",
            ctx.outpost_nodes.len(),
            secs(worst),
            secs(within_ms),
            per_node.join(", ")
        )
    } else {
        format!(
            "not reconverged within {} of the heal: {}",
            secs(within_ms),
            slow.join("; ")
        )
    };
    Ok(verdict(
        passed,
        detail,
        measurements,
        Some(heal.start_ms + within_ms),
    ))
}

/// When `node` first noticed a silent link during `w`: a keepalive timeout on its xDS
/// connection, or a sample reporting it disconnected, whichever came first.
fn noticed_at(entries: &[Entry], node: &str, w: Window) -> Option<u64> {
    let timeouts_before = samples(entries, node)
        .filter(|s| s.t < w.start_ms)
        .filter_map(|s| s.keepalive_timeouts)
        .last();
    samples(entries, node)
        .filter(|s| w.contains(s.t))
        .find(|s| {
            s.connected == Some(false)
                || (timeouts_before.is_some() && s.keepalive_timeouts > timeouts_before)
        })
        .map(|s| s.t)
}

/// The nodes a check names, or every outpost node.
fn chosen(ctx: &Context, nodes: &[marked_yaml::Spanned<String>]) -> Vec<String> {
    if nodes.is_empty() {
        ctx.outpost_nodes.clone()
    } else {
        nodes.iter().map(|n| n.to_string()).collect()
    }
}

/// With a bound: every node noticed the partition within it. Without: none noticed it.
fn partition_noticed(
    nodes: &[String],
    entries: &[Entry],
    phase: &str,
    within_ms: Option<u64>,
) -> Judged {
    let w = phase_window(entries, phase)?;
    let mut measurements = Vec::new();
    let mut wrong = Vec::new();
    let mut failed_at: Option<u64> = None;
    for node in nodes {
        if !samples(entries, node).any(|s| w.contains(s.t) && s.connected.is_some()) {
            return Err(format!(
                "no connection samples of `{node}` during `{phase}`"
            ));
        }
        match (noticed_at(entries, node, w), within_ms) {
            (Some(t), Some(bound)) => {
                let ms = t - w.start_ms;
                measurements.push(measure(
                    format!("noticed_ms.{node}"),
                    ms as f64,
                    "ms",
                    Some(bound as f64),
                ));
                if ms > bound {
                    wrong.push(format!("`{node}` noticed after {}", secs(ms)));
                    failed_at = Some(failed_at.map_or(t, |f| f.min(t)));
                }
            }
            (None, Some(_)) => {
                wrong.push(format!("`{node}` never noticed"));
                failed_at = Some(w.end_ms);
            }
            (Some(t), None) => {
                wrong.push(format!("`{node}` noticed after {}", secs(t - w.start_ms)));
                failed_at = Some(failed_at.map_or(t, |f| f.min(t)));
            }
            (None, None) => {}
        }
    }
    let passed = wrong.is_empty();
    let detail = match (passed, within_ms) {
        (true, Some(bound)) => {
            let each = per_node(&measurements, "noticed_ms.");
            format!(
                "the partition was noticed within {} by {}",
                secs(bound),
                each.join(", ")
            )
        }
        (true, None) => format!(
            "as predicted, {} never noticed the partition during `{phase}`",
            nodes.join(", ")
        ),
        (false, Some(_)) => format!("partition not noticed in time: {}", wrong.join("; ")),
        (false, None) => format!(
            "expected the partition to go unnoticed, but {}",
            wrong.join("; ")
        ),
    };
    Ok(verdict(passed, detail, measurements, failed_at))
}

/// No outpost sidecar loses its xDS connection during the phase.
fn xds_stays_connected(ctx: &Context, entries: &[Entry], phase: &str) -> Judged {
    let w = phase_window(entries, phase)?;
    let mut lost = Vec::new();
    let mut failed_at: Option<u64> = None;
    for node in &ctx.outpost_nodes {
        let before = samples(entries, node)
            .filter(|s| s.t < w.start_ms)
            .filter_map(|s| s.keepalive_timeouts)
            .last();
        let during: Vec<Sample> = samples(entries, node).filter(|s| w.contains(s.t)).collect();
        if !during.iter().any(|s| s.connected.is_some()) {
            return Err(format!(
                "no connection samples of `{node}` during `{phase}`"
            ));
        }
        let broke = during.iter().find(|s| {
            s.connected == Some(false) || (before.is_some() && s.keepalive_timeouts > before)
        });
        if let Some(s) = broke {
            lost.push(format!("`{node}` at {}", secs(s.t)));
            failed_at = Some(failed_at.map_or(s.t, |f| f.min(s.t)));
        }
    }
    let passed = lost.is_empty();
    let detail = if passed {
        format!(
            "all {} outpost sidecars kept their xDS connection through `{phase}`",
            ctx.outpost_nodes.len()
        )
    } else {
        format!("xDS connection lost during `{phase}`: {}", lost.join(", "))
    };
    Ok(verdict(passed, detail, Vec::new(), failed_at))
}

/// The value at quantile `q` of sorted `values` (nearest rank).
fn quantile(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Every change made in the phase reaches every sidecar it affects within the bound.
fn propagation(entries: &[Entry], phase: &str, within_ms: u64) -> Judged {
    let w = phase_window(entries, phase)?;
    let changes: Vec<(u64, &str, &[String])> = entries
        .iter()
        .filter(|e| w.contains(e.t_ms))
        .filter_map(|e| match &e.event {
            Event::MeshChange {
                version, affects, ..
            } => Some((e.t_ms, version.as_str(), affects.as_slice())),
            _ => None,
        })
        .collect();
    if changes.is_empty() {
        return Err(format!("no mesh change was made during `{phase}`"));
    }
    let mut delays = Vec::new();
    let mut missing = Vec::new();
    let mut measurements = Vec::new();
    for (t, version, affects) in &changes {
        let mut worst = 0;
        for node in affects.iter() {
            let suffix = format!("/virtualNode/{node}");
            let acked = entries.iter().find_map(|e| match &e.event {
                Event::Xds {
                    node: n,
                    type_name,
                    xds: XdsKind::Ack,
                    version: v,
                    ..
                } if e.t_ms >= *t
                    && type_name == "rds"
                    && n.ends_with(&suffix)
                    && at_least(v, version) =>
                {
                    Some(e.t_ms - t)
                }
                _ => None,
            });
            match acked {
                Some(d) => {
                    worst = worst.max(d);
                    delays.push(d);
                }
                None => missing.push(format!("`{node}` never ACKed version {version}")),
            }
        }
        measurements.push(measure(
            format!("propagation_ms.max.v{version}"),
            worst as f64,
            "ms",
            Some(within_ms as f64),
        ));
    }
    delays.sort_unstable();
    let (p50, p99, max) = match delays.as_slice() {
        [] => (0, 0, 0),
        d => (quantile(d, 0.5), quantile(d, 0.99), *d.last().unwrap_or(&0)),
    };
    measurements.splice(
        0..0,
        [
            measure("propagation_ms.p50", p50 as f64, "ms", None),
            measure("propagation_ms.p99", p99 as f64, "ms", None),
            measure(
                "propagation_ms.max",
                max as f64,
                "ms",
                Some(within_ms as f64),
            ),
            measure("propagation.acks", delays.len() as f64, "acks", None),
        ],
    );
    let passed = missing.is_empty() && max <= within_ms;
    let mut detail = format!(
        "{} changes reached {} sidecar configs: p50 {p50} ms, p99 {p99} ms, max {max} ms (bound {within_ms} ms)",
        changes.len(),
        delays.len(),
    );
    if !missing.is_empty() {
        detail = format!("{detail}; {}", missing.join("; "));
    }
    Ok(verdict(passed, detail, measurements, Some(w.end_ms)))
}

#[cfg(test)]
mod tests;

/// What the sidecar measured in the phase adds: throughput ratio, added latency, errors.
fn proxy_overhead(entries: &[Entry], phase: &str, min_ratio: f64, max_added_p99_us: u64) -> Judged {
    let w = phase_window(entries, phase)?;
    let (t, node, direct, proxied) = entries
        .iter()
        .find_map(|e| match &e.event {
            Event::ProxyOverhead {
                node,
                direct,
                proxied,
            } if w.contains(e.t_ms) => Some((e.t_ms, node, direct, proxied)),
            _ => None,
        })
        .ok_or_else(|| format!("no proxy overhead was measured during `{phase}`"))?;
    let ms = |us: u64| us as f64 / 1000.0;
    let added = |p: fn(&crate::timeline::Percentiles) -> u64| {
        (p(&proxied.latency) as f64 - p(&direct.latency) as f64) / 1000.0
    };
    let ratio = proxied.requests_per_second / direct.requests_per_second.max(1e-9);
    let measurements = vec![
        measure(
            "throughput.direct",
            direct.requests_per_second,
            "requests/s",
            None,
        ),
        measure(
            "throughput.proxied",
            proxied.requests_per_second,
            "requests/s",
            None,
        ),
        measure("throughput_ratio", ratio, "ratio", Some(min_ratio)),
        measure("added_latency_ms.p50", added(|p| p.p50_us), "ms", None),
        measure(
            "added_latency_ms.p99",
            added(|p| p.p99_us),
            "ms",
            Some(ms(max_added_p99_us)),
        ),
        measure("added_latency_ms.p99.9", added(|p| p.p999_us), "ms", None),
    ];
    let invalid: Vec<String> = [("direct", direct), ("through the sidecar", proxied)]
        .iter()
        .filter(|(_, r)| !r.valid)
        .map(|(what, r)| format!("{what}: {}", r.invalid_because.join("; ")))
        .collect();
    if !invalid.is_empty() {
        return Ok(Verdict {
            name: String::new(),
            outcome: Outcome::Invalid,
            detail: format!(
                "the load generator was the limit, not `{node}`'s sidecar: {}",
                invalid.join(" / ")
            ),
            measurements,
            failed_at_ms: None,
        });
    }
    let failed = proxied.requests - proxied.ok;
    let added_p99 = added(|p| p.p99_us);
    let passed = ratio >= min_ratio && added_p99 <= ms(max_added_p99_us) && failed == 0;
    let detail = format!(
        "`{node}`'s sidecar: {:.0} requests/s through it against {:.0} direct (ratio {ratio:.2}, bound >= {min_ratio:.2}); adds p50 {:.2} ms, p99 {added_p99:.2} ms (bound {:.1} ms), p99.9 {:.2} ms{}",
        proxied.requests_per_second,
        direct.requests_per_second,
        added(|p| p.p50_us),
        ms(max_added_p99_us),
        added(|p| p.p999_us),
        if failed > 0 {
            format!(
                "; {failed} of {} requests through it failed ({:?})",
                proxied.requests, proxied.errors
            )
        } else {
            String::new()
        }
    );
    Ok(verdict(passed, detail, measurements, Some(t)))
}

/// The share of goose journey steps that succeeded during the phase, per step and in all.
fn journeys_succeed(entries: &[Entry], phase: &str, min_ratio: f64) -> Judged {
    let w = phase_window(entries, phase)?;
    // step -> (ok, total); and the first failure
    let mut steps: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut first_failure = None;
    for e in entries.iter().filter(|e| w.contains(e.t_ms)) {
        if let Event::JourneyStep { step, ok, .. } = &e.event {
            let s = steps.entry(step.as_str()).or_default();
            s.1 += 1;
            if *ok {
                s.0 += 1;
            } else if first_failure.is_none() {
                first_failure = Some(e.t_ms);
            }
        }
    }
    let (ok, total) = steps
        .values()
        .fold((0, 0), |(a, b), (ok, total)| (a + ok, b + total));
    if total == 0 {
        return Err(format!("no journey steps were recorded during `{phase}`"));
    }
    let ratio = ok as f64 / total as f64;
    let mut measurements = vec![measure(
        "journeys.success_ratio",
        ratio,
        "ratio",
        Some(min_ratio),
    )];
    let per_step: Vec<String> = steps
        .iter()
        .map(|(step, (ok, total))| {
            measurements.push(measure(
                format!("journeys.{step}.success_ratio"),
                *ok as f64 / *total as f64,
                "ratio",
                None,
            ));
            format!("{step} {ok}/{total}")
        })
        .collect();
    let passed = ratio >= min_ratio;
    let detail = format!(
        "{:.2}% of {total} journey steps succeeded during `{phase}` (bound >= {:.2}%): {}",
        ratio * 100.0,
        min_ratio * 100.0,
        per_step.join(", ")
    );
    Ok(verdict(passed, detail, measurements, first_failure))
}
