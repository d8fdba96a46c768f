//! What one proxy has carried: bytes per direction and connections, counted as they
//! pass, for the server's `GET /metrics` (as `toxiproxy-server -proxy-metrics` serves).

use std::sync::atomic::{AtomicU64, Ordering};

/// One direction's bytes: read from its source, written to its destination (a toxic
/// that drops or holds data makes the two differ).
#[derive(Debug, Default)]
pub(in crate::faults) struct StreamCounters {
    /// Bytes read.
    pub received: AtomicU64,
    /// Bytes written.
    pub sent: AtomicU64,
}

/// A proxy's counters, kept for as long as the proxy exists (across disable and enable).
#[derive(Debug, Default)]
pub(in crate::faults) struct Counters {
    /// Client to upstream.
    pub upstream: StreamCounters,
    /// Upstream to client.
    pub downstream: StreamCounters,
    /// Client connections accepted.
    pub accepted: AtomicU64,
    /// Client connections open now.
    pub open: AtomicU64,
}

impl Counters {
    /// The counters of one direction.
    pub fn stream(&self, upstream: bool) -> &StreamCounters {
        if upstream {
            &self.upstream
        } else {
            &self.downstream
        }
    }

    /// Count a connection accepted and open until the guard is dropped.
    pub fn connection(&self) -> OpenConnection<'_> {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self)
    }
}

/// A connection counted as open; dropping it counts it closed.
pub(in crate::faults) struct OpenConnection<'a>(&'a Counters);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl StreamCounters {
    /// Count `n` bytes read.
    pub fn read(&self, n: usize) {
        self.received.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Count `n` bytes written.
    pub fn wrote(&self, n: usize) {
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
    }
}
