//! Observers: sample each Envoy's admin endpoint onto the timeline at a fixed period (on
//! a thread of its own, whose CPU time is the observer's cost: [`ObserverCost`]), and the
//! resident memory of the control plane and of tether itself; save each sidecar's whole
//! admin state at the end of every phase ([`dumps`]).

pub mod dumps;

use crate::envoy::AdminClient;
use crate::envoy::admin::REQUESTS_PER_SNAPSHOT;
use crate::plan::Sidecars;
use crate::timeline::{Event, Timeline};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What sampling the Envoys cost tether over a run: the samples and admin requests it
/// made and the CPU time of the thread that made them (requests, answers parsed, entries
/// written), beside the wall time it ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ObserverCost {
    /// Sidecars sampled.
    pub sidecars: usize,
    /// Sidecars in the run.
    #[serde(default)]
    pub of: usize,
    /// Which ones the suite asked to sample (`observe.sidecars`).
    #[serde(default)]
    pub asked: crate::plan::Sidecars,
    /// Each sidecar sampled this often, ms.
    pub period_ms: u64,
    /// Samples taken, all sidecars together.
    pub samples: u64,
    /// Admin requests made.
    pub admin_requests: u64,
    /// CPU time of the sampling thread, ms.
    pub cpu_ms: f64,
    /// How long it sampled, ms.
    pub wall_ms: f64,
}

impl ObserverCost {
    /// The cost in words, as the report and the console give it.
    pub fn describe(&self) -> String {
        let per_s = |n: f64| n * 1000.0 / self.wall_ms.max(1.0);
        let why = match self.asked {
            Sidecars::Checked => "the ones the checks read",
            Sidecars::All => "observe: all",
            Sidecars::None => "observe: none",
        };
        if self.sidecars == 0 {
            return match self.asked {
                Sidecars::Checked => format!(
                    "none of the {} sidecars sampled (no check reads their admin state)",
                    self.of
                ),
                _ => format!("none of the {} sidecars sampled ({why})", self.of),
            };
        }
        let of = if self.of > self.sidecars {
            format!(" of {} ({why})", self.of)
        } else {
            String::new()
        };
        format!(
            "{} sidecars{of} every {:.2} s: {} admin requests ({:.0} a second), {:.2} s of tether's CPU ({:.2}% of a core)",
            self.sidecars,
            self.period_ms as f64 / 1000.0,
            self.admin_requests,
            per_s(self.admin_requests as f64),
            self.cpu_ms / 1000.0,
            per_s(self.cpu_ms) / 10.0,
        )
    }
}

/// How often each of `sidecars` Envoys is sampled: every 250 ms, less often for a large
/// fleet (each sample is two admin requests of one Envoy), so the whole fleet costs at
/// most about 80 admin requests a second.
pub fn period_for(sidecars: usize) -> Duration {
    Duration::from_millis((25 * sidecars as u64).max(250))
}

/// [`sample_envoys`] of the `sampled` ones of `envoys` on a thread of its own, with a
/// runtime and admin connections of its own, so that its CPU time is measured apart from
/// the rest of tether. The thread ends when `stop` is cancelled and returns what the
/// sampling cost.
pub fn spawn_sampler(
    envoys: &BTreeMap<String, AdminClient>,
    sampled: &BTreeSet<String>,
    period: Duration,
    timeline: Timeline,
    stop: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<ObserverCost>> {
    let of = envoys.len();
    let envoys: BTreeMap<String, AdminClient> = envoys
        .iter()
        .filter(|(n, _)| sampled.contains(*n))
        .map(|(n, a)| (n.clone(), a.fresh()))
        .collect();
    std::thread::Builder::new()
        .name("observer".into())
        .spawn(move || {
            let sidecars = envoys.len();
            let (cpu, wall) = (thread_cpu(), Instant::now());
            let samples = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(sample_envoys(envoys, period, timeline, stop)),
                Err(_) => 0,
            };
            ObserverCost {
                sidecars,
                of,
                asked: Sidecars::default(),
                period_ms: period.as_millis() as u64,
                samples,
                admin_requests: samples * REQUESTS_PER_SNAPSHOT,
                cpu_ms: thread_cpu().saturating_sub(cpu).as_secs_f64() * 1000.0,
                wall_ms: wall.elapsed().as_secs_f64() * 1000.0,
            }
        })
}

/// The calling thread's CPU time so far.
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass; this clock needs nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Every `period`, record each Envoy's connected state, readiness and served config
/// versions, until `stop` is cancelled. Each Envoy is sampled on its own, so one that
/// answers slowly (paused, cut off) does not delay the others' samples. Returns how many
/// samples it took.
pub async fn sample_envoys(
    envoys: BTreeMap<String, AdminClient>,
    period: Duration,
    timeline: Timeline,
    stop: CancellationToken,
) -> u64 {
    let each = envoys
        .into_iter()
        .map(|(node, admin)| sample_one(node, admin, period, timeline.clone(), stop.clone()));
    futures::future::join_all(each).await.into_iter().sum()
}

/// Samples one Envoy every `period` until `stop`; returns how many samples it took.
async fn sample_one(
    node: String,
    admin: AdminClient,
    period: Duration,
    timeline: Timeline,
    stop: CancellationToken,
) -> u64 {
    let mut taken = 0;
    let mut tick = ticker(period);
    while next_tick(&mut tick, &stop).await {
        let t_ms = timeline.elapsed_ms();
        let s = tokio::select! {
            _ = stop.cancelled() => return taken,
            s = admin.snapshot() => s,
        };
        taken += 1;
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
    taken
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_says_how_many_were_sampled_and_why() {
        let cost = |sidecars, asked| ObserverCost {
            sidecars,
            of: 502,
            asked,
            period_ms: 250,
            samples: 100,
            admin_requests: 200,
            cpu_ms: 50.0,
            wall_ms: 10_000.0,
        };
        assert_eq!(
            cost(0, Sidecars::Checked).describe(),
            "none of the 502 sidecars sampled (no check reads their admin state)"
        );
        assert_eq!(
            cost(0, Sidecars::None).describe(),
            "none of the 502 sidecars sampled (observe: none)"
        );
        assert_eq!(
            cost(3, Sidecars::Checked).describe(),
            "3 sidecars of 502 (the ones the checks read) every 0.25 s: 200 admin requests (20 a second), 0.05 s of tether's CPU (0.50% of a core)"
        );
        assert!(
            cost(502, Sidecars::All)
                .describe()
                .starts_with("502 sidecars every")
        );
    }
}
