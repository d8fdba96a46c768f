//! The sidecars' charts: a lane per sidecar of its connection to the control plane and
//! the config it serves (from the samples), and one of the control plane's pushes and
//! the sidecar's ACKs and NACKs (from the xDS log). A large fleet is drawn as a band
//! ([`bands`]).

use super::charts::{axis, mark_changes, shade_faults};
use super::{LEFT, RIGHT, W, bands, esc};
use crate::timeline::{Entry, Event, XdsKind};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// One sample in a sidecar's lane: time, connected, route version, keepalive timeouts.
type LaneSample<'a> = (u64, Option<bool>, Option<&'a str>, Option<u64>);

/// One xDS message in a sidecar's lane: time, kind, resource type, version.
type XdsMessage<'a> = (u64, XdsKind, &'a str, &'a str);

/// A lane per sidecar: connected (green) or not (red), the config version as text.
pub(super) fn lanes(html: &mut String, entries: &[Entry], x: &dyn Fn(u64) -> f64, end_ms: u64) {
    let mut lanes: BTreeMap<&str, Vec<LaneSample>> = BTreeMap::new();
    for e in entries {
        if let Event::EnvoySample {
            node,
            connected,
            route_version,
            xds_keepalive_timeouts,
            ..
        } = &e.event
        {
            lanes.entry(node).or_default().push((
                e.t_ms,
                *connected,
                route_version.as_deref(),
                *xds_keepalive_timeouts,
            ));
        }
    }
    html.push_str("<h2>Sidecars: connection to the control plane and config version</h2>");
    if lanes.is_empty() {
        html.push_str("<p>No sidecar was sampled: no check of this suite reads their admin state (<code>observe: { sidecars: all }</code> samples them all).</p>");
        return;
    }
    let chart = Frame {
        entries,
        x,
        end_ms,
        lane_h: 26.0,
        label: "sidecar lanes",
    };
    chart.draw(html, lanes.keys().copied(), |html, row, ly| match row {
        bands::Row::Lane(node) => sample_lane(html, node, &lanes[node], x, ly),
        bands::Row::Band(fleet, members) => {
            sample_band(html, fleet, members, &lanes, x, end_ms, ly)
        }
    });
    html.push_str("<p>Green: Envoy reports itself connected to the control plane (<code>control_plane.connected_state</code>); red: not connected. Black ticks: an HTTP/2 keepalive timeout on the xDS connection (the sidecar noticed a silent link). Through a TCP-terminating fault proxy the connected state returns as soon as a reconnect is accepted by the proxy, so during a blackhole it flaps; the ticks show each detection. <code>vN</code>: the route config version served from then on. A fleet's band: the share of its members connected (green) and not (red) in each column of time, and the version most of them serve.</p>");
}

/// A lane per sidecar: the control plane's pushes (blue, top), the sidecar's ACKs
/// (green, bottom) and NACKs (red, full height).
pub(super) fn xds(html: &mut String, entries: &[Entry], x: &dyn Fn(u64) -> f64, end_ms: u64) {
    let mut lanes: BTreeMap<&str, Vec<XdsMessage>> = BTreeMap::new();
    for e in entries {
        if let Event::Xds {
            node,
            type_name,
            xds,
            version,
            ..
        } = &e.event
        {
            lanes
                .entry(node)
                .or_default()
                .push((e.t_ms, *xds, type_name, version));
        }
    }
    html.push_str("<h2>Control plane: pushes, ACKs and NACKs per sidecar</h2>");
    if lanes.is_empty() {
        html.push_str("<p>No xDS message was recorded.</p>");
        return;
    }
    let lane_h = 18.0;
    let chart = Frame {
        entries,
        x,
        end_ms,
        lane_h,
        label: "xDS pushes and answers",
    };
    chart.draw(html, lanes.keys().copied(), |html, row, ly| {
        let _ = write!(
            html,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#eee"/>"##,
            ly + row.lanes() * lane_h / 2.0,
            W - RIGHT
        );
        match row {
            bands::Row::Lane(node) => xds_lane(html, node, &lanes[node], x, ly),
            bands::Row::Band(fleet, members) => {
                xds_band(html, fleet, members, &lanes, x, end_ms, ly)
            }
        }
    });
    html.push_str("<p>Blue (top half): the control plane sent the sidecar a config. Green (bottom half): the sidecar ACKed one. Red (full height): it NACKed one. Hover a tick for its type and version. A fleet's band: the share of its members pushed a config (blue), ACKing one (green) or NACKing one (red) in each column of time.</p>");
}

