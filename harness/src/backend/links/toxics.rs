//! How a suite's link faults are made on a Toxiproxy API: the toxics of each fault on
//! each of a link's proxies (the fault proxy's `enabled` flag for `down`), and what was
//! set, one line each, for the timeline.

use crate::faults::client::{DOWNSTREAM, Toxic, UPSTREAM};
use crate::plan::{Direction, Fault};
use serde_json::json;

/// The Toxiproxy stream of a direction: connections are opened from the outpost, so
/// towards the region is `upstream`.
fn stream(direction: Direction) -> &'static str {
    match direction {
        Direction::ToRegion => UPSTREAM,
        Direction::ToOutpost => DOWNSTREAM,
    }
}

/// The toxics that make `fault` on a link's proxies; empty for faults made with the
/// proxy's `enabled` flag (`down`, `flapping`) and for packet-only faults (`loss`,
/// `duplicate`, `reorder`).
pub fn toxics(fault: &Fault) -> Vec<Toxic> {
    let both = |name: &str, kind: &str, attributes: serde_json::Value| {
        [UPSTREAM, DOWNSTREAM]
            .map(|s| Toxic::new(&format!("tether_{name}_{s}"), kind, s, attributes.clone()))
            .to_vec()
    };
    match fault {
        Fault::Blackhole => both("blackhole", "timeout", json!({"timeout": 0})),
        Fault::OneWay { to } => {
            vec![Toxic::new(
                &format!("tether_one_way_{}", stream(*to)),
                "timeout",
                stream(*to),
                json!({"timeout": 0}),
            )]
        }
        // Both ways: reset on the upstream stream only lets a push down an open
        // connection through (the reset comes only with the ACK).
        Fault::Reset => both("reset", "reset_peer", json!({"timeout": 0})),
        Fault::Latency { delay, jitter } => both(
            "latency",
            "latency",
            json!({"latency": delay.0.as_millis() as u64, "jitter": jitter.map(|j| j.0.as_millis() as u64).unwrap_or(0)}),
        ),
        Fault::Bandwidth { rate } => both(
            "bandwidth",
            "bandwidth",
            json!({"rate": rate.kilobytes_per_second()}),
        ),
        Fault::SlowClose { delay } => {
            vec![Toxic::new(
                "tether_slow_close_downstream",
                "slow_close",
                DOWNSTREAM,
                json!({"delay": delay.0.as_millis() as u64}),
            )]
        }
        Fault::LimitData { bytes } => {
            vec![Toxic::new(
                "tether_limit_data_downstream",
                "limit_data",
                DOWNSTREAM,
                json!({"bytes": bytes}),
            )]
        }
        Fault::Down
        | Fault::Flapping { .. }
        | Fault::Loss { .. }
        | Fault::Duplicate { .. }
        | Fault::Reorder { .. } => Vec::new(),
    }
}

/// What putting `fault` on `proxy` sets, one line per toxic (as the API shows it).
pub fn describe(proxy: &str, fault: &Fault) -> Vec<String> {
    if *fault == Fault::Down {
        return vec![format!("{proxy}: enabled false")];
    }
    toxics(fault)
        .iter()
        .map(|toxic| {
            format!(
                "{proxy}: {} {} {} toxicity {}",
                toxic.kind, toxic.stream, toxic.attributes, toxic.toxicity
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Direction;
    use crate::source::Duration;

    #[test]
    fn faults_map_onto_toxiproxy_toxics() {
        let names = |f: Fault| {
            toxics(&f)
                .iter()
                .map(|t| format!("{}:{}:{}", t.name, t.kind, t.stream))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(Fault::Blackhole),
            [
                "tether_blackhole_upstream:timeout:upstream",
                "tether_blackhole_downstream:timeout:downstream"
            ]
        );
        assert_eq!(
            names(Fault::OneWay {
                to: Direction::ToRegion
            }),
            ["tether_one_way_upstream:timeout:upstream"]
        );
        assert_eq!(
            names(Fault::Reset),
            [
                "tether_reset_upstream:reset_peer:upstream",
                "tether_reset_downstream:reset_peer:downstream"
            ]
        );
        let latency = Fault::Latency {
            delay: Duration(std::time::Duration::from_millis(90)),
            jitter: None,
        };
        assert_eq!(
            toxics(&latency)[0].attributes,
            json!({"latency": 90, "jitter": 0})
        );
        assert_eq!(toxics(&latency).len(), 2, "latency is added both ways");
        assert!(toxics(&Fault::Down).is_empty());
    }
}
