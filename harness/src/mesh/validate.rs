//! What App Mesh would reject in a mesh file, each named at its file, line and column.

use super::model::*;
use crate::source::InputError;
use marked_yaml::Spanned;
use std::collections::BTreeSet;
use std::path::Path;

/// The error type of every check here.
type Checked = Result<(), InputError>;

/// Builds errors that point into one file.
struct At<'a>(&'a Path);

impl At<'_> {
    fn err<T>(&self, at: &Spanned<T>, message: impl Into<String>) -> Checked {
        Err(InputError::spanned(self.0, at, message))
    }

    /// `v` within `low..=high`, or an error naming `what`.
    fn range(&self, v: &Spanned<u64>, what: &str, low: u64, high: u64) -> Checked {
        if **v < low || **v > high {
            return self.err(
                v,
                format!("expected {what} from {low} to {high}, found {}", **v),
            );
        }
        Ok(())
    }

    /// A `u32` at least 1.
    fn positive(&self, v: &Spanned<u32>, what: &str) -> Checked {
        self.range(&widen(v), what, 1, u64::from(u32::MAX))
    }

    /// `name` in `known`, or an error listing what is known.
    fn known(&self, name: &Spanned<String>, what: &str, known: &BTreeSet<&str>) -> Checked {
        if !known.contains(name.as_str()) {
            return self.err(
                name,
                format!(
                    "unknown {what} `{}`; expected one of: {}",
                    **name,
                    join(known)
                ),
            );
        }
        Ok(())
    }
}

fn widen(v: &Spanned<u32>) -> Spanned<u64> {
    Spanned::new(*v.span(), u64::from(**v))
}

impl Mesh {
    /// Reject what App Mesh would reject, naming the place in `path`.
    pub fn validate(&self, path: &Path) -> Result<(), InputError> {
        let at = At(path);
        let mut members = BTreeSet::new();
        for name in self
            .virtual_nodes
            .iter()
            .map(|n| &n.name)
            .chain(self.virtual_gateways.iter().map(|g| &g.name))
        {
            if !members.insert(name.as_str()) {
                return at.err(
                    name,
                    format!("duplicate virtual node or gateway name `{}`", **name),
                );
            }
        }
        let nodes: BTreeSet<&str> = self.virtual_nodes.iter().map(|n| n.name.as_str()).collect();
        let mut services = BTreeSet::new();
        for s in &self.virtual_services {
            if !services.insert(s.name.as_str()) {
                return at.err(&s.name, format!("duplicate virtual service `{}`", *s.name));
            }
        }
        for node in &self.virtual_nodes {
            if node.listeners.len() > 1 {
                return at.err(
                    &node.name,
                    format!(
                        "virtual node `{}` has {} listeners; expected at most one",
                        *node.name,
                        node.listeners.len()
                    ),
                );
            }
            for l in &node.listeners {
                validate_listener(&at, l)?;
            }
            for backend in &node.backends {
                at.known(backend, "virtual service (backend)", &services)?;
            }
            if let Some(sd) = &node.service_discovery {
                let host = &sd.dns.hostname;
                if host.trim().is_empty() || host.contains(['/', ':', ' ']) {
                    return at.err(host, format!("expected a DNS name, found `{}`", **host));
                }
                if node.listeners.is_empty() {
                    return at.err(
                        host,
                        format!(
                            "`{}` has DNS service discovery but no listener; expected a listener to resolve to",
                            *node.name
                        ),
                    );
                }
            }
        }
        let mut routers = BTreeSet::new();
        for router in &self.virtual_routers {
            if !routers.insert(router.name.as_str()) {
                return at.err(
                    &router.name,
                    format!("duplicate virtual router `{}`", *router.name),
                );
            }
        }
        for service in &self.virtual_services {
            match &service.provider {
                Provider::VirtualNode(n) => {
                    at.known(n, "virtual node", &nodes)?;
                    if self.node(n).is_some_and(|n| n.listeners.is_empty()) {
                        return at.err(
                            n,
                            format!(
                                "virtual node `{}` has no listener to provide `{}`",
                                **n, *service.name
                            ),
                        );
                    }
                }
                Provider::VirtualRouter(r) => at.known(r, "virtual router", &routers)?,
            }
        }
        for router in &self.virtual_routers {
            self.validate_router(&at, router, &nodes)?;
        }
        self.validate_gateways(&at, &services)
    }

