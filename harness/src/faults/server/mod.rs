//! A Toxiproxy-compatible HTTP API server with its own fault relay.
//!
//! [`serve`] answers Shopify Toxiproxy's API with its paths, JSON shapes, status
//! codes and error messages (`{"error": "proxy not found", "status": 404}`):
//!
//! | Method         | Path                             | Answer                          |
//! |----------------|----------------------------------|---------------------------------|
//! | GET            | `/version`                       | `{"version": "<v>-tether"}`     |
//! | POST           | `/reset`                         | 204: enable all, drop toxics    |
//! | POST           | `/populate`                      | 201 `{"proxies": [...]}`        |
//! | GET / POST     | `/proxies`                       | name → proxy / 201 proxy        |
//! | GET/POST/DELETE| `/proxies/{proxy}`               | proxy / 200 updated / 204       |
//! | GET / POST     | `/proxies/{proxy}/toxics`        | list / 200 toxic                |
//! | GET/POST/DELETE| `/proxies/{proxy}/toxics/{toxic}`| toxic / 200 updated / 204       |
//! | GET            | `/metrics`                       | Prometheus text ([`metrics`])   |
//!
//! (`PATCH` is accepted wherever `POST` updates, as newer Toxiproxy does.)
//!
//! Every enabled proxy is one relay task ([`crate::faults::relay`]) on the
//! caller's runtime: it owns the proxy's listener, connects each client
//! straight to the upstream, and runs every toxic on the bytes as they pass,
//! one direction per stream. Toxic changes reach open connections over a
//! `watch` channel. Disabling a proxy stops its relay (closing its listener
//! and every connection); enabling starts a new one on the same address with
//! the same toxics. This module keeps the authoritative list of proxies and
//! toxics ([`proxy`], [`toxics`]) and answers the API ([`api`]); the relay
//! only runs them.
//!
//! `POST /populate` takes a JSON array of proxies (see [`super::populate`]).
//! [`serve_with`] takes a seed ([`ServeOptions::seed`]) that makes the random
//! parts reproducible: toxicity, latency jitter and slicer sizes. Each proxy
//! derives its own seed from it and its name.
//!
//! Differences from Toxiproxy:
//! - `latency` is a delay line: chunks keep their order and each is held its
//!   own `latency` ± `jitter` from when it was read, so a bulk stream keeps its
//!   throughput (Toxiproxy holds one chunk at a time).
//! - A toxic applies to data read after it was added or changed. When a
//!   `latency`, `bandwidth` or `slicer` toxic of a stream is added, updated or
//!   removed, whatever the stream holds goes out at once (Toxiproxy flushes
//!   only what the interrupted toxic holds, and runs the rest through the new
//!   chain).
//! - `bandwidth` is a serialisation queue computed when data is read: each
//!   piece (at most 100 ms worth, as in Toxiproxy) is due when the previous one
//!   finished plus its length at `rate`.
//! - `slicer` cuts each slice to `average_size` ± `size_variation` bytes drawn
//!   uniformly (Toxiproxy halves chunks recursively), with an `average_size` of
//!   at least 1 and a `size_variation` below it. The API still shows the
//!   values that were set.
//! - `timeout` above 0 closes the connection that long after the toxic became
//!   active on it (Toxiproxy restarts its timer whenever it drops a chunk).
//! - `limit_data` counts the bytes of the stream since the connection opened,
//!   so a connection already at or past the limit closes when the toxic is
//!   added (Toxiproxy counts from when the toxic reached the connection).
//! - `reset_peer` resets both sockets, also of connections older than the
//!   toxic (Toxiproxy sets `SO_LINGER` 0 only on connections opened after it
//!   was added, so older ones get a FIN).
//! - Toxicity is drawn once per connection, toxic and revision (so again when
//!   a toxic is updated), from one sequence per proxy; each connection draws
//!   its jitter and slice sizes from sequences seeded from that one when it is
//!   accepted.
//! - `listen` is required at creation; a port of 0 binds a free port when the
//!   proxy is enabled, and the answer shows the real address.
//! - `POST /populate` answers 400 (Toxiproxy: 500) for a duplicate name,
//!   checks `listen` of disabled proxies too, and an error answer lists the
//!   proxies applied before the error (Toxiproxy lists none).

mod api;
mod handlers;
mod metrics;
mod proxy;
#[cfg(test)]
mod tests;
mod toxics;

use super::populate::ProxySpec;

/// The version the API reports (`GET /version`) and `fault-proxy --version` prints.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "-tether");
use api::{Answer, ApiError, path_segments, read_body, version};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use proxy::ProxyEntry;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long open API connections get to finish after shutdown.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// How [`serve_with`] runs.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Makes the random parts of toxics reproducible (see the module docs);
    /// `None` draws from entropy.
    pub seed: Option<u64>,
    /// Proxies created, as by `POST /populate`, before the first API request is answered.
    pub proxies: Vec<ProxySpec>,
}

