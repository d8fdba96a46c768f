//! The checks themselves, one family a file: [`traffic`] (outpost traffic, journeys, proxy
//! overhead), [`config`] (frozen config, a change applied after the heal, propagation),
//! [`link`] (reconvergence, noticing a partition, keeping the xDS connection) and
//! [`restart`]; here the dispatch and what they share.

mod config;
mod envoy_side;
mod link;
pub(super) mod memory;
mod restart;
mod traffic;

use super::{Context, Measurement, Outcome, Verdict, Window, names};
use crate::plan::Check;
use crate::timeline::{Entry, Event, LoadSecond};

pub(super) fn judge(check: &Check, ctx: &Context, entries: &[Entry]) -> Verdict {
    let result = match check {
        Check::MemoryDrift {
            phase,
            max_per_hour,
            after,
            parts,
        } => memory_drift(
            ctx,
            entries,
            phase.as_deref(),
            max_per_hour.0,
            *after,
            parts,
        ),
        Check::OutpostTrafficFlows {
            phase,
            min_success_ratio,
        } => traffic::flows(entries, phase, **min_success_ratio),
        Check::ConfigFrozen { phase } => config::frozen(ctx, entries, phase),
        Check::ChangeAppliedAfterHeal {
            phase,
            within,
            min_share,
        } => config::change_applied(
            ctx,
            entries,
            phase,
            within.0.as_millis() as u64,
            min_share.as_ref().map(|s| **s).unwrap_or(0.95),
        ),
        Check::XdsStaysConnected { phase } => link::xds_stays_connected(ctx, entries, phase),
        Check::PartitionNoticed {
            phase,
            within,
            nodes,
        } => link::partition_noticed(
            &chosen(ctx, nodes),
            entries,
            phase,
            Some(within.0.as_millis() as u64),
        ),
        Check::PartitionUnnoticed { phase, nodes } => {
            link::partition_noticed(&chosen(ctx, nodes), entries, phase, None)
        }
        Check::Propagation { phase, within } if !ctx.judge_from_envoys => {
            config::propagation(entries, phase, within.0.as_millis() as u64)
        }
        Check::Propagation { phase, within } => {
            envoy_side::propagation(entries, phase, within.0.as_millis() as u64)
        }
        Check::Reconvergence { phase, within } if !ctx.judge_from_envoys => {
            link::reconvergence(ctx, entries, phase, within.0.as_millis() as u64)
        }
        Check::Reconvergence { phase, within } => {
            envoy_side::reconvergence(ctx, entries, phase, within.0.as_millis() as u64)
        }
        Check::JourneysSucceed {
            phase,
            min_success_ratio,
        } => traffic::journeys_succeed(entries, phase, **min_success_ratio),
        Check::RestartWaitsForHeal { phase, within } => {
            restart::waits_for_heal(entries, phase, within.0.as_millis() as u64)
        }
        Check::ProxyOverhead {
            phase,
            min_throughput_ratio,
            max_added_p99,
        } => traffic::proxy_overhead(
            entries,
            phase,
            **min_throughput_ratio,
            max_added_p99.0.as_micros() as u64,
        ),
    };
    named(check, result)
}

/// The verdict of `check` from what judging it gave (an error is an unknown verdict).
pub(super) fn named(check: &Check, result: Judged) -> Verdict {
    let mut verdict = result.unwrap_or_else(|detail| Verdict {
        name: String::new(),
        outcome: Outcome::Unknown,
        detail,
        measurements: Vec::new(),
        failed_at_ms: None,
        phase: None,
    });
    verdict.name = check.name().to_string();
    verdict
}

/// `memory_drift` over a phase, or the whole run, after its warm-up.
fn memory_drift(
    ctx: &Context,
    entries: &[Entry],
    phase: Option<&String>,
    max_per_hour: f64,
    after: Option<crate::source::Duration>,
    parts: &[marked_yaml::Spanned<String>],
) -> Judged {
    let window = match phase {
        Some(p) => phase_window(entries, p)?,
        None => Window {
            start_ms: 0,
            end_ms: u64::MAX,
        },
    };
    let after_ms = after.map_or(ctx.warm_up_ms, |a| a.0.as_millis() as u64);
    let parts = parts.iter().map(|p| p.to_string()).collect();
    let mut drift = memory::Drift::new(window.start_ms + after_ms, window.end_ms, parts);
    for e in entries {
        drift.add(e);
    }
    drift.judge(max_per_hour)
}

