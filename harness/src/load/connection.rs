//! One connection of the generator and one request on it, in each protocol: HTTP/1.1
//! with keep-alive (see [`super::http1`]), HTTP/2 cleartext (h2c, many streams per connection) and gRPC unary
//! (over h2c).

use super::http1::Http1;
use super::record::ErrorKind;
use crate::service::SERVED_BY;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::time::Duration;

/// The protocol the generator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive: one request at a time per connection.
    Http1,
    /// HTTP/2 cleartext, prior knowledge: `streams` requests at a time per connection.
    H2c,
    /// gRPC unary calls (an empty message) over h2c.
    Grpc,
}

impl Protocol {
    /// The name on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "http1",
            Protocol::H2c => "h2c",
            Protocol::Grpc => "grpc",
        }
    }

    /// Does the protocol carry many requests at a time on one connection?
    pub fn multiplexed(self) -> bool {
        !matches!(self, Protocol::Http1)
    }
}

/// Where requests go and what they ask for.
#[derive(Debug, Clone)]
pub struct Target {
    /// The address to connect to.
    pub addr: SocketAddr,
    /// The `Host` (HTTP/1.1) or `:authority` (HTTP/2): a virtual service, say.
    pub authority: String,
    /// The path (for gRPC, `/package.Service/Method`).
    pub path: String,
    /// More headers to send with every request (not `Host`: that is `authority`).
    pub headers: Vec<(String, String)>,
}

impl Target {
    /// `GET path` at `addr` for `authority`, with no more headers.
    pub fn new(addr: SocketAddr, authority: impl Into<String>, path: impl Into<String>) -> Target {
        Target {
            addr,
            authority: authority.into(),
            path: path.into(),
            headers: Vec::new(),
        }
    }
}

/// A connection's request sender.
pub enum Sender {
    /// HTTP/1.1: one request at a time, with the request's bytes made once.
    Http1(Box<Http1<tokio::net::TcpStream>>, std::sync::Arc<[u8]>),
    /// HTTP/2: cloned per stream.
    Http2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    /// Open a connection to `target` in `protocol`, within `timeout`.
    pub async fn connect(
        target: &Target,
        protocol: Protocol,
        timeout: Duration,
    ) -> Result<Sender, ErrorKind> {
        let connect = async {
            let stream = tokio::net::TcpStream::connect(target.addr)
                .await
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
                    _ => ErrorKind::Connect,
                })?;
            let _ = stream.set_nodelay(true);
            Ok(match protocol {
                Protocol::Http1 => Sender::Http1(
                    Box::new(Http1::new(stream)),
                    super::http1::request_bytes(target).into(),
                ),
                Protocol::H2c | Protocol::Grpc => {
                    let (send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                        .await
                        .map_err(|_| ErrorKind::Connect)?;
                    tokio::spawn(conn);
                    Sender::Http2(send)
                }
            })
        };
        tokio::time::timeout(timeout, connect)
            .await
            .unwrap_or(Err(ErrorKind::Connect))
    }

    /// Another sender on the same connection, for another stream (HTTP/2 only).
    pub fn another_stream(&self) -> Option<Sender> {
        match self {
            Sender::Http1(..) => None,
            Sender::Http2(s) => Some(Sender::Http2(s.clone())),
        }
    }

    /// Can the connection take another request (else it must be replaced)?
    pub fn is_open(&self) -> bool {
        match self {
            Sender::Http1(c, _) => c.is_open(),
            Sender::Http2(s) => !s.is_closed(),
        }
    }

    /// Send one request and read the whole answer; `served_by` gets who answered.
    /// The caller bounds it with the request timeout.
    pub async fn request(
        &mut self,
        target: &Target,
        protocol: Protocol,
        served_by: &mut String,
    ) -> Result<(), ErrorKind> {
        let send = match self {
            Sender::Http1(c, request) => {
                return outcome(c.request(request, served_by).await?);
            }
            Sender::Http2(s) => s,
        };
        send.ready().await.map_err(|_| ErrorKind::Reset)?;
        let response = send
            .send_request(build(target, protocol))
            .await
            .map_err(|_| ErrorKind::Reset)?;
        let status = response.status().as_u16();
        served_by.clear();
        if let Some(v) = response
            .headers()
            .get(SERVED_BY)
            .and_then(|v| v.to_str().ok())
        {
            served_by.push_str(v);
        }
        let mut grpc_status = response
            .headers()
            .get("grpc-status")
            .map(|v| v.as_bytes() == b"0");
        // Read the whole body (and trailers) so the connection can take the next request.
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| ErrorKind::Reset)?;
            if let Ok(trailers) = frame.into_trailers()
                && let Some(v) = trailers.get("grpc-status")
            {
                grpc_status = Some(v.as_bytes() == b"0");
            }
        }
        match status {
            200..=299 if protocol == Protocol::Grpc && grpc_status != Some(true) => {
                Err(ErrorKind::Grpc)
            }
            _ => outcome(status),
        }
    }
}

/// A request's outcome from its answer's status: success for 2xx.
pub fn outcome(status: u16) -> Result<(), ErrorKind> {
    match status {
        200..=299 => Ok(()),
        400..=499 => Err(ErrorKind::Status4xx),
        500..=599 => Err(ErrorKind::Status5xx),
        _ => Err(ErrorKind::StatusOther),
    }
}

/// How often a blocking connection's read looks at its request's deadline.
const BLOCKING_TICK: Duration = Duration::from_millis(100);

/// Open an HTTP/1.1 connection to `target` for a thread of its own, within `timeout`,
/// with blocking reads that wake at least every [`BLOCKING_TICK`] to look at the deadline
/// (see [`Http1::request_blocking`]).
pub fn connect_blocking(
    target: &Target,
    timeout: Duration,
) -> Result<Http1<std::net::TcpStream>, ErrorKind> {
    let stream =
        std::net::TcpStream::connect_timeout(&target.addr, timeout).map_err(|e| {
            match e.kind() {
                std::io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
                _ => ErrorKind::Connect,
            }
        })?;
    let tick = Some(timeout.clamp(Duration::from_millis(1), BLOCKING_TICK));
    stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(tick))
        .and_then(|()| stream.set_write_timeout(tick))
        .map_err(|_| ErrorKind::Connect)?;
    Ok(Http1::new(stream))
}

/// The request for `target` in `protocol`.
fn build(target: &Target, protocol: Protocol) -> hyper::Request<Full<Bytes>> {
    let builder = match protocol {
        Protocol::Http1 => hyper::Request::get(target.path.as_str())
            .header(hyper::header::HOST, target.authority.as_str()),
        Protocol::H2c => hyper::Request::get(format!("http://{}{}", target.authority, target.path)),
        Protocol::Grpc => {
            hyper::Request::post(format!("http://{}{}", target.authority, target.path))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
        }
    };
    let builder = target.headers.iter().fold(builder, |b, (name, value)| {
        b.header(name.as_str(), value.as_str())
    });
    // An empty gRPC message: not compressed, length 0.
    let body = match protocol {
        Protocol::Grpc => Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])),
        _ => Full::new(Bytes::new()),
    };
    builder.body(body).unwrap_or_default()
}
