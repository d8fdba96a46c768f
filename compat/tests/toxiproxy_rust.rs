//! A third-party Toxiproxy client, `toxiproxy_rust`, drives tether's fault server (and,
//! where `toxiproxy-server` is on PATH, Shopify's own, through the same steps).
//!
//! `toxiproxy_rust` is blocking and panics on some HTTP errors, so tether never
//! uses it itself; here it stands for the clients users already have. Its
//! `Client::new` takes any address (only its `TOXIPROXY` static is tied to
//! 127.0.0.1:8474), so the server runs in-process on a free loopback port and
//! cannot collide with a real Toxiproxy. The client runs on a plain thread; the
//! server on its own tokio runtime; the traffic is real TCP to a loopback echo.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use tether::faults::server::serve;
use tokio_util::sync::CancellationToken;
use toxiproxy_rust::client::Client;
use toxiproxy_rust::proxy::ProxyPack;

/// The whole test fails, instead of hanging, after this.
const TEST_DEADLINE: Duration = Duration::from_secs(60);
/// Each socket read or write fails after this.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// A round trip through an untouched proxy on loopback takes far less than this.
const FAST: Duration = Duration::from_millis(250);

/// tether's fault server on its own runtime thread.
struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    thread: thread::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let thread = thread::spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                serve(listener, token).await
            })
        });
        Server {
            addr,
            shutdown,
            thread,
        }
    }

    /// Stops the server; fails if `serve` failed.
    fn stop(self) {
        self.shutdown.cancel();
        self.thread
            .join()
            .expect("the server thread panicked")
            .expect("serve failed");
    }
}

/// A TCP echo server on loopback, for as long as the test process lives.
fn start_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Connects to `addr` with bounded reads and writes.
fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let conn = TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(conn)
}

/// Sends `payload` on `conn`, reads the echo back, checks it; returns how long it took.
fn round_trip(conn: &mut TcpStream, payload: &[u8]) -> std::io::Result<Duration> {
    let started = Instant::now();
    conn.write_all(payload)?;
    let mut answer = vec![0u8; payload.len()];
    conn.read_exact(&mut answer)?;
    if answer != payload {
        return Err(std::io::Error::other("the echo answered something else"));
    }
    Ok(started.elapsed())
}

/// True if the peer closed `conn` (EOF or reset) within 2 s.
fn closed(conn: &mut TcpStream) -> bool {
    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 16];
    match conn.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => !matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

/// True if `addr` refuses a connection or closes it at once.
fn refuses(addr: &str) -> bool {
    match connect(addr) {
        Err(_) => true,
        Ok(mut conn) => {
            let _ = conn.write_all(b"x");
            closed(&mut conn)
        }
    }
}

/// What the third-party client does, step by step, against a running server (tether's
/// own when `tether` is set, which says so in its version).
fn drive(api: SocketAddr, echo: SocketAddr, tether: bool) {
    let client = Client::new(api);
    assert!(client.is_running());
    let version = client.version().unwrap();
    assert_eq!(version.contains("-tether"), tether, "{version}");

    // Populate: one proxy on a free port; the answer shows the real address.
    let created = client
        .populate(vec![ProxyPack::new(
            "echo".into(),
            "127.0.0.1:0".into(),
            echo.to_string(),
        )])
        .unwrap();
    assert_eq!(created.len(), 1);
    let listen = created[0].proxy_pack.listen.clone();
    assert!(
        listen.starts_with("127.0.0.1:") && !listen.ends_with(":0"),
        "{listen}"
    );
    assert!(created[0].proxy_pack.enabled);
    let all = client.all().unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), vec!["echo"]);

    let mut conn = connect(&listen).unwrap();
    let before = round_trip(&mut conn, b"hello").unwrap();
    assert!(before < FAST, "untouched round trip took {before:?}");

    // Latency on the answers, for the span of `apply`, then removed by it.
    let proxy = client.find_and_reset_proxy("echo").unwrap();
    proxy
        .with_latency("downstream".into(), 300, 0, 1.0)
        .apply(|| {
            let toxics = proxy.toxics().unwrap();
            assert_eq!(toxics.len(), 1);
            assert_eq!(toxics[0].r#type, "latency");
            assert_eq!(toxics[0].attributes["latency"], 300);
            // On the connection opened before the toxic, and on a new one.
            let took = round_trip(&mut conn, b"slow").unwrap();
            assert!(
                took >= Duration::from_millis(300),
                "{took:?} with 300 ms latency"
            );
            let mut fresh = connect(&listen).unwrap();
            let took = round_trip(&mut fresh, b"slow too").unwrap();
            assert!(
                took >= Duration::from_millis(300),
                "{took:?} with 300 ms latency"
            );
        })
        .unwrap();
    assert!(proxy.toxics().unwrap().is_empty());
    let after = round_trip(&mut conn, b"fast again").unwrap();
    assert!(
        after < FAST,
        "round trip after the toxic was removed took {after:?}"
    );

    // Down: the open connection is closed and new ones are refused; up again after.
    proxy
        .with_down(|| {
            assert!(
                closed(&mut conn),
                "an open connection survived the proxy going down"
            );
            assert!(refuses(&listen), "a down proxy took a connection");
            assert!(!client.find_proxy("echo").unwrap().proxy_pack.enabled);
        })
        .unwrap();
    assert!(client.find_proxy("echo").unwrap().proxy_pack.enabled);
    let mut conn = connect(&listen).unwrap();
    round_trip(&mut conn, b"back up").unwrap();

    // A missing proxy is an error, not a panic; reset answers.
    assert!(client.find_proxy("missing").is_err());
    client.reset().unwrap();
    assert!(client.find_proxy("echo").unwrap().proxy_pack.enabled);
}

#[test]
fn toxiproxy_rust_drives_tether_fault_server() {
    let server = Server::start();
    drive_within_deadline(server.addr, true);
    server.stop();
}

/// The same steps against Shopify's Toxiproxy where `toxiproxy-server` is on PATH, so
/// tether's server is held to the real one's behaviour (and tether's use of it).
#[test]
fn toxiproxy_rust_drives_a_real_toxiproxy_when_one_is_on_path() {
    let choice = tether::faults::FaultProxyChoice::Toxiproxy;
    let Ok(tether::faults::FaultProxy::Toxiproxy(binary)) =
        tether::faults::FaultProxy::choose(choice)
    else {
        eprintln!(
            "\n\n*** NOT RUN against a real Toxiproxy: `toxiproxy-server` is not on PATH (only tether's own server was driven) ***\n\n"
        );
        return;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(&binary)
        .args(["-host", "127.0.0.1", "-port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let api = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    while TcpStream::connect(api).is_err() && started.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(50));
    }
    let outcome = std::panic::catch_unwind(|| drive_within_deadline(api, false));
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// [`drive`] the server at `api` on a plain thread (the client blocks); a hang fails.
fn drive_within_deadline(api: SocketAddr, tether: bool) {
    let echo = start_echo();
    let (done_tx, done_rx) = mpsc::channel();
    let driver = thread::spawn(move || {
        drive(api, echo, tether);
        let _ = done_tx.send(());
    });
    match done_rx.recv_timeout(TEST_DEADLINE) {
        // Finished, or panicked (the sender is dropped): join, and pass a panic on.
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = driver.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("the client did not finish within {TEST_DEADLINE:?}")
        }
    }
}
