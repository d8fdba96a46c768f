//! The load generator: both loops and the three protocols through real Envoy, the
//! open loop's latency correction against a target that stalls for a known time, and
//! the saturation guard.

mod common;

use std::net::SocketAddr;
use std::time::Duration;
use tether::load::connection::{Protocol, Target};
use tether::load::engine::{self, Config, Pace, Stop, Totals};
use tether::load::record::ErrorKind;
use tether::timeline::{Percentiles, Timeline};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Run the generator in-process.
async fn drive(config: Config) -> Totals {
    engine::run(config, Instant::now(), None, CancellationToken::new()).await
}

fn target(addr: SocketAddr, authority: &str, path: &str) -> Target {
    Target::new(addr, authority, path)
}

async fn both_loops_in_every_protocol_through_real_envoy() {
    let timeline = Timeline::new();
    let (topo, dir) = common::bring_up("fixtures/suites/protocols.yaml", &timeline).await;
    let egress = topo.egress_of("client").unwrap();
    let config = |protocol, target, pace, stop| Config {
        target,
        protocol,
        connections: 2,
        streams: 4,
        pace,
        stop,
        timeout: Duration::from_secs(2),
        spin: 0.0,
        blocking: false,
    };
    let cases = [
        (
            Protocol::Http1,
            target(egress, "web.protocols.local", "/v2/exact"),
            "web-v2",
        ),
        (
            Protocol::H2c,
            target(egress, "h2.protocols.local", "/"),
            "h2-svc",
        ),
        (
            Protocol::Grpc,
            target(egress, "grpc.protocols.local", "/demo.Echo/Say"),
            "grpc-v2",
        ),
    ];
    for (protocol, target, served_by) in cases {
        // Closed loop: a fixed number of requests, as fast as they are answered.
        let closed = drive(config(
            protocol,
            target.clone(),
            Pace::Closed,
            Stop::Requests(300),
        ))
        .await;
        assert_eq!(
            (closed.all.sent, closed.all.ok),
            (300, 300),
            "{protocol:?}: {:?}",
            closed.all.errors
        );
        assert_eq!(closed.all.served_by[served_by], 300, "{protocol:?}");
        // Open loop: 100 requests/s for 2 s, all sent on schedule.
        let open = drive(config(
            protocol,
            target,
            Pace::Open { rate: 100.0 },
            Stop::Duration(Duration::from_secs(2)),
        ))
        .await;
        assert_eq!(
            (open.all.sent, open.all.ok, open.unsent),
            (200, 200, 0),
            "{protocol:?}"
        );
        assert!(
            open.elapsed >= Duration::from_millis(1980),
            "{protocol:?}: the schedule spans the duration, took {:?}",
            open.elapsed
        );
    }

    // The closed loop on threads (a thread per connection, blocking reads) too.
    let threads = drive(Config {
        blocking: true,
        ..config(
            Protocol::Http1,
            target(egress, "web.protocols.local", "/v2/exact"),
            Pace::Closed,
            Stop::Requests(300),
        )
    })
    .await;
    assert_eq!(
        (threads.all.sent, threads.all.ok),
        (300, 300),
        "{:?}",
        threads.all.errors
    );
    assert_eq!(threads.all.served_by["web-v2"], 300);

    // A gRPC call that fails is counted by kind.
    let failing = drive(Config {
        target: target(egress, "grpc.protocols.local", "/demo.Echo/Missing"),
        ..config(
            Protocol::Http1,
            target(egress, "grpc.protocols.local", "/"),
            Pace::Closed,
            Stop::Requests(10),
        )
    })
    .await;
    assert_eq!(
        failing.all.errors.get(&ErrorKind::Status4xx),
        Some(&10),
        "HTTP/1.1 to a gRPC-only route: no route, 404: {:?}",
        failing.all.errors
    );

    topo.shutdown().await;
    assert_eq!(common::processes_of_run(dir.path()), Vec::<String>::new());
}

/// A server that answers at once, except that every answer due between `from` and
/// `until` (after it starts) waits until `until`: a stall of known length.
async fn stalling_server(from: Duration, until: Duration) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let start = Instant::now();
    tokio::spawn(tether::service::serve_http(
        listener,
        CancellationToken::new(),
        move |_req| async move {
            let now = start.elapsed();
            if now >= from && now < until {
                tokio::time::sleep_until(start + until).await;
            }
            Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                bytes::Bytes::from_static(b"ok"),
            )))
        },
    ));
    addr
}

