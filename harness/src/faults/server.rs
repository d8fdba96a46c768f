//! A Toxiproxy-compatible HTTP API server on top of the `noxious` proxy core.
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
//!
//! (`PATCH` is accepted wherever `POST` updates, as newer Toxiproxy does.)
//!
//! How it maps onto noxious: every enabled proxy is one noxious `run_proxy`
//! task listening on an internal loopback port, behind an [`super::edge`] that
//! owns the proxy's `listen` address and relays each client connection to it.
//! Toxic changes go to the noxious task as `ToxicEvent`s over a `bmrng`
//! channel, so they apply to connections that are already open; `reset_peer`,
//! which noxious lacks, and `latency`, which noxious cannot change without
//! dropping the bytes it holds, are run by the edge and reach open connections
//! over a `watch` channel. Disabling a proxy stops both (closing its connections and
//! its listener); enabling starts new ones on the same address with the same
//! toxics. This module keeps the authoritative list of proxies and toxics;
//! noxious and the edge only run them.
//!
//! `POST /populate` takes a JSON array of proxies (see [`super::populate`]).
//! [`serve_with`] takes a seed ([`ServeOptions::seed`]) that makes the random
//! parts reproducible: latency jitter, toxicity, slicer sizes and `reset_peer`
//! toxicity. Each proxy derives its own seed from it and its name.
//!
//! All noxious tasks run on one dedicated single-threaded runtime. noxious
//! rebuilds a connection's links on every toxic change, and on a multi-threaded
//! runtime the task retiring the old links can race with the new links and
//! drop them from noxious's bookkeeping, after which later toxic changes would
//! silently miss that connection. One thread also keeps the proxies off the
//! caller's worker threads.
//!
//! Differences from Toxiproxy, most about noxious 1.0.4:
//! - `bandwidth` runs as a `slicer` that sends `rate`×10 bytes every 10 ms
//!   (noxious's own bandwidth toxic panics on large chunks); it still shows and
//!   updates as `bandwidth` with attribute `rate` (KB/s).
//! - Adding a `limit_data` toxic restarts the proxy, closing open connections
//!   (noxious cannot count bytes for connections opened before the toxic).
//! - `latency` runs at the edge as a delay line (see [`super::edge`]): chunks
//!   keep their order and each is held its own `latency` ± `jitter` from when
//!   it was read, so a bulk stream keeps its throughput (Toxiproxy holds one
//!   chunk at a time); removing or updating the toxic releases what it holds,
//!   as Toxiproxy does (noxious would drop it). On `upstream` it acts before
//!   the noxious toxics, on `downstream` after them.
//! - `slicer` uses an `average_size` of at least 1 and a `size_variation`
//!   below it, because noxious would overflow or spin otherwise. The API still
//!   shows the values that were set.
//! - `listen` is required at creation; a port of 0 picks a free port, and the
//!   answer shows the real address.
//! - Seeds: noxious seeds every connection's generators from the proxy's seed
//!   alone, so with a seed all connections of a proxy draw the same toxicity
//!   decision and slicer sizes for a noxious toxic; without a seed they draw
//!   independently. The edge toxics (`latency`, `reset_peer`) decide toxicity
//!   per connection from one sequence per proxy, and each connection draws
//!   its jitter from a sequence seeded from that one when it is accepted.
//! - `reset_peer` acts at the edge, on the client's socket: on the `upstream`
//!   stream before the other toxics, on `downstream` after them. The client
//!   gets an RST; noxious closes the upstream connection with a FIN (Toxiproxy
//!   resets both). Toxiproxy sets `SO_LINGER` 0 only on connections opened
//!   after the toxic was added, so older ones get a FIN; tether resets those too.
//! - `POST /populate` answers 400 (Toxiproxy: 500) for a duplicate name,
//!   checks `listen` of disabled proxies too, and an error answer lists the
//!   proxies applied before the error (Toxiproxy lists none).

use super::client::{Proxy, Toxic};
use super::edge::{Edge, EdgeEffect, EdgeRules, EdgeToxic, SplitMix64, proxy_seed};
use super::populate::{ProxySpec, parse_proxy_list};
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use noxious::proxy::{ProxyConfig, ProxyRunner, Runner, Toxics};
use noxious::signal::{Close, Stop, Stopper};
use noxious::socket::TcpListener as NoxiousListener;
use noxious::state::SharedProxyInfo;
use noxious::toxic::{
    StreamDirection, Toxic as NoxiousToxic, ToxicEvent, ToxicEventKind, ToxicEventResult, ToxicKind,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Display;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{Mutex, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// The largest request body we read.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long a stopping proxy may take to close its listener before it is aborted.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long noxious may take to apply a toxic change to open connections.
const EVENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long open API connections get to finish after shutdown.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// The toxic types tether runs, with Toxiproxy's names (`latency` and `reset_peer` at the edge).
const TOXIC_TYPES: [&str; 8] = [
    "latency",
    "timeout",
    "bandwidth",
    "slow_close",
    "slicer",
    "limit_data",
    "noop",
    "reset_peer",
];
/// How many internal loopback ports are tried for a proxy's noxious listener.
const INNER_BIND_ATTEMPTS: usize = 8;
/// The `bandwidth` emulation sends one slice every this many milliseconds.
const BANDWIDTH_TICK_MS: u64 = 10;
/// Latencies are capped here (about 35 years) so noxious's arithmetic cannot overflow.
const MAX_LATENCY_MS: u64 = 1 << 40;

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
/// every proxy, closing their listeners and connections. Fails if the proxy
/// runtime cannot start or a configured proxy cannot be created.
pub async fn serve_with(
    listener: TcpListener,
    shutdown: CancellationToken,
    options: ServeOptions,
) -> anyhow::Result<()> {
    let runtime = ProxyRuntime::start().await?;
    let state = Arc::new(State {
        proxies: Mutex::new(BTreeMap::new()),
        runtime: runtime.handle.clone(),
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
    drop(runtime);
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

/// The single-threaded runtime every noxious task runs on, in its own thread.
///
/// Dropping it ends the thread, which drops the runtime and with it every
/// proxy task still running there.
struct ProxyRuntime {
    /// Spawns onto the runtime.
    handle: Handle,
    /// Dropping this sender ends the runtime thread.
    _stop: oneshot::Sender<()>,
}

impl ProxyRuntime {
    /// Starts the runtime thread and waits until its runtime is ready.
    async fn start() -> anyhow::Result<ProxyRuntime> {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (handle_tx, handle_rx) = oneshot::channel();
        // The runtime is built inside the thread, so it is also dropped there:
        // a runtime must not be dropped from async code.
        std::thread::Builder::new()
            .name("tether-faults".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = handle_tx.send(Err(err));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(runtime.handle().clone()));
                runtime.block_on(async {
                    let _ = stop_rx.await;
                });
            })
            .context("cannot start the fault proxy thread")?;
        let handle = handle_rx
            .await
            .context("the fault proxy thread died")?
            .context("cannot build the fault proxy runtime")?;
        Ok(ProxyRuntime {
            handle,
            _stop: stop_tx,
        })
    }
}

/// What the API serves: every proxy by name, and where their tasks run.
struct State {
    /// Held across a whole request, so API calls apply one at a time.
    proxies: Mutex<BTreeMap<String, ProxyEntry>>,
    /// The proxy runtime.
    runtime: Handle,
    /// The server's seed, if any.
    seed: Option<u64>,
}

/// One proxy: its configuration, its toxics, and its noxious task when enabled.
struct ProxyEntry {
    name: String,
    listen: String,
    upstream: String,
    /// True exactly when `runner` is `Some`.
    enabled: bool,
    /// The toxics in the order they were added, as the API shows them.
    toxics: Vec<Toxic>,
    runner: Option<RunningProxy>,
    /// This proxy's seed (derived from the server's), if any.
    rand_seed: Option<u64>,
    /// The revision of each edge toxic, bumped when it is added or updated.
    edge_revisions: BTreeMap<String, u64>,
    /// The last revision handed out.
    last_revision: u64,
}

/// A running noxious proxy task and the handles to steer it.
struct RunningProxy {
    /// Stops the task: it closes its listener and every connection.
    stopper: Stopper,
    /// Sends toxic changes to the task, which applies them to open connections.
    events: bmrng::RequestSender<ToxicEvent, ToxicEventResult>,
    /// Publishes the edge toxics to the edge and its open connections.
    edge_rules: watch::Sender<EdgeRules>,
    /// Stops the edge: its listener and every client connection close.
    edge_shutdown: CancellationToken,
    /// The task running the edge and noxious's `run_proxy`.
    task: JoinHandle<()>,
}

/// A toxic's type and attributes as tether runs it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// A toxic noxious runs.
    Noxious(ToxicKind),
    /// `reset_peer`, run by the edge: a reset `timeout` ms after the first data.
    ResetPeer {
        /// Milliseconds.
        timeout: u64,
    },
    /// `latency`, run by the edge: every chunk held `latency` ± `jitter` ms.
    Latency {
        /// Milliseconds.
        latency: u64,
        /// Milliseconds.
        jitter: u64,
    },
}

/// The attributes of a `reset_peer` toxic.
#[derive(serde::Deserialize)]
struct ResetPeerAttributes {
    #[serde(default)]
    timeout: u64,
}

/// An error answer: `{"error": message, "status": status}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

/// The JSON body of `POST /proxies`.
#[derive(serde::Deserialize)]
struct CreateProxy {
    #[serde(default)]
    name: String,
    #[serde(default)]
    listen: String,
    #[serde(default)]
    upstream: String,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// The JSON body of `POST /proxies/{proxy}`: absent fields stay as they are.
#[derive(serde::Deserialize)]
struct UpdateProxy {
    listen: Option<String>,
    upstream: Option<String>,
    enabled: Option<bool>,
}

/// The JSON body of `POST /proxies/{proxy}/toxics`.
#[derive(serde::Deserialize)]
struct CreateToxic {
    #[serde(default)]
    name: String,
    #[serde(rename = "type", default)]
    kind: String,
    stream: Option<String>,
    toxicity: Option<f32>,
    #[serde(default)]
    attributes: Value,
}

/// The JSON body of `POST /proxies/{proxy}/toxics/{toxic}`: given attributes
/// are merged over the current ones.
#[derive(serde::Deserialize)]
struct UpdateToxic {
    toxicity: Option<f32>,
    attributes: Option<Value>,
}

/// Answers one API request; errors become Toxiproxy's error JSON.
async fn handle(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    match route(state, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

/// Dispatches on method and path.
async fn route(
    state: &State,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
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
        (_, ["version" | "reset" | "populate" | "proxies"])
        | (_, ["proxies", _])
        | (_, ["proxies", _, "toxics"])
        | (_, ["proxies", _, "toxics", _]) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        )),
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "not found")),
    }
}

