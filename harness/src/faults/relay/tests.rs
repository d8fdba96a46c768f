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

/// How one upstream connection ended, as [`start_recorder`] saw it.
#[derive(Debug)]
struct Recorded {
    /// Every byte it read.
    bytes: Vec<u8>,
    /// `UnexpectedEof` for a FIN, else the read error.
    end: ErrorKind,
}

/// An upstream that reads each connection to its end without answering and
/// reports what it read and how it ended.
async fn start_recorder() -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<Recorded>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (report, recorded) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let report = report.clone();
            tokio::spawn(async move {
                let mut bytes = Vec::new();
                let mut buf = [0u8; 4096];
                let end = loop {
                    match conn.read(&mut buf).await {
                        Ok(0) => break ErrorKind::UnexpectedEof,
                        Ok(n) => bytes.extend_from_slice(&buf[..n]),
                        Err(err) => break err.kind(),
                    }
                };
                let _ = report.send(Recorded { bytes, end });
            });
        }
    });
    (addr, recorded)
}

/// A server with one proxy, `link`, in front of `upstream`.
async fn proxy_to(
    upstream: std::net::SocketAddr,
) -> (
    crate::faults::testutil::TestServer,
    ToxiproxyClient,
    crate::faults::client::Proxy,
) {
    let server = start_server().await;
    let api = ToxiproxyClient::new(&server.base_url).unwrap();
    let proxy = api
        .create_proxy("link", "127.0.0.1:0", &upstream.to_string())
        .await
        .unwrap();
    (server, api, proxy)
}

/// The next connection `recorded` reports, within [`IO_DEADLINE`].
async fn next_recorded(recorded: &mut tokio::sync::mpsc::UnboundedReceiver<Recorded>) -> Recorded {
    tokio::time::timeout(IO_DEADLINE, recorded.recv())
        .await
        .expect("the upstream connection did not end in time")
        .expect("the recorder stopped")
}

