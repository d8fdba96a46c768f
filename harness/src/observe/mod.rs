//! Observers: sample each Envoy's admin endpoint onto the timeline at a fixed period,
//! and the resident memory of the control plane and of tether itself; save each
//! sidecar's whole admin state at the end of every phase ([`dumps`]).

pub mod dumps;

use crate::envoy::AdminClient;
use crate::timeline::{Event, Timeline};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Every `period`, record each Envoy's connected state, readiness and served config
/// versions, until `stop` is cancelled. Each Envoy is sampled on its own, so one that
/// answers slowly (paused, cut off) does not delay the others' samples.
pub async fn sample_envoys(
    envoys: BTreeMap<String, AdminClient>,
    period: Duration,
    timeline: Timeline,
    stop: CancellationToken,
) {
    let each = envoys
        .into_iter()
        .map(|(node, admin)| sample_one(node, admin, period, timeline.clone(), stop.clone()));
    futures::future::join_all(each).await;
}

/// Samples one Envoy every `period` until `stop`.
async fn sample_one(
    node: String,
    admin: AdminClient,
    period: Duration,
    timeline: Timeline,
    stop: CancellationToken,
) {
    let mut tick = ticker(period);
    while next_tick(&mut tick, &stop).await {
        let t_ms = timeline.elapsed_ms();
        let s = tokio::select! {
            _ = stop.cancelled() => return,
            s = admin.snapshot() => s,
        };
        timeline.record_at(
            t_ms,
            Event::EnvoySample {
                node: node.clone(),
                connected: s.connected,
                route_version: s.route_version,
                cluster_version: s.cluster_version,
                listener_version: s.listener_version,
                xds_keepalive_timeouts: s.xds_keepalive_timeouts,
                ready: s.ready,
                memory_allocated: s.memory_allocated,
                memory_heap: s.memory_heap,
                updates_rejected: s.updates_rejected,
            },
        );
    }
}

/// Every `period`, record tether's own resident memory and the control plane's (from its
/// admin API, `GET /memory`, when there is one), until `stop`.
pub async fn sample_memory(
    control_plane: Option<crate::control_plane::admin::ChangeClient>,
    period: Duration,
    timeline: Timeline,
    stop: CancellationToken,
) {
    let mut tick = ticker(period);
    while next_tick(&mut tick, &stop).await {
        let t_ms = timeline.elapsed_ms();
        timeline.record_at(
            t_ms,
            Event::ProcessMemory {
                part: "tether".into(),
                rss_bytes: crate::timeline::resident_bytes(),
            },
        );
        // A foreign control plane has no memory API.
        let Some(api) = &control_plane else { continue };
        let rss = tokio::select! {
            _ = stop.cancelled() => return,
            rss = api.memory() => rss,
        };
        if let Some(bytes) = rss {
            timeline.record_at(
                t_ms,
                Event::ProcessMemory {
                    part: "control-plane".into(),
                    rss_bytes: bytes,
                },
            );
        }
    }
}

/// An interval of `period` that skips the ticks a slow sample missed.
fn ticker(period: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick
}

/// Waits for the next tick; false once `stop` is cancelled.
async fn next_tick(tick: &mut tokio::time::Interval, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tick.tick() => true,
    }
}
