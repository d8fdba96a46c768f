//! The edge of every proxy: the listener its clients connect to, in front of noxious.
//!
//! noxious owns the sockets of the connections it proxies and offers no way to
//! reset one, so the `reset_peer` toxic cannot be built inside it; and its
//! toxic runner drops the bytes a `latency` toxic holds whenever a toxic
//! changes, where Toxiproxy passes them on. So each proxy's public `listen`
//! address is served here: every client connection is accepted by the edge and
//! relayed over loopback to the proxy's noxious listener on an internal port,
//! where the other toxics act as before.
//!
//! ```text
//! client <-> edge (reset_peer, latency) <-> noxious (timeout, bandwidth, ...) <-> upstream
//! ```
//!
//! Each direction of a relayed connection is one loop that reads chunks, stamps
//! each with the time it is due, and writes them out in order once due. The
//! edge applies
//! - `reset_peer` as Toxiproxy does: once the toxic is active on a connection,
//!   the first chunk of data on its stream is dropped, nothing more is read on
//!   that stream, and `timeout` ms later both sockets of the edge are closed
//!   with `SO_LINGER` 0, so the client gets a TCP RST (`ECONNRESET`);
//! - `latency` as a delay line: every chunk is held `latency` ± `jitter` ms
//!   from the moment it was read (up to [`HELD_CHUNKS`] chunks per direction,
//!   then reading waits), and when a latency toxic is removed or updated every
//!   chunk it holds goes out at once, as Toxiproxy forwards what an interrupted
//!   toxic holds. Nothing is dropped. Unlike Toxiproxy, which holds one chunk
//!   at a time, the delay line does not cut throughput to a chunk per latency.
//!
//! The rules reach connections that are already open through a `watch` channel.
//! Randomness comes from a per-proxy [`SplitMix64`], seeded from the server's
//! seed when it has one: whether a toxic with a toxicity below 1 is active on a
//! connection is drawn from it, and each connection's jitter from a sequence of
//! its own, seeded from it when the connection is accepted.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Read buffer per direction and connection, as noxious and Go's `io.Copy` use.
const RELAY_BUFFER_BYTES: usize = 32 * 1024;
/// How many chunks a direction holds (for latency) before it stops reading.
pub(super) const HELD_CHUNKS: usize = 64;

/// What a toxic run by the edge does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum EdgeEffect {
    /// `reset_peer`: the connection is reset `timeout` after its first data.
    ResetPeer {
        /// How long after the first data the connection is reset.
        timeout: Duration,
    },
    /// `latency`: every chunk is delayed by `latency` plus a uniform draw in
    /// `-jitter..=jitter` (never below zero).
    Latency {
        /// The mean delay.
        latency: Duration,
        /// The largest deviation from it.
        jitter: Duration,
    },
}

/// One toxic as the edge runs it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct EdgeToxic {
    /// The toxic's name.
    pub name: String,
    /// True for the `upstream` stream (client to server), false for `downstream`.
    pub upstream: bool,
    /// What it does.
    pub effect: EdgeEffect,
    /// The probability (0.0 to 1.0) that the toxic is active on a connection.
    pub toxicity: f32,
    /// Changes whenever the toxic is added or updated, so that every connection
    /// decides anew whether it is active, and latency flushes what it holds.
    pub revision: u64,
}

impl EdgeToxic {
    /// Whether this is a latency toxic on the given stream.
    fn is_latency_on(&self, upstream: bool) -> bool {
        self.upstream == upstream && matches!(self.effect, EdgeEffect::Latency { .. })
    }
}

/// The edge toxics of one proxy, as published to its connections.
pub(super) type EdgeRules = Arc<Vec<EdgeToxic>>;

