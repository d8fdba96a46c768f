//! The edge of every proxy: the listener its clients connect to, in front of noxious.
//!
//! noxious owns the sockets of the connections it proxies and offers no way to
//! reset one, so the `reset_peer` toxic cannot be built inside it. Instead each
//! proxy's public `listen` address is served here: every client connection is
//! accepted by the edge and relayed over loopback to the proxy's noxious
//! listener on an internal port, where the other toxics act as before.
//!
//! ```text
//! client <-> edge (reset_peer) <-> noxious (latency, timeout, ...) <-> upstream
//! ```
//!
//! The edge applies `reset_peer` as Toxiproxy does: once the toxic is active on
//! a connection, the first chunk of data on its stream is dropped, nothing more
//! is read on that stream, and `timeout` ms later both sockets of the edge are
//! closed with `SO_LINGER` 0, so the client gets a TCP RST (`ECONNRESET`). The
//! rules reach connections that are already open through a `watch` channel.
//!
//! Randomness (whether a `reset_peer` toxic with a toxicity below 1 is active on
//! a connection) comes from a per-proxy [`SplitMix64`], seeded from the
//! server's seed when it has one.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Read buffer per direction and connection, as noxious and Go's `io.Copy` use.
const RELAY_BUFFER_BYTES: usize = 32 * 1024;

/// One `reset_peer` toxic as the edge runs it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ResetRule {
    /// The toxic's name.
    pub name: String,
    /// True for the `upstream` stream (client to server), false for `downstream`.
    pub upstream: bool,
    /// How long after the first data the connection is reset.
    pub timeout: Duration,
    /// The probability (0.0 to 1.0) that the toxic is active on a connection.
    pub toxicity: f32,
    /// Changes whenever the toxic is added or updated, so that every connection
    /// decides anew whether it is active.
    pub revision: u64,
}

/// The `reset_peer` toxics of one proxy, as published to its connections.
pub(super) type ResetRules = Arc<Vec<ResetRule>>;

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
    /// The current `reset_peer` toxics.
    pub rules: watch::Receiver<ResetRules>,
    /// Decides toxicity for every connection of the proxy.
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
                    tokio::spawn(relay(
                        client,
                        self.inner,
                        self.rules.clone(),
                        self.rng.clone(),
                        self.shutdown.clone(),
                    ));
                }
                // Transient (e.g. out of file descriptors): back off, retry.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
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
    rules: watch::Receiver<ResetRules>,
    rng: Arc<Mutex<SplitMix64>>,
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
        let mut up = pin!(pump(
            &mut client_read,
            &mut inner_write,
            true,
            rules.clone(),
            &rng
        ));
        let mut down = pin!(pump(&mut inner_read, &mut client_write, false, rules, &rng));
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

/// Copies `from` to `to` while watching the `reset_peer` rules of `upstream`'s
/// stream. When an active rule meets data, the data is dropped, reading stops,
/// and after the rule's timeout the pump ends with [`PumpEnd::Reset`].
async fn pump<R, W>(
    from: &mut R,
    to: &mut W,
    upstream: bool,
    mut rules: watch::Receiver<ResetRules>,
    rng: &Mutex<SplitMix64>,
) -> PumpEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; RELAY_BUFFER_BYTES];
    let mut decisions = Decisions::default();
    let mut armed = decisions.armed(&rules.borrow_and_update(), upstream, rng);
    let mut watching = true;
    loop {
        tokio::select! {
            // Rule changes first: the API answers once a change is published,
            // so data sent after that answer must meet the new rules.
            biased;
            changed = rules.changed(), if watching => {
                if changed.is_err() {
                    // The proxy is stopping; `shutdown` ends the connection.
                    watching = false;
                } else {
                    armed = decisions.armed(&rules.borrow_and_update(), upstream, rng);
                }
            }
            read = from.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => {
                        let _ = to.shutdown().await;
                        return PumpEnd::Closed;
                    }
                    Ok(n) => n,
                };
                if let Some(timeout) = armed {
                    tokio::time::sleep(timeout).await;
                    return PumpEnd::Reset;
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    return PumpEnd::Closed;
                }
            }
        }
    }
}

/// Whether each `reset_peer` toxic is active on one connection's direction,
/// decided once per toxic revision.
#[derive(Debug, Default)]
struct Decisions {
    /// Toxic name → (revision decided for, active).
    by_name: HashMap<String, (u64, bool)>,
}

impl Decisions {
    /// The reset timeout of the active rules on this direction (the shortest,
    /// if several are active), drawing a decision for every new rule revision.
    fn armed(
        &mut self,
        rules: &[ResetRule],
        upstream: bool,
        rng: &Mutex<SplitMix64>,
    ) -> Option<Duration> {
        self.by_name
            .retain(|name, _| rules.iter().any(|rule| rule.name == *name));
        let mut armed: Option<Duration> = None;
        for rule in rules.iter().filter(|rule| rule.upstream == upstream) {
            let active = match self.by_name.get(&rule.name) {
                Some((revision, active)) if *revision == rule.revision => *active,
                _ => {
                    let draw = rng
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .next_f32();
                    let active = draw < rule.toxicity;
                    self.by_name
                        .insert(rule.name.clone(), (rule.revision, active));
                    active
                }
            };
            if active {
                armed = Some(armed.map_or(rule.timeout, |timeout| timeout.min(rule.timeout)));
            }
        }
        armed
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
    fn decisions_are_drawn_once_per_revision() {
        let rng = Mutex::new(SplitMix64::new(3));
        let rule = |toxicity, revision, timeout_ms| ResetRule {
            name: "r".to_owned(),
            upstream: true,
            timeout: Duration::from_millis(timeout_ms),
            toxicity,
            revision,
        };
        let mut decisions = Decisions::default();
        assert_eq!(
            decisions.armed(&[rule(1.0, 1, 50)], true, &rng),
            Some(Duration::from_millis(50))
        );
        // The other direction is not armed by an upstream rule.
        assert_eq!(
            Decisions::default().armed(&[rule(1.0, 1, 50)], false, &rng),
            None
        );
        // Same revision: the earlier decision stands even if toxicity changed.
        assert_eq!(
            decisions.armed(&[rule(0.0, 1, 50)], true, &rng),
            Some(Duration::from_millis(50))
        );
        // A new revision draws again.
        assert_eq!(decisions.armed(&[rule(0.0, 2, 50)], true, &rng), None);
        // The shortest timeout of several active rules wins.
        let mut second = rule(1.0, 3, 10);
        second.name = "s".to_owned();
        assert_eq!(
            decisions.armed(&[rule(1.0, 4, 50), second], true, &rng),
            Some(Duration::from_millis(10))
        );
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
