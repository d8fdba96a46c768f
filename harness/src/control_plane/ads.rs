//! The ADS gRPC service. This file serves the state-of-the-world variant; the delta
//! (incremental) variant is in [`super::delta`].
//!
//! One task per Envoy stream. It answers each request for a type it has not yet sent at
//! the current version (or with other resource names), records ACKs and NACKs by the
//! nonce they answer, and on a mesh change pushes clusters, endpoints, listeners and
//! routes in that order, the order Envoy needs to warm them safely.

use super::ControlPlane;
use crate::mesh::Resources;
use crate::timeline::XdsKind;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::util::pack_any;
use std::collections::BTreeMap;
use std::pin::Pin;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

/// Cluster type URL.
pub const CDS: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
/// Endpoint type URL.
pub const EDS: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
/// Listener type URL.
pub const LDS: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
/// Route type URL.
pub const RDS: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

/// The push order: clusters before endpoints before listeners before routes.
pub(super) const ORDER: [&str; 4] = [CDS, EDS, LDS, RDS];

/// `cds` for the cluster type URL, and so on.
pub fn short_type(type_url: &str) -> &'static str {
    match type_url {
        CDS => "cds",
        EDS => "eds",
        LDS => "lds",
        RDS => "rds",
        _ => "other",
    }
}

/// The tonic service to mount on a server.
pub fn service(cp: ControlPlane) -> AggregatedDiscoveryServiceServer<ControlPlane> {
    AggregatedDiscoveryServiceServer::new(cp)
}

/// What one stream has subscribed to and last sent, per type URL.
#[derive(Default)]
struct Subscription {
    names: Vec<String>,
    sent_version: Option<u64>,
    sent_names: Vec<String>,
    last_nonce: String,
}

/// Every resource of `type_url` in `resources`, by name.
pub(super) fn named(resources: &Resources, type_url: &str) -> Vec<(String, Any)> {
    match type_url {
        CDS => resources
            .clusters
            .iter()
            .map(|c| (c.name.clone(), pack_any(c.clone())))
            .collect(),
        EDS => resources
            .endpoints
            .iter()
            .map(|e| (e.cluster_name.clone(), pack_any(e.clone())))
            .collect(),
        LDS => resources
            .listeners
            .iter()
            .map(|l| (l.name.clone(), pack_any(l.clone())))
            .collect(),
        RDS => resources
            .routes
            .iter()
            .map(|r| (r.name.clone(), pack_any(r.clone())))
            .collect(),
        _ => Vec::new(),
    }
}

/// Clusters and listeners are wildcard types: a client gets all of them unless it names some.
pub(super) fn is_wildcard_type(type_url: &str) -> bool {
    type_url == CDS || type_url == LDS
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

type ResponseStream = Pin<Box<dyn Stream<Item = Result<DiscoveryResponse, Status>> + Send>>;
type DeltaStream = Pin<Box<dyn Stream<Item = Result<DeltaDiscoveryResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AggregatedDiscoveryService for ControlPlane {
    type StreamAggregatedResourcesStream = ResponseStream;
    type DeltaAggregatedResourcesStream = DeltaStream;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(serve_stream(self.clone(), inbound, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<DeltaStream>, Status> {
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(super::delta::serve_stream(self.clone(), inbound, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Serve one Envoy's ADS stream until it closes.
async fn serve_stream(
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
                if !send_if_stale(&cp, &node, type_url, sub, &mut nonce, &tx).await {
                    return;
                }
            }
            changed = versions.changed() => {
                if changed.is_err() {
                    return;
                }
                for type_url in ORDER {
                    let Some(sub) = subs.get_mut(type_url) else { continue };
                    if !send_if_stale(&cp, &node, type_url, sub, &mut nonce, &tx).await {
                        return;
                    }
                }
            }
        }
    }
}

/// Send `type_url` to the stream unless it already has the current version with the same
/// names. Returns false when the stream is gone.
async fn send_if_stale(
    cp: &ControlPlane,
    node: &str,
    type_url: &'static str,
    sub: &mut Subscription,
    nonce: &mut u64,
    tx: &mpsc::Sender<Result<DiscoveryResponse, Status>>,
) -> bool {
    let (version, resources) = cp.snapshot(node);
    if sub.sent_version == Some(version) && sub.sent_names == sub.names {
        return true;
    }
    *nonce += 1;
    let response = DiscoveryResponse {
        version_info: version.to_string(),
        resources: resources_of(&resources, type_url, &sub.names),
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