    fn validate_router(&self, at: &At, router: &VirtualRouter, nodes: &BTreeSet<&str>) -> Checked {
        let [listener] = router.listeners.as_slice() else {
            return at.err(
                &router.name,
                format!(
                    "virtual router `{}` has {} listeners; expected exactly one",
                    *router.name,
                    router.listeners.len()
                ),
            );
        };
        let protocol = *listener.protocol;
        let mut names = BTreeSet::new();
        for route in &router.routes {
            if !names.insert(route.name.as_str()) {
                return at.err(
                    &route.name,
                    format!("duplicate route `{}` in `{}`", *route.name, *router.name),
                );
            }
            let Some(kind) = route.kind() else {
                return at.err(
                    &route.name,
                    format!(
                        "route `{}` must have exactly one of httpRoute, http2Route, grpcRoute, tcpRoute",
                        *route.name
                    ),
                );
            };
            let (kind_protocol, action) = match kind {
                RouteKind::Http(p, r) => {
                    validate_http_match(at, &r.matcher, false)?;
                    validate_retry_policy(at, r.retry_policy.as_ref(), p)?;
                    (p, &r.action)
                }
                RouteKind::Grpc(r) => {
                    validate_grpc_match(at, &r.matcher)?;
                    validate_retry_policy(at, r.retry_policy.as_ref(), Protocol::Grpc)?;
                    (Protocol::Grpc, &r.action)
                }
                RouteKind::Tcp(r) => (Protocol::Tcp, &r.action),
            };
            if kind_protocol != protocol {
                return at.err(
                    &route.name,
                    format!(
                        "route `{}` is a {kind_protocol} route but router `{}` listens for {protocol}; expected a {}",
                        *route.name,
                        *router.name,
                        route_key(protocol)
                    ),
                );
            }
            if let Some(p) = &route.priority {
                at.range(&widen(p), "a priority", 0, 1000)?;
            }
            let mut sum = 0;
            for target in &action.weighted_targets {
                at.known(&target.virtual_node, "virtual node", nodes)?;
                if self
                    .node(&target.virtual_node)
                    .is_some_and(|n| n.listeners.is_empty())
                {
                    return at.err(
                        &target.virtual_node,
                        format!(
                            "virtual node `{}` has no listener; a route target needs one",
                            *target.virtual_node
                        ),
                    );
                }
                at.range(&widen(&target.weight), "a weight", 0, 100)?;
                sum += *target.weight;
            }
            if sum != 100 {
                return at.err(
                    &route.name,
                    format!(
                        "weights of route `{}` add up to {sum}; expected 100",
                        *route.name
                    ),
                );
            }
        }
        Ok(())
    }

    fn validate_gateways(&self, at: &At, services: &BTreeSet<&str>) -> Checked {
        let gateways: BTreeSet<&str> = self
            .virtual_gateways
            .iter()
            .map(|g| g.name.as_str())
            .collect();
        for gateway in &self.virtual_gateways {
            let [listener] = gateway.listeners.as_slice() else {
                return at.err(
                    &gateway.name,
                    format!(
                        "virtual gateway `{}` has {} listeners; expected exactly one",
                        *gateway.name,
                        gateway.listeners.len()
                    ),
                );
            };
            if *listener.protocol == Protocol::Tcp {
                return at.err(
                    &listener.protocol,
                    "a virtual gateway listens for http, http2 or grpc; found tcp",
                );
            }
        }
        let mut names = BTreeSet::new();
        for route in &self.gateway_routes {
            at.known(&route.virtual_gateway, "virtual gateway", &gateways)?;
            if !names.insert((route.virtual_gateway.as_str(), route.name.as_str())) {
                return at.err(
                    &route.name,
                    format!(
                        "duplicate gateway route `{}` in `{}`",
                        *route.name, *route.virtual_gateway
                    ),
                );
            }
            let Some((kind_protocol, matcher, action)) = route.kind() else {
                return at.err(
                    &route.name,
                    format!(
                        "gateway route `{}` must have exactly one of httpRoute, http2Route, grpcRoute",
                        *route.name
                    ),
                );
            };
            let protocol = self
                .gateway(&route.virtual_gateway)
                .and_then(|g| g.listeners.first())
                .map(|l| *l.protocol);
            if let Some(protocol) = protocol.filter(|p| *p != kind_protocol) {
                return at.err(
                    &route.name,
                    format!(
                        "gateway route `{}` is a {kind_protocol} route but gateway `{}` listens for {protocol}; expected a {}",
                        *route.name,
                        *route.virtual_gateway,
                        route_key(protocol)
                    ),
                );
            }
            match matcher {
                GatewayMatch::Http(m) => validate_http_match(at, m, true)?,
                GatewayMatch::Grpc(m) => validate_grpc_match(at, m)?,
            }
            if let Some(p) = &route.priority {
                at.range(&widen(p), "a priority", 0, 1000)?;
            }
            let target = &action.target.virtual_service.virtual_service_name;
            at.known(target, "virtual service", services)?;
            if let Some(value) = action
                .rewrite
                .as_ref()
                .and_then(|r| r.prefix.as_ref())
                .and_then(|p| p.value.as_ref())
                && (!value.starts_with('/') || !value.ends_with('/'))
            {
                return at.err(
                    value,
                    format!(
                        "expected a rewritten prefix starting and ending with `/`, found `{}`",
                        **value
                    ),
                );
            }
        }
        Ok(())
    }
}

