//! Figures: what each phase measured, with no bound to judge it by.
//!
//! Checks judge; figures only describe. The reports show them per phase (requests,
//! throughput, latency percentiles) and `tether compare` sets them side by side
//! across runs. Like checks, they are read off the timeline alone.

use super::Window;
use crate::timeline::{Entry, Event, Latency, merge_histograms};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The load one phase carried and how fast it was answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PhaseFigures {
    /// The phase's name from the suite.
    pub phase: String,
    /// Where it starts on the timeline (ms since the run began).
    pub start_ms: u64,
    /// Where it ends (exclusive).
    pub end_ms: u64,
    /// Requests sent during the phase.
    pub requests: u64,
    /// Requests answered with a 2xx status.
    pub ok: u64,
    /// Successful answers per second of the phase's seconds with load.
    pub ok_per_second: f64,
    /// Response time of every request in the phase, in ms, measured from its intended
    /// send time (every second's HDR histogram merged); null when nothing was answered.
    pub latency_ms: Option<LatencyFigures>,
    /// Service time of every request in the phase, in ms, measured from when it was
    /// actually sent; null when nothing was answered or the run predates it.
    #[serde(default)]
    pub service_ms: Option<LatencyFigures>,
    /// How late the generator sent the phase's requests, in ms: when this is a large
    /// share of the response time, the response time is the generator's, not the mesh's.
    #[serde(default)]
    pub generator_lag_ms: Option<LatencyFigures>,
    /// Successful answers by the service version that served them.
    pub served_by: BTreeMap<String, u64>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct LatencyFigures {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl LatencyFigures {
    /// The figures of `h` (in µs), or `None` when it is empty.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Option<LatencyFigures> {
        let ms = |us: u64| us as f64 / 1000.0;
        (!h.is_empty()).then(|| LatencyFigures {
            p50: ms(h.value_at_quantile(0.5)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        })
    }
}

impl PhaseFigures {
    /// The share of requests answered with a 2xx status (0 when none were sent).
    pub fn success_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.ok as f64 / self.requests as f64
        }
    }
}

/// The figures of every phase on the timeline, in the order the phases ran.
pub fn phase_figures(entries: &[Entry]) -> Vec<PhaseFigures> {
    entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::PhaseStarted { phase, .. } => Some(phase.as_str()),
            _ => None,
        })
        .filter_map(|phase| Some((phase, Window::of_phase(entries, phase)?)))
        .map(|(phase, window)| figures_of(entries, phase, window))
        .collect()
}

/// The figures of one phase's window.
fn figures_of(entries: &[Entry], phase: &str, window: Window) -> PhaseFigures {
    let seconds: Vec<_> = entries
        .iter()
        .filter(|e| window.holds_second(e.t_ms))
        .filter_map(|e| match &e.event {
            Event::LoadSecond(second) => Some(second),
            _ => None,
        })
        .collect();
    let mut served_by = BTreeMap::new();
    let (mut requests, mut ok) = (0, 0);
    for second in &seconds {
        requests += second.sent;
        ok += second.ok;
        for (version, count) in &second.served_by {
            *served_by.entry(version.clone()).or_default() += count;
        }
    }
    let figures = |which| LatencyFigures::of(&merge_histograms(seconds.iter().copied(), which));
    PhaseFigures {
        phase: phase.to_string(),
        start_ms: window.start_ms,
        end_ms: window.end_ms,
        requests,
        ok,
        ok_per_second: if seconds.is_empty() {
            0.0
        } else {
            ok as f64 / seconds.len() as f64
        },
        latency_ms: figures(Latency::Response),
        service_ms: figures(Latency::Service),
        generator_lag_ms: figures(Latency::Lag),
        served_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::LoadSecond;

    fn second(sent: u64, ok: u64, latency_us: u64) -> Event {
        let mut histogram = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
            .expect("valid bounds");
        for _ in 0..ok {
            histogram.record(latency_us).expect("in range");
        }
        Event::LoadSecond(LoadSecond {
            sent,
            ok,
            errors: BTreeMap::new(),
            served_by: BTreeMap::from([("v1".to_string(), ok)]),
            p50_us: latency_us,
            p99_us: latency_us,
            max_us: latency_us,
            latency_hdr: crate::timeline::encode_histogram(&histogram),
            // Service time half the response time: the generator was late by the rest.
            service_hdr: crate::timeline::encode_histogram(&{
                let mut h = histogram.clone();
                h.reset();
                for _ in 0..ok {
                    h.record(latency_us / 2).expect("in range");
                }
                h
            }),
            ..LoadSecond::default()
        })
    }

    #[test]
    fn each_phase_gets_its_own_seconds() {
        // `calm` from 0 to 2.4 s, `storm` from 2.4 s to 3.4 s: the second from 2 s to 3 s
        // is mostly the storm's, so it is the storm's.
        let entries = vec![
            Entry {
                t_ms: 0,
                event: Event::PhaseStarted {
                    phase: "calm".into(),
                    duration_ms: 2_400,
                },
            },
            Entry {
                t_ms: 0,
                event: second(10, 10, 1_000),
            },
            Entry {
                t_ms: 1_000,
                event: second(10, 10, 3_000),
            },
            Entry {
                t_ms: 2_000,
                event: second(10, 4, 90_000),
            },
            Entry {
                t_ms: 2_400,
                event: Event::PhaseStarted {
                    phase: "storm".into(),
                    duration_ms: 1_000,
                },
            },
        ];
        let figures = phase_figures(&entries);
        assert_eq!(figures.len(), 2);
        let (calm, storm) = (&figures[0], &figures[1]);
        assert_eq!((calm.requests, calm.ok, calm.ok_per_second), (20, 20, 10.0));
        let latency = calm.latency_ms.expect("answered requests");
        assert!((0.99..1.01).contains(&latency.p50), "{latency:?}");
        assert!((2.99..3.01).contains(&latency.max), "{latency:?}");
        assert_eq!((storm.requests, storm.ok), (10, 4));
        assert!((storm.success_ratio() - 0.4).abs() < 1e-9);
        assert!(storm.latency_ms.expect("answered").p50 > 89.0);
        let service = calm.service_ms.expect("service times recorded");
        assert!(
            (service.p50 - latency.p50 / 2.0).abs() < 0.01,
            "{service:?} {latency:?}"
        );
        assert_eq!(calm.generator_lag_ms, None, "no lag was recorded");
        assert_eq!(storm.served_by["v1"], 4);
    }

    #[test]
    fn a_phase_without_load_has_no_latency() {
        let entries = vec![Entry {
            t_ms: 0,
            event: Event::PhaseStarted {
                phase: "quiet".into(),
                duration_ms: 1_000,
            },
        }];
        let figures = phase_figures(&entries);
        assert_eq!(figures[0].requests, 0);
        assert_eq!(figures[0].latency_ms, None);
        assert_eq!(figures[0].success_ratio(), 0.0);
    }
}
