//! Observers: sample each Envoy's admin endpoint onto the timeline at a fixed period.

use crate::envoy::AdminClient;
use crate::timeline::{Event, Timeline};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Every `period`, record each Envoy's connected state, readiness and served config versions, until
/// `stop` is cancelled.
pub async fn sample_envoys(
    envoys: BTreeMap<String, AdminClient>,
    period: Duration,
    timeline: Timeline,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let timeline = &timeline;
        let samples = futures::future::join_all(envoys.iter().map(|(node, admin)| async move {
            let t_ms = timeline.elapsed_ms();
            (node.clone(), t_ms, admin.snapshot().await)
        }))
        .await;
        for (node, t_ms, s) in samples {
            timeline.record_at(
                t_ms,
                Event::EnvoySample {
                    node,
                    connected: s.connected,
                    route_version: s.route_version,
                    cluster_version: s.cluster_version,
                    listener_version: s.listener_version,
                    xds_keepalive_timeouts: s.xds_keepalive_timeouts,
                    ready: s.ready,
                },
            );
        }
    }
}
