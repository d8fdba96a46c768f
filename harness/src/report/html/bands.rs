//! Fleets drawn as bands. A chart of more sidecars than [`MAX_LANES`] draws the members
//! of each fleet (`client-001` to `client-500`: names that differ only in a trailing
//! `-<number>`) as one band: in each column of time, the share of the fleet that did
//! something (was pushed a config, ACKed one, reported itself connected), with the
//! counts in the column's tooltip. Any other sidecar keeps a lane of its own.

use std::collections::{BTreeMap, BTreeSet};

/// More lanes than this, and fleets are drawn as bands.
pub(super) const MAX_LANES: usize = 24;

/// Columns of time across a band.
pub(super) const COLUMNS: usize = 180;

/// The rows of a chart: a sidecar's own lane, or a fleet's band.
#[derive(Debug, PartialEq)]
pub(super) enum Row<'a> {
    /// One sidecar.
    Lane(&'a str),
    /// A fleet: its name and its members.
    Band(String, BTreeSet<&'a str>),
}

impl Row<'_> {
    /// How tall the row is, in lane heights: a band is [`BAND_LANES`] lanes tall.
    pub(super) fn lanes(&self) -> f64 {
        match self {
            Row::Lane(_) => 1.0,
            Row::Band(..) => BAND_LANES,
        }
    }
}

/// How many lane heights a band is tall.
pub(super) const BAND_LANES: f64 = 2.0;

/// The top of each of `rows` stacked from `top`, each `lane_h` tall (a band
/// [`BAND_LANES`] times that), and their height in all.
pub(super) fn tops(rows: &[Row], top: f64, lane_h: f64) -> (Vec<f64>, f64) {
    let mut y = top;
    let tops = rows
        .iter()
        .map(|row| {
            let at = y;
            y += row.lanes() * lane_h;
            at
        })
        .collect();
    (tops, y - top)
}

/// The rows for `names` (in order): a lane each, or, past [`MAX_LANES`], a band per fleet
/// of two or more members and a lane for the rest.
pub(super) fn rows<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Row<'a>> {
    let names: Vec<&str> = names.into_iter().collect();
    if names.len() <= MAX_LANES {
        return names.into_iter().map(Row::Lane).collect();
    }
    let mut fleets: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for name in &names {
        fleets
            .entry(fleet_of(name).to_string())
            .or_default()
            .insert(name);
    }
    let mut rows = Vec::new();
    for (fleet, members) in fleets {
        if members.len() > 1 {
            rows.push(Row::Band(fleet, members));
        } else {
            rows.extend(members.into_iter().map(Row::Lane));
        }
    }
    rows
}

/// The fleet a sidecar belongs to: its name without a trailing `-<number>` (the short
/// name of an xDS node id, `mesh/m/virtualNode/client-007`, gives `client`).
pub(super) fn fleet_of(name: &str) -> &str {
    let short = name.rsplit('/').next().unwrap_or(name);
    match short.rsplit_once('-') {
        Some((fleet, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => fleet,
        _ => short,
    }
}

/// The column of time `t_ms` falls in, of [`COLUMNS`] across `end_ms`.
pub(super) fn column(t_ms: u64, end_ms: u64) -> usize {
    ((t_ms as u128 * COLUMNS as u128 / end_ms.max(1) as u128) as usize).min(COLUMNS - 1)
}

/// The time a column starts at, ms.
pub(super) fn column_start(column: usize, end_ms: u64) -> u64 {
    (column as u128 * end_ms as u128 / COLUMNS as u128) as u64
}

/// Members counted per column: `counts[c]` is how many distinct members were seen in
/// column `c`.
#[derive(Debug, Default)]
pub(super) struct Tally<'a> {
    seen: BTreeMap<usize, BTreeSet<&'a str>>,
}

impl<'a> Tally<'a> {
    /// `member` did it at `t_ms`.
    pub(super) fn add(&mut self, member: &'a str, t_ms: u64, end_ms: u64) {
        self.seen
            .entry(column(t_ms, end_ms))
            .or_default()
            .insert(member);
    }

    /// (column, members) for every column with at least one.
    pub(super) fn columns(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.seen.iter().map(|(c, m)| (*c, m.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_chart_draws_each_fleet_as_a_band_and_keeps_the_rest_as_lanes() {
        let mut names: Vec<String> = (1..=30).map(|n| format!("client-{n:03}")).collect();
        names.extend(["svc-v1".to_string(), "svc-v2".to_string()]);
        let rows = rows(names.iter().map(String::as_str));
        assert_eq!(rows.len(), 3);
        match &rows[0] {
            Row::Band(fleet, members) => {
                assert_eq!((fleet.as_str(), members.len()), ("client", 30))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(rows[1..], [Row::Lane("svc-v1"), Row::Lane("svc-v2")]);
        // A small chart keeps a lane per sidecar, fleet or not.
        let (tops, height) = tops(&rows, 16.0, 10.0);
        assert_eq!(
            (tops, height),
            (
                vec![16.0, 16.0 + 10.0 * BAND_LANES, 26.0 + 10.0 * BAND_LANES],
                20.0 + 10.0 * BAND_LANES
            )
        );
        let few = super::rows(names[..3].iter().map(String::as_str));
        assert_eq!(
            few,
            [
                Row::Lane("client-001"),
                Row::Lane("client-002"),
                Row::Lane("client-003")
            ]
        );
    }

    #[test]
    fn a_fleet_is_the_name_without_its_number() {
        assert_eq!(fleet_of("mesh/m/virtualNode/client-007"), "client");
        assert_eq!(fleet_of("svc-v1"), "svc-v1");
        assert_eq!(fleet_of("edge-"), "edge-");
        assert_eq!(fleet_of("a-b-12"), "a-b");
    }

    #[test]
    fn columns_count_each_member_once() {
        let mut tally = Tally::default();
        for (member, t) in [("a", 0), ("a", 10), ("b", 20), ("a", 99_999)] {
            tally.add(member, t, 100_000);
        }
        assert_eq!(
            tally.columns().collect::<Vec<_>>(),
            [(0, 2), (COLUMNS - 1, 1)]
        );
        assert_eq!(column_start(column(50_000, 100_000), 100_000), 50_000);
    }
}