async fn the_open_loop_records_a_one_second_stall_that_the_closed_loop_hides() {
    let run = |pace| async move {
        // The stall starts 1 s after the server (and the run) start, and lasts 1 s.
        let addr = stalling_server(Duration::from_secs(1), Duration::from_secs(2)).await;
        drive(Config {
            target: target(addr, "stall", "/"),
            protocol: Protocol::Http1,
            connections: 4,
            streams: 1,
            pace,
            stop: Stop::Duration(Duration::from_secs(3)),
            timeout: Duration::from_secs(5),
            spin: 0.05,
            blocking: false,
        })
        .await
    };
    let open = run(Pace::Open { rate: 200.0 }).await;
    let closed = run(Pace::Closed).await;
    let (o, c) = (
        Percentiles::of(&open.all.response),
        Percentiles::of(&closed.all.response),
    );
    eprintln!("open loop: {o:?}\nclosed loop: {c:?}");
    // Open: the ~200 requests due during the stall wait out the rest of it, so their
    // latencies spread over 0-1000 ms: the top fifth of the run is above half a second.
    assert_eq!(open.all.sent, 600, "the schedule is kept through the stall");
    assert!(o.max_us >= 900_000, "{o:?}");
    assert!(
        o.p90_us >= 500_000,
        "the stall shows in the percentiles: {o:?}"
    );
    // Closed: only the 4 requests in flight see it; the rest are fast.
    assert!(c.max_us >= 900_000, "{c:?}");
    assert!(
        c.p99_us < 100_000,
        "coordinated omission hides the stall from the closed loop's percentiles: {c:?}"
    );
}

/// The sample service on a loopback port, on a runtime of its own (kept alive by the
/// returned runtime), for `tether load` children to load.
fn sample_target() -> (tokio::runtime::Runtime, SocketAddr) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(tether::service::serve(
        "target".into(),
        None,
        listener,
        CancellationToken::new(),
    ));
    (runtime, addr)
}

fn asking_for_more_than_the_generator_can_do_marks_the_figures_invalid() {
    // Its `tether load` children would count as leftovers of a suite running alongside.
    let (_runtime, addr) = sample_target();
    let load = |rate: &str| {
        let out = std::process::Command::new(common::tether_bin())
            .args([
                "load",
                &format!("http://{addr}/"),
                "-c",
                "8",
                "-d",
                "2s",
                "-R",
                rate,
                "--json",
            ])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), report)
    };
    // Far more than one thread can send: CPU saturated, far behind schedule.
    let (code, report) = load("1000000");
    assert_eq!(code, Some(4), "{report:#}");
    assert_eq!(report["valid"], false, "{report:#}");
    let why = report["invalid_because"].to_string();
    assert!(why.contains("saturated") || why.contains("behind"), "{why}");
    // Negative control: a rate it can keep is valid.
    let (code, report) = load("200");
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["valid"], true, "{report:#}");
    assert_eq!(report["requests"], 400);
}

/// `tether load --json` at `rate` against `addr`; a thread freezes it (SIGSTOP) for
/// `frozen` of every 10 ms while it runs, as a generator starved of CPU would be.
fn starved_load(
    addr: SocketAddr,
    rate: &str,
    frozen: Duration,
) -> (Option<i32>, serde_json::Value) {
    let mut child = std::process::Command::new(common::tether_bin())
        .args([
            "load",
            &format!("http://{addr}/"),
            "-c",
            "4",
            "-d",
            "3s",
            "-R",
            rate,
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let starver = (!frozen.is_zero()).then(|| {
        let done = done.clone();
        std::thread::spawn(move || {
            // Let it start (and its pacer learn the machine) before starving it.
            std::thread::sleep(Duration::from_millis(300));
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: signalling our own child, which we reap only after this stops.
                unsafe { libc::kill(pid, libc::SIGSTOP) };
                std::thread::sleep(frozen);
                unsafe { libc::kill(pid, libc::SIGCONT) };
                std::thread::sleep(Duration::from_millis(10).saturating_sub(frozen));
            }
        })
    });
    // Bounded: the run is 3 s; a frozen child is thawed whatever happens.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(starver) = starver {
        starver.join().unwrap();
    }
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let out = child.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), report)
}