/// A chart of a row per sidecar (or fleet) on the run's time axis.
struct Frame<'a> {
    entries: &'a [Entry],
    x: &'a dyn Fn(u64) -> f64,
    end_ms: u64,
    /// A lane's height (a band's is [`bands::BAND_LANES`] times it).
    lane_h: f64,
    /// What the chart shows, for screen readers.
    label: &'a str,
}

impl Frame<'_> {
    /// The chart of `names`: a row each (or a band per fleet, see [`bands::rows`]),
    /// each drawn by `row` at its top, with the disruption windows shaded, the mesh
    /// changes dashed and the time axis below.
    fn draw<'n>(
        &self,
        html: &mut String,
        names: impl IntoIterator<Item = &'n str>,
        mut row: impl FnMut(&mut String, &bands::Row<'n>, f64),
    ) {
        let rows = bands::rows(names);
        let (tops, height) = bands::tops(&rows, 16.0, self.lane_h);
        let _ = write!(
            html,
            r#"<svg viewBox="0 0 {W} {}" role="img" aria-label="{}">"#,
            height + 46.0,
            self.label
        );
        shade_faults(html, self.entries, self.x, 16.0, height);
        for (r, top) in rows.iter().zip(tops) {
            row(html, r, top);
        }
        mark_changes(html, self.entries, self.x, 16.0, height);
        axis(html, self.end_ms, self.x, height + 36.0);
        html.push_str("</svg>");
    }
}

/// The node name without the `mesh/<mesh>/virtualNode/` prefix of its xDS id.
fn short_node(node: &str) -> &str {
    node.rsplit('/').next().unwrap_or(node)
}

/// One sidecar's xDS messages as a lane at height `ly`.
fn xds_lane(
    html: &mut String,
    node: &str,
    messages: &[XdsMessage],
    x: &dyn Fn(u64) -> f64,
    ly: f64,
) {
    let _ = write!(
        html,
        r#"<text x="2" y="{:.1}" font-size="10">{}</text>"#,
        ly + 12.0,
        esc(short_node(node)),
    );
    for (t, kind, type_name, version) in messages {
        let (dy, h, color, word) = match kind {
            XdsKind::Push => (2.0, 7.0, "#3b7dd8", "push"),
            XdsKind::Ack => (9.0, 7.0, "#2e9d5b", "ACK"),
            XdsKind::Nack => (1.0, 16.0, "#d83b3b", "NACK"),
            XdsKind::Request => continue,
        };
        let _ = write!(
            html,
            r##"<rect x="{:.1}" y="{:.1}" width="1.5" height="{h}" fill="{color}"><title>{:.3} s: {word} {} v{}</title></rect>"##,
            x(*t),
            ly + dy,
            *t as f64 / 1000.0,
            esc(type_name),
            esc(version)
        );
    }
}

/// A fleet's xDS messages as one band at height `ly`: per column of time, the share of
/// its members the control plane pushed a config to, that ACKed one and that NACKed one.
fn xds_band(
    html: &mut String,
    fleet: &str,
    members: &BTreeSet<&str>,
    lanes: &BTreeMap<&str, Vec<XdsMessage>>,
    x: &dyn Fn(u64) -> f64,
    end_ms: u64,
    ly: f64,
) {
    let mut tallies: [bands::Tally; 3] = Default::default();
    for member in members {
        for (t, kind, _, _) in &lanes[member] {
            let which = match kind {
                XdsKind::Push => 0,
                XdsKind::Ack => 1,
                XdsKind::Nack => 2,
                XdsKind::Request => continue,
            };
            tallies[which].add(member, *t, end_ms);
        }
    }
    let n = members.len();
    band_label(html, fleet, n, ly + 21.0);
    let looks = [
        ((ly + 2.0, 16.0), ("#3b7dd8", "pushed a config")),
        ((ly + 18.0, 16.0), ("#2e9d5b", "ACKed")),
        ((ly + 1.0, 34.0), ("#d83b3b", "NACKed")),
    ];
    for (tally, (at, look)) in tallies.iter().zip(looks) {
        for (c, count) in tally.columns() {
            column_bar(html, x, end_ms, c, at, (count, n), look);
        }
    }
}

