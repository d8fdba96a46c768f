//! Config checks: the outpost's config stays frozen while the link is down, a change
//! made then is applied after the heal (and not before), and changes propagate.

use super::envoy_side::{has_change, route_before};
use super::{
    Judged, Sample, at_least, changes_in, last_change_before, load_seconds, measure, noticed_at,
    p50_p99_max, phase_window, samples, secs, verdict,
};
use crate::checks::{Context, names};
use crate::timeline::{Entry, Event, LoadSecond, XdsKind};

/// No outpost sidecar's served config changes during the phase.
pub(super) fn frozen(ctx: &Context, entries: &[Entry], phase: &str) -> Judged {
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
                names::DISCONNECT_NOTICED_MS.of(node),
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

/// A change made before the heal is not applied before it (in no outpost sidecar's config,
/// nor in traffic), and is applied after it, in the config of the sidecar the load enters
/// and in which version serves the traffic.
pub(super) fn change_applied(
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

    // A change whose version a foreign control plane's command did not say is known by
    // the routes version changing.
    let applied =
        |node: &str, s: &Sample| has_change(s, version, route_before(entries, node, changed_at));
    // Not applied while partitioned.
    let early_config = ctx.outpost_nodes.iter().find_map(|node| {
        samples(entries, node)
            .find(|s| (changed_at..heal.start_ms).contains(&s.t) && applied(node, s))
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
    // A second of load is before the heal when most of it is (see `Window::holds_second`).
    let before_heal = |t: u64| t + 500 < heal.start_ms;
    let early_traffic = load_seconds(entries)
        .find(|(t, s)| *t >= changed_at && before_heal(*t) && share(s) >= min_share);
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
        .find(|s| s.t >= heal.start_ms && applied(node, s))
        .map(|s| s.t)
    else {
        let detail = format!("`{node}` never served version {version} after the heal");
        return Ok(verdict(false, detail, Vec::new(), Some(heal.end_ms)));
    };
    let config_ms = config_t - heal.start_ms;
    let Some((switch_t, _)) =
        load_seconds(entries).find(|(t, s)| !before_heal(*t) && share(s) >= min_share)
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
                names::CONFIG_APPLIED_MS,
                config_ms as f64,
                "ms",
                Some(within_ms as f64),
            ),
            measure(
                names::TRAFFIC_SWITCHED_MS,
                traffic_ms as f64,
                "ms",
                Some(within_ms as f64),
            ),
        ],
        Some(heal.start_ms + within_ms),
    ))
}

/// Each sidecar's route pushes or ACKs from the control plane's log, in the order logged,
/// by virtual node name.
struct RouteLog<'a>(std::collections::HashMap<&'a str, Vec<(u64, &'a str)>>);

impl<'a> RouteLog<'a> {
    fn of(entries: &'a [Entry], kind: XdsKind) -> RouteLog<'a> {
        let mut log: std::collections::HashMap<&str, Vec<(u64, &str)>> = Default::default();
        for e in entries {
            if let Event::Xds {
                node,
                type_name,
                xds,
                version,
                ..
            } = &e.event
                && *xds == kind
                && type_name == "rds"
                && let Some((_, name)) = node.rsplit_once("/virtualNode/")
            {
                log.entry(name).or_default().push((e.t_ms, version));
            }
        }
        RouteLog(log)
    }

    /// How long after `t` the first entry of `node` at `version` or newer came.
    fn first(&self, node: &str, t: u64, version: &str) -> Option<u64> {
        self.0
            .get(node)?
            .iter()
            .find_map(|(at, v)| (*at >= t && at_least(v, version)).then(|| at - t))
    }
}

/// Every change made in the phase reaches every sidecar it affects within the bound.
pub(super) fn propagation(entries: &[Entry], phase: &str, within_ms: u64) -> Judged {
    let w = phase_window(entries, phase)?;
    let changes = changes_in(entries, w, phase)?;
    let mut delays = Vec::new();
    let mut missing = Vec::new();
    let mut measurements = Vec::new();
    let acks = RouteLog::of(entries, XdsKind::Ack);
    let pushes = RouteLog::of(entries, XdsKind::Push);
    let mut fan_outs = Vec::new();
    for (t, version, affects) in &changes {
        let mut worst = 0;
        let last_push = affects
            .iter()
            .filter_map(|node| pushes.first(node, *t, version))
            .max();
        fan_outs.extend(last_push);
        for node in affects.iter() {
            let acked = acks.first(node, *t, version);
            match acked {
                Some(d) => {
                    worst = worst.max(d);
                    delays.push(d);
                }
                None => missing.push(format!("`{node}` never ACKed version {version}")),
            }
        }
        measurements.push(measure(
            names::PROPAGATION_MAX_MS.of(format_args!("v{version}")),
            worst as f64,
            "ms",
            Some(within_ms as f64),
        ));
    }
    delays.sort_unstable();
    let (p50, p99, max) = p50_p99_max(&delays);
    measurements.splice(
        0..0,
        [
            measure(names::PROPAGATION_MS.of("p50"), p50 as f64, "ms", None),
            measure(names::PROPAGATION_MS.of("p99"), p99 as f64, "ms", None),
            measure(
                names::PROPAGATION_MS.of("max"),
                max as f64,
                "ms",
                Some(within_ms as f64),
            ),
            measure(names::PROPAGATION_ACKS, delays.len() as f64, "acks", None),
        ],
    );
    fan_outs.sort_unstable();
    let (fan_p50, _, fan_max) = p50_p99_max(&fan_outs);
    measurements.extend([
        measure(
            names::PROPAGATION_FAN_OUT_MS.of("p50"),
            fan_p50 as f64,
            "ms",
            None,
        ),
        measure(
            names::PROPAGATION_FAN_OUT_MS.of("max"),
            fan_max as f64,
            "ms",
            None,
        ),
    ]);
    let passed = missing.is_empty() && max <= within_ms;
    let mut detail = format!(
        "{} changes reached {} sidecar configs: p50 {p50} ms, p99 {p99} ms, max {max} ms (bound {within_ms} ms); the control plane's last push of a change came p50 {fan_p50} ms, max {fan_max} ms after it",
        changes.len(),
        delays.len(),
    );
    if !missing.is_empty() {
        detail = format!("{detail}; {}", missing.join("; "));
    }
    Ok(verdict(passed, detail, measurements, Some(w.end_ms)))
}
