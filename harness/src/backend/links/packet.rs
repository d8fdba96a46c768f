//! How a suite's link faults are made on a packet link: the wire is made what all the
//! faults on it together say.

use crate::faults::packet::{self, Impairment, PacketLink};
use crate::plan::{Direction, Fault};

/// Make the wire what `faults` together say: partitions (each way) and one impairment
/// (delay, jitter, rate and loss added up) both ways. Says what the wire is now.
pub(super) fn apply_to_wire(
    link: &PacketLink,
    faults: &[Fault],
) -> Result<Vec<String>, packet::PacketLinkError> {
    let (mut to_region_cut, mut to_outpost_cut) = (false, false);
    let mut imp = Impairment::default();
    for fault in faults {
        match fault {
            Fault::Blackhole | Fault::Down | Fault::Flapping { .. } => {
                (to_region_cut, to_outpost_cut) = (true, true)
            }
            Fault::OneWay {
                to: Direction::ToRegion,
            } => to_region_cut = true,
            Fault::OneWay {
                to: Direction::ToOutpost,
            } => to_outpost_cut = true,
            Fault::Latency { delay, jitter } => {
                imp.delay += delay.0;
                imp.jitter += jitter.map(|j| j.0).unwrap_or_default();
            }
            Fault::Bandwidth { rate } => {
                let kbit = (rate.bits_per_second / 1000).max(1);
                imp.rate_kbit = Some(imp.rate_kbit.map_or(kbit, |r| r.min(kbit)));
            }
            Fault::Loss { percent } => {
                imp.loss_percent = (imp.loss_percent + percent).min(100.0);
            }
            Fault::Duplicate { percent } => {
                imp.duplicate_percent = (imp.duplicate_percent + percent).min(100.0);
            }
            Fault::Reorder { percent, delay } => {
                imp.reorder_percent = (imp.reorder_percent + percent).min(100.0);
                imp.delay = imp.delay.max(delay.0);
            }
            // Refused for packet links when the suite is read.
            Fault::Reset | Fault::SlowClose { .. } | Fault::LimitData { .. } => {}
        }
    }
    let mut wire = Vec::new();
    for (cut, direction, name) in [
        (to_region_cut, packet::Direction::ToRegion, "to region"),
        (to_outpost_cut, packet::Direction::ToOutpost, "to outpost"),
    ] {
        if cut {
            link.partition(direction)?;
            wire.push(format!("packets {name} dropped (iptables DROP)"));
        } else {
            link.reconnect(direction)?;
        }
    }
    if imp == Impairment::default() {
        link.clear(packet::Direction::Both)?;
    } else {
        link.impair(packet::Direction::Both, &imp)?;
        wire.push(format!("both ways: netem {}", imp.netem_args().join(" ")));
    }
    Ok(wire)
}
