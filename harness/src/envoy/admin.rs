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
    /// Config updates it rejected (NACKed) so far: the `update_rejected` counters of its
    /// CDS, LDS and RDS subscriptions, summed.
    pub updates_rejected: Option<u64>,
}

/// Client for one Envoy's admin endpoint.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: String,
    http: reqwest::Client,
}

/// The admin requests one [`AdminClient::snapshot`] makes: the filtered `/stats` and
/// `/ready`.
pub const REQUESTS_PER_SNAPSHOT: u64 = 2;

impl AdminClient {
    /// A client for the same admin endpoint with connections of its own (for another
    /// runtime: a connection is tied to the runtime that opened it).
    pub fn fresh(&self) -> Self {
        AdminClient {
            base: self.base.clone(),
            http: Self::http(),
        }
    }

    fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default()
    }

    /// A client for the admin endpoint at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        AdminClient {
            base: format!("http://{addr}"),
            http: Self::http(),
        }
    }

    /// A client for the admin endpoint at `base`, like `http://10.0.3.7:9901` (a sidecar
    /// on a rack tether did not start).
    pub fn at(base: &str) -> Self {
        AdminClient {
            base: base.trim_end_matches('/').to_string(),
            ..AdminClient::new(SocketAddr::from(([127, 0, 0, 1], 0)))
        }
    }

    /// `GET /ready` answered 200 (Envoy is LIVE: it has its initial config).
    pub async fn ready(&self) -> bool {
        self.ready_state().await == Some(true)
    }

    /// `GET /ready`: Some(true) on 200, Some(false) on 503 (not LIVE yet), None when
    /// Envoy did not answer or answered otherwise.
    async fn ready_state(&self) -> Option<bool> {
        match self.http.get(format!("{}/ready", self.base)).send().await {
            Ok(r) if r.status().is_success() => Some(true),
            Ok(r) if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE => Some(false),
            _ => None,
        }
    }

    /// Connected state and served config versions; fields stay None where Envoy did not answer.
    ///
    /// Two requests: one `/stats` filtered to the figures below, and `/ready`. The config
    /// versions come from the xDS subscriptions' `version_text` readouts (the version of
    /// the last update each accepted), not from `/config_dump`: a full dump costs Envoy
    /// about 8 ms of its CPU, the filtered stats about 0.5 ms, which keeps sampling every
    /// 250 ms well under 1 % of its core (`tether bench observer`).
    pub async fn snapshot(&self) -> AdminSnapshot {
        let mut snap = AdminSnapshot::default();
        if let Some(Value::Array(stats)) = self
            .get_json(&format!("/stats?format=json&filter={STATS}"))
            .await
            .map(|mut answer| answer["stats"].take())
        {
            let stats = Stats(stats);
            snap.connected = stats
                .number("control_plane.connected_state")
                .map(|v| v == 1);
            snap.xds_keepalive_timeouts =
                stats.number("cluster.xds_cluster.http2.keepalive_timeout");
            snap.memory_allocated = stats.number("server.memory_allocated");
            snap.memory_heap = stats.number("server.memory_heap_size");
            snap.updates_rejected = stats.sum(|n| n.ends_with(".update_rejected"));
            snap.route_version = stats.newest_version(|n| n.contains(".rds."));
            snap.cluster_version = stats.newest_version(|n| n.starts_with("cluster_manager."));
            snap.listener_version = stats.newest_version(|n| n.starts_with("listener_manager."));
        }
        snap.ready = self.ready_state().await;
        snap
    }

    /// The version this Envoy reports (`GET /server_info`), e.g.
    /// `9e55.../1.40.0/Clean/RELEASE/BoringSSL`.
    pub async fn server_version(&self) -> Option<String> {
        let info = self.get_json("/server_info").await?;
        info["version"].as_str().map(str::to_string)
    }

    /// The bootstrap this Envoy started from (from `GET /config_dump`; once per run, not
    /// per sample: a full dump costs Envoy milliseconds of CPU).
    pub async fn bootstrap(&self) -> Option<Value> {
        let dump = self.get_json("/config_dump").await?;
        dump["configs"]
            .as_array()?
            .iter()
            .find(|c| {
                c["@type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("BootstrapConfigDump"))
            })
            .map(|c| c["bootstrap"].clone())
    }

    /// The body of `GET path` as text, when Envoy answered it with a success.
    pub async fn text(&self, path: &str) -> Option<String> {
        self.get(path).await?.text().await.ok()
    }

    async fn get_json(&self, path: &str) -> Option<Value> {
        self.get(path).await?.json().await.ok()
    }

    /// `GET path`, when Envoy answered it with a success.
    async fn get(&self, path: &str) -> Option<reqwest::Response> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .ok()?;
        response.status().is_success().then_some(response)
    }
}

