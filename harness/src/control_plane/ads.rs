//! State-of-the-world ADS: one Envoy stream served (the delta variant is in
//! [`super::delta`], the gRPC service that hands streams to both in [`super::service`]).
//!
//! One task per Envoy stream. It answers each request for a type it has not yet sent at
//! the current version (or with other resource names), records ACKs and NACKs by the
//! nonce they answer, and on a mesh change pushes clusters, endpoints, listeners and
//! routes in that order, the order Envoy needs to warm them safely.

use super::ControlPlane;
use super::resources::{ORDER, is_wildcard_type, named, short_type};
use super::translate::Resources;
use crate::timeline::XdsKind;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::protobuf::Any;
use std::collections::BTreeMap;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::{Status, Streaming};

/// What one stream has subscribed to and last sent, per type URL.
#[derive(Default)]
struct Subscription {
    names: Vec<String>,
    sent_version: Option<u64>,
    sent_names: Vec<String>,
    last_nonce: String,
}

/// The resources of `type_url` in `resources`, as `Any`: all clusters and listeners
/// (wildcard types), and the endpoints and routes the client named (an empty list asks
/// for none).
fn resources_of(resources: &Resources, type_url: &str, names: &[String]) -> Vec<Any> {
    named(resources, type_url)
        .into_iter()
        .filter(|(name, _)| is_wildcard_type(type_url) || names.contains(name))
        .map(|(_, any)| any)
        .collect()
}

/// Serve one Envoy's ADS stream until it closes.
pub(super) async fn serve_stream(
    cp: ControlPlane,
    mut inbound: Streaming<DiscoveryRequest>,
    tx: mpsc::Sender<Result<DiscoveryResponse, Status>>,
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
                let sub = subs.entry(type_url).or_default();
                let short = short_type(type_url);
                if request.response_nonce.is_empty() {
                    // A new subscription (or a reconnect): not an answer to any push.
                    cp.log(&node, short, XdsKind::Request, &request.version_info, None);
                } else if request.response_nonce != sub.last_nonce {
                    // Answers a push that a newer one has replaced: the xDS protocol says to
                    // ignore it; Envoy will answer the newer push too.
                    continue;
                } else if let Some(status) = &request.error_detail {
                    let sent = sub.sent_version.map(|v| v.to_string()).unwrap_or_default();
                    cp.log(&node, short, XdsKind::Nack, &sent, Some(status.message.clone()));
                } else {
                    cp.log(&node, short, XdsKind::Ack, &request.version_info, None);
                }
                sub.names = request.resource_names.clone();
                let snapshot = cp.snapshot(&node);
                if !send_if_stale(&cp, &node, type_url, sub, &snapshot, &mut nonce, &tx).await {
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
                    if !send_if_stale(&cp, &node, type_url, sub, &snapshot, &mut nonce, &tx).await {
                        return;
                    }
                }
            }
        }
    }
}

/// Send `type_url` of `snapshot` (a version and the node's resources) to the stream unless
/// it already has that version with the same names. Returns false when the stream is gone.
async fn send_if_stale(
    cp: &ControlPlane,
    node: &str,
    type_url: &'static str,
    sub: &mut Subscription,
    (version, resources): &(u64, Resources),
    nonce: &mut u64,
    tx: &mpsc::Sender<Result<DiscoveryResponse, Status>>,
) -> bool {
    let version = *version;
    if sub.sent_version == Some(version) && sub.sent_names == sub.names {
        return true;
    }
    *nonce += 1;
    let response = DiscoveryResponse {
        version_info: version.to_string(),
        resources: resources_of(resources, type_url, &sub.names),
        type_url: type_url.to_string(),
        nonce: nonce.to_string(),
        ..Default::default()
    };
    sub.sent_version = Some(version);
    sub.sent_names = sub.names.clone();
    sub.last_nonce = response.nonce.clone();
    cp.log(
        node,
        short_type(type_url),
        XdsKind::Push,
        &version.to_string(),
        None,
    );
    tx.send(Ok(response)).await.is_ok()
}
