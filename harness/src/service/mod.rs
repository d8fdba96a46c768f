//! The sample service: a small HTTP server that answers with its own name, so the load
//! generator can tell which version of a service answered a request.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use std::convert::Infallible;
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
/// body and in the [`SERVED_BY`] header.
pub async fn serve(name: String, listener: TcpListener, shutdown: CancellationToken) {
    serve_http1(listener, shutdown, move |_req| {
        let name = name.clone();
        async move {
            let response = Response::builder()
                .header(SERVED_BY, name.as_str())
                .header("content-type", "text/plain")
                .body(Full::new(Bytes::from(name)))
                .unwrap_or_default();
            Ok::<_, Infallible>(response)
        }
    })
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
}
