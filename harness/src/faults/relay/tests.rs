//! The relay's tests: its random draws and decisions, and every toxic end to end.

use super::*;
use super::{Effect as EdgeEffect, RelayToxic as EdgeToxic};
use crate::faults::client::{DOWNSTREAM, Toxic, ToxiproxyClient, UPSTREAM};
use crate::faults::testutil::{
    IO_DEADLINE, closed_within, proxy_to_echo, round_trip, start_echo, start_server, with_deadline,
};
use serde_json::json;
use std::io::ErrorKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// What a direction's active toxics do, as edge.rs (which ran only
/// `reset_peer` and `latency`) saw it.
#[derive(Debug, PartialEq)]
struct Active {
    reset: Option<Duration>,
    latencies: Vec<(Duration, Duration)>,
}

/// The relay's toxicity decisions, seen as edge.rs saw them.
#[derive(Default)]
struct Decisions(active::Decisions);

impl Decisions {
    fn active(&mut self, rules: &[EdgeToxic], upstream: bool, rng: &Mutex<SplitMix64>) -> Active {
        let active = self.0.active(rules, upstream, rng, Instant::now());
        let latencies = active.timing.iter().filter_map(|effect| match effect {
            EdgeEffect::Latency { latency, jitter } => Some((*latency, *jitter)),
            _ => None,
        });
        Active {
            reset: active.reset,
            latencies: latencies.collect(),
        }
    }
}

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
