//! The bootstrap an App Mesh-style sidecar starts from: ADS over one gRPC cluster (the
//! xDS link), HTTP/2 keepalive on it so a silent link is noticed, and
//! `initial_fetch_timeout` 0 as App Mesh sets it. Its watchdog looks for stuck threads
//! every few seconds rather than Envoy's default fifth of a second ([`WATCHDOG`]).

use crate::plan::{KeepaliveKind, XdsSettings, XdsVariant};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

/// The watchdog's miss and megamiss timeouts (Envoy's defaults: 200 ms and 1 s). The
/// watchdog only counts stuck threads (`server.watchdog_miss`; it kills nothing unless told
/// to), but its default loop wakes each of an idle Envoy's threads several times a
/// second: on this kind of machine 30 idle Envoys used 0.98 ms of CPU a second each with
/// it and 0.17 ms with these, which at 500 sidecars is half a core.
pub const WATCHDOG: (&str, &str) = ("5s", "10s");

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
    let watchdog = json!({ "miss_timeout": WATCHDOG.0, "megamiss_timeout": WATCHDOG.1 });
    json!({
        "node": { "id": node_id, "cluster": node_id },
        "watchdogs": { "main_thread_watchdog": watchdog, "worker_watchdog": watchdog },
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