fn a_generator_starved_of_cpu_is_marked_invalid_by_its_lag() {
    let (_runtime, addr) = sample_target();
    // Frozen 7 ms of every 10: most requests leave milliseconds late, though hardly any
    // by more than the 10 ms the p99 bound allows; the median lag is most of the
    // response time.
    let (code, report) = starved_load(addr, "200", Duration::from_millis(7));
    eprintln!("starved: {report:#}");
    assert_eq!(code, Some(4), "{report:#}");
    assert_eq!(report["valid"], false, "{report:#}");
    let why = report["invalid_because"].to_string();
    assert!(why.contains("of the median response time"), "{why}");
    let (lag, response, service) = (
        report["lag"]["p50_us"].as_u64().unwrap(),
        report["response"]["p50_us"].as_u64().unwrap(),
        report["service"]["p50_us"].as_u64().unwrap(),
    );
    assert!(lag * 4 > response, "lag {lag} µs, response {response} µs");
    assert!(
        service < response,
        "service {service} µs, response {response} µs"
    );
    // Negative control: the same run, not starved, is valid.
    let (code, report) = starved_load(addr, "200", Duration::ZERO);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["valid"], true, "{report:#}");
}

async fn the_proxy_overhead_suite_measures_what_the_sidecar_adds() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = common::run_suite("suites/proxy-overhead.yaml", dir.path()).await;
    let v = outcome.verdict("proxy_overhead").unwrap();
    assert_eq!(v.outcome, tether::checks::Outcome::Passed, "{v:#?}");
    let ratio = v.measurement("throughput_ratio").unwrap();
    assert!(ratio.value > 0.0 && ratio.value < 1.5, "{v:#?}");
    assert_eq!(common::processes_of_run(dir.path()), Vec::<String>::new());
}

async fn negative_control_a_sidecar_that_sheds_load_fails_the_overhead_check() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = common::run_suite(
        "suites/negative/proxy-overhead-pool-too-small.yaml",
        dir.path(),
    )
    .await;
    let v = outcome.verdict("proxy_overhead").unwrap();
    assert_eq!(v.outcome, tether::checks::Outcome::Failed, "{v:#?}");
    assert!(v.detail.contains("failed"), "{v:#?}");
}

/// `tether load` reads a wrk command line: `-d` in seconds, SI suffixes, `-H` headers
/// (`Host` the virtual host), `--latency`; a bad number or header is refused (exit 2).
fn tether_load_takes_a_wrk_command_line() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let record = seen.clone();
    runtime.spawn(tether::service::serve_http(
        listener,
        CancellationToken::new(),
        move |req: hyper::Request<hyper::body::Incoming>| {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            record
                .lock()
                .unwrap()
                .push((header("host"), header("x-test")));
            async {
                Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                    bytes::Bytes::from_static(b"ok"),
                )))
            }
        },
    ));
    let load = |args: &[&str]| {
        std::process::Command::new(common::tether_bin())
            .arg("load")
            .arg(format!("http://{addr}/"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = load(&[
        "-c",
        "2",
        "-d",
        "1",
        "-R",
        "0.2k",
        "-H",
        "Host: svc.local",
        "-H",
        "X-Test: yes",
        "--latency",
        "--json",
        // What this test reads is the command line, not the saturation guard (its own
        // tests are above): a test run beside it on two cores may make the generator
        // lag, which the guard rightly calls invalid (exit 4).
        "--max-lag-share",
        "1000",
        "--max-lag",
        "1s",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["requests"], 200,
        "-d 1 is one second at -R 0.2k: {report:#}"
    );
    assert_eq!(report["connections"], 2);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 200);
    assert!(
        seen.iter()
            .all(|(host, test)| host == "svc.local" && test == "yes"),
        "every request carried the headers: {:?}",
        &seen[..3]
    );
    // Negative controls: what wrk would refuse, refused in one line with exit 2.
    for (args, says) in [
        (&["-R", "10x"][..], "`10x`"),
        (&["-H", "no colon"][..], "Name: value"),
        (&["-d", "ten"][..], "`ten`"),
    ] {
        let out = load(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let help = std::process::Command::new(common::tether_bin())
        .args(["load", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Where oha and hey differ"), "{help}");
}

fn main() -> std::process::ExitCode {
    use common::harness::Need;
    common::harness::main(vec![
        case!(async both_loops_in_every_protocol_through_real_envoy).needs(&[Need::Envoy]),
        case!(async the_open_loop_records_a_one_second_stall_that_the_closed_loop_hides).alone(),
        case!(asking_for_more_than_the_generator_can_do_marks_the_figures_invalid).alone(),
        case!(a_generator_starved_of_cpu_is_marked_invalid_by_its_lag).alone(),
        case!(async the_proxy_overhead_suite_measures_what_the_sidecar_adds).needs(&[Need::Envoy]),
        case!(async negative_control_a_sidecar_that_sheds_load_fails_the_overhead_check)
            .needs(&[Need::Envoy]),
        case!(tether_load_takes_a_wrk_command_line).alone(),
    ])
}