/// One sidecar's samples as a lane at height `ly`.
fn sample_lane(
    html: &mut String,
    node: &str,
    samples: &[LaneSample],
    x: &dyn Fn(u64) -> f64,
    ly: f64,
) {
    let _ = write!(
        html,
        r#"<text x="2" y="{:.1}" font-size="11">{}</text>"#,
        ly + 16.0,
        esc(node)
    );
    let mut last_version = None;
    for w in samples.windows(2) {
        let (t, c, v, _) = w[0];
        // A tick where the sidecar's keepalive on the xDS connection timed out.
        if let (Some(before), Some(after)) = (w[0].3, w[1].3)
            && after > before
        {
            let _ = write!(
                html,
                r##"<rect x="{:.1}" y="{:.1}" width="2" height="14" fill="#222"><title>keepalive timeout</title></rect>"##,
                x(w[1].0),
                ly + 1.0
            );
        }
        let color = match c {
            Some(true) => "#2e9d5b",
            Some(false) => "#d83b3b",
            None => "#aaa",
        };
        let _ = write!(
            html,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="8" fill="{color}"/>"#,
            x(t),
            ly + 4.0,
            (x(w[1].0) - x(t)).max(0.5)
        );
        if v != last_version {
            let _ = write!(
                html,
                r#"<text x="{:.1}" y="{:.1}" font-size="10">v{}</text>"#,
                x(t),
                ly + 23.0,
                esc(v.unwrap_or("-"))
            );
            last_version = v;
        }
    }
}

/// A fleet's samples as one band at height `ly`: per column of time, the share of its
/// members last seen connected and not, and the route version most of them serve.
fn sample_band(
    html: &mut String,
    fleet: &str,
    members: &BTreeSet<&str>,
    lanes: &BTreeMap<&str, Vec<LaneSample>>,
    x: &dyn Fn(u64) -> f64,
    end_ms: u64,
    ly: f64,
) {
    // Each member's last sample, carried to every column until its next one (the last
    // until the fleet's last sample: the end of the sampling).
    let mut columns: Vec<(usize, usize, BTreeMap<&str, usize>)> =
        vec![Default::default(); bands::COLUMNS];
    let end = members
        .iter()
        .filter_map(|m| lanes[m].last())
        .map(|s| bands::column(s.0, end_ms) + 1)
        .max()
        .unwrap_or(0);
    for member in members {
        let samples = &lanes[member];
        for (i, (t, connected, version, _)) in samples.iter().enumerate() {
            let from = bands::column(*t, end_ms);
            // (Samples out of time order cover nothing rather than panic.)
            let until = samples
                .get(i + 1)
                .map_or(end, |next| bands::column(next.0, end_ms))
                .max(from);
            for (up, down, versions) in &mut columns[from..until] {
                match connected {
                    Some(true) => *up += 1,
                    Some(false) => *down += 1,
                    None => {}
                }
                *versions.entry(version.unwrap_or("-")).or_default() += 1;
            }
        }
    }
    let n = members.len();
    band_label(html, fleet, n, ly + 24.0);
    let mut last = None;
    for (c, (up, down, versions)) in columns.iter().enumerate() {
        column_bar(
            html,
            x,
            end_ms,
            c,
            (ly + 2.0, 18.0),
            (*up, n),
            ("#2e9d5b", "connected"),
        );
        column_bar(
            html,
            x,
            end_ms,
            c,
            (ly + 22.0, 18.0),
            (*down, n),
            ("#d83b3b", "not connected"),
        );
        let most = versions.iter().max_by_key(|(_, k)| **k).map(|(v, _)| *v);
        if most.is_some() && most != last {
            let _ = write!(
                html,
                r#"<text x="{:.1}" y="{:.1}" font-size="10">v{}</text>"#,
                x(bands::column_start(c, end_ms)),
                ly + 50.0,
                esc(most.unwrap_or("-"))
            );
            last = most;
        }
    }
}