impl State {
    /// `GET /proxies`: every proxy, by name.
    async fn list_proxies(&self) -> Result<Response<Full<Bytes>>, ApiError> {
        let proxies = self.proxies.lock().await;
        let all: BTreeMap<&str, Proxy> = proxies
            .iter()
            .map(|(name, entry)| (name.as_str(), entry.to_api()))
            .collect();
        Ok(json_response(StatusCode::OK, &all))
    }

    /// `POST /proxies`: creates a proxy and, unless `enabled` is false, starts it.
    async fn create_proxy(&self, body: &[u8]) -> Result<Response<Full<Bytes>>, ApiError> {
        let input: CreateProxy = parse_body(body)?;
        for (field, value) in [
            ("name", &input.name),
            ("listen", &input.listen),
            ("upstream", &input.upstream),
        ] {
            if value.is_empty() {
                return Err(ApiError::missing_field(field));
            }
        }

        let mut proxies = self.proxies.lock().await;
        if proxies.contains_key(&input.name) {
            return Err(ApiError::new(StatusCode::CONFLICT, "proxy already exists"));
        }
        let mut entry = ProxyEntry::new(
            input.name.clone(),
            resolve_listen(&input.listen).await?,
            input.upstream,
            self.seed,
        );
        if input.enabled {
            // A proxy that cannot listen is not created.
            entry.start(&self.runtime).await?;
        }
        let proxy = entry.to_api();
        proxies.insert(input.name, entry);
        Ok(json_response(StatusCode::CREATED, &proxy))
    }

    /// `GET /proxies/{proxy}`.
    async fn show_proxy(&self, name: &str) -> Result<Response<Full<Bytes>>, ApiError> {
        let proxies = self.proxies.lock().await;
        let entry = proxies.get(name).ok_or_else(ApiError::proxy_not_found)?;
        Ok(json_response(StatusCode::OK, &entry.to_api()))
    }

    /// `POST /proxies/{proxy}`: enables or disables the proxy, or moves it to a
    /// new `listen` / `upstream` (restarting it, which closes its connections).
    async fn update_proxy(
        &self,
        name: &str,
        body: &[u8],
    ) -> Result<Response<Full<Bytes>>, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let entry = proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        let input: UpdateProxy = parse_body(body)?;

        // Only a real change of address counts; "127.0.0.1:0" always moves.
        let listen = match input.listen {
            Some(listen) if !listen.is_empty() && listen != entry.listen => {
                Some(resolve_listen(&listen).await?)
            }
            _ => None,
        };
        let upstream = input
            .upstream
            .filter(|upstream| !upstream.is_empty() && *upstream != entry.upstream);
        let enabled = input.enabled.unwrap_or(entry.enabled);

