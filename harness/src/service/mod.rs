//! The sample service: a small HTTP server that answers with its own name, so the load
//! generator can tell which version of a service answered a request. It speaks HTTP/1.1,
//! HTTP/2 cleartext (h2c) and gRPC on one port, so one binary serves every listener
//! protocol of the mesh (a `tcp` listener carries HTTP/1.1 byte for byte).

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The header that carries the name of the service that answered.
pub const SERVED_BY: &str = "x-served-by";

/// The request header that makes a gRPC call end with this status code (for example
/// `14`, UNAVAILABLE), so tests can see what the mesh does about failing calls.
pub const GRPC_STATUS_REQUEST: &str = "x-grpc-status";

/// Serve HTTP/1.1 and h2c on `listener` until `shutdown`, answering every request with
/// `handle`. The sample service and the control plane's admin API both run on this.
pub async fn serve_http<F, Fut, B, E>(listener: TcpListener, shutdown: CancellationToken, handle: F)
where
    F: Fn(Request<hyper::body::Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Response<B>, E>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        tokio::spawn(async move {
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let _ = builder
                .serve_connection(
                    hyper_util::rt::TokioIo::new(stream),
                    hyper::service::service_fn(handle),
                )
                .await;
        });
    }
}

/// Serve `name` on `listener` until `shutdown`: every path answers 200 with the name as
/// body and in the [`SERVED_BY`] header; a gRPC call (content type `application/grpc`)
/// answers one message, a `google.protobuf.StringValue` holding the name, and status 0.
/// Query parameters make it misbehave on purpose, so tests can see what the mesh does
/// about it:
/// - `status=503`: answer with that status;
/// - `delay_ms=1500`: answer that much later;
/// - `fail_first=2&key=k`: answer 503 to the first two requests carrying key `k`;
/// - header [`GRPC_STATUS_REQUEST`] on a gRPC call: end it with that gRPC status;
/// - `call=back.mesh.local`: first call that virtual service through `egress` (the
///   node's own sidecar), and answer with who served that call in [`BACKEND_SERVED_BY`]
///   (502 when the call fails), as a front service calling a back one does.
pub async fn serve(
    name: String,
    egress: Option<SocketAddr>,
    listener: TcpListener,
    shutdown: CancellationToken,
) {
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(2))
        .build()
        .unwrap_or_default();
    serve_http(
        listener,
        shutdown,
        move |req: Request<hyper::body::Incoming>| {
            let (name, seen, client) = (name.clone(), seen.clone(), client.clone());
            async move {
                let call = req.uri().query().and_then(|q| {
                    q.split('&')
                        .find_map(|kv| kv.strip_prefix("call="))
                        .map(str::to_string)
                });
                let backend = match (call, egress) {
                    (Some(service), Some(egress)) => {
                        Some(call_backend(&client, egress, &service).await)
                    }
                    (Some(_), None) => Some(None),
                    (None, _) => None,
                };
                let mut response = answer(&name, &seen, req).await;
                match backend {
                    Some(Some(by)) => {
                        if let Ok(v) = hyper::header::HeaderValue::from_str(&by) {
                            response.headers_mut().insert(BACKEND_SERVED_BY, v);
                        }
                    }
                    Some(None) => *response.status_mut() = hyper::StatusCode::BAD_GATEWAY,
                    None => {}
                }
                Ok::<_, Infallible>(response)
            }
        },
    )
    .await
}

/// The header that carries who served the back call of a `call=` request.
pub const BACKEND_SERVED_BY: &str = "x-backend-served-by";

/// GET virtual service `service` through the sidecar's egress: who served it, or `None`
/// when the call failed (no answer, or not 2xx).
async fn call_backend(
    client: &reqwest::Client,
    egress: SocketAddr,
    service: &str,
) -> Option<String> {
    let response = client
        .get(format!("http://{egress}/"))
        .header("host", service)
        .send()
        .await
        .ok()
        .filter(|r| r.status().is_success())?;
    Some(
        response
            .headers()
            .get(SERVED_BY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown")
            .to_string(),
    )
}

/// The sample service's answer to one request.
async fn answer(
    name: &str,
    seen: &Mutex<HashMap<String, u32>>,
    req: Request<hyper::body::Incoming>,
) -> Response<BoxBody<Bytes, Infallible>> {
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let number = |key: &str| query.get(key).and_then(|v| v.parse::<u64>().ok());
    if let Some(ms) = number("delay_ms") {
        tokio::time::sleep(std::time::Duration::from_millis(ms.min(60_000))).await;
    }
    let grpc = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        let status = req
            .headers()
            .get(GRPC_STATUS_REQUEST)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0);
        return grpc_answer(name, status);
    }
    let mut status = number("status").and_then(|s| hyper::StatusCode::from_u16(s as u16).ok());
    if let (Some(n), Some(key)) = (number("fail_first"), query.get("key")) {
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        let count = seen.entry(key.clone()).or_default();
        *count += 1;
        if u64::from(*count) <= n {
            status = Some(hyper::StatusCode::SERVICE_UNAVAILABLE);
        }
    }
    Response::builder()
        .status(status.unwrap_or(hyper::StatusCode::OK))
        .header(SERVED_BY, name)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(name.to_string())).boxed())
        .unwrap_or_default()
}