/// A fleet's name and size at the left of its band.
fn band_label(html: &mut String, fleet: &str, members: usize, y: f64) {
    let _ = write!(
        html,
        r#"<text x="2" y="{y:.1}" font-size="10" font-weight="bold">{} ×{members}</text>"#,
        esc(fleet)
    );
}

/// One column of a band: a bar of `height` × `count / of` from `top` (nothing for a
/// count of 0), with the count in its tooltip.
fn column_bar(
    html: &mut String,
    x: &dyn Fn(u64) -> f64,
    end_ms: u64,
    column: usize,
    (top, height): (f64, f64),
    (count, of): (usize, usize),
    (color, word): (&str, &str),
) {
    if count == 0 {
        return;
    }
    let (start, end) = (
        bands::column_start(column, end_ms),
        bands::column_start(column + 1, end_ms),
    );
    let _ = write!(
        html,
        r#"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{:.1}-{:.1} s: {count} of {of} {word}</title></rect>"#,
        x(start),
        (x(end) - x(start)).max(0.5),
        height * count as f64 / of.max(1) as f64,
        start as f64 / 1000.0,
        end as f64 / 1000.0,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(node: &str, t_ms: u64, connected: bool) -> Entry {
        Entry {
            t_ms,
            event: Event::EnvoySample {
                node: node.into(),
                connected: Some(connected),
                route_version: Some("3".into()),
                cluster_version: None,
                listener_version: None,
                xds_keepalive_timeouts: None,
                ready: Some(true),
                memory_allocated: None,
                memory_heap: None,
                updates_rejected: None,
            },
        }
    }

    fn push(node: &str, t_ms: u64) -> Entry {
        Entry {
            t_ms,
            event: Event::Xds {
                node: format!("mesh/m/virtualNode/{node}"),
                type_name: "rds".into(),
                xds: XdsKind::Push,
                version: "3".into(),
                error: None,
            },
        }
    }

    fn render(entries: &[Entry]) -> String {
        let end_ms = entries.iter().map(|e| e.t_ms).max().unwrap_or(1);
        let x = |t: u64| LEFT + t as f64 / end_ms as f64 * (W - LEFT - RIGHT);
        let mut html = String::new();
        lanes(&mut html, entries, &x, end_ms);
        xds(&mut html, entries, &x, end_ms);
        html
    }

    #[test]
    fn a_fleet_is_one_band_with_the_share_of_its_members() {
        let members: Vec<String> = (1..=30).map(|n| format!("client-{n:02}")).collect();
        let mut entries = Vec::new();
        for (i, m) in members.iter().enumerate() {
            // Ten of the thirty are disconnected from 5 s on; each member pushed at 2 s.
            entries.push(sample(m, 1_000, true));
            entries.push(sample(m, 5_000, i >= 10));
            entries.push(sample(m, 9_000, i >= 10));
            entries.push(push(m, 2_000));
        }
        entries.push(sample("svc-v1", 1_000, true));
        entries.push(sample("svc-v1", 9_000, true));
        let html = render(&entries);
        assert!(html.contains("client ×30"), "{html}");
        assert!(html.contains("30 of 30 connected"), "{html}");
        assert!(html.contains("20 of 30 connected") && html.contains("10 of 30 not connected"));
        assert!(html.contains("30 of 30 pushed a config"));
        assert!(!html.contains(">client-07<"), "no lane per member");
        assert!(html.contains(">svc-v1<"), "the others keep their lanes");
    }

    #[test]
    fn no_samples_say_why_and_samples_out_of_order_do_not_panic() {
        assert!(render(&[push("client", 1_000)]).contains("No sidecar was sampled"));
        let mut entries: Vec<Entry> = (1..=30)
            .map(|n| sample(&format!("c-{n}"), 9_000, true))
            .collect();
        entries.extend((1..=30).map(|n| sample(&format!("c-{n}"), 1_000, false)));
        assert!(render(&entries).contains("c ×30"));
    }
}
