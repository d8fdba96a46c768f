//! The sample service: a small HTTP server that answers with its own name, so the load
//! generator can tell which version of a service answered a request.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The header that carries the name of the service that answered.
pub const SERVED_BY: &str = "x-served-by";

/// Serve HTTP/1.1 on `listener` until `shutdown`, answering every request with `handle`.
/// The sample service and the control plane's admin API both run on this.
pub async fn serve_http1<F, Fut, E>(listener: TcpListener, shutdown: CancellationToken, handle: F)
where
    F: Fn(Request<hyper::body::Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Response<Full<Bytes>>, E>> + Send + 'static,
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
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(
                    hyper_util::rt::TokioIo::new(stream),
                    hyper::service::service_fn(handle),
                )
                .await;
        });
    }
}

/// Serve `name` on `listener` until `shutdown`: every path answers 200 with the name as
/// body and in the [`SERVED_BY`] header. Query parameters make it misbehave on purpose,
/// so tests can see what the mesh does about it:
/// - `status=503`: answer with that status;
/// - `delay_ms=1500`: answer that much later;
/// - `fail_first=2&key=k`: answer 503 to the first two requests carrying key `k`.
pub async fn serve(name: String, listener: TcpListener, shutdown: CancellationToken) {
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    serve_http1(
        listener,
        shutdown,
        move |req: Request<hyper::body::Incoming>| {
            let (name, seen) = (name.clone(), seen.clone());
            async move {
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
                let mut status =
                    number("status").and_then(|s| hyper::StatusCode::from_u16(s as u16).ok());
                if let (Some(n), Some(key)) = (number("fail_first"), query.get("key")) {
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    let count = seen.entry(key.clone()).or_default();
                    *count += 1;
                    if u64::from(*count) <= n {
                        status = Some(hyper::StatusCode::SERVICE_UNAVAILABLE);
                    }
                }
                let response = Response::builder()
                    .status(status.unwrap_or(hyper::StatusCode::OK))
                    .header(SERVED_BY, name.as_str())
                    .header("content-type", "text/plain")
                    .body(Full::new(Bytes::from(name)))
                    .unwrap_or_default();
                Ok::<_, Infallible>(response)
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_with_its_name() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(serve("svc-v1".into(), listener, shutdown.clone()));
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
        tokio::spawn(serve("svc".into(), listener, shutdown.clone()));
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
}
