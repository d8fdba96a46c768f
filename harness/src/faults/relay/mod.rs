//! The relay that runs every proxy of the fault server: it owns the proxy's
//! listener, connects each client straight to the upstream (one hop), and
//! moves each direction's bytes through that stream's toxics.
//!
//! ```text
//! client <-> relay (every toxic, per direction) <-> upstream
//! ```
//!
//! Each direction of a connection is one loop ([`pump`]) that reads chunks,
//! decides what the stream's active toxics do to them, stamps every piece with
//! the time it is due, and writes the pieces out in order once due. The
//! toxics, in the order they were added on their stream:
//! - `latency`: every chunk is held `latency` ± `jitter` from when it was read
//!   (a delay line: chunks keep their order, many are in flight at once);
//! - `bandwidth`: a serialisation queue: a chunk is due no earlier than when the
//!   previous one finished plus its length at `rate` KB/s, cut into pieces of at
//!   most 100 ms worth, as Toxiproxy does;
//! - `slicer`: every chunk is cut into slices of `average_size` ±
//!   `size_variation` bytes, `delay` µs apart;
//! - `slow_close`: the end of the stream (EOF) is passed on `delay` ms late;
//! - `timeout`: data is read and dropped; with a `timeout` above 0 the whole
//!   connection is closed that long after the toxic became active on it;
//! - `reset_peer`: the first chunk of data is dropped, nothing more is read on
//!   that stream, and `timeout` ms later both sockets are closed with
//!   `SO_LINGER` 0, so the client and the upstream each get a TCP RST;
//! - `limit_data`: the whole connection is closed once `bytes` bytes have
//!   passed on the stream since the connection opened (at once, for a
//!   connection already past the limit when the toxic is added);
//! - `noop` does nothing and is not handed to the relay at all.
//!
//! When a `latency`, `bandwidth` or `slicer` toxic of a stream is added,
//! updated or removed, every piece the stream holds goes out at once, as
//! Toxiproxy forwards what an interrupted toxic holds; nothing is dropped.
//! A direction holds at most [`HELD_BYTES`]; then it stops reading.
//!
//! The rules reach connections that are already open through a `watch`
//! channel. Randomness comes from a per-proxy [`SplitMix64`], seeded from the
//! server's seed when it has one: whether a toxic is active on a connection
//! (its `toxicity`) is drawn from it once per connection, toxic and revision,
//! and each connection's jitter and slicer sizes from sequences of its own,
//! seeded from it when the connection is accepted.

mod active;
mod counters;
mod pump;
mod rng;
mod schedule;
#[cfg(test)]
mod tests;

pub(in crate::faults) use counters::Counters;
pub(in crate::faults) use rng::{SplitMix64, proxy_seed};

use pump::{Direction, PumpEnd, pump};
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How many bytes one direction holds (under latency, bandwidth or slicer)
/// before it stops reading.
const HELD_BYTES: usize = 4 * 1024 * 1024;

/// What one toxic does to the bytes of its stream, as the relay runs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(in crate::faults) enum Effect {
    /// `latency`: every chunk is delayed by `latency` plus a uniform draw in
    /// `-jitter..=jitter` (never below zero).
    Latency {
        /// The mean delay.
        latency: Duration,
        /// The largest deviation from it.
        jitter: Duration,
    },
    /// `bandwidth`: at most this many bytes per millisecond (`rate` KB/s), never 0.
    Bandwidth {
        /// Bytes per millisecond.
        bytes_per_ms: u64,
    },
    /// `slicer`: chunks cut into slices of `average_size` ± `size_variation`
    /// bytes (`average_size` at least 1, `size_variation` below it), `delay` apart.
    Slicer {
        /// Mean slice size in bytes.
        average_size: u64,
        /// Largest deviation from it, in bytes.
        size_variation: u64,
        /// Time between slices.
        delay: Duration,
    },
    /// `slow_close`: the end of the stream is passed on this late.
    SlowClose {
        /// How late.
        delay: Duration,
    },
    /// `timeout`: data is dropped; the connection closes this long after the
    /// toxic became active on it, or never (`None`, a blackhole).
    Timeout {
        /// When to close, counted from activation.
        close_after: Option<Duration>,
    },
    /// `reset_peer`: the connection is reset `timeout` after its first data.
    ResetPeer {
        /// How long after the first data the connection is reset.
        timeout: Duration,
    },
    /// `limit_data`: the connection closes once this many bytes passed on the stream.
    LimitData {
        /// The limit.
        bytes: u64,
    },
}