/// The route key a router or gateway listening for `protocol` takes.
fn route_key(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Http => "httpRoute",
        Protocol::Http2 => "http2Route",
        Protocol::Grpc => "grpcRoute",
        Protocol::Tcp => "tcpRoute",
    }
}

fn validate_http_match(at: &At, m: &HttpMatch, in_gateway: bool) -> Checked {
    match (&m.prefix, &m.path) {
        (Some(prefix), None) => {
            if !prefix.starts_with('/') {
                return at.err(
                    prefix,
                    format!("expected a prefix starting with `/`, found `{}`", **prefix),
                );
            }
        }
        (None, Some(PathMatch::Exact(path))) => {
            if !path.starts_with('/') {
                return at.err(
                    path,
                    format!("expected a path starting with `/`, found `{}`", **path),
                );
            }
        }
        (None, Some(PathMatch::Regex(_))) => {}
        (Some(prefix), Some(_)) => {
            return at.err(prefix, "a match has either `prefix` or `path`, not both");
        }
        (None, None) => {
            // A match has no position of its own: point at its method when it has one.
            return match &m.method {
                Some(p) => at.err(p, "a match needs `prefix` or `path`"),
                None => Err(InputError::file(
                    at.0,
                    "a route match needs `prefix` or `path`",
                )),
            };
        }
    }
    if let Some(method) = &m.method
        && !METHODS.contains(&method.as_str())
    {
        return at.err(
            method,
            format!(
                "unknown method `{}`; expected one of: {}",
                **method,
                METHODS.join(", ")
            ),
        );
    }
    if let Some(HostnameMatch::Exact(h) | HostnameMatch::Suffix(h)) = &m.hostname
        && !in_gateway
    {
        return at.err(h, "`hostname` is matched by gateway routes only");
    }
    Ok(())
}

fn validate_grpc_match(at: &At, m: &GrpcMatch) -> Checked {
    if let (None, Some(method)) = (&m.service_name, &m.method_name) {
        return at.err(method, "`methodName` needs `serviceName`");
    }
    for name in m.service_name.iter().chain(&m.method_name) {
        if name.is_empty() || name.contains(['/', ' ']) {
            return at.err(
                name,
                format!(
                    "expected a gRPC name without `/` or spaces, found `{}`",
                    **name
                ),
            );
        }
    }
    Ok(())
}

fn validate_retry_policy(at: &At, retry: Option<&RetryPolicy>, protocol: Protocol) -> Checked {
    let Some(retry) = retry else { return Ok(()) };
    for event in &retry.http_retry_events {
        if !RETRY_EVENTS.iter().any(|(name, _)| *name == event.as_str()) {
            let known: Vec<&str> = RETRY_EVENTS.iter().map(|(n, _)| *n).collect();
            return at.err(
                event,
                format!(
                    "unknown retry event `{}`; expected one of: {}",
                    **event,
                    known.join(", ")
                ),
            );
        }
    }
    for event in &retry.grpc_retry_events {
        if protocol != Protocol::Grpc {
            return at.err(event, "`grpcRetryEvents` are for gRPC routes only");
        }
        if !GRPC_RETRY_EVENTS.contains(&event.as_str()) {
            return at.err(
                event,
                format!(
                    "unknown gRPC retry event `{}`; expected one of: {}",
                    **event,
                    GRPC_RETRY_EVENTS.join(", ")
                ),
            );
        }
    }
    for event in &retry.tcp_retry_events {
        if event.as_str() != "connection-error" {
            return at.err(
                event,
                format!(
                    "unknown TCP retry event `{}`; expected connection-error",
                    **event
                ),
            );
        }
    }
    Ok(())
}

