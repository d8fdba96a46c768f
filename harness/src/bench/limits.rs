//! The limits the generator is held to, judged from one run's figures (medians over its
//! rounds): closed loop, tether's rate against wrk's and its CPU per request no higher;
//! open loop against nginx at 100 and 1,000 requests/s, tether's service and response
//! times near `wrk -c1`'s median and its lag small. Each limit's margin over the probe
//! (the target's own answer time at that rate) is given beside it.

use super::open::{OpenRow, OpenSample};
use super::targets::spread;
use super::{Row, Sample};
use serde::Serialize;

/// One limit and what the run measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Limit {
    /// What is held, e.g. `nginx, 16 connections: tether / wrk`.
    pub what: String,
    /// The median measured (none: not measured, or no valid round).
    pub measured: Option<f64>,
    /// The bound.
    pub bound: f64,
    /// `>=` or `<=`.
    pub holds_if: &'static str,
    /// Did it hold?
    pub met: bool,
    /// The same figure against the probe, where one applies (open loop).
    pub against_probe: Option<f64>,
}

impl Limit {
    fn at_least(what: String, measured: f64, bound: f64) -> Limit {
        Limit {
            what,
            measured: Some(measured),
            bound,
            holds_if: ">=",
            met: measured >= bound,
            against_probe: None,
        }
    }

    fn at_most(what: String, measured: f64, bound: f64, against_probe: Option<f64>) -> Limit {
        Limit {
            what,
            measured: Some(measured),
            bound,
            holds_if: "<=",
            met: measured <= bound,
            against_probe,
        }
    }

    /// A limit the run could not judge (it is not met).
    fn not_judged(what: String, bound: f64) -> Limit {
        Limit {
            what,
            measured: None,
            bound,
            holds_if: "<=",
            met: false,
            against_probe: None,
        }
    }
}

/// Rates of the open loop the limits cover (requests/s).
const OPEN_RATES: [f64; 2] = [100.0, 1000.0];

/// Every limit the rows measured.
pub fn judge(closed: &[Row], open: &[OpenRow]) -> Vec<Limit> {
    let mut limits = Vec::new();
    for row in closed {
        let bound = if row.target == "nginx" { 1.0 } else { 0.97 };
        let at = format!("{}, {} connections", row.target, row.connections);
        limits.push(Limit::at_least(
            format!("{at}: tether / wrk requests/s"),
            spread(&row.ratios).0,
            bound,
        ));
        let cpu = |s: &[Sample]| spread(&s.iter().map(|x| x.cpu_ms_per_1000).collect::<Vec<_>>()).0;
        limits.push(Limit::at_most(
            format!("{at}: tether's CPU ms per 1,000 requests (bound: wrk's)"),
            cpu(&row.tether),
            cpu(&row.wrk),
            None,
        ));
    }
    for rate in OPEN_RATES {
        let at = format!("nginx, open loop at {rate}/s");
        let row = open.iter().find(|r| r.target == "nginx" && r.rate == rate);
        // A round the generator itself found invalid measured the generator: left out.
        let rounds: Vec<&OpenSample> = row.map_or(Vec::new(), |r| {
            r.rounds.iter().filter(|s| s.valid).collect()
        });
        if rounds.is_empty() {
            let why = if row.is_none() {
                "not measured (not in --rates)"
            } else {
                "no valid round"
            };
            limits.push(Limit::not_judged(format!("{at}: {why}"), 30.0));
            continue;
        }
        let median =
            |f: fn(&OpenSample) -> f64| spread(&rounds.iter().map(|s| f(s)).collect::<Vec<_>>()).0;
        let (wrk, probe) = (median(|s| s.wrk_c1_p50_us), median(|s| s.probe_p50_us));
        for (name, value, bound) in [
            (
                "service time p50 - wrk -c1 p50, µs",
                median(|s| s.service_p50_us),
                30.0,
            ),
            (
                "response time p50 - wrk -c1 p50, µs",
                median(|s| s.response_p50_us),
                60.0,
            ),
        ] {
            limits.push(Limit::at_most(
                format!("{at}: {name}"),
                value - wrk,
                bound,
                Some(value - probe),
            ));
        }
        limits.push(Limit::at_most(
            format!("{at}: lag p50, µs"),
            median(|s| s.lag_p50_us),
            30.0,
            None,
        ));
    }
    limits
}