/// One toxic as the relay runs it.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::faults) struct RelayToxic {
    /// The toxic's name.
    pub name: String,
    /// True for the `upstream` stream (client to server), false for `downstream`.
    pub upstream: bool,
    /// What it does.
    pub effect: Effect,
    /// The probability (0.0 to 1.0) that the toxic is active on a connection.
    pub toxicity: f32,
    /// Changes whenever the toxic is added or updated, so that every connection
    /// decides anew whether it is active, and timing toxics release what they hold.
    pub revision: u64,
}

/// The toxics of one proxy in the order they were added, as published to its
/// connections.
pub(in crate::faults) type Rules = Arc<Vec<RelayToxic>>;

/// One running proxy: its listener and what its connections follow.
pub(in crate::faults) struct Relay {
    /// The proxy's listener.
    pub listener: TcpListener,
    /// Where every client connection is relayed to (`host:port`).
    pub upstream: String,
    /// The current toxics.
    pub rules: watch::Receiver<Rules>,
    /// Decides toxicity for every connection of the proxy and seeds their draws.
    pub rng: Arc<Mutex<SplitMix64>>,
    /// Cancelled when the proxy stops: the listener and every connection close.
    pub shutdown: CancellationToken,
    /// What the proxy's connections carry, counted as it passes.
    pub counters: Arc<Counters>,
}

impl Relay {
    /// Accepts clients until shutdown, each relayed by its own task; then
    /// closes the listener and every connection before it returns.
    pub async fn run(self) {
        let upstream: Arc<str> = self.upstream.into();
        let mut connections = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            // Forget the connections that are done.
            while connections.try_join_next().is_some() {}
            match accepted {
                Ok((client, _peer)) => {
                    // Drawn in accept order, so seeded runs draw alike per connection.
                    let draw_seed = lock(&self.rng).next_u64();
                    let connection = Connection {
                        rules: self.rules.clone(),
                        rng: self.rng.clone(),
                        draw_seed,
                        counters: self.counters.clone(),
                    };
                    connections.spawn(connection.relay(client, upstream.clone()));
                }
                // Transient (e.g. out of file descriptors): back off, retry.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        drop(self.listener);
        // Aborting a connection's task drops, and so closes, both its sockets.
        connections.shutdown().await;
    }
}

/// Locks the proxy's generator; a panic elsewhere cannot leave it inconsistent.
fn lock(rng: &Mutex<SplitMix64>) -> std::sync::MutexGuard<'_, SplitMix64> {
    rng.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What one connection needs to follow the proxy's toxics.
struct Connection {
    rules: watch::Receiver<Rules>,
    rng: Arc<Mutex<SplitMix64>>,
    /// Seeds the connection's jitter and slicer sizes (each direction its own sequence).
    draw_seed: u64,
    /// The proxy's counters.
    counters: Arc<Counters>,
}

impl Connection {
    /// Connects to `upstream` and relays both directions until both end or a
    /// toxic closes or resets the connection. If the upstream cannot be
    /// reached, the client connection is closed.
    async fn relay(self, mut client: TcpStream, upstream: Arc<str>) {
        let _open = self.counters.connection();
        let Ok(mut server) = TcpStream::connect(&*upstream).await else {
            return;
        };
        // Small writes (request/response traffic, slices) must not wait for Nagle.
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);

        let end = {
            let (mut client_read, mut client_write) = client.split();
            let (mut server_read, mut server_write) = server.split();
            let up_draws = SplitMix64::new(self.draw_seed);
            let down_draws = SplitMix64::new(self.draw_seed ^ 0x5555_5555_5555_5555);
            let mut up = pin!(pump(
                &mut client_read,
                &mut server_write,
                Direction::new(true, &self.rules, &self.rng, up_draws, &self.counters),
            ));
            let mut down = pin!(pump(
                &mut server_read,
                &mut client_write,
                Direction::new(false, &self.rules, &self.rng, down_draws, &self.counters),
            ));
            let (mut up_open, mut down_open) = (true, true);
            loop {
                // Biased: the same polling order on every run keeps seeded decisions reproducible.
                let end = tokio::select! {
                    biased;
                    end = &mut up, if up_open => {
                        up_open = false;
                        end
                    }
                    end = &mut down, if down_open => {
                        down_open = false;
                        end
                    }
                };
                if end != PumpEnd::Closed || (!up_open && !down_open) {
                    break end;
                }
            }
        };
        if end == PumpEnd::Reset {
            // Closing with SO_LINGER 0 discards unsent data and sends an RST.
            let _ = client.set_zero_linger();
            let _ = server.set_zero_linger();
        }
        // Dropping closes both sockets (borrowed halves never shut down on their own).
    }
}