/// Serves the Toxiproxy API on `listener` until `shutdown` is cancelled, with
/// no seed and no proxies to start with.
///
/// See [`serve_with`].
pub async fn serve(listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    serve_with(listener, shutdown, ServeOptions::default()).await
}

/// Serves the Toxiproxy API on `listener` until `shutdown` is cancelled.
///
/// First creates `options.proxies`; then answers API requests. On shutdown it
/// stops accepting, lets open API requests finish (for up to 5 s), then stops
/// every proxy, closing their listeners and connections. Fails if a
/// configured proxy cannot be created.
pub async fn serve_with(
    listener: TcpListener,
    shutdown: CancellationToken,
    options: ServeOptions,
) -> anyhow::Result<()> {
    let state = Arc::new(State {
        proxies: Mutex::new(BTreeMap::new()),
        seed: options.seed,
    });
    if let Err((err, _)) = state.apply_specs(options.proxies).await {
        state.stop_all().await;
        anyhow::bail!("cannot create the configured proxies: {}", err.message);
    }

    // Accept API connections until shutdown, one task per connection.
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        // Forget the connections that are already done.
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((stream, _peer)) => {
                connections.spawn(serve_connection(stream, state.clone(), shutdown.clone()));
            }
            // Accept errors are transient (e.g. out of file descriptors): back off, retry.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }

    // Stop listening, let in-flight requests finish, then stop the proxies.
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_GRACE, drain).await.is_err() {
        connections.shutdown().await;
    }
    state.stop_all().await;
    Ok(())
}

/// Serves HTTP/1 requests on one API connection until it closes or shutdown.
async fn serve_connection(stream: TcpStream, state: Arc<State>, shutdown: CancellationToken) {
    let service = service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(&state, request).await) }
    });
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        // The connection ended; a broken client connection is not our error.
        _ = connection.as_mut() => {}
        _ = shutdown.cancelled() => {
            // Finish the request in flight, if any, then close.
            connection.as_mut().graceful_shutdown();
            let _ = connection.as_mut().await;
        }
    }
}

/// What the API serves: every proxy by name.
struct State {
    /// Held across a whole request, so API calls apply one at a time.
    proxies: Mutex<BTreeMap<String, ProxyEntry>>,
    /// The server's seed, if any.
    seed: Option<u64>,
}

/// Answers one API request; errors become Toxiproxy's error JSON.
async fn handle(state: &State, request: Request<Incoming>) -> Answer {
    match route(state, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

/// Dispatches on method and path.
async fn route(state: &State, request: Request<Incoming>) -> Result<Answer, ApiError> {
    let method = request.method().clone();
    let segments = path_segments(request.uri().path())?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let updates = method == Method::POST || method == Method::PATCH;
    let body = if updates {
        read_body(request.into_body()).await?
    } else {
        Bytes::new()
    };

    match (&method, segments.as_slice()) {
        (&Method::GET, ["version"]) => Ok(version()),
        (&Method::GET, ["metrics"]) => Ok(metrics::answer(&*state.proxies.lock().await)),
        (&Method::POST, ["reset"]) => state.reset().await,
        (&Method::POST, ["populate"]) => Ok(state.populate(&body).await),
        (&Method::GET, ["proxies"]) => state.list_proxies().await,
        (&Method::POST, ["proxies"]) => state.create_proxy(&body).await,
        (&Method::GET, ["proxies", proxy]) => state.show_proxy(proxy).await,
        (_, ["proxies", proxy]) if updates => state.update_proxy(proxy, &body).await,
        (&Method::DELETE, ["proxies", proxy]) => state.delete_proxy(proxy).await,
        (&Method::GET, ["proxies", proxy, "toxics"]) => state.list_toxics(proxy).await,
        (&Method::POST, ["proxies", proxy, "toxics"]) => state.create_toxic(proxy, &body).await,
        (&Method::GET, ["proxies", proxy, "toxics", toxic]) => state.show_toxic(proxy, toxic).await,
        (_, ["proxies", proxy, "toxics", toxic]) if updates => {
            state.update_toxic(proxy, toxic, &body).await
        }
        (&Method::DELETE, ["proxies", proxy, "toxics", toxic]) => {
            state.delete_toxic(proxy, toxic).await
        }
        // A known path with the wrong method.
        (_, ["version" | "reset" | "populate" | "proxies" | "metrics"])
        | (_, ["proxies", _])
        | (_, ["proxies", _, "toxics"])
        | (_, ["proxies", _, "toxics", _]) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        )),
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "not found")),
    }
}
