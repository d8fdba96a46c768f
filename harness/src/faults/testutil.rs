//! Test helpers shared by the `faults` tests: a server on a free loopback port,
//! an echo upstream, and bounded-time I/O.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long any single test may run before it fails instead of hanging.
const TEST_DEADLINE: Duration = Duration::from_secs(30);

/// How long one echo round trip may take in the helpers below.
pub const IO_DEADLINE: Duration = Duration::from_secs(3);

/// Fails the test if `test` does not finish within [`TEST_DEADLINE`].
pub async fn with_deadline<F: Future<Output = ()>>(test: F) {
    if tokio::time::timeout(TEST_DEADLINE, test).await.is_err() {
        panic!("test did not finish within {TEST_DEADLINE:?}");
    }
}

/// A running fault API server.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The API listen address.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    /// Cancels the server and waits for `serve` to return, failing on an error.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("serve did not return after shutdown")
            .expect("serve task panicked");
        result.expect("serve returned an error");
    }
}

/// A fault API server with one proxy, `link`, on a free port in front of an echo server;
/// with the client that made it.
pub async fn proxy_to_echo() -> (
    TestServer,
    super::client::ToxiproxyClient,
    super::client::Proxy,
) {
    let server = start_server().await;
    let api = super::client::ToxiproxyClient::new(&server.base_url).unwrap();
    let echo = start_echo().await;
    let proxy = api
        .create_proxy("link", "127.0.0.1:0", &echo.to_string())
        .await
        .unwrap();
    (server, api, proxy)
}

/// Starts the fault API server on a free loopback port.
pub async fn start_server() -> TestServer {
    start_server_with(super::server::ServeOptions::default()).await
}

/// Starts the fault API server on a free loopback port with `options`.
pub async fn start_server_with(options: super::server::ServeOptions) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(super::server::serve_with(
        listener,
        shutdown.clone(),
        options,
    ));
    TestServer {
        base_url: format!("http://{addr}"),
        addr,
        shutdown,
        task,
    }
}

/// Starts a TCP server that echoes every byte back; returns its address.
pub async fn start_echo() -> SocketAddr {
    start_tagged_echo(b"").await
}

/// Starts a TCP echo server that answers every read with `tag` + the bytes read.
pub async fn start_tagged_echo(tag: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let mut answer = tag.to_vec();
                            answer.extend_from_slice(&buf[..n]);
                            if stream.write_all(&answer).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// A loopback address nobody listens on (bound once, then released).
pub fn unused_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Writes `payload` and reads back exactly as many bytes, which must equal it.
/// Returns how long the round trip took; errors on I/O failure or after [`IO_DEADLINE`].
pub async fn round_trip(conn: &mut TcpStream, payload: &[u8]) -> io::Result<Duration> {
    let answer = exchange(conn, payload, payload.len()).await?;
    if answer.0 != payload {
        return Err(io::Error::other(format!(
            "echo answered {:?}, expected {:?}",
            String::from_utf8_lossy(&answer.0),
            String::from_utf8_lossy(payload)
        )));
    }
    Ok(answer.1)
}

/// Writes `payload` and reads exactly `expect_len` bytes back within [`IO_DEADLINE`].
pub async fn exchange(
    conn: &mut TcpStream,
    payload: &[u8],
    expect_len: usize,
) -> io::Result<(Vec<u8>, Duration)> {
    exchange_within(conn, payload, expect_len, IO_DEADLINE).await
}

/// Writes `payload` and reads exactly `expect_len` bytes back; after `deadline`
/// fails with [`io::ErrorKind::TimedOut`].
pub async fn exchange_within(
    conn: &mut TcpStream,
    payload: &[u8],
    expect_len: usize,
    deadline: Duration,
) -> io::Result<(Vec<u8>, Duration)> {
    let started = tokio::time::Instant::now();
    let io = async {
        conn.write_all(payload).await?;
        let mut answer = vec![0u8; expect_len];
        conn.read_exact(&mut answer).await?;
        Ok::<_, io::Error>(answer)
    };
    match tokio::time::timeout(deadline, io).await {
        Ok(Ok(answer)) => Ok((answer, started.elapsed())),
        Ok(Err(err)) => Err(err),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no echo in time")),
    }
}

/// Waits up to `within` for the peer to close `conn`: true on EOF or a reset,
/// false if the connection is still open (or delivered data) after `within`.
pub async fn closed_within(conn: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(within, conn.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}
