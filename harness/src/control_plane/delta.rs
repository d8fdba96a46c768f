//! The ADS gRPC service, delta (incremental) variant.
//!
//! Each stream remembers, per type, which names the Envoy subscribed to and which content
//! it already has (a hash per resource name). A response carries only what is new or
//! changed, and the names that went away; a resource's version is the config version at
//! which it was sent. As in the state-of-the-world variant, pushes go in the order
//! clusters, endpoints, listeners, routes, and ACKs and NACKs are matched to pushes by
//! nonce.

use super::ControlPlane;
use super::resources::{ORDER, is_wildcard_type, named, short_type};
use super::translate::Resources;
use crate::timeline::XdsKind;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::{Status, Streaming};

/// One type's subscription on one delta stream.
#[derive(Default)]
struct Subscription {
    /// Subscribed to every resource of the type (`*`, or the first request naming none).
    wildcard: bool,
    /// Names subscribed to explicitly.
    names: BTreeSet<String>,
    /// What the Envoy has: resource name -> hash of the content sent.
    known: BTreeMap<String, u64>,
    /// Pushes not yet answered: nonce -> version.
    pending: BTreeMap<String, u64>,
}

impl Subscription {
    fn wants(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }
}

fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Serve one Envoy's delta ADS stream until it closes.
pub(super) async fn serve_stream(
    cp: ControlPlane,
    mut inbound: Streaming<DeltaDiscoveryRequest>,
    tx: mpsc::Sender<Result<DeltaDiscoveryResponse, Status>>,
) {
    let mut versions = cp.subscribe();
    let mut node = String::new();
    let mut subs: BTreeMap<&'static str, Subscription> = BTreeMap::new();
    let mut nonce = 0u64;
    loop {
        tokio::select! {
            request = inbound.next() => {
                let Some(Ok(request)) = request else { return };
                if let (true, Some(n)) = (node.is_empty(), &request.node) {
                    node = n.id.clone();
                    if let Err(refused) = cp.admit(&node) {
                        let _ = tx.send(Err(refused)).await;
                        return;
                    }
                }
                let Some(type_url) = ORDER.iter().copied().find(|t| *t == request.type_url) else {
                    continue;
                };
                let short = short_type(type_url);
                let first = !subs.contains_key(type_url);
                let sub = subs.entry(type_url).or_default();
                let answers_push = !request.response_nonce.is_empty();
                if answers_push {
                    if let Some(version) = sub.pending.remove(&request.response_nonce) {
                        let version = version.to_string();
                        match &request.error_detail {
                            Some(status) => cp.log(&node, short, XdsKind::Nack, &version, Some(status.message.clone())),
                            None => cp.log(&node, short, XdsKind::Ack, &version, None),
                        }
                    }
                } else {
                    cp.log(&node, short, XdsKind::Request, "", None);
                }
                // Subscription changes.
                if first && is_wildcard_type(type_url) && request.resource_names_subscribe.is_empty() {
                    sub.wildcard = true;
                }
                for name in &request.resource_names_subscribe {
                    if name == "*" {
                        sub.wildcard = true;
                    } else {
                        sub.names.insert(name.clone());
                    }
                }
                for name in &request.resource_names_unsubscribe {
                    if name == "*" {
                        sub.wildcard = false;
                    } else {
                        sub.names.remove(name);
                    }
                    sub.known.remove(name);
                }
                // After a reconnect the Envoy says what it has; anything we no longer
                // serve is removed by the next push. Its content is sent again anyway,
                // since versions from another stream mean nothing here.
                let stale: Vec<String> = request.initial_resource_versions.keys().cloned().collect();
                let subscribed = first || !request.resource_names_subscribe.is_empty();
                let snapshot = cp.snapshot(&node);
                if !push(&cp, &node, type_url, sub, &snapshot, &stale, subscribed, &mut nonce, &tx).await {
                    return;
                }
            }
            changed = versions.changed() => {
                if changed.is_err() {
                    return;
                }
                // One translation for every type of the change.
                let snapshot = cp.snapshot(&node);
                for type_url in ORDER {
                    let Some(sub) = subs.get_mut(type_url) else { continue };
                    if !push(&cp, &node, type_url, sub, &snapshot, &[], false, &mut nonce, &tx).await {
                        return;
                    }
                }
            }
        }
    }
}

/// Send what the Envoy lacks of `type_url` in `snapshot` (a version and the node's
/// resources): new and changed resources, and removals of
/// what it has that is gone (or in `stale`). A request that (re)subscribed is always
/// answered, even with nothing, so the Envoy's initial fetch completes. Returns false when
/// the stream is gone.
#[allow(clippy::too_many_arguments)]
async fn push(
    cp: &ControlPlane,
    node: &str,
    type_url: &'static str,
    sub: &mut Subscription,
    (version, resources): &(u64, Resources),
    stale: &[String],
    must_answer: bool,
    nonce: &mut u64,
    tx: &mpsc::Sender<Result<DeltaDiscoveryResponse, Status>>,
) -> bool {
    let version = *version;
    let current: BTreeMap<String, _> = named(resources, type_url)
        .into_iter()
        .filter(|(name, _)| sub.wants(name))
        .collect();
    let mut changed = Vec::new();
    for (name, any) in &current {
        let hash = content_hash(&any.value);
        if sub.known.get(name) != Some(&hash) {
            sub.known.insert(name.clone(), hash);
            changed.push(Resource {
                name: name.clone(),
                version: version.to_string(),
                resource: Some(any.clone()),
                ..Default::default()
            });
        }
    }
    let mut removed: BTreeSet<String> = sub
        .known
        .keys()
        .filter(|name| !current.contains_key(*name))
        .cloned()
        .collect();
    removed.extend(
        stale
            .iter()
            .filter(|name| !current.contains_key(*name))
            .cloned(),
    );
    for name in &removed {
        sub.known.remove(name);
    }
    if changed.is_empty() && removed.is_empty() && !must_answer {
        return true;
    }
    *nonce += 1;
    let response = DeltaDiscoveryResponse {
        system_version_info: version.to_string(),
        resources: changed,
        type_url: type_url.to_string(),
        removed_resources: removed.into_iter().collect(),
        nonce: nonce.to_string(),
        ..Default::default()
    };
    sub.pending.insert(response.nonce.clone(), version);
    cp.log(
        node,
        short_type(type_url),
        XdsKind::Push,
        &version.to_string(),
        None,
    );
    tx.send(Ok(response)).await.is_ok()
}
