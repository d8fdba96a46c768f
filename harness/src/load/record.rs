//! What the generator records: per second of intended send time, requests, errors by
//! kind, who answered, and HDR histograms at microsecond resolution of the response
//! time, the service time and the generator's own lag (see [`Timing`]).
//! Seconds merge without loss (histograms add), into per-phase and per-run figures.

use crate::timeline::{LoadSecond, histogram};
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

/// Record `us` in `h` (an auto-resizing [`histogram`]): grown to fit, never dropped.
fn put(h: &mut Histogram<u64>, us: u64) {
    if h.record(us.max(1)).is_err() {
        h.saturating_record(us.max(1));
    }
}

/// How long one request took, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Response time: from its intended send time (open loop; closed loop, the send) to
    /// the end of its answer: what a user waits.
    pub response_us: u64,
    /// Service time: from when it was actually sent: what the target took.
    pub service_us: u64,
    /// The generator's own lag (open loop): how late it left after both its intended
    /// time and a connection being free for it.
    pub lag_us: Option<u64>,
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
    /// Response time in microseconds (see [`Timing`]).
    pub response: Histogram<u64>,
    /// Service time in microseconds, open loop (closed loop it is the response time:
    /// read it with [`Second::service_time`]).
    pub service: Histogram<u64>,
    /// The generator's lag in microseconds (open loop only; empty in the closed loop).
    pub lag: Histogram<u64>,
}

impl Default for Second {
    fn default() -> Self {
        Second {
            sent: 0,
            ok: 0,
            errors: BTreeMap::new(),
            served_by: BTreeMap::new(),
            response: histogram(),
            service: histogram(),
            lag: histogram(),
        }
    }
}

impl Second {
    /// Count one finished request.
    pub fn record(&mut self, timing: Timing, result: Result<Option<&str>, ErrorKind>) {
        self.sent += 1;
        // Values below the histogram's 1 µs are clamped, never dropped; above its range
        // it grows.
        put(&mut self.response, timing.response_us);
        // Closed loop, the two are the same request for request: one histogram is kept
        // (see [`Second::service_time`]).
        if let Some(lag) = timing.lag_us {
            put(&mut self.service, timing.service_us);
            put(&mut self.lag, lag);
        }
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
        // Auto-resizing histograms: adding cannot fail.
        let _ = self.response.add(&other.response);
        let _ = self.service.add(&other.service);
        let _ = self.lag.add(&other.lag);
    }

    /// The service times: the open loop's own, or, closed loop, the response times.
    pub fn service_time(&self) -> &Histogram<u64> {
        if self.service.is_empty() {
            &self.response
        } else {
            &self.service
        }
    }

    /// The second as a timeline entry.
    pub fn to_timeline(&self) -> LoadSecond {
        use crate::timeline::encode_histogram as encode;
        LoadSecond {
            sent: self.sent,
            ok: self.ok,
            errors: self
                .errors
                .iter()
                .map(|(k, n)| (k.as_str().to_string(), *n))
                .collect(),
            served_by: self.served_by.clone(),
            p50_us: self.response.value_at_quantile(0.5),
            p99_us: self.response.value_at_quantile(0.99),
            max_us: self.response.max(),
            latency_hdr: encode(&self.response),
            service_p50_us: self.service_time().value_at_quantile(0.5),
            service_p99_us: self.service_time().value_at_quantile(0.99),
            service_hdr: encode(self.service_time()),
            lag_hdr: (!self.lag.is_empty()).then(|| encode(&self.lag)).flatten(),
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
        let t = |us| Timing {
            response_us: us,
            service_us: us / 2,
            lag_us: Some(3),
        };
        for us in 1..=1000 {
            a.record(t(us), Ok(Some("svc-v1")));
        }
        for us in 1001..=2000 {
            b.record(t(us), Ok(Some("svc-v2")));
        }
        b.record(t(5_000_000), Err(ErrorKind::Timeout));
        a.merge(&b);
        assert_eq!((a.sent, a.ok), (2001, 2000));
        assert_eq!(a.errors[&ErrorKind::Timeout], 1);
        assert_eq!(a.served_by["svc-v1"] + a.served_by["svc-v2"], 2000);
        assert_eq!(a.response.len(), 2001);
        let p = Percentiles::of(&a.response);
        assert!((995..=1005).contains(&p.p50_us), "{p:?}");
        assert!(p.max_us >= 4_990_000, "{p:?}");
        let s = Percentiles::of(a.service_time());
        assert!((497..=503).contains(&s.p50_us), "{s:?}");
        assert_eq!(a.lag.len(), 2001);
        // Closed loop (no lag), the service time is the response time.
        let mut closed = Second::default();
        closed.record(
            Timing {
                response_us: 70,
                service_us: 70,
                lag_us: None,
            },
            Ok(None),
        );
        assert_eq!(closed.service_time().max(), closed.response.max());
        // The histograms start small and grow: a 5 s timeout is kept as 5 s.
        assert!(b.response.max() >= 4_990_000, "{}", b.response.max());
        let line = a.to_timeline();
        assert_eq!(line.errors["timeout"], 1);
        // Through the timeline's text form and back, nothing is lost.
        let again = crate::timeline::merge_latency([&line, &b.to_timeline()]);
        assert_eq!(again.len(), 2001 + 1001);
        assert_eq!(again.max(), a.response.max());
        let service = crate::timeline::decode_histogram(line.service_hdr.as_deref().unwrap());
        assert_eq!(service.map(|h| h.len()), Some(2001));
    }
}