/// A small, fast, seedable pseudo-random generator (SplitMix64).
#[derive(Debug, Clone)]
pub(super) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// A generator seeded from the process's hash randomness and the clock.
    pub fn from_entropy() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        SplitMix64::new(std::collections::hash_map::RandomState::new().hash_one(now))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f32(&mut self) -> f32 {
        // 24 bits: exactly representable in an f32.
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// `base` plus a uniform draw in `-spread..=spread` (whole microseconds),
    /// never below zero.
    fn jittered(&mut self, base: Duration, spread: Duration) -> Duration {
        let spread_us = u64::try_from(spread.as_micros()).unwrap_or(u64::MAX / 2);
        if spread_us == 0 {
            return base;
        }
        let draw = self.next_u64() % (2 * spread_us + 1);
        if draw >= spread_us {
            base.saturating_add(Duration::from_micros(draw - spread_us))
        } else {
            base.saturating_sub(Duration::from_micros(spread_us - draw))
        }
    }
}

/// The seed of one proxy, derived from the server's seed and the proxy's name,
/// so that proxies draw different but reproducible sequences.
pub(super) fn proxy_seed(seed: u64, name: &str) -> u64 {
    // FNV-1a over the name: stable across Rust versions, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    SplitMix64::new(seed ^ hash).next_u64()
}

/// The edge of one running proxy: accepts clients and relays them to noxious.
pub(super) struct Edge {
    /// The proxy's public listener.
    pub listener: TcpListener,
    /// Where noxious listens for this proxy.
    pub inner: SocketAddr,
    /// The current edge toxics.
    pub rules: watch::Receiver<EdgeRules>,
    /// Decides toxicity for every connection of the proxy and seeds their jitter.
    pub rng: Arc<Mutex<SplitMix64>>,
    /// Cancelled when the proxy stops: the listener and every connection close.
    pub shutdown: CancellationToken,
}

impl Edge {
    /// Accepts clients until shutdown; each is relayed by its own task.
    pub async fn run(self) {
        loop {
            let accepted = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((client, _peer)) => {
                    // Drawn in accept order, so seeded runs get the same jitter per connection.
                    let jitter_seed = lock(&self.rng).next_u64();
                    tokio::spawn(relay(
                        client,
                        self.inner,
                        Rules {
                            rules: self.rules.clone(),
                            rng: self.rng.clone(),
                            jitter_seed,
                        },
                        self.shutdown.clone(),
                    ));
                }
                // Transient (e.g. out of file descriptors): back off, retry.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// Locks the proxy's generator; a panic elsewhere cannot leave it inconsistent.
fn lock(rng: &Mutex<SplitMix64>) -> std::sync::MutexGuard<'_, SplitMix64> {
    rng.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What one connection needs to follow the proxy's edge toxics.
struct Rules {
    rules: watch::Receiver<EdgeRules>,
    rng: Arc<Mutex<SplitMix64>>,
    /// Seeds the connection's jitter (each direction its own sequence).
    jitter_seed: u64,
}

/// How one direction of a relayed connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PumpEnd {
    /// Its source closed or failed; its destination was shut down for writing.
    Closed,
    /// A `reset_peer` toxic fired: the whole connection must be reset.
    Reset,
}

/// Relays one client connection to noxious until both directions end, the
/// proxy stops, or a `reset_peer` toxic resets it.
async fn relay(
    mut client: TcpStream,
    inner_addr: SocketAddr,
    rules: Rules,
    shutdown: CancellationToken,
) {
    let connected = tokio::select! {
        _ = shutdown.cancelled() => return,
        connected = TcpStream::connect(inner_addr) => connected,
    };
    // noxious is gone: dropping the client closes it.
    let Ok(mut inner) = connected else { return };
    // The edge adds a hop; it must not add Nagle delays too.
    let _ = client.set_nodelay(true);
    let _ = inner.set_nodelay(true);

    let reset = {
        let (mut client_read, mut client_write) = client.split();
        let (mut inner_read, mut inner_write) = inner.split();
        let up_jitter = SplitMix64::new(rules.jitter_seed);
        let down_jitter = SplitMix64::new(rules.jitter_seed ^ 0x5555_5555_5555_5555);
        let mut up = pin!(pump(
            &mut client_read,
            &mut inner_write,
            Direction::new(true, &rules, up_jitter),
        ));
        let mut down = pin!(pump(
            &mut inner_read,
            &mut client_write,
            Direction::new(false, &rules, down_jitter),
        ));
        let (mut up_open, mut down_open) = (true, true);
        loop {
            // Biased: the same polling order on every run keeps seeded decisions reproducible.
            let end = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break false,
                end = &mut up, if up_open => {
                    up_open = false;
                    end
                }
                end = &mut down, if down_open => {
                    down_open = false;
                    end
                }
            };
            if end == PumpEnd::Reset {
                break true;
            }
            if !up_open && !down_open {
                break false;
            }
        }
    };
    if reset {
        // Closing with SO_LINGER 0 discards unsent data and sends an RST.
        let _ = client.set_zero_linger();
        let _ = inner.set_zero_linger();
    }
    // Dropping closes both sockets (borrowed halves never shut down on their own).
}

/// One direction of a connection and the rules it follows.
struct Direction<'a> {
    /// True for client to server.
    upstream: bool,
    rules: watch::Receiver<EdgeRules>,
    rng: &'a Mutex<SplitMix64>,
    jitter: SplitMix64,
}

