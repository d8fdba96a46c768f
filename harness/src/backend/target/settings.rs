//! The xDS settings a target's sidecars really run with, against the suite's.
//!
//! On the local backends tether writes every sidecar's bootstrap from the suite's `xds:`
//! settings. A target's sidecars started from their own, and the checks' bounds (how soon
//! a silent link is noticed, how long reconnecting may take) are only true for the
//! settings the suite states. So a run against a target first reads each sidecar's
//! bootstrap and refuses when its keepalive or reconnect backoff differ from the suite's.

use crate::envoy::AdminClient;
use crate::plan::Plan;
use crate::target::Target;
use serde_json::Value;
use std::net::SocketAddr;

/// Where each setting sits in a bootstrap (tether's and App Mesh's alike).
const SETTINGS: [(&str, &str); 6] = [
    ("xDS variant", "/dynamic_resources/ads_config/api_type"),
    (
        "TCP keepalive",
        "/static_resources/clusters/0/upstream_connection_options/tcp_keepalive",
    ),
    (
        "keepalive interval",
        "/static_resources/clusters/0/typed_extension_protocol_options/envoy.extensions.upstreams.http.v3.HttpProtocolOptions/explicit_http_config/http2_protocol_options/connection_keepalive/interval",
    ),
    (
        "keepalive timeout",
        "/static_resources/clusters/0/typed_extension_protocol_options/envoy.extensions.upstreams.http.v3.HttpProtocolOptions/explicit_http_config/http2_protocol_options/connection_keepalive/timeout",
    ),
    (
        "backoff base",
        "/dynamic_resources/ads_config/grpc_services/0/envoy_grpc/retry_policy/retry_back_off/base_interval",
    ),
    (
        "backoff max",
        "/dynamic_resources/ads_config/grpc_services/0/envoy_grpc/retry_policy/retry_back_off/max_interval",
    ),
];

/// A setting as it compares and shows: a duration as Envoy writes it (`"1s"`,
/// `"0.500s"`) in ms, anything else as its JSON.
fn shown(value: Option<&Value>) -> String {
    let ms = value
        .and_then(Value::as_str)
        .and_then(|t| t.strip_suffix('s'))
        .and_then(|t| t.parse::<f64>().ok());
    match (value, ms) {
        (None, _) => "not set".into(),
        (_, Some(secs)) => format!("{} ms", (secs * 1000.0).round() as u64),
        (Some(Value::String(text)), None) => text.clone(),
        (Some(other), None) => other.to_string(),
    }
}

/// Each setting of `actual` that differs from `expected`, in words.
fn differences(actual: &Value, expected: &Value) -> Vec<String> {
    SETTINGS
        .iter()
        .filter_map(|(name, pointer)| {
            let want = shown(expected.pointer(pointer));
            let have = shown(actual.pointer(pointer));
            (want != have).then(|| format!("{name} {have} (the suite says {want})"))
        })
        .collect()
}

/// Every sidecar of `plan` on `target` whose xDS settings are not the suite's, a line each.
pub async fn mismatches(plan: &Plan, target: &Target) -> Vec<String> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut lines = Vec::new();
    for node in plan.sites.keys() {
        let Some(sidecar) = target.sidecars.get(node) else {
            continue;
        };
        let expected = crate::envoy::bootstrap::bootstrap(node, any, any, &plan.xds_for(node));
        match AdminClient::at(sidecar.admin.as_str()).bootstrap().await {
            None => lines.push(format!(
                "sidecar `{node}`: its /config_dump has no bootstrap"
            )),
            Some(actual) => {
                let differ = differences(&actual, &expected);
                if !differ.is_empty() {
                    lines.push(format!("sidecar `{node}` runs {}", differ.join(", ")));
                }
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::XdsSettings;
    use std::time::Duration;

    #[test]
    fn a_sidecar_on_other_settings_is_named() {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let app_mesh = XdsSettings::default();
        let short = XdsSettings {
            keepalive_interval: Duration::from_secs(1),
            keepalive_timeout: Duration::from_secs(2),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(2),
            ..XdsSettings::default()
        };
        let suite = crate::envoy::bootstrap::bootstrap("n", any, any, &short);
        let same = crate::envoy::bootstrap::bootstrap("other", any, any, &short);
        assert!(differences(&same, &suite).is_empty());
        let rack = crate::envoy::bootstrap::bootstrap("n", any, any, &app_mesh);
        let said = differences(&rack, &suite);
        assert_eq!(said.len(), 4, "{said:?}");
        assert_eq!(
            said[0],
            "keepalive interval 10000 ms (the suite says 1000 ms)"
        );
    }
}