/// A unary gRPC answer: one length-prefixed message (a `StringValue` with `name`) and
/// the `grpc-status` trailer; a failure (status other than 0) is trailers-only, as gRPC
/// servers send it: the status in the headers, no body.
fn grpc_answer(name: &str, status: u32) -> Response<BoxBody<Bytes, Infallible>> {
    let answer = Response::builder()
        .header(SERVED_BY, name)
        .header("content-type", "application/grpc");
    if status != 0 {
        return answer
            .header("grpc-status", status)
            .body(Full::new(Bytes::new()).boxed())
            .unwrap_or_default();
    }
    let mut message = vec![0x0a, name.len() as u8];
    message.extend_from_slice(&name.as_bytes()[..name.len().min(127)]);
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    let mut trailers = hyper::HeaderMap::new();
    trailers.insert("grpc-status", 0.into());
    let frames = [Frame::data(Bytes::from(frame)), Frame::trailers(trailers)];
    let body = StreamBody::new(futures::stream::iter(
        frames.into_iter().map(Ok::<_, Infallible>),
    ));
    answer.body(BodyExt::boxed(body)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_with_its_name() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(serve("svc-v1".into(), None, listener, shutdown.clone()));
        let response = reqwest::get(format!("http://{addr}/anything"))
            .await
            .unwrap();
        assert_eq!(response.headers()[SERVED_BY], "svc-v1");
        assert_eq!(response.text().await.unwrap(), "svc-v1");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn misbehaves_on_request() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(serve("svc".into(), None, listener, shutdown.clone()));
        let get = |q: &str| reqwest::get(format!("http://{addr}/?{q}"));
        assert_eq!(get("status=503").await.unwrap().status(), 503);
        let statuses: Vec<u16> =
            futures::future::join_all((0..3).map(|_| get("fail_first=2&key=a")))
                .await
                .into_iter()
                .map(|r| r.unwrap().status().as_u16())
                .collect();
        let mut sorted = statuses.clone();
        sorted.sort();
        assert_eq!(sorted, [200, 503, 503], "{statuses:?}");
        assert_eq!(
            get("fail_first=2&key=b").await.unwrap().status(),
            503,
            "keys count apart"
        );
        let started = std::time::Instant::now();
        assert_eq!(get("delay_ms=300").await.unwrap().status(), 200);
        assert!(started.elapsed() >= std::time::Duration::from_millis(300));
        shutdown.cancel();
    }

    #[tokio::test]
    async fn speaks_h2c_and_grpc_on_the_same_port() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(serve("svc-v3".into(), None, listener, shutdown.clone()));
        let host = addr.to_string();
        let get = h2c_request(addr, &host, "/", false, &[]).await.unwrap();
        assert_eq!(
            (get.status, get.served_by.as_deref()),
            (200, Some("svc-v3"))
        );
        assert_eq!(get.grpc_status, None);
        let call = h2c_request(addr, &host, "/demo.Echo/Say", true, &[])
            .await
            .unwrap();
        assert_eq!(call.grpc_status.as_deref(), Some("0"));
        let failing = h2c_request(
            addr,
            &host,
            "/demo.Echo/Say",
            true,
            &[(GRPC_STATUS_REQUEST, "14")],
        )
        .await
        .unwrap();
        assert_eq!(failing.grpc_status.as_deref(), Some("14"));
        shutdown.cancel();
    }
}

/// What an HTTP/2 request got back.
#[derive(Debug, Clone, PartialEq)]
pub struct H2Answer {
    /// The HTTP status.
    pub status: u16,
    /// Who answered (the sample service's [`SERVED_BY`] header).
    pub served_by: Option<String>,
    /// The `grpc-status` (trailer, or header of a trailers-only answer), for gRPC calls.
    pub grpc_status: Option<String>,
}

/// Send one request over a new HTTP/2 cleartext (h2c) connection to `addr`, with
/// `authority` as its host: a GET, or with `grpc` a unary gRPC call (an empty message) to
/// `path` (`/package.Service/Method`). `headers` are added as given. Tests use it to
/// drive h2c and gRPC listeners through Envoy; it gives up after 10 s.
pub async fn h2c_request(
    addr: std::net::SocketAddr,
    authority: &str,
    path: &str,
    grpc: bool,
    headers: &[(&str, &str)],
) -> anyhow::Result<H2Answer> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await?;
        tokio::spawn(conn);
        let mut req = Request::builder().uri(format!("http://{authority}{path}"));
        req = if grpc {
            req.method("POST")
                .header("content-type", "application/grpc")
                .header("te", "trailers")
        } else {
            req.method("GET")
        };
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        // An empty gRPC message: not compressed, length 0.
        let body = if grpc {
            Full::new(Bytes::from_static(&[0, 0, 0, 0, 0]))
        } else {
            Full::new(Bytes::new())
        };
        let response = send.send_request(req.body(body)?).await?;
        let status = response.status().as_u16();
        let header = |map: &hyper::HeaderMap, name: &str| {
            map.get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let served_by = header(response.headers(), SERVED_BY);
        let mut grpc_status = header(response.headers(), "grpc-status");
        let collected = response.into_body().collect().await?;
        if let Some(t) = collected.trailers() {
            grpc_status = header(t, "grpc-status").or(grpc_status);
        }
        anyhow::Ok(H2Answer {
            status,
            served_by,
            grpc_status,
        })
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), exchange)
        .await
        .map_err(|_| anyhow::anyhow!("no answer from {addr} in 10 s"))?
}