#[tokio::test]
async fn reset_peer_resets_the_upstream_too() {
    with_deadline(async {
        let (upstream, mut recorded) = start_recorder().await;
        let (server, api, proxy) = proxy_to(upstream).await;
        api.add_toxic("link", &reset_peer("reset", UPSTREAM, 0))
            .await
            .unwrap();
        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        let (ended, _) = write_then_read_end(&mut conn, b"x").await;
        assert_eq!(ended, ErrorKind::ConnectionReset, "the client");
        let upstream_end = next_recorded(&mut recorded).await;
        assert_eq!(upstream_end.end, ErrorKind::ConnectionReset, "the upstream");
        assert!(upstream_end.bytes.is_empty(), "{upstream_end:?}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn slow_close_delays_the_fin_on_either_stream() {
    with_deadline(async {
        for stream in [UPSTREAM, DOWNSTREAM] {
            let (server, api, proxy) = proxy_to_echo().await;
            let toxic = Toxic::new("slow", "slow_close", stream, json!({ "delay": 400 }));
            api.add_toxic("link", &toxic).await.unwrap();
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            round_trip(&mut conn, b"before the close").await.unwrap();
            // Our FIN reaches the echo, which closes; its FIN comes back to us.
            let started = Instant::now();
            conn.shutdown().await.unwrap();
            assert!(
                closed_within(&mut conn, IO_DEADLINE).await,
                "{stream}: no FIN"
            );
            let took = started.elapsed();
            assert!(
                took >= Duration::from_millis(350),
                "{stream}: the FIN came after {took:?}, before the 400 ms delay"
            );
            server.stop().await;
        }
    })
    .await;
}

#[tokio::test]
async fn timeout_drops_data_and_closes_after_its_timeout() {
    with_deadline(async {
        for stream in [UPSTREAM, DOWNSTREAM] {
            let (server, api, proxy) = proxy_to_echo().await;
            let mut open = TcpStream::connect(&proxy.listen).await.unwrap();
            round_trip(&mut open, b"before").await.unwrap();
            let toxic = Toxic::new("cut", "timeout", stream, json!({ "timeout": 300 }));
            let added = Instant::now();
            api.add_toxic("link", &toxic).await.unwrap();
            let mut fresh = TcpStream::connect(&proxy.listen).await.unwrap();
            for conn in [&mut open, &mut fresh] {
                // Nothing comes back; the connection closes about 300 ms in.
                conn.write_all(b"lost").await.unwrap();
                assert!(
                    closed_within(conn, IO_DEADLINE).await,
                    "{stream}: still open"
                );
            }
            let took = added.elapsed();
            assert!(
                took >= Duration::from_millis(250),
                "{stream}: closed after {took:?}"
            );
            server.stop().await;
        }
    })
    .await;
}

#[tokio::test]
async fn timeout_zero_reads_and_drops_for_ever() {
    with_deadline(async {
        let (upstream, mut recorded) = start_recorder().await;
        let (server, api, proxy) = proxy_to(upstream).await;
        api.add_toxic("link", &Toxic::blackhole("hole", UPSTREAM))
            .await
            .unwrap();
        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        // Far more than the socket buffers hold: the proxy reads it all and drops it.
        let payload = vec![1u8; 8 * 1024 * 1024];
        tokio::time::timeout(IO_DEADLINE, conn.write_all(&payload))
            .await
            .expect("the blackhole stopped reading")
            .unwrap();
        assert!(
            !closed_within(&mut conn, Duration::from_millis(300)).await,
            "a blackhole closed the connection"
        );
        // Closing it passes the close on; nothing ever reached the upstream.
        drop(conn);
        let upstream_end = next_recorded(&mut recorded).await;
        assert!(
            upstream_end.bytes.is_empty(),
            "{} bytes",
            upstream_end.bytes.len()
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn limit_data_on_upstream_passes_the_limit_then_closes() {
    with_deadline(async {
        let (upstream, mut recorded) = start_recorder().await;
        let (server, api, proxy) = proxy_to(upstream).await;
        let limit = Toxic::new("limit", "limit_data", UPSTREAM, json!({ "bytes": 5 }));
        api.add_toxic("link", &limit).await.unwrap();
        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        conn.write_all(b"0123456789").await.unwrap();
        assert!(closed_within(&mut conn, IO_DEADLINE).await, "still open");
        let upstream_end = next_recorded(&mut recorded).await;
        assert_eq!(upstream_end.bytes, b"01234");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn slicer_delivers_all_bytes_in_order_on_either_stream() {
    with_deadline(async {
        for stream in [UPSTREAM, DOWNSTREAM] {
            let (server, api, proxy) = proxy_to_echo().await;
            let slicer = Toxic::new(
                "slices",
                "slicer",
                stream,
                json!({ "average_size": 100, "size_variation": 60, "delay": 50 }),
            );
            api.add_toxic("link", &slicer).await.unwrap();
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            let payload: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
            round_trip(&mut conn, &payload).await.unwrap();
            // Degenerate attributes neither spin nor fail.
            let degenerate = Toxic {
                attributes: json!({ "average_size": 0, "size_variation": 9, "delay": 0 }),
                ..slicer
            };
            api.update_toxic("link", &degenerate).await.unwrap();
            round_trip(&mut conn, &payload[..2_000]).await.unwrap();
            server.stop().await;
        }
    })
    .await;
}

#[tokio::test]
async fn bandwidth_limits_the_upstream_stream() {
    with_deadline(async {
        let (server, api, proxy) = proxy_to_echo().await;
        let payload = vec![7u8; 5000];
        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        // 10 KB/s: 5000 bytes take about 500 ms.
        let toxic = Toxic::new("bw", "bandwidth", UPSTREAM, json!({ "rate": 10 }));
        api.add_toxic("link", &toxic).await.unwrap();
        let limited = round_trip(&mut conn, &payload).await.unwrap();
        assert!(
            limited >= Duration::from_millis(400),
            "5000 bytes at 10 KB/s took {limited:?}"
        );
        // Rate 0 is unlimited.
        let unlimited = Toxic {
            attributes: json!({ "rate": 0 }),
            ..toxic
        };
        api.update_toxic("link", &unlimited).await.unwrap();
        let took = round_trip(&mut conn, &payload).await.unwrap();
        assert!(took < Duration::from_millis(400), "rate 0 took {took:?}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn toxicity_zero_is_never_active() {
    with_deadline(async {
        let (server, api, proxy) = proxy_to_echo().await;
        let toxics = [
            ("latency", json!({ "latency": 10_000 })),
            ("timeout", json!({ "timeout": 0 })),
            ("bandwidth", json!({ "rate": 1 })),
            ("slow_close", json!({ "delay": 10_000 })),
            ("slicer", json!({ "average_size": 1, "delay": 100_000 })),
            ("limit_data", json!({ "bytes": 0 })),
            ("reset_peer", json!({ "timeout": 0 })),
        ];
        for stream in [UPSTREAM, DOWNSTREAM] {
            for (kind, attributes) in &toxics {
                let mut toxic = Toxic::new(
                    &format!("{kind}_{stream}"),
                    kind,
                    stream,
                    attributes.clone(),
                );
                toxic.toxicity = 0.0;
                api.add_toxic("link", &toxic).await.unwrap();
            }
        }
        for _ in 0..5 {
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            let took = round_trip(&mut conn, b"untouched").await.unwrap();
            assert!(took < Duration::from_secs(1), "{took:?}");
            // Nor does the close wait.
            conn.shutdown().await.unwrap();
            assert!(closed_within(&mut conn, Duration::from_secs(2)).await);
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_upstream_closes_the_client() {
    with_deadline(async {
        let (server, _api, proxy) = proxy_to(crate::faults::testutil::unused_addr()).await;
        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        assert!(closed_within(&mut conn, Duration::from_secs(2)).await);
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn toxics_on_one_stream_add_up_in_order() {
    with_deadline(async {
        let (server, api, proxy) = proxy_to_echo().await;
        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        // 200 ms latency, then 10 KB/s: 2000 bytes take about 200 + 200 ms.
        api.add_toxic("link", &Toxic::latency("lag", DOWNSTREAM, 200, 0))
            .await
            .unwrap();
        let bandwidth = Toxic::new("bw", "bandwidth", DOWNSTREAM, json!({ "rate": 10 }));
        api.add_toxic("link", &bandwidth).await.unwrap();
        let payload = vec![3u8; 2000];
        let took = round_trip(&mut conn, &payload).await.unwrap();
        assert!(took >= Duration::from_millis(350), "{took:?}");
        server.stop().await;
    })
    .await;
}