impl<'a> Direction<'a> {
    fn new(upstream: bool, rules: &'a Rules, jitter: SplitMix64) -> Self {
        Direction {
            upstream,
            rules: rules.rules.clone(),
            rng: &rules.rng,
            jitter,
        }
    }
}

/// A chunk of data on its way through a direction.
struct Chunk {
    data: Bytes,
    /// How much of it is written already.
    written: usize,
    /// When it may be written (later than when it was read, under latency).
    due: Instant,
    /// The latency toxics of its stream when it was read: while they stand
    /// unchanged it waits until `due`, once they change it goes at once.
    held_by: Arc<LatencyKey>,
}

/// Which latency toxics (name, revision) a stream has, whether or not their
/// toxicity makes them active on a given connection.
type LatencyKey = Vec<(String, u64)>;

/// The latency toxics of one stream in `rules`.
fn latency_key(rules: &[EdgeToxic], upstream: bool) -> LatencyKey {
    rules
        .iter()
        .filter(|toxic| toxic.is_latency_on(upstream))
        .map(|toxic| (toxic.name.clone(), toxic.revision))
        .collect()
}

/// Copies `from` to `to` under the edge toxics of one direction, in one loop that
/// reads chunks, stamps each with when it is due, and writes them in order once
/// due. A chunk whose stream's latency toxics were removed or updated since it
/// was read goes out at once. When an active `reset_peer` toxic meets data, the
/// data is dropped, reading stops, and after the toxic's timeout the direction
/// ends with [`PumpEnd::Reset`]. Otherwise it ends when the source has closed
/// and everything held is written (then `to` is shut down for writing), or when
/// `to` fails.
async fn pump<R, W>(from: &mut R, to: &mut W, mut direction: Direction<'_>) -> PumpEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let upstream = direction.upstream;
    let mut buf = vec![0u8; RELAY_BUFFER_BYTES];
    let mut decisions = Decisions::default();
    let (mut active, mut held_by) = {
        let rules = direction.rules.borrow_and_update();
        (
            decisions.active(&rules, upstream, direction.rng),
            Arc::new(latency_key(&rules, upstream)),
        )
    };
    let mut held: VecDeque<Chunk> = VecDeque::new();
    let (mut watching, mut source_open) = (true, true);
    loop {
        if !source_open && held.is_empty() {
            let _ = to.shutdown().await;
            return PumpEnd::Closed;
        }
        // The first chunk goes out now if it is due or its latency was lifted.
        let now = Instant::now();
        let (head_ready, head_due) = match held.front() {
            Some(head) => (head.due <= now || head.held_by != held_by, Some(head.due)),
            None => (false, None),
        };
        tokio::select! {
            // Rule changes first: the API answers once a change is published,
            // so data sent after that answer must meet the new rules.
            biased;
            changed = direction.rules.changed(), if watching => {
                if changed.is_err() {
                    // The proxy is stopping; `shutdown` ends the connection.
                    watching = false;
                } else {
                    let rules = direction.rules.borrow_and_update();
                    active = decisions.active(&rules, upstream, direction.rng);
                    held_by = Arc::new(latency_key(&rules, upstream));
                }
            }
            written = write_head(to, held.front()), if head_ready => {
                match written {
                    Ok(n) => {
                        let done = held.front_mut().is_some_and(|head| {
                            head.written += n;
                            head.written == head.data.len()
                        });
                        if done {
                            held.pop_front();
                        }
                    }
                    Err(_) => return PumpEnd::Closed,
                }
            }
            () = sleep_until_due(head_due), if !head_ready && head_due.is_some() => {}
            read = from.read(&mut buf), if source_open && held.len() < HELD_CHUNKS => {
                let n = match read {
                    Ok(0) | Err(_) => {
                        source_open = false;
                        continue;
                    }
                    Ok(n) => n,
                };
                if let Some(timeout) = active.reset {
                    tokio::time::sleep(timeout).await;
                    return PumpEnd::Reset;
                }
                let read_at = Instant::now();
                let delay = active.latencies.iter().fold(Duration::ZERO, |total, (latency, jitter)| {
                    total.saturating_add(direction.jitter.jittered(*latency, *jitter))
                });
                held.push_back(Chunk {
                    data: Bytes::copy_from_slice(&buf[..n]),
                    written: 0,
                    due: read_at + delay,
                    held_by: held_by.clone(),
                });
            }
        }
    }
}

