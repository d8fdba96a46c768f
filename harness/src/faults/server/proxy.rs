//! One proxy of the server: its configuration and toxics, and its relay when enabled.

use super::api::ApiError;
use super::toxics::relay_toxic;
use crate::faults::client::{Proxy, Toxic};
use crate::faults::relay::{Counters, Relay, Rules, SplitMix64, proxy_seed};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a stopping proxy may take to close its listener and connections
/// before its task is aborted.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// One proxy: what the API shows, and its relay when enabled.
pub(super) struct ProxyEntry {
    /// The unique name.
    pub name: String,
    /// `ip:port`; once it has listened, the port it really bound (for port 0).
    pub listen: String,
    /// Where connections go.
    pub upstream: String,
    /// True exactly when `running` is `Some`.
    pub enabled: bool,
    /// The toxics in the order they were added, as the API shows them.
    pub toxics: Vec<Toxic>,
    running: Option<Running>,
    /// This proxy's seed (derived from the server's), if any.
    rand_seed: Option<u64>,
    /// The revision of each toxic, bumped when it is added or updated.
    revisions: BTreeMap<String, u64>,
    /// The last revision handed out.
    last_revision: u64,
    /// What its connections have carried, since the proxy was created.
    pub counters: Arc<Counters>,
}

/// A running relay and the handles to steer it.
struct Running {
    /// Publishes the toxics to the relay and its open connections.
    rules: watch::Sender<Rules>,
    /// Stops the relay: its listener and every connection close.
    shutdown: CancellationToken,
    /// The relay's task.
    task: JoinHandle<()>,
}

impl ProxyEntry {
    /// A disabled proxy with no toxics; its seed derives from `server_seed`.
    pub fn new(name: String, listen: String, upstream: String, server_seed: Option<u64>) -> Self {
        ProxyEntry {
            rand_seed: server_seed.map(|seed| proxy_seed(seed, &name)),
            name,
            listen,
            upstream,
            enabled: false,
            toxics: Vec::new(),
            running: None,
            revisions: BTreeMap::new(),
            last_revision: 0,
            counters: Arc::default(),
        }
    }

    /// The proxy as the API shows it.
    pub fn to_api(&self) -> Proxy {
        Proxy {
            name: self.name.clone(),
            listen: self.listen.clone(),
            upstream: self.upstream.clone(),
            enabled: self.enabled,
            toxics: self.toxics.clone(),
        }
    }

    /// Records that the toxic `name` was added, updated or removed, and hands
    /// the new rules to the relay, which applies them to open connections too
    /// (each decides its toxicity anew; timing toxics release what they hold).
    pub fn changed(&mut self, name: &str) {
        if self.toxics.iter().any(|toxic| toxic.name == name) {
            self.last_revision += 1;
            self.revisions.insert(name.to_owned(), self.last_revision);
        } else {
            self.revisions.remove(name);
        }
        self.publish();
    }

    /// Removes every toxic, also from open connections.
    pub fn clear_toxics(&mut self) {
        self.toxics.clear();
        self.revisions.clear();
        self.publish();
    }

    /// Hands the current rules to the relay, if it runs.
    fn publish(&self) {
        if let Some(running) = &self.running {
            running.rules.send_replace(self.rules());
        }
    }

    /// `self.toxics` as the relay runs them.
    fn rules(&self) -> Rules {
        let rules = self.toxics.iter().filter_map(|toxic| {
            relay_toxic(toxic, self.revisions.get(&toxic.name).copied().unwrap_or(0))
        });
        Arc::new(rules.collect())
    }

    /// Listens and starts the relay unless it runs already. A `listen` port of
    /// 0 binds a free port, which `listen` then shows. On failure the proxy
    /// stays disabled.
    pub async fn start(&mut self) -> Result<(), ApiError> {
        if self.running.is_none() {
            let listener = match TcpListener::bind(&self.listen).await {
                Ok(listener) => listener,
                Err(err) => {
                    self.enabled = false;
                    return Err(ApiError::internal(format!(
                        "listen tcp {}: {err}",
                        self.listen
                    )));
                }
            };
            if let Ok(bound) = listener.local_addr() {
                self.listen = bound.to_string();
            }
            let rng = match self.rand_seed {
                Some(seed) => SplitMix64::new(seed),
                None => SplitMix64::from_entropy(),
            };
            let (rules, rules_rx) = watch::channel(self.rules());
            let shutdown = CancellationToken::new();
            let relay = Relay {
                listener,
                upstream: self.upstream.clone(),
                rules: rules_rx,
                rng: Arc::new(Mutex::new(rng)),
                shutdown: shutdown.clone(),
                counters: self.counters.clone(),
            };
            self.running = Some(Running {
                rules,
                shutdown,
                task: tokio::spawn(relay.run()),
            });
        }
        self.enabled = true;
        Ok(())
    }

    /// Stops the relay, if any: its listener and connections close before this returns.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown.cancel();
            let mut task = running.task;
            if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
            }
        }
        self.enabled = false;
    }
}
