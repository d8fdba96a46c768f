//! Traffic checks: outpost traffic keeps flowing, goose journeys keep succeeding, and
//! what a sidecar adds to throughput and latency.

use super::{Judged, load_seconds, measure, phase_window, verdict};
use crate::checks::{Outcome, Verdict, names};
use crate::timeline::{Entry, Event};
use std::collections::BTreeMap;

/// Outpost traffic keeps flowing: the share of successful requests in the phase.
pub(super) fn flows(entries: &[Entry], phase: &str, min: f64) -> Judged {
    let w = phase_window(entries, phase)?;
    let (mut sent, mut ok, mut first_failure) = (0u64, 0u64, None);
    let mut errors: BTreeMap<&str, u64> = BTreeMap::new();
    for (t, s) in load_seconds(entries).filter(|(t, _)| w.holds_second(*t)) {
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
            .filter(|(t, _)| w.holds_second(*t))
            .map(|(_, s)| s),
    );
    let mut measurements = vec![
        measure(names::SUCCESS_RATIO, ratio, "ratio", Some(min)),
        measure(names::REQUESTS, sent as f64, "requests", None),
    ];
    if !latency.is_empty() {
        for (name, q) in [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)] {
            measurements.push(measure(
                names::LATENCY_MS.of(name),
                latency.value_at_quantile(q) as f64 / 1000.0,
                "ms",
                None,
            ));
        }
    }
    Ok(verdict(ratio >= min, detail, measurements, first_failure))
}

/// What the sidecar measured in the phase adds: throughput ratio, added latency, errors.
pub(super) fn proxy_overhead(
    entries: &[Entry],
    phase: &str,
    min_ratio: f64,
    max_added_p99_us: u64,
) -> Judged {
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
        (p(&proxied.response) as f64 - p(&direct.response) as f64) / 1000.0
    };
    let ratio = proxied.requests_per_second / direct.requests_per_second.max(1e-9);
    let measurements = vec![
        measure(
            names::THROUGHPUT.of("direct"),
            direct.requests_per_second,
            "requests/s",
            None,
        ),
        measure(
            names::THROUGHPUT.of("proxied"),
            proxied.requests_per_second,
            "requests/s",
            None,
        ),
        measure(names::THROUGHPUT_RATIO, ratio, "ratio", Some(min_ratio)),
        measure(
            names::ADDED_LATENCY_MS.of("p50"),
            added(|p| p.p50_us),
            "ms",
            None,
        ),
        measure(
            names::ADDED_LATENCY_MS.of("p99"),
            added(|p| p.p99_us),
            "ms",
            Some(ms(max_added_p99_us)),
        ),
        measure(
            names::ADDED_LATENCY_MS.of("p99.9"),
            added(|p| p.p999_us),
            "ms",
            None,
        ),
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
            phase: None,
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
pub(super) fn journeys_succeed(entries: &[Entry], phase: &str, min_ratio: f64) -> Judged {
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
        names::JOURNEYS_SUCCESS_RATIO,
        ratio,
        "ratio",
        Some(min_ratio),
    )];
    let per_step: Vec<String> = steps
        .iter()
        .map(|(step, (ok, total))| {
            measurements.push(measure(
                names::journey_step_success(step),
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