/// The limits as a table.
pub fn table(limits: &[Limit]) -> String {
    let mut out = format!(
        "{:<78} {:>8}  {:<9} met  (against the probe)\n",
        "limit", "measured", "bound"
    );
    for l in limits {
        let probe = l
            .against_probe
            .map_or(String::new(), |p| format!("   ({p:.1})"));
        let measured = l.measured.map_or("-".into(), |m| format!("{m:.2}"));
        out.push_str(&format!(
            "{:<78} {measured:>8}  {} {:<6.2} {}{probe}\n",
            l.what,
            l.holds_if,
            l.bound,
            if l.met { "yes" } else { "NO " },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rps: f64, cpu: f64) -> Sample {
        Sample {
            requests_per_second: rps,
            cpu_ms_per_1000: cpu,
            user_ms_per_1000: cpu / 2.0,
            sys_ms_per_1000: cpu / 2.0,
        }
    }

    fn open_sample(wrk: f64, service: f64, lag: f64) -> OpenSample {
        OpenSample {
            wrk_c1_p50_us: wrk,
            probe_p50_us: wrk + 5.0,
            response_p50_us: service + 8.0,
            service_p50_us: service,
            lag_p50_us: lag,
            lag_p99_us: lag * 3.0,
            requests_per_second: 100.0,
            valid: true,
        }
    }

    #[test]
    fn each_limit_holds_or_not_from_the_median_of_its_rounds() {
        let closed = [Row {
            target: "envoy->nginx".into(),
            connections: 16,
            wrk: vec![sample(100.0, 10.0); 3],
            tether: vec![sample(96.0, 9.0), sample(99.0, 11.0), sample(98.0, 9.5)],
            ratios: vec![0.96, 0.99, 0.98],
        }];
        let open = [OpenRow {
            target: "nginx".into(),
            rate: 100.0,
            connections: 4,
            rounds: vec![
                open_sample(40.0, 65.0, 9.0),
                open_sample(42.0, 90.0, 40.0),
                open_sample(41.0, 60.0, 8.0),
            ],
        }];
        let limits = judge(&closed, &open);
        let by = |what: &str| limits.iter().find(|l| l.what.ends_with(what)).unwrap();
        // Medians: ratio 0.98 (>= 0.97 through Envoy), CPU 9.5 against 10.
        assert!(by("tether / wrk requests/s").met);
        assert_eq!(by("tether / wrk requests/s").measured, Some(0.98));
        assert!(by("(bound: wrk's)").met);
        // Service 65 against wrk 41: 24 µs over (met), 19 over the probe; lag 9 µs.
        let service = by("service time p50 - wrk -c1 p50, µs");
        assert_eq!(
            (service.measured, service.met, service.against_probe),
            (Some(24.0), true, Some(19.0))
        );
        assert!(by("lag p50, µs").met);
        // Negative controls: a slower tether, a slower answer, a later send.
        let slower = Row {
            ratios: vec![0.95, 0.96, 0.90],
            tether: vec![sample(95.0, 10.5); 3],
            ..closed[0].clone()
        };
        let late = OpenRow {
            rounds: vec![open_sample(40.0, 75.0, 31.0); 3],
            ..open[0].clone()
        };
        let limits = judge(&[slower], &[late]);
        assert!(
            limits.iter().all(|l| !l.met || l.what.contains("response")),
            "{limits:#?}"
        );
        assert!(table(&limits).contains("NO"));
    }
}