        if listen.is_some() || upstream.is_some() || !enabled {
            entry.stop().await;
        }
        if let Some(listen) = listen {
            entry.listen = listen;
        }
        if let Some(upstream) = upstream {
            entry.upstream = upstream;
        }
        if enabled {
            entry.start(&self.runtime).await?;
        }
        Ok(json_response(StatusCode::OK, &entry.to_api()))
    }

    /// `DELETE /proxies/{proxy}`: stops and forgets the proxy.
    async fn delete_proxy(&self, name: &str) -> Result<Response<Full<Bytes>>, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let mut entry = proxies.remove(name).ok_or_else(ApiError::proxy_not_found)?;
        entry.stop().await;
        Ok(no_content())
    }

    /// `GET /proxies/{proxy}/toxics`.
    async fn list_toxics(&self, name: &str) -> Result<Response<Full<Bytes>>, ApiError> {
        let proxies = self.proxies.lock().await;
        let entry = proxies.get(name).ok_or_else(ApiError::proxy_not_found)?;
        Ok(json_response(StatusCode::OK, &entry.toxics))
    }

    /// `POST /proxies/{proxy}/toxics`: adds a toxic, also to open connections.
    async fn create_toxic(
        &self,
        name: &str,
        body: &[u8],
    ) -> Result<Response<Full<Bytes>>, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let entry = proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        let input: CreateToxic = parse_body(body)?;

        // Checked in Toxiproxy's order: stream, type, name clash, attributes.
        let stream = parse_stream(input.stream.as_deref().unwrap_or("downstream"))?;
        if !TOXIC_TYPES.contains(&input.kind.as_str()) {
            return Err(ApiError::invalid_toxic_type());
        }
        let toxic_name = if input.name.is_empty() {
            format!("{}_{}", input.kind, stream)
        } else {
            input.name
        };
        if entry.toxics.iter().any(|toxic| toxic.name == toxic_name) {
            return Err(ApiError::new(StatusCode::CONFLICT, "toxic already exists"));
        }
        let kind = parse_kind(&input.kind, &input.attributes)?;

        let toxic = Toxic {
            name: toxic_name,
            kind: input.kind,
            stream: stream.to_string(),
            toxicity: parse_toxicity(input.toxicity, 1.0)?,
            attributes: canonical_attributes(&kind),
        };
        let noxious = to_noxious(&toxic)?;
        entry.toxics.push(toxic.clone());
        match (kind, noxious) {
            // noxious panics when a limit_data toxic meets a connection that
            // predates it, so start over: open connections are closed.
            (Kind::Noxious(ToxicKind::LimitData { .. }), _) => entry.restart(&self.runtime).await?,
            (_, Some(noxious)) => {
                entry
                    .apply(&self.runtime, ToxicEventKind::AddToxic(noxious))
                    .await?
            }
            (_, None) => entry.changed_edge(&toxic.name),
        }
        Ok(json_response(StatusCode::OK, &toxic))
    }

    /// `GET /proxies/{proxy}/toxics/{toxic}`.
    async fn show_toxic(
        &self,
        name: &str,
        toxic_name: &str,
    ) -> Result<Response<Full<Bytes>>, ApiError> {
        let proxies = self.proxies.lock().await;
        let entry = proxies.get(name).ok_or_else(ApiError::proxy_not_found)?;
        let toxic = entry
            .toxics
            .iter()
            .find(|toxic| toxic.name == toxic_name)
            .ok_or_else(ApiError::toxic_not_found)?;
        Ok(json_response(StatusCode::OK, toxic))
    }

    /// `POST /proxies/{proxy}/toxics/{toxic}`: changes attributes and/or toxicity.
    async fn update_toxic(
        &self,
        name: &str,
        toxic_name: &str,
        body: &[u8],
    ) -> Result<Response<Full<Bytes>>, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let entry = proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        let current = entry
            .toxics
            .iter_mut()
            .find(|toxic| toxic.name == toxic_name)
            .ok_or_else(ApiError::toxic_not_found)?;
        let input: UpdateToxic = parse_body(body)?;

        // Merge the given attributes over the current ones, then re-validate.
        let mut attributes = current.attributes.clone();
        match (&mut attributes, input.attributes) {
            (_, None | Some(Value::Null)) => {}
            (Value::Object(current), Some(Value::Object(given))) => current.extend(given),
            _ => return Err(ApiError::bad_body("attributes must be an object")),
        }
        let kind = parse_kind(&current.kind, &attributes)?;
        let updated = Toxic {
            attributes: canonical_attributes(&kind),
            toxicity: parse_toxicity(input.toxicity, current.toxicity)?,
            ..current.clone()
        };
        let noxious = to_noxious(&updated)?;
        *current = updated.clone();
        match noxious {
            Some(noxious) => {
                entry
                    .apply(&self.runtime, ToxicEventKind::UpdateToxic(noxious))
                    .await?
            }
            None => entry.changed_edge(&updated.name),
        }
        Ok(json_response(StatusCode::OK, &updated))
    }

    /// `DELETE /proxies/{proxy}/toxics/{toxic}`: removes it, also from open connections.
    async fn delete_toxic(
        &self,
        name: &str,
        toxic_name: &str,
    ) -> Result<Response<Full<Bytes>>, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let entry = proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        let index = entry
            .toxics
            .iter()
            .position(|toxic| toxic.name == toxic_name)
            .ok_or_else(ApiError::toxic_not_found)?;
        let removed = entry.toxics.remove(index);
        if runs_at_edge(&removed) {
            entry.changed_edge(&removed.name);
        } else {
            entry
                .apply(&self.runtime, ToxicEventKind::RemoveToxic(removed.name))
                .await?;
        }
        Ok(no_content())
    }

    /// `POST /reset`: removes every toxic and enables every proxy.
    ///
    /// Goes through all proxies even if one fails, then answers the first error.
    async fn reset(&self) -> Result<Response<Full<Bytes>>, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let mut first_error = None;
        for entry in proxies.values_mut() {
            // One event per toxic: noxious's RemoveAllToxics only clears upstream toxics.
            let toxics: Vec<Toxic> = entry.toxics.drain(..).collect();
            for toxic in toxics {
                if runs_at_edge(&toxic) {
                    entry.changed_edge(&toxic.name);
                    continue;
                }
                let removed = entry
                    .apply(&self.runtime, ToxicEventKind::RemoveToxic(toxic.name))
                    .await;
                if let Err(err) = removed {
                    first_error.get_or_insert(err);
                }
            }
            if let Err(err) = entry.start(&self.runtime).await {
                first_error.get_or_insert(err);
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(no_content()),
        }
    }

    /// `POST /populate`: creates or replaces every proxy of a JSON list.
    ///
    /// Answers 201 `{"proxies": [...]}`; an error answer also lists the
    /// proxies applied before the error (none when the list was bad).
    async fn populate(&self, body: &[u8]) -> Response<Full<Bytes>> {
        let applied = match parse_proxy_list(body) {
            Ok(specs) => self.apply_specs(specs).await,
            Err(message) => Err((ApiError::new(StatusCode::BAD_REQUEST, message), Vec::new())),
        };
        match applied {
            Ok(proxies) => json_response(StatusCode::CREATED, &json!({ "proxies": proxies })),
            Err((err, proxies)) => json_response(
                err.status,
                &json!({
                    "error": err.message,
                    "status": err.status.as_u16(),
                    "proxies": proxies,
                }),
            ),
        }
    }

    /// Creates each proxy of `specs`, or replaces the proxy of that name if its
    /// `listen` or `upstream` differ (a proxy that is already the same is kept,
    /// toxics and all). Every `listen` is resolved before anything changes.
    /// On error, returns it with the proxies applied before it.
    async fn apply_specs(
        &self,
        specs: Vec<ProxySpec>,
    ) -> Result<Vec<Proxy>, (ApiError, Vec<Proxy>)> {
        let mut resolved = Vec::with_capacity(specs.len());
        for spec in specs {
            let listen = resolve_listen(&spec.listen)
                .await
                .map_err(|err| (err, Vec::new()))?;
            resolved.push((spec, listen));
        }

        let mut proxies = self.proxies.lock().await;
        let mut applied = Vec::with_capacity(resolved.len());
        for (spec, listen) in resolved {
            if let Some(existing) = proxies.get_mut(&spec.name) {
                if existing.listen == listen && existing.upstream == spec.upstream {
                    applied.push(existing.to_api());
                    continue;
                }
                // Replaced: if the new one cannot start, the old one stays, disabled.
                existing.stop().await;
            }
            let mut entry = ProxyEntry::new(spec.name.clone(), listen, spec.upstream, self.seed);
            if spec.enabled
                && let Err(err) = entry.start(&self.runtime).await
            {
                return Err((err, applied));
            }
            applied.push(entry.to_api());
            proxies.insert(spec.name, entry);
        }
        Ok(applied)
    }

    /// Stops every proxy (at shutdown).
    async fn stop_all(&self) {
        let mut proxies = self.proxies.lock().await;
        for entry in proxies.values_mut() {
            entry.stop().await;
        }
    }
}

impl ProxyEntry {
    /// A disabled proxy with no toxics; its seed derives from `server_seed`.
    fn new(name: String, listen: String, upstream: String, server_seed: Option<u64>) -> Self {
        ProxyEntry {
            rand_seed: server_seed.map(|seed| proxy_seed(seed, &name)),
            name,
            listen,
            upstream,
            enabled: false,
            toxics: Vec::new(),
            runner: None,
            edge_revisions: BTreeMap::new(),
            last_revision: 0,
        }
    }

    /// The edge toxics of `self.toxics`, as the edge runs them.
    fn edge_rules(&self) -> EdgeRules {
        let rules = self.toxics.iter().filter_map(|toxic| {
            let kind = parse_kind(&toxic.kind, &toxic.attributes).ok()?;
            Some(EdgeToxic {
                name: toxic.name.clone(),
                upstream: toxic.stream == "upstream",
                effect: edge_effect(kind)?,
                toxicity: toxic.toxicity,
                revision: self.edge_revisions.get(&toxic.name).copied().unwrap_or(0),
            })
        });
        Arc::new(rules.collect())
    }

    /// Records that the edge toxic `name` was added, updated or removed, and
    /// hands the new rules to the edge, which applies them to open connections
    /// too (each decides its toxicity anew; latency releases what it holds).
    fn changed_edge(&mut self, name: &str) {
        if self.toxics.iter().any(|toxic| toxic.name == name) {
            self.last_revision += 1;
            self.edge_revisions
                .insert(name.to_owned(), self.last_revision);
        } else {
            self.edge_revisions.remove(name);
        }
        if let Some(runner) = &self.runner {
            runner.edge_rules.send_replace(self.edge_rules());
        }
    }

    /// The proxy as the API shows it.
    fn to_api(&self) -> Proxy {
        Proxy {
            name: self.name.clone(),
            listen: self.listen.clone(),
            upstream: self.upstream.clone(),
            enabled: self.enabled,
            toxics: self.toxics.clone(),
        }
    }

    /// Starts the noxious task unless it runs already. On failure the proxy
    /// stays disabled.
    async fn start(&mut self, runtime: &Handle) -> Result<(), ApiError> {
        if self.runner.is_none() {
            let started = start_runner(
                runtime,
                RunnerConfig {
                    name: &self.name,
                    listen: &self.listen,
                    upstream: &self.upstream,
                    toxics: &self.toxics,
                    edge_rules: self.edge_rules(),
                    rand_seed: self.rand_seed,
                },
            )
            .await;
            match started {
                Ok(runner) => self.runner = Some(runner),
                Err(err) => {
                    self.enabled = false;
                    return Err(err);
                }
            }
        }
        self.enabled = true;
        Ok(())
    }

    /// Stops the noxious task, if any: its listener and connections close.
    async fn stop(&mut self) {
        if let Some(runner) = self.runner.take() {
            runner.stop().await;
        }
        self.enabled = false;
    }

