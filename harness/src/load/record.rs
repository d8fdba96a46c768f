//! What the generator records: per second of intended send time, requests, errors by
//! kind, who answered, and an HDR histogram of latency at microsecond resolution.
//! Seconds merge without loss (histograms add), into per-phase and per-run figures.

use crate::timeline::LoadSecond;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Why a request failed, by kind (never by message text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The connection was refused (nothing listens, or a proxy is down).
    ConnectRefused,
    /// The connection could not be made for another reason, or in time.
    Connect,
    /// The connection was reset or closed while the request was in flight.
    Reset,
    /// No answer within the request timeout.
    Timeout,
    /// A 4xx answer.
    Status4xx,
    /// A 5xx answer.
    Status5xx,
    /// Any other non-2xx answer.
    StatusOther,
    /// A gRPC call that ended with a status other than OK.
    Grpc,
}

impl ErrorKind {
    /// The name used on the timeline and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::Connect => "connect",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Status4xx => "status_4xx",
            ErrorKind::Status5xx => "status_5xx",
            ErrorKind::StatusOther => "status_other",
            ErrorKind::Grpc => "grpc_error",
        }
    }
}

/// A latency histogram: 1 µs to 1 hour, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// The requests whose intended send time fell in one second.
#[derive(Debug, Clone)]
pub struct Second {
    /// Requests that finished (answered, failed or timed out).
    pub sent: u64,
    /// Requests answered with success (2xx; gRPC status 0).
    pub ok: u64,
    /// Failed requests by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Successful answers by who served them (the sample service's `x-served-by`).
    pub served_by: BTreeMap<String, u64>,
    /// Latency in microseconds.
    pub latency: Histogram<u64>,
}

impl Default for Second {
    fn default() -> Self {
        Second {
            sent: 0,
            ok: 0,
            errors: BTreeMap::new(),
            served_by: BTreeMap::new(),
            latency: histogram(),
        }
    }
}

impl Second {
    /// Count one finished request.
    pub fn record(&mut self, latency_us: u64, result: Result<Option<&str>, ErrorKind>) {
        self.sent += 1;
        // Out-of-range values are clamped, never dropped.
        self.latency.saturating_record(latency_us.max(1));
        match result {
            Ok(served_by) => {
                self.ok += 1;
                let by = served_by.unwrap_or("unknown");
                match self.served_by.get_mut(by) {
                    Some(n) => *n += 1,
                    None => {
                        self.served_by.insert(by.to_string(), 1);
                    }
                }
            }
            Err(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    /// Add `other` to this one, losing nothing.
    pub fn merge(&mut self, other: &Second) {
        self.sent += other.sent;
        self.ok += other.ok;
        for (k, n) in &other.errors {
            *self.errors.entry(*k).or_default() += n;
        }
        for (k, n) in &other.served_by {
            *self.served_by.entry(k.clone()).or_default() += n;
        }
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency.add(&other.latency);
    }

    /// The second as a timeline entry.
    pub fn to_timeline(&self) -> LoadSecond {
        LoadSecond {
            sent: self.sent,
            ok: self.ok,
            errors: self
                .errors
                .iter()
                .map(|(k, n)| (k.as_str().to_string(), *n))
                .collect(),
            served_by: self.served_by.clone(),
            p50_us: self.latency.value_at_quantile(0.5),
            p99_us: self.latency.value_at_quantile(0.99),
            max_us: self.latency.max(),
            latency_hdr: crate::timeline::encode_histogram(&self.latency),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Percentiles;

    #[test]
    fn seconds_merge_without_losing_a_request() {
        let mut a = Second::default();
        let mut b = Second::default();
        for us in 1..=1000 {
            a.record(us, Ok(Some("svc-v1")));
        }
        for us in 1001..=2000 {
            b.record(us, Ok(Some("svc-v2")));
        }
        b.record(5_000_000, Err(ErrorKind::Timeout));
        a.merge(&b);
        assert_eq!((a.sent, a.ok), (2001, 2000));
        assert_eq!(a.errors[&ErrorKind::Timeout], 1);
        assert_eq!(a.served_by["svc-v1"] + a.served_by["svc-v2"], 2000);
        assert_eq!(a.latency.len(), 2001);
        let p = Percentiles::of(&a.latency);
        assert!((995..=1005).contains(&p.p50_us), "{p:?}");
        assert!(p.max_us >= 4_990_000, "{p:?}");
        let line = a.to_timeline();
        assert_eq!(line.errors["timeout"], 1);
        // Through the timeline's text form and back, nothing is lost.
        let again = crate::timeline::merge_latency([&line, &b.to_timeline()]);
        assert_eq!(again.len(), 2001 + 1001);
        assert_eq!(again.max(), a.latency.max());
    }
}
