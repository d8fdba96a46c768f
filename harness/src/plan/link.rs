//! The link-fault vocabulary suites use, named as an operator would say it: which link
//! ([`Link`]), how the sites are joined ([`LinkKind`]) and what happens to it ([`Fault`]).
//!
//! Directions follow the connection: the outpost side opens every cross-site connection,
//! so `to_region` is the client-to-server direction and `to_outpost` the other.

use crate::source::Duration;
use serde::{Deserialize, Serialize};

/// A link between the sites, as a suite names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// The outpost sidecars' xDS connection to the control plane (the service link).
    Xds,
    /// The outpost's connections to services in the region.
    Data,
    /// The whole wire between the sites (the only link a packet link has).
    All,
}

impl Link {
    /// Every link, in the order suites list them.
    pub const EVERY: [Link; 3] = [Link::Xds, Link::Data, Link::All];

    /// The name a suite writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Link::Xds => "xds",
            Link::Data => "data",
            Link::All => "all",
        }
    }

    /// The link a suite names `text`, if it is one.
    pub fn parse(text: &str) -> Option<Link> {
        Link::EVERY.into_iter().find(|l| l.as_str() == text)
    }
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the sites are joined, which decides how real a fault is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// Every cross-site connection through a Toxiproxy-compatible fault proxy (the
    /// default): faults act on TCP streams, and the proxy answers TCP keepalives itself.
    #[default]
    Proxy,
    /// The sites as two network namespaces joined by a veth pair: faults act on packets,
    /// so a partition silences TCP keepalives too. Needs root.
    Packet,
}

impl LinkKind {
    /// The name a suite writes.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Proxy => "proxy",
            LinkKind::Packet => "packet",
        }
    }

    /// Can this kind of link make `fault`? `None` if so, or why not.
    pub fn cannot(self, fault: &Fault) -> Option<&'static str> {
        match (self, fault) {
            (
                LinkKind::Proxy,
                Fault::Loss { .. } | Fault::Duplicate { .. } | Fault::Reorder { .. },
            ) => Some(
                "loss, duplicate and reorder are packet-level faults; the fault proxy carries TCP streams (set `link: packet`)",
            ),
            (
                LinkKind::Packet,
                Fault::Reset | Fault::SlowClose { .. } | Fault::LimitData { .. },
            ) => Some(
                "reset, slow_close and limit_data act on TCP connections; a packet link has none (use `link: proxy`)",
            ),
            _ => None,
        }
    }
}

/// One direction of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Outpost to region (the direction connections are opened in).
    ToRegion,
    /// Region to outpost.
    ToOutpost,
}

/// A bandwidth written as `500Mbps`, `64kbps` or `1Gbps` (bits per second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Bits per second.
    pub bits_per_second: u64,
}

impl Rate {
    /// Parse `500Mbps`, `64kbps`, `1Gbps`, `9600bps`.
    pub fn parse(text: &str) -> Option<Rate> {
        let t = text.trim();
        let (number, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic())?);
        let n: f64 = number.trim().parse().ok()?;
        let scale = match unit.to_ascii_lowercase().as_str() {
            "bps" => 1.0,
            "kbps" => 1e3,
            "mbps" => 1e6,
            "gbps" => 1e9,
            _ => return None,
        };
        let bits = n * scale;
        (bits >= 8.0 && bits.is_finite()).then_some(Rate {
            bits_per_second: bits as u64,
        })
    }

    /// Toxiproxy's unit: kilobytes per second (at least 1).
    pub fn kilobytes_per_second(self) -> u64 {
        (self.bits_per_second / 8 / 1000).max(1)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Rate::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected a rate such as `500Mbps` or `64kbps`, found `{text}`"
            ))
        })
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.bits_per_second as f64;
        match b {
            b if b >= 1e9 => write!(f, "{}Gbps", b / 1e9),
            b if b >= 1e6 => write!(f, "{}Mbps", b / 1e6),
            b if b >= 1e3 => write!(f, "{}kbps", b / 1e3),
            b => write!(f, "{b}bps"),
        }
    }
}