    /// Stops and starts the proxy so that it runs exactly `self.toxics`.
    /// Does nothing to a disabled proxy.
    async fn restart(&mut self, runtime: &Handle) -> Result<(), ApiError> {
        if self.runner.is_some() {
            self.stop().await;
            self.start(runtime).await?;
        }
        Ok(())
    }

    /// Sends a toxic change to the running proxy, which applies it to open
    /// connections too. If noxious does not confirm it, the proxy is restarted
    /// from `self.toxics` so that both agree again.
    async fn apply(&mut self, runtime: &Handle, event: ToxicEventKind) -> Result<(), ApiError> {
        let Some(runner) = &self.runner else {
            // Disabled: the toxics apply when it is enabled again.
            return Ok(());
        };
        let request = ToxicEvent::new(self.name.clone(), event);
        let applied =
            tokio::time::timeout(EVENT_TIMEOUT, runner.events.send_receive(request)).await;
        if matches!(applied, Ok(Ok(Ok(())))) {
            return Ok(());
        }
        self.restart(runtime).await
    }
}

impl RunningProxy {
    /// Signals the task to stop and waits until it has closed its listeners.
    async fn stop(self) {
        self.stopper.stop();
        self.edge_shutdown.cancel();
        let mut task = self.task;
        if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
            // Stuck, e.g. connecting to an unreachable upstream: drop it.
            task.abort();
            let _ = task.await;
        }
    }
}

/// What [`start_runner`] starts.
struct RunnerConfig<'a> {
    name: &'a str,
    listen: &'a str,
    upstream: &'a str,
    /// Every toxic; noxious gets those the edge does not run.
    toxics: &'a [Toxic],
    /// The toxics the edge runs.
    edge_rules: EdgeRules,
    /// The proxy's seed, if any.
    rand_seed: Option<u64>,
}

/// Binds `listen` (the edge) and an internal loopback port (noxious), then
/// runs both on the proxy runtime. Answers once both are bound, or with the
/// bind error.
async fn start_runner(
    runtime: &Handle,
    config: RunnerConfig<'_>,
) -> Result<RunningProxy, ApiError> {
    let mut initial = Toxics::empty();
    for toxic in config.toxics {
        let Some(toxic) = to_noxious(toxic)? else {
            continue;
        };
        match toxic.direction {
            StreamDirection::Upstream => initial.upstream.push(toxic),
            StreamDirection::Downstream => initial.downstream.push(toxic),
        }
    }
    let core_config = ProxyConfig {
        name: config.name.to_owned(),
        listen: String::new(),
        upstream: config.upstream.to_owned(),
        enabled: true,
        rand_seed: config.rand_seed,
    };
    let listen = config.listen.to_owned();
    let rng = match config.rand_seed {
        Some(seed) => SplitMix64::new(seed),
        None => SplitMix64::from_entropy(),
    };
    let rng = Arc::new(std::sync::Mutex::new(rng));
    let (events, receiver) = bmrng::channel(1);
    let (stop, stopper) = Stop::new();
    let (edge_rules, edge_rules_rx) = watch::channel(config.edge_rules);
    let edge_shutdown = CancellationToken::new();
    let edge_token = edge_shutdown.clone();
    let (bound_tx, bound_rx) = oneshot::channel::<Result<(), String>>();

    let task = runtime.spawn(async move {
        // Bind here, on the proxy runtime, whose I/O driver then serves the listeners.
        let listener = match TcpListener::bind(&listen).await {
            Ok(listener) => listener,
            Err(err) => {
                let _ = bound_tx.send(Err(format!("listen tcp {listen}: {err}")));
                return;
            }
        };
        let (core_listener, info, inner) = match bind_core(core_config, initial).await {
            Ok(bound) => bound,
            Err(err) => {
                let _ = bound_tx.send(Err(format!("cannot start the proxy core: {err}")));
                return;
            }
        };
        let _ = bound_tx.send(Ok(()));
        let edge = Edge {
            listener,
            inner,
            rules: edge_rules_rx,
            rng,
            shutdown: edge_token,
        };
        // Nobody waits for the close signal; noxious ignores that.
        let (_close, closer) = Close::new();
        let core = ProxyRunner::run_proxy(core_listener, info, receiver, stop, closer);
        let _ = tokio::join!(edge.run(), core);
    });

    match bound_rx.await {
        Ok(Ok(())) => Ok(RunningProxy {
            stopper,
            events,
            edge_rules,
            edge_shutdown,
            task,
        }),
        Ok(Err(message)) => Err(ApiError::internal(message)),
        Err(_) => Err(ApiError::internal("the fault proxy runtime is gone")),
    }
}

/// Binds noxious's listener on a free loopback port and returns its address.
///
/// noxious cannot tell which port it bound, so a free port is picked first;
/// if something takes it in between, another one is tried.
async fn bind_core(
    mut config: ProxyConfig,
    initial: Toxics,
) -> io::Result<(NoxiousListener, SharedProxyInfo, SocketAddr)> {
    let mut last_error = None;
    for _ in 0..INNER_BIND_ATTEMPTS {
        let addr = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?;
        config.listen = addr.to_string();
        let initialized =
            ProxyRunner::initialize_proxy::<NoxiousListener>(config.clone(), initial.clone()).await;
        match initialized {
            Ok((listener, info)) => return Ok((listener, info, addr)),
            Err(err) if err.kind() == io::ErrorKind::AddrInUse => last_error = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free loopback port")))
}

/// Resolves a `listen` address to `ip:port`. Port 0 picks a free port now
/// (noxious cannot tell which port it bound), so the API can show it.
async fn resolve_listen(listen: &str) -> Result<String, ApiError> {
    // Go's ":8474" means all interfaces.
    let listen = if listen.starts_with(':') {
        format!("0.0.0.0{listen}")
    } else {
        listen.to_owned()
    };
    let invalid = |reason: String| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid listen address {listen:?}: {reason}"),
        )
    };
    let addr = tokio::net::lookup_host(listen.as_str())
        .await
        .map_err(|err| invalid(err.to_string()))?
        .next()
        .ok_or_else(|| invalid("no address".to_owned()))?;
    if addr.port() != 0 {
        return Ok(addr.to_string());
    }
    let probe = std::net::TcpListener::bind(addr)
        .map_err(|err| ApiError::internal(format!("listen tcp {addr}: {err}")))?;
    let picked = probe
        .local_addr()
        .map_err(|err| ApiError::internal(format!("listen tcp {addr}: {err}")))?;
    Ok(picked.to_string())
}

/// Parses Toxiproxy's `stream` (any case).
fn parse_stream(stream: &str) -> Result<StreamDirection, ApiError> {
    match stream.to_ascii_lowercase().as_str() {
        "downstream" => Ok(StreamDirection::Downstream),
        "upstream" => Ok(StreamDirection::Upstream),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "stream was invalid, can be either upstream or downstream",
        )),
    }
}

/// A given toxicity, or `default`. It must be finite (JSON cannot show anything else).
fn parse_toxicity(toxicity: Option<f32>, default: f32) -> Result<f32, ApiError> {
    match toxicity {
        None => Ok(default),
        Some(toxicity) if toxicity.is_finite() => Ok(toxicity),
        Some(_) => Err(ApiError::bad_body("toxicity out of range")),
    }
}

/// Parses a toxic `type` and its `attributes` (a JSON object or null);
/// missing optional attributes take their defaults.
fn parse_kind(kind: &str, attributes: &Value) -> Result<Kind, ApiError> {
    if !TOXIC_TYPES.contains(&kind) {
        return Err(ApiError::invalid_toxic_type());
    }
    if kind == "noop" {
        return Ok(Kind::Noxious(ToxicKind::Noop));
    }
    let attributes = match attributes {
        Value::Null => json!({}),
        Value::Object(_) => attributes.clone(),
        _ => return Err(ApiError::bad_body("attributes must be an object")),
    };
    if kind == "reset_peer" {
        let parsed: ResetPeerAttributes =
            serde_json::from_value(attributes).map_err(ApiError::bad_body)?;
        return Ok(Kind::ResetPeer {
            timeout: parsed.timeout,
        });
    }
    let parsed = serde_json::from_value(json!({ "type": kind, "attributes": attributes }))
        .map_err(ApiError::bad_body)?;
    Ok(match parsed {
        ToxicKind::Latency { latency, jitter } => Kind::Latency { latency, jitter },
        other => Kind::Noxious(other),
    })
}

