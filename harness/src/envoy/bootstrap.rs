//! The bootstrap an App Mesh-style sidecar starts from: ADS over one gRPC cluster (the
//! xDS link), HTTP/2 keepalive on it so a silent link is noticed, and
//! `initial_fetch_timeout` 0 as App Mesh sets it.

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

/// Which form of the ADS protocol a sidecar speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum XdsVariant {
    /// State of the world: every response carries the whole set of a type.
    #[default]
    Sotw,
    /// Delta (incremental): responses carry only what changed.
    Delta,
}

/// How a sidecar finds out that its xDS connection went silent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepaliveKind {
    /// HTTP/2 PINGs, answered by the control plane itself (App Mesh's setting).
    #[default]
    Http2,
    /// TCP keepalive probes only, answered by whatever terminates the TCP connection, so
    /// a TCP-terminating fault proxy answers them for a control plane it cannot reach.
    Tcp,
}

/// How the sidecar's xDS connection behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct XdsSettings {
    /// State-of-the-world or delta ADS.
    pub variant: XdsVariant,
    /// HTTP/2 or TCP keepalive on the xDS connection.
    pub keepalive: KeepaliveKind,
    /// HTTP/2 PING interval on the xDS connection (App Mesh: 10 s).
    pub keepalive_interval: Duration,
    /// How long a PING may go unanswered before the connection is closed (App Mesh: 20 s).
    pub keepalive_timeout: Duration,
    /// First reconnect backoff (App Mesh: 10 s).
    pub backoff_base: Duration,
    /// Largest reconnect backoff (App Mesh: 120 s).
    pub backoff_max: Duration,
    /// How long a starting Envoy waits for its first config before it serves without
    /// it (App Mesh: 0, for ever: a sidecar started during a partition never gets ready).
    pub initial_fetch_timeout: Duration,
}

impl Default for XdsSettings {
    /// App Mesh's values.
    fn default() -> Self {
        XdsSettings {
            variant: XdsVariant::Sotw,
            keepalive: KeepaliveKind::Http2,
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(20),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(120),
            initial_fetch_timeout: Duration::ZERO,
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

/// The bootstrap (as JSON, which Envoy reads as YAML) for node `node_id`, whose admin
/// endpoint is `admin` and whose xDS server is reached at `xds` (the link's fault proxy).
pub fn bootstrap(
    node_id: &str,
    admin: SocketAddr,
    xds: SocketAddr,
    settings: &XdsSettings,
) -> Value {
    let ads_source = json!({
        "ads": {},
        "resource_api_version": "V3",
        "initial_fetch_timeout": secs(settings.initial_fetch_timeout)
    });
    // Whole seconds for TCP keepalive (the kernel's unit), at least one.
    let whole = |d: Duration| d.as_secs().max(1);
    let (http2, tcp) = match settings.keepalive {
        KeepaliveKind::Http2 => (
            json!({ "connection_keepalive": {
                "interval": secs(settings.keepalive_interval),
                "timeout": secs(settings.keepalive_timeout)
            }}),
            json!({}),
        ),
        KeepaliveKind::Tcp => (
            json!({}),
            json!({ "tcp_keepalive": {
                "keepalive_time": whole(settings.keepalive_interval),
                "keepalive_interval": whole(settings.keepalive_interval),
                "keepalive_probes": (whole(settings.keepalive_timeout) / whole(settings.keepalive_interval)).max(1)
            }}),
        ),
    };
    json!({
        "node": { "id": node_id, "cluster": node_id },
        "admin": {
            "address": { "socket_address": { "address": admin.ip().to_string(), "port_value": admin.port() } }
        },
        "dynamic_resources": {
            "ads_config": {
                "api_type": match settings.variant {
                    XdsVariant::Sotw => "GRPC",
                    XdsVariant::Delta => "DELTA_GRPC",
                },
                "transport_api_version": "V3",
                "set_node_on_first_message_only": true,
                "grpc_services": [{
                    "envoy_grpc": {
                        "cluster_name": "xds_cluster",
                        "retry_policy": {
                            "retry_back_off": {
                                "base_interval": secs(settings.backoff_base),
                                "max_interval": secs(settings.backoff_max)
                            }
                        }
                    }
                }]
            },
            "cds_config": ads_source,
            "lds_config": ads_source
        },
        "static_resources": {
            "clusters": [{
                "name": "xds_cluster",
                "type": "STATIC",
                "connect_timeout": "1s",
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": { "http2_protocol_options": http2 }
                    }
                },
                "upstream_connection_options": tcp,
                "load_assignment": {
                    "cluster_name": "xds_cluster",
                    "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": {
                        "socket_address": { "address": xds.ip().to_string(), "port_value": xds.port() }
                    }}}]}]
                }
            }]
        }
    })
}