/// Writes what is left of `head` (cancel safe: a write either happens or not).
async fn write_head<W>(to: &mut W, head: Option<&Chunk>) -> std::io::Result<usize>
where
    W: AsyncWrite + Unpin,
{
    match head {
        Some(head) => match to.write(&head.data[head.written..]).await? {
            0 => Err(std::io::ErrorKind::WriteZero.into()),
            n => Ok(n),
        },
        None => Ok(0),
    }
}

/// Sleeps until `due` (never returns without one).
async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// The edge toxics active on one direction of a connection.
#[derive(Debug, Default, PartialEq)]
struct Active {
    /// The reset timeout (the shortest, if several `reset_peer` toxics are active).
    reset: Option<Duration>,
    /// Each active latency toxic's latency and jitter.
    latencies: Vec<(Duration, Duration)>,
}

/// Whether each edge toxic is active on one connection's direction, decided
/// once per toxic revision.
#[derive(Debug, Default)]
struct Decisions {
    /// Toxic name → (revision decided for, active).
    by_name: HashMap<String, (u64, bool)>,
}

impl Decisions {
    /// The toxics active on this direction, drawing a decision for every new
    /// toxic revision.
    fn active(&mut self, rules: &[EdgeToxic], upstream: bool, rng: &Mutex<SplitMix64>) -> Active {
        self.by_name
            .retain(|name, _| rules.iter().any(|rule| rule.name == *name));
        let mut active = Active::default();
        for rule in rules.iter().filter(|rule| rule.upstream == upstream) {
            let is_active = match self.by_name.get(&rule.name) {
                Some((revision, is_active)) if *revision == rule.revision => *is_active,
                _ => {
                    let is_active = lock(rng).next_f32() < rule.toxicity;
                    self.by_name
                        .insert(rule.name.clone(), (rule.revision, is_active));
                    is_active
                }
            };
            if !is_active {
                continue;
            }
            match rule.effect {
                EdgeEffect::ResetPeer { timeout } => {
                    active.reset = Some(active.reset.map_or(timeout, |armed| armed.min(timeout)));
                }
                EdgeEffect::Latency { latency, jitter } => active.latencies.push((latency, jitter)),
            }
        }
        active
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::client::{DOWNSTREAM, Toxic, ToxiproxyClient, UPSTREAM};
    use crate::faults::testutil::{
        IO_DEADLINE, closed_within, proxy_to_echo, round_trip, start_echo, start_server,
        with_deadline,
    };
    use serde_json::json;
    use std::io::ErrorKind;
    use tokio::time::Instant;

    fn reset_peer(name: &str, stream: &str, timeout_ms: u64) -> Toxic {
        Toxic::new(name, "reset_peer", stream, json!({ "timeout": timeout_ms }))
    }

    /// Writes `payload`, then reads until the connection ends; returns how it
    /// ended and when, measured from the write.
    async fn write_then_read_end(conn: &mut TcpStream, payload: &[u8]) -> (ErrorKind, Duration) {
        let started = Instant::now();
        conn.write_all(payload).await.unwrap();
        let mut buf = [0u8; 64];
        let ended = tokio::time::timeout(IO_DEADLINE, async {
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) => return ErrorKind::UnexpectedEof,
                    Ok(_) => continue,
                    Err(err) => return err.kind(),
                }
            }
        })
        .await
        .unwrap_or(ErrorKind::TimedOut);
        (ended, started.elapsed())
    }

    #[test]
    fn splitmix_is_seeded_and_uniform() {
        let draws = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..5).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        let mut rng = SplitMix64::new(1);
        let floats: Vec<f32> = (0..10_000).map(|_| rng.next_f32()).collect();
        assert!(floats.iter().all(|f| (0.0..1.0).contains(f)));
        let below_half = floats.iter().filter(|f| **f < 0.5).count();
        assert!((4_500..5_500).contains(&below_half), "{below_half}");
        assert_eq!(proxy_seed(7, "xds"), proxy_seed(7, "xds"));
        assert_ne!(proxy_seed(7, "xds"), proxy_seed(7, "data"));
        assert_ne!(proxy_seed(7, "xds"), proxy_seed(8, "xds"));
    }

    #[test]
    fn jitter_stays_within_its_spread() {
        let mut rng = SplitMix64::new(5);
        let base = Duration::from_millis(100);
        let spread = Duration::from_millis(40);
        let draws: Vec<Duration> = (0..2_000).map(|_| rng.jittered(base, spread)).collect();
        assert!(
            draws
                .iter()
                .all(|d| (base - spread..=base + spread).contains(d))
        );
        assert!(draws.iter().any(|d| *d < Duration::from_millis(70)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(130)));
        // Never below zero, and no spread means no draw.
        assert!((0..100).all(|_| rng.jittered(Duration::from_millis(1), spread) <= spread + base));
        assert_eq!(rng.jittered(base, Duration::ZERO), base);
    }

    #[test]
    fn decisions_are_drawn_once_per_revision() {
        let rng = Mutex::new(SplitMix64::new(3));
        let reset = |toxicity, revision, timeout_ms| EdgeToxic {
            name: "r".to_owned(),
            upstream: true,
            effect: EdgeEffect::ResetPeer {
                timeout: Duration::from_millis(timeout_ms),
            },
            toxicity,
            revision,
        };
        let armed = |active: Active| active.reset;
        let mut decisions = Decisions::default();
        assert_eq!(
            armed(decisions.active(&[reset(1.0, 1, 50)], true, &rng)),
            Some(Duration::from_millis(50))
        );
        // The other direction is not armed by an upstream rule.
        assert_eq!(
            armed(Decisions::default().active(&[reset(1.0, 1, 50)], false, &rng)),
            None
        );
        // Same revision: the earlier decision stands even if toxicity changed.
        assert_eq!(
            armed(decisions.active(&[reset(0.0, 1, 50)], true, &rng)),
            Some(Duration::from_millis(50))
        );
        // A new revision draws again.
        assert_eq!(
            armed(decisions.active(&[reset(0.0, 2, 50)], true, &rng)),
            None
        );
        // The shortest timeout of several active rules wins.
        let mut second = reset(1.0, 3, 10);
        second.name = "s".to_owned();
        assert_eq!(
            armed(decisions.active(&[reset(1.0, 4, 50), second], true, &rng)),
            Some(Duration::from_millis(10))
        );
        // Latency toxics are listed, each with its jitter.
        let latency = EdgeToxic {
            name: "l".to_owned(),
            upstream: true,
            effect: EdgeEffect::Latency {
                latency: Duration::from_millis(30),
                jitter: Duration::from_millis(5),
            },
            toxicity: 1.0,
            revision: 5,
        };
        assert_eq!(
            decisions.active(&[latency], true, &rng),
            Active {
                reset: None,
                latencies: vec![(Duration::from_millis(30), Duration::from_millis(5))],
            }
        );
    }

    /// Echoes of `chunks` separate writes on one connection, read back whole.
    async fn write_chunks(conn: &mut TcpStream, chunks: usize) -> Vec<u8> {
        let mut sent = Vec::new();
        for index in 0..chunks {
            let chunk = format!("chunk {index:03};");
            conn.write_all(chunk.as_bytes()).await.unwrap();
            sent.extend_from_slice(chunk.as_bytes());
            // Separate reads at the edge: each chunk is held on its own.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        sent
    }

    /// Reads exactly `len` bytes, or fails the test after `within`.
    async fn read_exactly(conn: &mut TcpStream, len: usize, within: Duration) -> Vec<u8> {
        let mut got = vec![0u8; len];
        tokio::time::timeout(within, conn.read_exact(&mut got))
            .await
            .expect("the held bytes did not arrive in time")
            .expect("the connection failed");
        got
    }

    #[tokio::test]
    async fn removing_latency_releases_held_bytes_in_order() {
        with_deadline(async {
            let (server, api, proxy) = proxy_to_echo().await;
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            round_trip(&mut conn, b"warm").await.unwrap();
            // Ten seconds each way: nothing would come back before the test's deadline.
            api.add_toxic("link", &Toxic::latency("lag", DOWNSTREAM, 10_000, 0))
                .await
                .unwrap();
            api.add_toxic("link", &Toxic::latency("lag_up", UPSTREAM, 10_000, 0))
                .await
                .unwrap();
            let sent = write_chunks(&mut conn, 20).await;
            let mut early = [0u8; 1];
            assert!(
                tokio::time::timeout(Duration::from_millis(200), conn.read(&mut early))
                    .await
                    .is_err(),
                "data came back through 10 s of latency"
            );
            // The upstream toxic holds them: removing it releases them toward
            // the echo, whose answers the downstream toxic holds in turn.
            let removed = Instant::now();
            api.remove_toxic("link", "lag_up").await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            api.remove_toxic("link", "lag").await.unwrap();
            let got = read_exactly(&mut conn, sent.len(), Duration::from_secs(2)).await;
            assert_eq!(got, sent, "bytes lost or reordered");
            assert!(removed.elapsed() < Duration::from_secs(3));
            // The connection goes on without delay.
            let after = round_trip(&mut conn, b"after").await.unwrap();
            assert!(after < Duration::from_millis(500), "{after:?}");
            server.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn updating_latency_releases_held_bytes_and_delays_new_ones() {
        with_deadline(async {
            let (server, api, proxy) = proxy_to_echo().await;
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            api.add_toxic("link", &Toxic::latency("lag", DOWNSTREAM, 10_000, 0))
                .await
                .unwrap();
            let sent = write_chunks(&mut conn, 5).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            // Down to 300 ms: what is held goes out now, new data waits 300 ms.
            api.update_toxic("link", &Toxic::latency("lag", DOWNSTREAM, 300, 0))
                .await
                .unwrap();
            let got = read_exactly(&mut conn, sent.len(), Duration::from_secs(1)).await;
            assert_eq!(got, sent);
            let lagged = round_trip(&mut conn, b"new").await.unwrap();
            assert!(lagged >= Duration::from_millis(300), "{lagged:?}");
            server.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn latency_holds_a_window_not_one_chunk() {
        with_deadline(async {
            let (server, api, proxy) = proxy_to_echo().await;
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            api.add_toxic("link", &Toxic::latency("lag", DOWNSTREAM, 400, 0))
                .await
                .unwrap();
            // Ten chunks 5 ms apart come back about 400 ms later, not ten times that.
            let started = Instant::now();
            let sent = write_chunks(&mut conn, 10).await;
            let got = read_exactly(&mut conn, sent.len(), Duration::from_secs(2)).await;
            assert_eq!(got, sent);
            let took = started.elapsed();
            assert!(took >= Duration::from_millis(400), "{took:?}");
            assert!(took < Duration::from_millis(1_500), "{took:?}");
            server.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn reset_peer_resets_open_and_new_connections() {
        with_deadline(async {
            let (server, api, proxy) = proxy_to_echo().await;
            let mut open = TcpStream::connect(&proxy.listen).await.unwrap();
            round_trip(&mut open, b"before").await.unwrap();

            // Timeout 0: the first data after the toxic resets the connection at once.
            let added = api
                .add_toxic("link", &reset_peer("reset", UPSTREAM, 0))
                .await
                .unwrap();
            assert_eq!(added.attributes, json!({ "timeout": 0 }));
            let (ended, _) = write_then_read_end(&mut open, b"x").await;
            assert_eq!(ended, ErrorKind::ConnectionReset, "the open connection");
            let mut fresh = TcpStream::connect(&proxy.listen).await.unwrap();
            let (ended, _) = write_then_read_end(&mut fresh, b"x").await;
            assert_eq!(ended, ErrorKind::ConnectionReset, "a new connection");

            // Nothing is reset before data flows.
            let mut idle = TcpStream::connect(&proxy.listen).await.unwrap();
            assert!(
                !closed_within(&mut idle, Duration::from_millis(300)).await,
                "reset_peer reset a connection that sent nothing"
            );

            // Removed: open and new connections carry data again.
            api.remove_toxic("link", "reset").await.unwrap();
            round_trip(&mut idle, b"after").await.unwrap();
            let mut again = TcpStream::connect(&proxy.listen).await.unwrap();
            round_trip(&mut again, b"after").await.unwrap();
            server.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn reset_peer_waits_its_timeout_after_the_first_data() {
        with_deadline(async {
            let server = start_server().await;
            let api = ToxiproxyClient::new(&server.base_url).unwrap();
            let echo = start_echo().await;
            let proxy = api
                .create_proxy("link", "127.0.0.1:0", &echo.to_string())
                .await
                .unwrap();
            // Downstream: the echo's answer is the first data; it never arrives.
            api.add_toxic("link", &reset_peer("reset", DOWNSTREAM, 400))
                .await
                .unwrap();
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            let (ended, took) = write_then_read_end(&mut conn, b"ping").await;
            assert_eq!(ended, ErrorKind::ConnectionReset);
            // (An upper bound is the 3 s deadline of `write_then_read_end`.)
            assert!(
                took >= Duration::from_millis(400),
                "reset after {took:?}, before its 400 ms timeout"
            );

            // Toxicity 0: the toxic is never active.
            let mut never = reset_peer("reset", DOWNSTREAM, 0);
            never.toxicity = 0.0;
            api.update_toxic("link", &never).await.unwrap();
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            for _ in 0..5 {
                round_trip(&mut conn, b"safe").await.unwrap();
            }
            server.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn reset_peer_survives_disable_enable_and_reset_clears_it() {
        with_deadline(async {
            let (server, api, proxy) = proxy_to_echo().await;
            api.add_toxic("link", &reset_peer("reset", UPSTREAM, 0))
                .await
                .unwrap();
            api.set_enabled("link", false).await.unwrap();
            api.set_enabled("link", true).await.unwrap();
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            let (ended, _) = write_then_read_end(&mut conn, b"x").await;
            assert_eq!(ended, ErrorKind::ConnectionReset, "after disable/enable");

            api.reset().await.unwrap();
            assert!(api.toxics("link").await.unwrap().is_empty());
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            round_trip(&mut conn, b"clean").await.unwrap();
            server.stop().await;
        })
        .await;
    }
}