/// What the edge does for a toxic it runs; `None` for those noxious runs.
fn edge_effect(kind: Kind) -> Option<EdgeEffect> {
    let millis = |ms: u64| Duration::from_millis(ms.min(MAX_LATENCY_MS));
    match kind {
        Kind::Noxious(_) => None,
        Kind::ResetPeer { timeout } => Some(EdgeEffect::ResetPeer {
            timeout: millis(timeout),
        }),
        Kind::Latency { latency, jitter } => Some(EdgeEffect::Latency {
            latency: millis(latency),
            jitter: millis(jitter),
        }),
    }
}

/// The attributes of `kind` as the API shows them: every field, defaults filled in.
fn canonical_attributes(kind: &Kind) -> Value {
    let kind = match kind {
        Kind::ResetPeer { timeout } => return json!({ "timeout": timeout }),
        Kind::Latency { latency, jitter } => {
            return json!({ "latency": latency, "jitter": jitter });
        }
        Kind::Noxious(kind) => kind,
    };
    match serde_json::to_value(kind) {
        Ok(Value::Object(mut tagged)) => tagged.remove("attributes").unwrap_or_else(|| json!({})),
        _ => json!({}),
    }
}

/// Whether the edge, not noxious, runs `toxic`.
fn runs_at_edge(toxic: &Toxic) -> bool {
    matches!(toxic.kind.as_str(), "reset_peer" | "latency")
}

/// The noxious toxic that implements an API toxic; `None` for those the edge runs.
fn to_noxious(toxic: &Toxic) -> Result<Option<NoxiousToxic>, ApiError> {
    let Kind::Noxious(kind) = parse_kind(&toxic.kind, &toxic.attributes)? else {
        return Ok(None);
    };
    Ok(Some(NoxiousToxic {
        kind: runtime_kind(kind),
        name: toxic.name.clone(),
        toxicity: toxic.toxicity,
        direction: parse_stream(&toxic.stream)?,
    }))
}

/// Adjusts a kind so noxious 1.0.4 runs it without panicking or spinning
/// (see the module documentation).
fn runtime_kind(kind: ToxicKind) -> ToxicKind {
    match kind {
        // Toxiproxy treats a rate of 0 as unlimited.
        ToxicKind::Bandwidth { rate: 0 } => ToxicKind::Noop,
        // `rate` KB/s is `rate` bytes per millisecond.
        ToxicKind::Bandwidth { rate } => ToxicKind::Slicer {
            average_size: rate.saturating_mul(BANDWIDTH_TICK_MS),
            size_variation: 0,
            delay: BANDWIDTH_TICK_MS * 1000,
        },
        ToxicKind::Slicer {
            average_size,
            size_variation,
            delay,
        } => {
            // Slices of 0 bytes never end; a variation above the average underflows.
            let average_size = average_size.max(1);
            ToxicKind::Slicer {
                average_size,
                size_variation: size_variation.min(average_size - 1),
                delay,
            }
        }
        other => other,
    }
}

/// Splits a request path into percent-decoded segments.
fn path_segments(path: &str) -> Result<Vec<String>, ApiError> {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            percent_decode(segment)
                .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "invalid path encoding"))
        })
        .collect()
}

/// Decodes `%XX` escapes; `None` for a broken escape or non-UTF-8 result.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let hex = tail.get(..2)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            rest = tail.get(2..)?;
        } else {
            decoded.push(first);
            rest = tail;
        }
    }
    String::from_utf8(decoded).ok()
}

/// Reads a request body of at most [`MAX_BODY_BYTES`].
async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => Err(ApiError::bad_body(err)),
    }
}

/// Decodes a JSON request body.
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(ApiError::bad_body)
}

/// `GET /version`.
fn version() -> Response<Full<Bytes>> {
    let version = format!("{}-tether", env!("CARGO_PKG_VERSION"));
    json_response(StatusCode::OK, &json!({ "version": version }))
}

/// A JSON answer.
fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    let (status, body) = match serde_json::to_vec(value) {
        Ok(body) => (status, body),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"error":"cannot encode the answer","status":500}"#.to_vec(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An empty 204 answer.
