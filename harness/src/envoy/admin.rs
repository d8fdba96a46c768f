//! A small client for Envoy's admin endpoint.

use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

/// What one look at an Envoy's admin endpoint found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdminSnapshot {
    /// `control_plane.connected_state` is 1.
    pub connected: Option<bool>,
    /// HTTP/2 keepalive timeouts on the xDS connection so far
    /// (`cluster.xds_cluster.http2.keepalive_timeout`).
    pub xds_keepalive_timeouts: Option<u64>,
    /// `version_info` of the dynamic route configurations it serves.
    pub route_version: Option<String>,
    /// `version_info` of the dynamic clusters it serves.
    pub cluster_version: Option<String>,
    /// `version_info` of the dynamic listeners it serves.
    pub listener_version: Option<String>,
    /// `GET /ready` answered 200 (LIVE: initialized, serving) or 503 (not yet). The
    /// `server.state` stat would lag: Envoy sets it only when it flushes its stats.
    pub ready: Option<bool>,
    /// `server.memory_allocated`: bytes handed out by its allocator.
    pub memory_allocated: Option<u64>,
    /// `server.memory_heap_size`: bytes its allocator holds from the system.
    pub memory_heap: Option<u64>,
}

/// Client for one Envoy's admin endpoint.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: String,
    http: reqwest::Client,
}

impl AdminClient {
    /// A client for the admin endpoint at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        AdminClient {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap_or_default(),
        }
    }

    /// `GET /ready` answered 200 (Envoy is LIVE: it has its initial config).
    pub async fn ready(&self) -> bool {
        match self.http.get(format!("{}/ready", self.base)).send().await {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        }
    }

    /// Connected state and served config versions; fields stay None where Envoy did not answer.
    pub async fn snapshot(&self) -> AdminSnapshot {
        let mut snap = AdminSnapshot::default();
        let filter = r"^(control_plane\.connected_state|cluster\.xds_cluster\.http2\.keepalive_timeout|server\.memory_allocated|server\.memory_heap_size)$";
        if let Some(stats) = self
            .get_json(&format!("/stats?format=json&filter={filter}"))
            .await
        {
            let stat = |name: &str| {
                stats["stats"]
                    .as_array()
                    .and_then(|a| a.iter().find(|s| s["name"] == name))
                    .and_then(|s| s["value"].as_u64())
            };
            snap.connected = stat("control_plane.connected_state").map(|v| v == 1);
            snap.xds_keepalive_timeouts = stat("cluster.xds_cluster.http2.keepalive_timeout");
            snap.memory_allocated = stat("server.memory_allocated");
            snap.memory_heap = stat("server.memory_heap_size");
        }
        snap.ready = match self.http.get(format!("{}/ready", self.base)).send().await {
            Ok(r) if r.status().is_success() => Some(true),
            Ok(r) if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE => Some(false),
            _ => None,
        };
        if let Some(dump) = self.get_json("/config_dump").await {
            snap.route_version = dynamic_version(&dump, "dynamic_route_configs");
            snap.cluster_version = dynamic_version(&dump, "dynamic_active_clusters");
            snap.listener_version = dynamic_version(&dump, "dynamic_listeners");
        }
        snap
    }

    async fn get_json(&self, path: &str) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }
}

/// The highest `version_info` among the entries of `section` in a config dump.
fn dynamic_version(dump: &Value, section: &str) -> Option<String> {
    dump["configs"]
        .as_array()?
        .iter()
        .filter_map(|c| c[section].as_array())
        .flatten()
        // Listeners keep their version under `active_state`.
        .filter_map(|e| {
            e["version_info"]
                .as_str()
                .or(e["active_state"]["version_info"].as_str())
        })
        .max_by_key(|v| (v.len(), v.to_string()))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_newest_dynamic_version() {
        let dump = serde_json::json!({"configs": [
            {"@type": "x.ClustersConfigDump", "dynamic_active_clusters": [{"version_info": "9"}, {"version_info": "10"}]},
            {"@type": "x.RoutesConfigDump", "dynamic_route_configs": [{"version_info": "3"}]},
            {"@type": "x.ListenersConfigDump", "dynamic_listeners": [{"active_state": {"version_info": "4"}}]}
        ]});
        assert_eq!(
            dynamic_version(&dump, "dynamic_active_clusters").as_deref(),
            Some("10")
        );
        assert_eq!(
            dynamic_version(&dump, "dynamic_route_configs").as_deref(),
            Some("3")
        );
        assert_eq!(
            dynamic_version(&dump, "dynamic_listeners").as_deref(),
            Some("4")
        );
        assert_eq!(dynamic_version(&dump, "dynamic_secrets"), None);
    }
}