/// A listener's connection pool, outlier detection, health check and timeout against
/// App Mesh's limits and its protocol.
fn validate_listener(at: &At, l: &Listener) -> Checked {
    let protocol = *l.protocol;
    let wrong_kind = |what: &str| {
        at.err(
            &l.protocol,
            format!(
                "the listener's {what} must be given for its protocol, `{protocol}`, and only for it"
            ),
        )
    };
    if let Some(pool) = &l.connection_pool {
        let given = [
            (Protocol::Http, pool.http.is_some()),
            (Protocol::Http2, pool.http2.is_some()),
            (Protocol::Grpc, pool.grpc.is_some()),
            (Protocol::Tcp, pool.tcp.is_some()),
        ];
        if given.iter().any(|(p, set)| *set != (*p == protocol)) {
            return wrong_kind("connectionPool");
        }
        if let Some(http) = &pool.http {
            at.positive(&http.max_connections, "maxConnections")?;
            if let Some(p) = &http.max_pending_requests {
                at.positive(p, "maxPendingRequests")?;
            }
        }
        for streams in pool.http2.iter().chain(&pool.grpc) {
            at.positive(&streams.max_requests, "maxRequests")?;
        }
        if let Some(tcp) = &pool.tcp {
            at.positive(&tcp.max_connections, "maxConnections")?;
        }
    }
    if let Some(t) = &l.timeout {
        let given = [
            (Protocol::Http, t.http.is_some()),
            (Protocol::Http2, t.http2.is_some()),
            (Protocol::Grpc, t.grpc.is_some()),
            (Protocol::Tcp, t.tcp.is_some()),
        ];
        if given.iter().any(|(p, set)| *set != (*p == protocol)) {
            return wrong_kind("timeout");
        }
    }
    if let Some(od) = &l.outlier_detection {
        at.positive(&od.max_server_errors, "maxServerErrors")?;
        at.range(
            &widen(&od.max_ejection_percent),
            "maxEjectionPercent",
            0,
            100,
        )?;
        for (d, what) in [
            (&od.interval, "interval"),
            (&od.base_ejection_duration, "baseEjectionDuration"),
        ] {
            if d.0.is_zero() {
                return at.err(d, format!("expected a {what} longer than 0s"));
            }
        }
    }
    if let Some(hc) = &l.health_check {
        match *hc.protocol {
            Protocol::Http | Protocol::Http2 => {
                if !hc.path.as_ref().is_some_and(|p| p.starts_with('/')) {
                    let place = hc
                        .path
                        .as_ref()
                        .map(|p| *p.span())
                        .unwrap_or(*hc.protocol.span());
                    return Err(InputError::at(
                        at.0,
                        &place,
                        "an http health check needs a `path` starting with `/`",
                    ));
                }
            }
            Protocol::Tcp => {}
            Protocol::Grpc => {
                return at.err(
                    &hc.protocol,
                    "a grpc health check needs the gRPC health service, which tether's sample service lacks; expected `http`, `http2` or `tcp`",
                );
            }
        }
        at.range(&hc.interval_millis, "intervalMillis", 5_000, 300_000)?;
        at.range(&hc.timeout_millis, "timeoutMillis", 2_000, 60_000)?;
        at.range(&widen(&hc.healthy_threshold), "healthyThreshold", 2, 10)?;
        at.range(&widen(&hc.unhealthy_threshold), "unhealthyThreshold", 2, 10)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source;

    /// The error `validate` gives for `text`, or "" when it is valid.
    fn error(text: &str) -> String {
        let path = Path::new("m.yaml");
        let mesh: Mesh = match source::parse(path, text) {
            Ok(m) => m,
            Err(e) => return e.to_string(),
        };
        mesh.validate(path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    /// The error for a one-node mesh whose listener has `extra` keys.
    fn listener_error(protocol: &str, extra: &str) -> String {
        error(&format!(
            "mesh: {{ name: m }}\nvirtualNodes:\n  - name: n\n    listeners:\n      - port: 8080\n        protocol: {protocol}\n{extra}"
        ))
    }

    #[test]
    fn listener_features_outside_app_mesh_limits_are_rejected_where_written() {
        let hc = |interval: u64, path: &str| {
            format!(
                "        healthCheck: {{ protocol: http, {path} intervalMillis: {interval}, timeoutMillis: 2000, healthyThreshold: 2, unhealthyThreshold: 2 }}\n"
            )
        };
        assert_eq!(listener_error("http", &hc(5000, "path: /ping,")), "");
        let e = listener_error("http", &hc(1000, "path: /ping,"));
        assert!(
            e.starts_with("m.yaml:7:")
                && e.contains("intervalMillis from 5000 to 300000, found 1000"),
            "{e}"
        );
        let e = listener_error("http", &hc(5000, ""));
        assert!(e.contains("needs a `path`"), "{e}");
        let e = listener_error(
            "http",
            "        outlierDetection: { maxServerErrors: 3, interval: 0s, baseEjectionDuration: 1s, maxEjectionPercent: 10 }\n",
        );
        assert!(e.contains("interval longer than 0s"), "{e}");
        let e = listener_error(
            "http",
            "        outlierDetection: { maxServerErrors: 3, interval: 1s, baseEjectionDuration: 1s, maxEjectionPercent: 101 }\n",
        );
        assert!(
            e.contains("maxEjectionPercent from 0 to 100, found 101"),
            "{e}"
        );
        let e = listener_error(
            "http",
            "        connectionPool: { http: { maxConnections: 0 } }\n",
        );
        assert!(
            e.starts_with("m.yaml:7:") && e.contains("maxConnections from 1"),
            "{e}"
        );
    }

    #[test]
    fn pools_and_timeouts_must_match_the_listener_protocol() {
        assert_eq!(
            listener_error(
                "http2",
                "        connectionPool: { http2: { maxRequests: 4 } }\n"
            ),
            ""
        );
        assert_eq!(
            listener_error("tcp", "        timeout: { tcp: { idle: 5s } }\n"),
            ""
        );
        let e = listener_error(
            "grpc",
            "        connectionPool: { http: { maxConnections: 4 } }\n",
        );
        assert!(
            e.starts_with("m.yaml:6:") && e.contains("for its protocol, `grpc`"),
            "{e}"
        );
        let e = listener_error("tcp", "        timeout: { http: { perRequest: 1s } }\n");
        assert!(
            e.contains("timeout must be given for its protocol, `tcp`"),
            "{e}"
        );
        let e = listener_error("quic", "");
        assert!(e.starts_with("m.yaml:6:") && e.contains("quic"), "{e}");
    }

    /// A mesh with one router listening for `protocol` whose one route is `route`.
    fn router_error(protocol: &str, route: &str) -> String {
        error(&format!(
            "mesh: {{ name: m }}
virtualNodes:
  - name: a
    listeners: [{{ port: 80, protocol: {protocol} }}]
    backends: [s]
virtualServices:
  - name: s
    provider: {{ virtualRouter: r }}
virtualRouters:
  - name: r
    listeners: [{{ port: 80, protocol: {protocol} }}]
    routes:
      - name: one
{route}"
        ))
    }

    const TARGET: &str = "action: { weightedTargets: [{ virtualNode: a, weight: 100 }] }";

    #[test]
    fn routes_must_be_of_the_router_protocol_with_a_sound_match() {
        let ok = [
            (
                "http",
                format!("        httpRoute: {{ match: {{ prefix: /, method: POST }}, {TARGET} }}"),
            ),
            (
                "http",
                format!("        httpRoute: {{ match: {{ path: {{ exact: /a }} }}, {TARGET} }}"),
            ),
            (
                "http2",
                format!("        http2Route: {{ match: {{ prefix: / }}, {TARGET} }}"),
            ),
            (
                "grpc",
                format!(
                    "        grpcRoute: {{ match: {{ serviceName: a.B, methodName: C }}, {TARGET} }}"
                ),
            ),
            ("tcp", format!("        tcpRoute: {{ {TARGET} }}")),
        ];
        for (protocol, route) in &ok {
            assert_eq!(router_error(protocol, route), "", "{route}");
        }
        let bad = [
            ("http", format!("        tcpRoute: {{ {TARGET} }}"), "is a tcp route but router `r` listens for http; expected a httpRoute"),
            ("http", format!("        httpRoute: {{ match: {{ prefix: /, method: FETCH }}, {TARGET} }}"), "unknown method `FETCH`"),
            ("http", format!("        httpRoute: {{ match: {{ path: {{ exact: a }} }}, {TARGET} }}"), "path starting with `/`"),
            ("http", format!("        httpRoute: {{ match: {{ prefix: /, path: {{ exact: /a }} }}, {TARGET} }}"), "either `prefix` or `path`"),
            ("http", format!("        httpRoute: {{ match: {{ prefix: /, hostname: {{ exact: x }} }}, {TARGET} }}"), "gateway routes only"),
            ("grpc", format!("        grpcRoute: {{ match: {{ methodName: C }}, {TARGET} }}"), "`methodName` needs `serviceName`"),
            ("http", format!("        httpRoute: {{ match: {{ prefix: / }}, {TARGET} }}\n        tcpRoute: {{ {TARGET} }}"), "exactly one of"),
            ("http", "        httpRoute: { match: { prefix: / }, action: { weightedTargets: [{ virtualNode: a, weight: 60 }] } }".to_string(), "add up to 60"),
        ];
        for (protocol, route, expected) in &bad {
            let e = router_error(protocol, route);
            assert!(
                e.starts_with("m.yaml:") && e.contains(expected),
                "{route}: {e}"
            );
        }
    }

    #[test]
    fn gateway_routes_need_a_known_gateway_and_service() {
        let mesh = |route: &str| {
            format!(
                "mesh: {{ name: m }}
virtualNodes:
  - name: a
    listeners: [{{ port: 80, protocol: http }}]
virtualServices:
  - name: s
    provider: {{ virtualNode: a }}
virtualGateways:
  - name: gw
    listeners: [{{ port: 8088, protocol: http }}]
gatewayRoutes:
{route}"
            )
        };
        let ok = "  - name: to-s\n    virtualGateway: gw\n    httpRoute:\n      match: { prefix: /s/, hostname: { suffix: .example.com } }\n      action: { target: { virtualService: { virtualServiceName: s } }, rewrite: { prefix: { value: /v1/ } } }\n";
        assert_eq!(error(&mesh(ok)), "");
        let e = error(&mesh(
            &ok.replace("virtualServiceName: s", "virtualServiceName: t"),
        ));
        assert!(
            e.starts_with("m.yaml:16:") && e.contains("unknown virtual service `t`"),
            "{e}"
        );
        let e = error(&mesh(
            &ok.replace("virtualGateway: gw", "virtualGateway: gx"),
        ));
        assert!(e.contains("unknown virtual gateway `gx`"), "{e}");
        let e = error(&mesh(
            &ok.replace("httpRoute", "grpcRoute")
                .replace(
                    "prefix: /s/, hostname: { suffix: .example.com }",
                    "serviceName: a.B",
                )
                .replace(", rewrite: { prefix: { value: /v1/ } }", ""),
        ));
        assert!(
            e.contains("is a grpc route but gateway `gw` listens for http"),
            "{e}"
        );
        let e = error(&mesh(&ok.replace("value: /v1/", "value: /v1")));
        assert!(e.contains("ending with `/`"), "{e}");
        let e = error(&mesh(ok).replace("name: gw", "name: a"));
        assert!(
            e.contains("duplicate virtual node or gateway name `a`"),
            "{e}"
        );
    }

    #[test]
    fn services_backends_and_discovery_must_name_what_exists() {
        let base = "mesh: { name: m }
virtualNodes:
  - name: a
    listeners: [{ port: 80, protocol: http }]
    serviceDiscovery: { dns: { hostname: a.local } }
  - name: c
    backends: [s]
virtualServices:
  - name: s
    provider: { virtualNode: a }
";
        assert_eq!(error(base), "");
        let e = error(&base.replace("backends: [s]", "backends: [t]"));
        assert!(
            e.starts_with("m.yaml:7:") && e.contains("unknown virtual service (backend) `t`"),
            "{e}"
        );
        let e = error(&base.replace("virtualNode: a }", "virtualNode: c }"));
        assert!(e.contains("`c` has no listener to provide `s`"), "{e}");
        let e = error(&base.replace("hostname: a.local", "hostname: 'a local'"));
        assert!(e.contains("expected a DNS name"), "{e}");
        let e = error(&format!(
            "{base}  - name: s\n    provider: {{ virtualNode: a }}\n"
        ));
        assert!(e.contains("duplicate virtual service `s`"), "{e}");
    }
}