/// A verdict under construction; `Err` is an unknown verdict's detail.
pub(super) type Judged = Result<Verdict, String>;

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
        phase: None,
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
    /// Config updates it rejected so far.
    rejected: Option<u64>,
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
            updates_rejected,
            ..
        } if n == node => Some(Sample {
            t: e.t_ms,
            connected: *connected,
            route: route_version.as_deref(),
            cluster: cluster_version.as_deref(),
            listener: listener_version.as_deref(),
            keepalive_timeouts: *xds_keepalive_timeouts,
            ready: *ready,
            rejected: *updates_rejected,
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
fn per_node(measurements: &[Measurement], family: names::Keyed) -> Vec<String> {
    measurements
        .iter()
        .filter_map(|m| Some(format!("{} {}", family.key(&m.name)?, secs(m.value as u64))))
        .collect()
}

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
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

/// A mesh change on the timeline: when, the version it made, the nodes it affects.
type MadeChange<'a> = (u64, &'a str, &'a [String]);

/// The mesh changes made in phase `phase` (window `w`), in time order; an error (the
/// check cannot judge) when none was made.
fn changes_in<'a>(
    entries: &'a [Entry],
    w: Window,
    phase: &str,
) -> Result<Vec<MadeChange<'a>>, String> {
    let changes: Vec<_> = entries
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
    Ok(changes)
}

/// p50, p99 and the maximum of sorted `delays` (zeros when there are none).
fn p50_p99_max(delays: &[u64]) -> (u64, u64, u64) {
    match delays {
        [] => (0, 0, 0),
        d => (quantile(d, 0.5), quantile(d, 0.99), *d.last().unwrap_or(&0)),
    }
}

/// Per-sidecar reconvergence times as they are found, judged against one bound.
struct Reconvergence {
    within_ms: u64,
    measurements: Vec<Measurement>,
    slow: Vec<String>,
}

/// What a [`Reconvergence`] found: all in time?, `node time` per sidecar, every
/// measurement (the spread across proxies included), the slow or missing ones.
struct Reconverged {
    passed: bool,
    per_node: Vec<String>,
    measurements: Vec<Measurement>,
    slow: Vec<String>,
}

impl Reconvergence {
    fn new(within_ms: u64) -> Self {
        Reconvergence {
            within_ms,
            measurements: Vec::new(),
            slow: Vec::new(),
        }
    }

    /// `node` reconverged `ms` after the heal, or never (the error says how).
    fn record(&mut self, node: &str, ms: Result<u64, String>) {
        match ms {
            Ok(ms) => {
                let bound = Some(self.within_ms as f64);
                let m = measure(names::RECONVERGENCE_MS.of(node), ms as f64, "ms", bound);
                self.measurements.push(m);
                if ms > self.within_ms {
                    self.slow.push(format!("`{node}` took {}", secs(ms)));
                }
            }
            Err(why) => self.slow.push(why),
        }
    }

    fn finish(mut self) -> Reconverged {
        let per_node = per_node(&self.measurements, names::RECONVERGENCE_MS);
        // The spread across proxies (min, p50, max), for the report's reconvergence table.
        let mut times: Vec<u64> = self.measurements.iter().map(|m| m.value as u64).collect();
        times.sort_unstable();
        if let (Some(min), Some(max)) = (times.first().copied(), times.last().copied()) {
            let of = |which: &str, v: u64| {
                measure(
                    names::RECONVERGENCE_SPREAD_MS.of(which),
                    v as f64,
                    "ms",
                    None,
                )
            };
            let p50 = quantile(&times, 0.5);
            self.measurements
                .extend([of("min", min), of("p50", p50), of("max", max)]);
        }
        Reconverged {
            passed: self.slow.is_empty(),
            per_node,
            measurements: self.measurements,
            slow: self.slow,
        }
    }
}

/// The value at quantile `q` of sorted `values` (nearest rank).
fn quantile(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests;