fn no_content() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_body(err: impl Display) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, format!("bad request body: {err}"))
    }

    fn missing_field(field: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("missing required field: {field}"),
        )
    }

    fn proxy_not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "proxy not found")
    }

    fn toxic_not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "toxic not found")
    }

    fn invalid_toxic_type() -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid toxic type")
    }

    fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let body = json!({ "error": self.message, "status": self.status.as_u16() });
        json_response(self.status, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::client::{DOWNSTREAM, ToxiproxyClient};
    use crate::faults::testutil::{
        IO_DEADLINE, TestServer, closed_within, exchange, exchange_within, proxy_to_echo,
        round_trip, start_echo, start_server, start_server_with, start_tagged_echo, with_deadline,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A round trip through an untouched proxy on loopback takes far less than this.
    const FAST: Duration = Duration::from_millis(250);

    /// One raw API call: (status, content-type, JSON body or Null when empty).
    async fn raw(
        server: &TestServer,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
    ) -> (u16, String, Value) {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut request = http.request(method, format!("{}{path}", server.base_url));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, content_type, body)
    }

    /// Asserts an error answer: status, JSON content type, and exact Toxiproxy body.
    fn assert_error(answer: (u16, String, Value), status: u16, message: &str) {
        assert_eq!(
            answer,
            (
                status,
                "application/json".to_owned(),
                json!({ "error": message, "status": status })
            )
        );
    }

    /// Connects to a proxy that should refuse or immediately close: true if it does.
    async fn refuses(listen: &str) -> bool {
        match tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(listen)).await {
            Ok(Err(_)) => true,
            Ok(Ok(mut conn)) => {
                let _ = conn.write_all(b"x").await;
                closed_within(&mut conn, Duration::from_secs(1)).await
            }
            Err(_) => false,
        }
    }

    // The multi-threaded runtime is the one where noxious, left on the caller's
    // runtime, would lose track of a connection after a toxic change.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn toxics_apply_to_open_connections() {
        with_deadline(async {
            let (server, api, proxy) = proxy_to_echo().await;

            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            let before = round_trip(&mut conn, b"before").await.unwrap();
            assert!(before < FAST, "untouched round trip took {before:?}");

            // Latency reaches the connection that is already open.
            api.add_toxic("link", &Toxic::latency("lag", DOWNSTREAM, 300, 0))
                .await
                .unwrap();
            let lagged = round_trip(&mut conn, b"lagged").await.unwrap();
            assert!(
                lagged >= Duration::from_millis(300),
                "round trip with 300 ms latency took {lagged:?}"
            );

            // So does its removal.
            api.remove_toxic("link", "lag").await.unwrap();
            let after = round_trip(&mut conn, b"after").await.unwrap();
            assert!(
                after < FAST,
                "round trip after removing latency took {after:?}"
            );

            // A blackhole swallows the answers on the open connection and on new ones.
            api.add_toxic("link", &Toxic::blackhole("cut", DOWNSTREAM))
                .await
                .unwrap();
            let mut fresh = TcpStream::connect(&proxy.listen).await.unwrap();
            let (old_answer, new_answer) = tokio::join!(
                exchange_within(&mut conn, b"lost", 4, Duration::from_secs(1)),
                exchange_within(&mut fresh, b"lost", 4, Duration::from_secs(1))
            );
            for answer in [old_answer, new_answer] {
                let err = answer.expect_err("a blackholed connection answered");
                assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
            }

            // Without it, a new connection works again.
            api.remove_toxic("link", "cut").await.unwrap();
            let mut again = TcpStream::connect(&proxy.listen).await.unwrap();
            round_trip(&mut again, b"back").await.unwrap();
            server.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn blackhole_holds_reads_for_a_second() {
        with_deadline(async {
            let (server, api, proxy) = proxy_to_echo().await;
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            round_trip(&mut conn, b"ok").await.unwrap();

            api.add_toxic("link", &Toxic::blackhole("cut", DOWNSTREAM))
                .await
                .unwrap();
            conn.write_all(b"hello").await.unwrap();
            let mut buf = [0u8; 16];
            let read = tokio::time::timeout(Duration::from_secs(1), conn.read(&mut buf)).await;
            assert!(read.is_err(), "read through a blackhole returned {read:?}");
            server.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn disabling_closes_connections_and_enabling_restores() {
        with_deadline(async {
            let (server, api, proxy) = proxy_to_echo().await;
            api.add_toxic("link", &Toxic::latency("lag", DOWNSTREAM, 200, 0))
                .await
                .unwrap();
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            round_trip(&mut conn, b"up").await.unwrap();

            let disabled = api.set_enabled("link", false).await.unwrap();
            assert!(!disabled.enabled);
            assert!(
                closed_within(&mut conn, Duration::from_secs(2)).await,
                "the open connection survived disabling"
            );
            assert!(
                refuses(&proxy.listen).await,
                "a disabled proxy took a connection"
            );
            assert!(!api.proxy("link").await.unwrap().enabled);

            // Enabled again: same address, same toxics.
            let enabled = api.set_enabled("link", true).await.unwrap();
            assert!(enabled.enabled);
            assert_eq!(enabled.listen, proxy.listen);
            assert_eq!(enabled.toxics.len(), 1);
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            let took = round_trip(&mut conn, b"again").await.unwrap();
            assert!(
                took >= Duration::from_millis(200),
                "the latency toxic did not survive disable/enable: {took:?}"
            );
            server.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn reset_enables_proxies_and_removes_toxics() {
        with_deadline(async {
            let server = start_server().await;
            let api = ToxiproxyClient::new(&server.base_url).unwrap();
            let echo = start_echo().await;
            let off = api
                .create_proxy("off", "127.0.0.1:0", &echo.to_string())
                .await
                .unwrap();
            api.set_enabled("off", false).await.unwrap();
            let slow = api
                .create_proxy("slow", "127.0.0.1:0", &echo.to_string())
                .await
                .unwrap();
            let mut conn = TcpStream::connect(&slow.listen).await.unwrap();
            api.add_toxic("slow", &Toxic::latency("lag", DOWNSTREAM, 300, 0))
                .await
                .unwrap();
            api.add_toxic("slow", &Toxic::latency("lag_up", "upstream", 300, 0))
                .await
                .unwrap();
            assert!(round_trip(&mut conn, b"slow").await.unwrap() >= Duration::from_millis(600));

            let answer = raw(&server, reqwest::Method::POST, "/reset", None).await;
            assert_eq!((answer.0, answer.2), (204, Value::Null));

            for (name, proxy) in api.proxies().await.unwrap() {
                assert!(proxy.enabled, "{name} still disabled");
                assert!(proxy.toxics.is_empty(), "{name} kept {:?}", proxy.toxics);
            }
            // Both directions' toxics are gone from the open connection.
            let took = round_trip(&mut conn, b"fast").await.unwrap();
            assert!(took < FAST, "round trip after reset took {took:?}");
            let mut conn = TcpStream::connect(&off.listen).await.unwrap();
            round_trip(&mut conn, b"on").await.unwrap();
            server.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn error_answers_match_toxiproxy() {
        use reqwest::Method as M;
        with_deadline(async {
            let server = start_server().await;
            let echo = start_echo().await;
            let create = format!(r#"{{"name":"p","listen":"127.0.0.1:0","upstream":"{echo}"}}"#);

            assert_error(
                raw(&server, M::GET, "/proxies/nope", None).await,
                404,
                "proxy not found",
            );
            assert_error(
                raw(&server, M::DELETE, "/proxies/nope", None).await,
                404,
                "proxy not found",
            );
            assert_error(
                raw(
                    &server,
                    M::POST,
                    "/proxies/nope",
                    Some(r#"{"enabled":false}"#),
                )
                .await,
                404,
                "proxy not found",
            );
            assert_error(
                raw(&server, M::GET, "/proxies/nope/toxics", None).await,
                404,
                "proxy not found",
            );
            assert_error(
                raw(
                    &server,
                    M::POST,
                    "/proxies/nope/toxics",
                    Some(r#"{"type":"noop"}"#),
                )
                .await,
                404,
                "proxy not found",
            );

            assert_eq!(
                raw(&server, M::POST, "/proxies", Some(&create)).await.0,
                201
            );
            assert_error(
                raw(&server, M::POST, "/proxies", Some(&create)).await,
                409,
                "proxy already exists",
            );

            let (status, _, body) = raw(&server, M::POST, "/proxies", Some("{not json")).await;
            assert_eq!(status, 400);
            assert!(
                body["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("bad request body: "),
                "{body}"
            );
            assert_eq!(body["status"], 400);
            let (status, _, _) = raw(&server, M::POST, "/proxies", None).await;
            assert_eq!(status, 400);
            assert_error(
                raw(
                    &server,
                    M::POST,
                    "/proxies",
                    Some(r#"{"name":"q","listen":"127.0.0.1:0"}"#),
                )
                .await,
                400,
                "missing required field: upstream",
            );
            assert_error(
                raw(
                    &server,
                    M::POST,
                    "/proxies",
                    Some(r#"{"listen":"127.0.0.1:0","upstream":"x:1"}"#),
                )
                .await,
                400,
                "missing required field: name",
            );
            let (status, _, body) = raw(
                &server,
                M::POST,
                "/proxies",
                Some(r#"{"name":"q","listen":"not an address","upstream":"x:1"}"#),
            )
            .await;
            assert_eq!(status, 400, "{body}");
            let (status, _, _) =
                raw(&server, M::POST, "/proxies/p", Some(r#"{"enabled":"yes"}"#)).await;
            assert_eq!(status, 400);

            // A listen address that is taken: 500, and no proxy is created.
            let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let taken_addr = taken.local_addr().unwrap();
            let clash =
                format!(r#"{{"name":"clash","listen":"{taken_addr}","upstream":"{echo}"}}"#);
            let (status, _, body) = raw(&server, M::POST, "/proxies", Some(&clash)).await;
            assert_eq!(status, 500, "{body}");
            assert!(
                body["error"]
                    .as_str()
                    .unwrap()
                    .contains(&taken_addr.to_string()),
                "{body}"
            );
            assert_error(
                raw(&server, M::GET, "/proxies/clash", None).await,
                404,
                "proxy not found",
            );

            // Toxics.
            assert_error(
                raw(
                    &server,
                    M::POST,
                    "/proxies/p/toxics",
                    Some(r#"{"type":"gremlins"}"#),
                )
                .await,
                400,
                "invalid toxic type",
            );
            assert_error(
                raw(
                    &server,
                    M::POST,
                    "/proxies/p/toxics",
                    Some(r#"{"attributes":{}}"#),
                )
                .await,
                400,
                "invalid toxic type",
            );
            assert_error(
                raw(
                    &server,
                    M::POST,
                    "/proxies/p/toxics",
                    Some(r#"{"type":"latency","stream":"sideways","attributes":{"latency":1}}"#),
                )
                .await,
                400,
                "stream was invalid, can be either upstream or downstream",
            );
            let (status, _, body) = raw(
                &server,
                M::POST,
                "/proxies/p/toxics",
                Some(r#"{"type":"latency","attributes":{"latency":-5}}"#),
            )
            .await;
            assert_eq!(status, 400);
            assert!(
                body["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("bad request body: "),
                "{body}"
            );
            let (status, _, _) = raw(
                &server,
                M::POST,
                "/proxies/p/toxics",
                Some(r#"{"type":"timeout","attributes":{}}"#),
            )
            .await;
            assert_eq!(status, 400, "timeout needs its timeout attribute");
            let (status, _, _) = raw(
                &server,
                M::POST,
                "/proxies/p/toxics",
                Some(r#"{"type":"reset_peer","attributes":{"timeout":-1}}"#),
            )
            .await;
            assert_eq!(status, 400, "a negative reset_peer timeout");

            let (status, _, _) = raw(
                &server,
                M::POST,
                "/proxies/p/toxics",
                Some(r#"{"type":"noop","toxicity":1e40}"#),
            )
            .await;
            assert_eq!(status, 400, "an infinite toxicity cannot be shown as JSON");

            let latency = r#"{"type":"latency","attributes":{"latency":5}}"#;
            assert_eq!(
                raw(&server, M::POST, "/proxies/p/toxics", Some(latency))
                    .await
                    .0,
                200
            );
            assert_error(
                raw(&server, M::POST, "/proxies/p/toxics", Some(latency)).await,
                409,
                "toxic already exists",
            );
            let (status, _, _) = raw(
                &server,
                M::POST,
                "/proxies/p/toxics/latency_downstream",
                Some(r#"{"attributes":{"latency":"slow"}}"#),
            )
            .await;
            assert_eq!(status, 400);
            let (status, _, _) = raw(
                &server,
                M::POST,
                "/proxies/p/toxics/latency_downstream",
                Some(r#"{"attributes":[1]}"#),
            )
            .await;
            assert_eq!(status, 400);
            for method in [M::GET, M::DELETE] {
                assert_error(
                    raw(&server, method, "/proxies/p/toxics/nope", None).await,
                    404,
                    "toxic not found",
                );
            }
            assert_error(
                raw(&server, M::POST, "/proxies/p/toxics/nope", Some("{}")).await,
                404,
                "toxic not found",
            );

            // Routing.
            assert_error(
                raw(&server, M::PUT, "/proxies", None).await,
                405,
                "method not allowed",
            );
            assert_error(
                raw(&server, M::DELETE, "/version", None).await,
                405,
                "method not allowed",
            );
            assert_error(
                raw(&server, M::GET, "/nothing", None).await,
                404,
                "not found",
            );
            assert_error(
                raw(&server, M::GET, "/proxies/%zz", None).await,
                400,
                "invalid path encoding",
            );

            // Delete answers 204 with no body, then the proxy is gone.
            let answer = raw(&server, M::DELETE, "/proxies/p", None).await;
            assert_eq!((answer.0, answer.2), (204, Value::Null));
            assert_error(
                raw(&server, M::GET, "/proxies/p", None).await,
                404,
                "proxy not found",
            );
            server.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn json_shapes_match_toxiproxy() {
        use reqwest::Method as M;
        with_deadline(async {
            let server = start_server().await;
            let echo = start_echo().await;

            let (status, content_type, body) = raw(&server, M::GET, "/version", None).await;
            assert_eq!(status, 200);
            assert_eq!(content_type, "application/json");
            assert_eq!(body, json!({ "version": format!("{}-tether", env!("CARGO_PKG_VERSION")) }));

            assert_eq!(raw(&server, M::GET, "/proxies", None).await.2, json!({}));
            let create = format!(r#"{{"name":"p","listen":"127.0.0.1:0","upstream":"{echo}"}}"#);
            let (status, content_type, created) =
                raw(&server, M::POST, "/proxies", Some(&create)).await;
            assert_eq!((status, content_type.as_str()), (201, "application/json"));
            let listen = created["listen"].as_str().unwrap().to_owned();
            let port: u16 = listen.rsplit(':').next().unwrap().parse().unwrap();
            assert_ne!(port, 0, "listen must show the real port");
            assert_eq!(
                created,
                json!({
                    "name": "p",
                    "listen": listen,
                    "upstream": echo.to_string(),
                    "enabled": true,
                    "toxics": [],
                })
            );
            // And it really listens there.
            let mut conn = TcpStream::connect(&listen).await.unwrap();
            round_trip(&mut conn, b"shape").await.unwrap();
            assert_eq!(raw(&server, M::GET, "/proxies", None).await.2, json!({ "p": created }));
            assert_eq!(raw(&server, M::GET, "/proxies/p", None).await.2, created);

            // Each toxic type, with defaults filled in.
            let cases = [
                (
                    r#"{"type":"latency","attributes":{"latency":10}}"#,
                    json!({"name":"latency_downstream","type":"latency","stream":"downstream",
                           "toxicity":1.0,"attributes":{"latency":10,"jitter":0}}),
                ),
                (
                    r#"{"name":"bw","type":"bandwidth","stream":"UPSTREAM","toxicity":0.5,"attributes":{"rate":100}}"#,
                    json!({"name":"bw","type":"bandwidth","stream":"upstream",
                           "toxicity":0.5,"attributes":{"rate":100}}),
                ),
                (
                    r#"{"type":"timeout","stream":"upstream","attributes":{"timeout":0}}"#,
                    json!({"name":"timeout_upstream","type":"timeout","stream":"upstream",
                           "toxicity":1.0,"attributes":{"timeout":0}}),
                ),
                (
                    r#"{"type":"slow_close","attributes":{"delay":5}}"#,
                    json!({"name":"slow_close_downstream","type":"slow_close","stream":"downstream",
                           "toxicity":1.0,"attributes":{"delay":5}}),
                ),
                (
                    r#"{"type":"slicer","attributes":{"average_size":64}}"#,
                    json!({"name":"slicer_downstream","type":"slicer","stream":"downstream",
                           "toxicity":1.0,"attributes":{"average_size":64,"size_variation":0,"delay":0}}),
                ),
                (
                    r#"{"type":"limit_data","stream":"upstream","attributes":{"bytes":1000000}}"#,
                    json!({"name":"limit_data_upstream","type":"limit_data","stream":"upstream",
                           "toxicity":1.0,"attributes":{"bytes":1000000}}),
                ),
                (
                    r#"{"name":"nothing","type":"noop"}"#,
                    json!({"name":"nothing","type":"noop","stream":"downstream",
                           "toxicity":1.0,"attributes":{}}),
                ),
                (
                    r#"{"type":"reset_peer","stream":"upstream","toxicity":0.5}"#,
                    json!({"name":"reset_peer_upstream","type":"reset_peer","stream":"upstream",
                           "toxicity":0.5,"attributes":{"timeout":0}}),
                ),
            ];
            let mut expected_list = Vec::new();
            for (request, expected) in cases {
                let (status, content_type, body) =
                    raw(&server, M::POST, "/proxies/p/toxics", Some(request)).await;
                assert_eq!((status, content_type.as_str()), (200, "application/json"), "{request}");
                assert_eq!(body, expected, "{request}");
                expected_list.push(expected);
            }
            assert_eq!(raw(&server, M::GET, "/proxies/p/toxics", None).await.2, json!(expected_list));

            // Updates merge attributes and keep what was not given.
            let (status, _, body) = raw(
                &server,
                M::POST,
                "/proxies/p/toxics/latency_downstream",
                Some(r#"{"attributes":{"jitter":3}}"#),
            )
            .await;
            assert_eq!(status, 200);
            assert_eq!(body["attributes"], json!({"latency":10,"jitter":3}));
            assert_eq!(body["toxicity"], json!(1.0));
            let (status, _, body) = raw(
                &server,
                M::PATCH,
                "/proxies/p/toxics/latency_downstream",
                Some(r#"{"toxicity":0.25}"#),
            )
            .await;
            assert_eq!(status, 200);
            assert_eq!(
                body,
                json!({"name":"latency_downstream","type":"latency","stream":"downstream",
                       "toxicity":0.25,"attributes":{"latency":10,"jitter":3}})
            );
            assert_eq!(
                raw(&server, M::GET, "/proxies/p/toxics/latency_downstream", None).await.2,
                body
            );

            let answer = raw(&server, M::DELETE, "/proxies/p/toxics/latency_downstream", None).await;
            assert_eq!((answer.0, answer.2), (204, Value::Null));
            let names: Vec<Value> = raw(&server, M::GET, "/proxies/p", None).await.2["toxics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|toxic| toxic["name"].clone())
                .collect();
            assert_eq!(
                names,
                vec![
                    json!("bw"),
                    json!("timeout_upstream"),
                    json!("slow_close_downstream"),
                    json!("slicer_downstream"),
                    json!("limit_data_upstream"),
                    json!("nothing"),
                    json!("reset_peer_upstream")
                ]
            );

            let (status, _, body) =
                raw(&server, M::POST, "/proxies/p", Some(r#"{"enabled":false}"#)).await;
            assert_eq!((status, &body["enabled"]), (200, &json!(false)));
            assert_eq!(body["listen"], json!(listen));
            server.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn update_moves_upstream_and_listen() {
        with_deadline(async {
            let server = start_server().await;
            let api = ToxiproxyClient::new(&server.base_url).unwrap();
            let first = start_tagged_echo(b"A:").await;
            let second = start_tagged_echo(b"B:").await;
            let proxy = api
                .create_proxy("p", "127.0.0.1:0", &first.to_string())
                .await
                .unwrap();
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            assert_eq!(exchange(&mut conn, b"x", 3).await.unwrap().0, b"A:x");

            let body = format!(r#"{{"upstream":"{second}"}}"#);
            let (status, _, moved) =
                raw(&server, reqwest::Method::POST, "/proxies/p", Some(&body)).await;
            assert_eq!(status, 200);
            assert_eq!(moved["upstream"], json!(second.to_string()));
            assert_eq!(moved["listen"], json!(proxy.listen));
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            assert_eq!(exchange(&mut conn, b"y", 3).await.unwrap().0, b"B:y");

            let (status, _, moved) = raw(
                &server,
                reqwest::Method::POST,
                "/proxies/p",
                Some(r#"{"listen":"127.0.0.1:0"}"#),
            )
            .await;
            assert_eq!(status, 200);
            let new_listen = moved["listen"].as_str().unwrap().to_owned();
            assert_ne!(new_listen, proxy.listen);
            assert!(
                refuses(&proxy.listen).await,
                "the old listen address still accepts"
            );
            let mut conn = TcpStream::connect(&new_listen).await.unwrap();
            assert_eq!(exchange(&mut conn, b"z", 3).await.unwrap().0, b"B:z");
            server.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn bandwidth_limits_throughput() {
        with_deadline(async {
            let server = start_server().await;
            let api = ToxiproxyClient::new(&server.base_url).unwrap();
            let echo = start_echo().await;
            let proxy = api
                .create_proxy("p", "127.0.0.1:0", &echo.to_string())
                .await
                .unwrap();
            let payload = vec![7u8; 5000];
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            let unlimited = round_trip(&mut conn, &payload).await.unwrap();
            assert!(unlimited < FAST, "5000 bytes unlimited took {unlimited:?}");

            // 10 KB/s: 5000 bytes take about 500 ms.
            let toxic = Toxic::new("bw", DOWNSTREAM, DOWNSTREAM, json!({}));
            let toxic = Toxic {
                kind: "bandwidth".to_owned(),
                attributes: json!({ "rate": 10 }),
                ..toxic
            };
            api.add_toxic("p", &toxic).await.unwrap();
            let limited = round_trip(&mut conn, &payload).await.unwrap();
            assert!(
                limited >= Duration::from_millis(400) && limited < IO_DEADLINE,
                "5000 bytes at 10 KB/s took {limited:?}"
            );
            server.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn limit_data_closes_after_the_limit() {
        with_deadline(async {
            let server = start_server().await;
            let api = ToxiproxyClient::new(&server.base_url).unwrap();
            let echo = start_echo().await;
            let proxy = api
                .create_proxy("p", "127.0.0.1:0", &echo.to_string())
                .await
                .unwrap();
            let mut early = TcpStream::connect(&proxy.listen).await.unwrap();
            round_trip(&mut early, b"early").await.unwrap();

            let limit = Toxic::new("limit", "limit_data", DOWNSTREAM, json!({ "bytes": 5 }));
            api.add_toxic("p", &limit).await.unwrap();
            // Documented: connections older than a limit_data toxic are closed.
            assert!(closed_within(&mut early, Duration::from_secs(2)).await);

            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            conn.write_all(b"0123456789").await.unwrap();
            let mut received = Vec::new();
            let read = tokio::time::timeout(IO_DEADLINE, conn.read_to_end(&mut received)).await;
            assert!(read.is_ok(), "the connection stayed open past the limit");
            assert_eq!(received, b"01234");
            server.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn shutdown_stops_api_and_proxies() {
        with_deadline(async {
            let server = start_server().await;
            let api = ToxiproxyClient::new(&server.base_url).unwrap();
            let echo = start_echo().await;
            let proxy = api
                .create_proxy("p", "127.0.0.1:0", &echo.to_string())
                .await
                .unwrap();
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            round_trip(&mut conn, b"alive").await.unwrap();

            let api_addr = server.addr;
            server.stop().await;
            assert!(closed_within(&mut conn, Duration::from_secs(2)).await);
            assert!(
                refuses(&proxy.listen).await,
                "the proxy outlived the server"
            );
            assert!(
                TcpStream::connect(api_addr).await.is_err(),
                "the API outlived the server"
            );
        })
        .await;
    }

    /// Round-trip times of `count` echoes on one connection through a proxy with
    /// latency 200 ± 200 ms on the answers, on a server seeded with `seed`.
    async fn jittered_round_trips(seed: u64, count: usize) -> Vec<i64> {
        let server = start_server_with(ServeOptions {
            seed: Some(seed),
            ..ServeOptions::default()
        })
        .await;
        let api = ToxiproxyClient::new(&server.base_url).unwrap();
        let echo = start_echo().await;
        let proxy = api
            .create_proxy("link", "127.0.0.1:0", &echo.to_string())
            .await
            .unwrap();
        api.add_toxic("link", &Toxic::latency("jitter", DOWNSTREAM, 200, 200))
            .await
            .unwrap();
        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        let mut took = Vec::with_capacity(count);
        for _ in 0..count {
            // One answer is one chunk, and each chunk draws one jitter.
            let time = round_trip(&mut conn, b"j").await.unwrap();
            took.push(i64::try_from(time.as_millis()).unwrap());
        }
        server.stop().await;
        took
    }

    /// For `count` new connections through a proxy with a `reset_peer` toxic of
    /// toxicity 0.5, on a server seeded with `seed`: whether each was reset.
    async fn reset_decisions(seed: u64, count: usize) -> Vec<bool> {
        let server = start_server_with(ServeOptions {
            seed: Some(seed),
            ..ServeOptions::default()
        })
        .await;
        let api = ToxiproxyClient::new(&server.base_url).unwrap();
        let echo = start_echo().await;
        let proxy = api
            .create_proxy("link", "127.0.0.1:0", &echo.to_string())
            .await
            .unwrap();
        let mut toxic = Toxic::new("coin", "reset_peer", "upstream", json!({ "timeout": 0 }));
        toxic.toxicity = 0.5;
        api.add_toxic("link", &toxic).await.unwrap();
        let mut decisions = Vec::with_capacity(count);
        for _ in 0..count {
            let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
            match exchange(&mut conn, b"?", 1).await {
                Ok(_) => decisions.push(false),
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {
                    decisions.push(true)
                }
                Err(err) => panic!("neither an answer nor a reset: {err}"),
            }
        }
        server.stop().await;
        decisions
    }

    #[tokio::test]
    async fn seeded_jitter_is_reproducible() {
        // Scheduling noise allowed between two runs of the same round trip.
        const NOISE_MS: i64 = 60;
        with_deadline(async {
            let (first, again, other) = tokio::join!(
                jittered_round_trips(7, 8),
                jittered_round_trips(7, 8),
                jittered_round_trips(8, 8)
            );
            let spread = first.iter().max().unwrap() - first.iter().min().unwrap();
            assert!(spread >= 100, "no jitter in {first:?}");
            assert!(
                first
                    .iter()
                    .zip(&again)
                    .all(|(a, b)| (a - b).abs() <= NOISE_MS),
                "the same seed gave {first:?} and {again:?}"
            );
            let differing = first
                .iter()
                .zip(&other)
                .filter(|(a, b)| (*a - *b).abs() > 2 * NOISE_MS)
                .count();
            assert!(differing >= 2, "seeds 7 and 8 gave {first:?} and {other:?}");
        })
        .await;
    }

    #[tokio::test]
    async fn seeded_toxicity_is_reproducible() {
        with_deadline(async {
            let (first, again, other) = tokio::join!(
                reset_decisions(7, 12),
                reset_decisions(7, 12),
                reset_decisions(8, 12)
            );
            assert!(
                first.contains(&true) && first.contains(&false),
                "toxicity 0.5 decided {first:?}"
            );
            assert_eq!(first, again, "the same seed decided differently");
            assert_ne!(first, other, "seeds 7 and 8 decided alike");
        })
        .await;
    }

    #[test]
    fn runtime_kind_keeps_noxious_safe() {
        assert_eq!(
            runtime_kind(ToxicKind::Bandwidth { rate: 0 }),
            ToxicKind::Noop
        );
        assert_eq!(
            runtime_kind(ToxicKind::Bandwidth { rate: 100 }),
            ToxicKind::Slicer {
                average_size: 1000,
                size_variation: 0,
                delay: 10_000
            }
        );
        assert_eq!(
            runtime_kind(ToxicKind::Slicer {
                average_size: 0,
                size_variation: 9,
                delay: 1
            }),
            ToxicKind::Slicer {
                average_size: 1,
                size_variation: 0,
                delay: 1
            }
        );
        assert_eq!(
            runtime_kind(ToxicKind::Slicer {
                average_size: 8,
                size_variation: 20,
                delay: 0
            }),
            ToxicKind::Slicer {
                average_size: 8,
                size_variation: 7,
                delay: 0
            }
        );
        assert_eq!(
            runtime_kind(ToxicKind::Timeout { timeout: 0 }),
            ToxicKind::Timeout { timeout: 0 }
        );
    }

    #[test]
    fn paths_are_percent_decoded() {
        assert_eq!(
            path_segments("/proxies/edge%20rack%2Fxds/toxics/").unwrap(),
            vec!["proxies", "edge rack/xds", "toxics"]
        );
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        for broken in ["%", "%2", "%zz", "%+1", "%FF"] {
            assert_eq!(percent_decode(broken), None, "{broken}");
        }
    }
}