/// The stats a snapshot reads: the xDS connection's state, Envoy's memory, and the
/// `version_text` and `update_rejected` of the CDS, LDS and every RDS subscription.
const STATS: &str = concat!(
    r"^(control_plane\.connected_state|cluster\.xds_cluster\.http2\.keepalive_timeout",
    r"|server\.memory_allocated|server\.memory_heap_size",
    r"|cluster_manager\.cds\.version_text|listener_manager\.lds\.version_text",
    r"|http\..*\.rds\..*\.version_text",
    r"|cluster_manager\.cds\.update_rejected|listener_manager\.lds\.update_rejected",
    r"|http\..*\.rds\..*\.update_rejected)$"
);

/// The `stats` array of a `/stats?format=json` answer.
struct Stats(Vec<Value>);

impl Stats {
    /// The counter or gauge called `name`.
    fn number(&self, name: &str) -> Option<u64> {
        self.0.iter().find(|s| s["name"] == name)?["value"].as_u64()
    }

    /// The sum of the counters whose name `pick` takes (None when there is none).
    fn sum(&self, pick: impl Fn(&str) -> bool) -> Option<u64> {
        let picked = self
            .0
            .iter()
            .filter(|s| s["name"].as_str().is_some_and(&pick))
            .filter_map(|s| s["value"].as_u64());
        picked.fold(None, |total, v| Some(total.unwrap_or(0) + v))
    }

    /// The newest non-empty `version_text` among the readouts whose name `pick` takes
    /// (empty until the subscription's first update). Versions are decimal counters from
    /// our control plane, opaque strings from another: the longer one is newer, then the
    /// larger.
    fn newest_version(&self, pick: impl Fn(&str) -> bool) -> Option<String> {
        self.0
            .iter()
            .filter(|s| {
                s["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(".version_text") && pick(n))
            })
            .filter_map(|s| s["value"].as_str())
            .filter(|v| !v.is_empty())
            .max_by_key(|v| (v.len(), v.to_string()))
            .map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_newest_version_of_each_subscription() {
        let stats = Stats(
            serde_json::json!([
                {"name": "cluster_manager.cds.version_text", "value": "10"},
                {"name": "http.egress.rds.egress.version_text", "value": "9"},
                {"name": "http.ingress.rds.ingress.version_text", "value": "12"},
                {"name": "listener_manager.lds.version_text", "value": ""},
                {"name": "control_plane.connected_state", "value": 1}
            ])
            .as_array()
            .cloned()
            .unwrap(),
        );
        let version = |pick: fn(&str) -> bool| stats.newest_version(pick);
        assert_eq!(version(|n| n.contains(".rds.")).as_deref(), Some("12"));
        assert_eq!(
            version(|n| n.starts_with("cluster_manager.")).as_deref(),
            Some("10")
        );
        // Empty until the first update.
        assert_eq!(version(|n| n.starts_with("listener_manager.")), None);
        assert_eq!(stats.number("control_plane.connected_state"), Some(1));
        assert_eq!(stats.number("server.memory_allocated"), None);
        assert_eq!(stats.sum(|n| n.ends_with(".update_rejected")), None);
        let rejected = Stats(
            serde_json::json!([
                {"name": "cluster_manager.cds.update_rejected", "value": 1},
                {"name": "http.egress.rds.egress.update_rejected", "value": 2},
                {"name": "cluster_manager.cds.update_success", "value": 7}
            ])
            .as_array()
            .cloned()
            .unwrap(),
        );
        assert_eq!(rejected.sum(|n| n.ends_with(".update_rejected")), Some(3));
    }
}
