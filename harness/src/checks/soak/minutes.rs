//! A soak's load and memory per minute: what the report draws instead of every second
//! of hours, kept as it comes (one open minute at a time).

use crate::timeline::{Entry, Event, decode_histogram};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One minute of a soak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Minute {
    /// Where it starts (ms since the run began).
    pub t_ms: u64,
    /// Requests sent in it.
    pub requests: u64,
    /// Requests answered with a 2xx status.
    pub ok: u64,
    /// Median latency (ms), from the intended send times; null with no answers.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency (ms).
    pub p99_ms: Option<f64>,
    /// Each part's memory at its last sample in the minute (bytes): `envoy/<node>`
    /// (`server.memory_allocated`), `control-plane`, `tether` (resident).
    pub memory: BTreeMap<String, u64>,
}

/// Minutes, filled in as entries come.
#[derive(Debug, Default)]
pub struct Minutes {
    done: Vec<Minute>,
    open: Option<(Minute, hdrhistogram::Histogram<u64>)>,
}

impl Minutes {
    /// Take one entry.
    pub fn add(&mut self, entry: &Entry) {
        let minute = entry.t_ms / 60_000 * 60_000;
        match &entry.event {
            Event::LoadSecond(s) => {
                let (m, h) = self.minute(minute);
                m.requests += s.sent;
                m.ok += s.ok;
                if let Some(second) = s.latency_hdr.as_deref().and_then(decode_histogram) {
                    let _ = h.add(&second);
                }
            }
            Event::EnvoySample {
                node,
                memory_allocated: Some(bytes),
                ..
            } => {
                let (m, _) = self.minute(minute);
                m.memory.insert(format!("envoy/{node}"), *bytes);
            }
            Event::ProcessMemory { part, rss_bytes } => {
                let (m, _) = self.minute(minute);
                m.memory.insert(part.clone(), *rss_bytes);
            }
            _ => {}
        }
    }

    /// The minute starting at `t_ms`; a later one closes the open one (an entry for an
    /// earlier, closed minute counts in the open one).
    fn minute(&mut self, t_ms: u64) -> &mut (Minute, hdrhistogram::Histogram<u64>) {
        if self.open.as_ref().is_some_and(|(m, _)| t_ms > m.t_ms)
            && let Some(open) = self.open.take()
        {
            self.done.push(close(open));
        }
        self.open.get_or_insert_with(|| {
            let minute = Minute {
                t_ms,
                requests: 0,
                ok: 0,
                p50_ms: None,
                p99_ms: None,
                memory: BTreeMap::new(),
            };
            let h = hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("valid histogram bounds");
            (minute, h)
        })
    }

    /// Every minute so far, the open one included.
    pub fn all(&self) -> Vec<Minute> {
        let mut all = self.done.clone();
        all.extend(self.open.clone().map(close));
        all
    }
}

fn close((mut minute, h): (Minute, hdrhistogram::Histogram<u64>)) -> Minute {
    if !h.is_empty() {
        minute.p50_ms = Some(h.value_at_quantile(0.5) as f64 / 1000.0);
        minute.p99_ms = Some(h.value_at_quantile(0.99) as f64 / 1000.0);
    }
    minute
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::LoadSecond;

    #[test]
    fn seconds_and_samples_add_up_by_minute() {
        let mut minutes = Minutes::default();
        for t in (0..150_000).step_by(1000) {
            minutes.add(&Entry {
                t_ms: t,
                event: Event::LoadSecond(LoadSecond {
                    sent: 10,
                    ok: 9,
                    ..LoadSecond::default()
                }),
            });
            if t == 61_000 {
                minutes.add(&Entry {
                    t_ms: t,
                    event: Event::ProcessMemory {
                        part: "tether".into(),
                        rss_bytes: 5,
                    },
                });
            }
        }
        let all = minutes.all();
        assert_eq!(all.len(), 3);
        assert_eq!((all[0].requests, all[0].ok), (600, 540));
        assert_eq!(all[1].memory["tether"], 5);
        assert_eq!(all[2].requests, 300);
        assert_eq!(all[0].p50_ms, None, "no histograms, no latency");
    }
}