/// What can happen to a link. Serialized as a suite writes it (`blackhole`,
/// `{latency: {delay: 90ms}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Partition: bytes vanish both ways, connections stay open (Toxiproxy `timeout` 0);
    /// only HTTP/2 pings notice it.
    Blackhole,
    /// Partition in one direction only: bytes vanish that way, the other way flows.
    OneWay {
        /// The direction that goes silent.
        to: Direction,
    },
    /// Partition: connections are reset by the peer as soon as they carry data.
    Reset,
    /// The link is down: open connections close, new ones are refused.
    Down,
    /// Degraded: every byte is delayed by `delay` in each direction (the round trip grows
    /// by twice that), plus or minus `jitter`.
    Latency {
        /// One-way delay.
        delay: Duration,
        /// Random variation around it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jitter: Option<Duration>,
    },
    /// Degraded: each direction carries at most `rate`.
    Bandwidth {
        /// Capacity, e.g. `500Mbps` (the AWS service-link minimum).
        rate: Rate,
    },
    /// Degraded: closing a connection takes `delay` longer.
    SlowClose {
        /// Added delay before the close reaches the outpost.
        delay: Duration,
    },
    /// Degraded: a connection is closed after `bytes` bytes towards the outpost.
    LimitData {
        /// Bytes allowed per connection.
        bytes: u64,
    },
    /// Degraded: a share of packets is lost each way (packet links only).
    Loss {
        /// Percent of packets lost, 0-100.
        percent: f64,
    },
    /// Degraded: a share of packets is sent twice each way (packet links only).
    Duplicate {
        /// Percent of packets duplicated, 0-100.
        percent: f64,
    },
    /// Degraded: a share of packets overtakes the others, which are delayed by `delay`
    /// (packet links only; netem's `reorder`).
    Reorder {
        /// Percent of packets sent at once, 0-100.
        percent: f64,
        /// Delay of the other packets.
        delay: Duration,
    },
    /// Flapping: the link goes down for `down_for` once every `every`, for the whole
    /// phase; with `random`, each cycle's outage starts at a seeded random point in it.
    Flapping {
        /// Length of one down-and-up cycle.
        every: Duration,
        /// How long the link is down in each cycle.
        down_for: Duration,
        /// Start each outage at a random point of its cycle (from the run's seed).
        #[serde(default)]
        random: bool,
    },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: &Duration| d.0.as_millis();
        match self {
            Fault::Blackhole => f.write_str("blackhole"),
            Fault::OneWay {
                to: Direction::ToRegion,
            } => f.write_str("one-way blackhole to region"),
            Fault::OneWay {
                to: Direction::ToOutpost,
            } => f.write_str("one-way blackhole to outpost"),
            Fault::Reset => f.write_str("reset"),
            Fault::Down => f.write_str("down"),
            Fault::Latency { delay, jitter } => {
                write!(f, "latency {}ms", ms(delay))?;
                if let Some(j) = jitter {
                    write!(f, " ±{}ms", ms(j))?;
                }
                Ok(())
            }
            Fault::Bandwidth { rate } => write!(f, "bandwidth {rate}"),
            Fault::SlowClose { delay } => write!(f, "slow close {}ms", ms(delay)),
            Fault::LimitData { bytes } => write!(f, "limit data {bytes} bytes"),
            Fault::Loss { percent } => write!(f, "{percent}% packet loss"),
            Fault::Duplicate { percent } => write!(f, "{percent}% packets duplicated"),
            Fault::Reorder { percent, delay } => write!(
                f,
                "{percent}% packets reordered (others delayed {}ms)",
                ms(delay)
            ),
            Fault::Flapping {
                every,
                down_for,
                random,
            } => {
                write!(f, "flapping down {}ms every {}ms", ms(down_for), ms(every))?;
                if *random {
                    f.write_str(" at random points")?;
                }
                Ok(())
            }
        }
    }
}

impl Fault {
    /// Every fault kind, as a suite names it.
    pub const KINDS: [&'static str; 12] = [
        "blackhole",
        "one_way",
        "reset",
        "down",
        "latency",
        "bandwidth",
        "slow_close",
        "limit_data",
        "loss",
        "duplicate",
        "reorder",
        "flapping",
    ];

    /// This fault's kind, as a suite names it.
    pub fn kind(&self) -> &'static str {
        Self::KINDS[match self {
            Fault::Blackhole => 0,
            Fault::OneWay { .. } => 1,
            Fault::Reset => 2,
            Fault::Down => 3,
            Fault::Latency { .. } => 4,
            Fault::Bandwidth { .. } => 5,
            Fault::SlowClose { .. } => 6,
            Fault::LimitData { .. } => 7,
            Fault::Loss { .. } => 8,
            Fault::Duplicate { .. } => 9,
            Fault::Reorder { .. } => 10,
            Fault::Flapping { .. } => 11,
        }]
    }

    /// The percentage a packet-level fault names, if it is one.
    pub fn percent(&self) -> Option<f64> {
        match self {
            Fault::Loss { percent }
            | Fault::Duplicate { percent }
            | Fault::Reorder { percent, .. } => Some(*percent),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_operator_units() {
        assert_eq!(
            Rate::parse("500Mbps").map(|r| r.bits_per_second),
            Some(500_000_000)
        );
        assert_eq!(
            Rate::parse("500Mbps").map(Rate::kilobytes_per_second),
            Some(62_500)
        );
        assert_eq!(
            Rate::parse("64 kbps").map(Rate::kilobytes_per_second),
            Some(8)
        );
        assert_eq!(
            Rate::parse("1.5Gbps").map(|r| r.bits_per_second),
            Some(1_500_000_000)
        );
        assert_eq!(Rate::parse("500").map(|r| r.bits_per_second), None);
        assert_eq!(Rate::parse("fast"), None);
        assert_eq!(Rate::parse("2bps"), None);
        assert_eq!(Rate::parse("500Mbps").unwrap().to_string(), "500Mbps");
    }
}
