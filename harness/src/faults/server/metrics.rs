//! `GET /metrics`: each proxy's bytes per direction in Prometheus text, with the names
//! and labels `toxiproxy-server -proxy-metrics` uses (`toxiproxy_proxy_received_bytes_total`
//! and `toxiproxy_proxy_sent_bytes_total`, labelled `direction`, `listener`, `proxy`,
//! `upstream`), and two of tether's own beside them: connections accepted and open.

use super::api::Answer;
use super::proxy::ProxyEntry;
use crate::faults::relay::Counters;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The Prometheus text format's content type.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family: its name, help, type, and the counter it reads from a proxy.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    /// One sample per direction, or one per proxy.
    per_direction: bool,
    read: fn(&Counters, bool) -> &AtomicU64,
}

const FAMILIES: [Family; 4] = [
    Family {
        name: "toxiproxy_proxy_received_bytes_total",
        help: "Bytes a proxy read, per direction (upstream: from the client).",
        kind: "counter",
        per_direction: true,
        read: |c, up| &c.stream(up).received,
    },
    Family {
        name: "toxiproxy_proxy_sent_bytes_total",
        help: "Bytes a proxy wrote, per direction (upstream: to the upstream).",
        kind: "counter",
        per_direction: true,
        read: |c, up| &c.stream(up).sent,
    },
    Family {
        name: "toxiproxy_proxy_accepted_connections_total",
        help: "Client connections a proxy accepted (tether's own metric).",
        kind: "counter",
        per_direction: false,
        read: |c, _| &c.accepted,
    },
    Family {
        name: "toxiproxy_proxy_open_connections",
        help: "Client connections open on a proxy now (tether's own metric).",
        kind: "gauge",
        per_direction: false,
        read: |c, _| &c.open,
    },
];

/// The answer to `GET /metrics`.
pub(super) fn answer(proxies: &BTreeMap<String, ProxyEntry>) -> Answer {
    let mut response = hyper::Response::new(Full::new(Bytes::from(render(proxies))));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    response
}

/// Every proxy's counters in Prometheus text, families in a fixed order, labels sorted.
fn render(proxies: &BTreeMap<String, ProxyEntry>) -> String {
    let mut out = String::new();
    for family in &FAMILIES {
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
        for entry in proxies.values() {
            let labels = format!(
                "listener=\"{}\",proxy=\"{}\",upstream=\"{}\"",
                escape(&entry.listen),
                escape(&entry.name),
                escape(&entry.upstream)
            );
            let value = |up| (family.read)(&entry.counters, up).load(Ordering::Relaxed);
            if family.per_direction {
                for (direction, up) in [("downstream", false), ("upstream", true)] {
                    let _ = writeln!(
                        out,
                        "{}{{direction=\"{direction}\",{labels}}} {}",
                        family.name,
                        value(up)
                    );
                }
            } else {
                let _ = writeln!(out, "{}{{{labels}}} {}", family.name, value(true));
            }
        }
    }
    out
}

/// A label value as the text format escapes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
