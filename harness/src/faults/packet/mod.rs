//! A packet-level link: the outpost and the region as two network namespaces
//! joined by a veth pair, with delay, jitter, loss, reordering, duplication, rate
//! limits and partitions applied to the packets themselves.
//!
//! Unlike the TCP-terminating fault proxy, nothing here answers on anyone's
//! behalf: a partitioned link loses TCP keepalives, SYNs and datagrams alike.
//!
//! ```text
//!   <prefix>-outpost                       <prefix>-region
//!   169.254.77.1/30  [veth-region] <====> [veth-outpost]  169.254.77.2/30
//! ```
//!
//! How each fault is made, per direction (the *sender* is the namespace the
//! packets leave, the *receiver* the one they enter):
//!
//! - partition: an iptables `DROP` in the receiver's `mangle PREROUTING`, so the
//!   sender sees no local error, as on a cut wire;
//! - with [`Mechanism::Netem`] (the kernel has `sch_netem`): one
//!   `tc qdisc replace dev <veth> root netem ...` on the sender's veth;
//! - with [`Mechanism::Emulated`] (no `sch_netem`, as on some VM kernels): loss is
//!   an iptables `statistic` drop in the receiver, duplication an iptables `TEE` in
//!   the sender, rate a `tbf` qdisc on the sender's veth, and delay, jitter and
//!   reordering an `NFQUEUE` in the receiver served by a thread of this process
//!   (see `delayer`), which holds each packet's verdict until it is due.
//!
//! Everything lives inside the two namespaces, so deleting them (on [`Drop`], on
//! [`PacketLink::destroy`], or later with [`cleanup_stale`]) removes the veth,
//! the qdiscs and the rules with them. Impairments act on IPv4 only. All commands
//! are blocking `std::process::Command`s; async callers use `spawn_blocking`.

mod commands;
mod delayer;
mod emulate;
mod host;

#[cfg(test)]
use commands::owner_pid;
use commands::{capture, delete_namespace, iptables_restore, nanos, run, statistic};
pub use commands::{cleanup_stale, command_in, in_namespace};

use delayer::{DelaySpec, Delayer};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Where `ip netns` keeps its namespace handles.
pub const NETNS_DIR: &str = "/var/run/netns";
/// The outpost end of the veth pair (inside the outpost namespace).
const OUTPOST_VETH: &str = "veth-region";
/// The region end of the veth pair (inside the region namespace).
const REGION_VETH: &str = "veth-outpost";
/// The outpost's address: link-local, only ever present inside the run's namespaces.
const OUTPOST_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 77, 1);
/// The region's address, on the same /30.
const REGION_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 77, 2);
/// Each namespace's end of its veth to the host.
const HOST_VETH: &str = "veth-host";
/// The NFQUEUE number the delayer uses (queues are per namespace).
const QUEUE: u16 = 0;
/// Longest accepted prefix (namespace names are `<prefix>-outpost`, `<prefix>-region`).
const MAX_PREFIX: usize = 32;

/// Why a packet-level link operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PacketLinkError {
    /// This machine cannot build the link (not root, no `ip netns`, no veth,
    /// no iptables...). A run that needs the link exits 3.
    #[error("packet-level link unavailable on this machine: {0}")]
    Unavailable(String),
    /// A command failed; names it and carries its exit status and stderr.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line, as run.
        command: String,
        /// Exit status and stderr, or why it could not start.
        detail: String,
    },
    /// Entering a namespace from this process failed.
    #[error("cannot enter network namespace {ns}: {detail}")]
    Namespace {
        /// The namespace name.
        ns: String,
        /// What went wrong.
        detail: String,
    },
    /// The prefix given to [`PacketLink::create`] is not usable as a name part.
    #[error("invalid link prefix {0:?}: use 1-32 of a-z, 0-9, `-`, `_`")]
    InvalidPrefix(String),
    /// An impairment value out of range.
    #[error("invalid impairment: {0}")]
    InvalidImpairment(String),
}

/// Which packets a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Packets from the outpost to the region.
    ToRegion,
    /// Packets from the region to the outpost.
    ToOutpost,
    /// Both ways.
    Both,
}

impl Direction {
    /// The one-way legs this direction covers.
    fn legs(self) -> &'static [Leg] {
        match self {
            Direction::ToRegion => &[Leg::ToRegion],
            Direction::ToOutpost => &[Leg::ToOutpost],
            Direction::Both => &[Leg::ToRegion, Leg::ToOutpost],
        }
    }
}

/// One way across the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leg {
    ToRegion,
    ToOutpost,
}

impl Leg {
    fn index(self) -> usize {
        match self {
            Leg::ToRegion => 0,
            Leg::ToOutpost => 1,
        }
    }
}

/// What happens to packets crossing the link one way. `Default` is no impairment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Impairment {
    /// Added to every packet (netem `delay`).
    pub delay: Duration,
    /// Each packet's delay varies uniformly by up to this much either way.
    pub jitter: Duration,
    /// Share of packets lost, 0-100.
    pub loss_percent: f64,
    /// Share of packets (0-100) sent at once instead of delayed, overtaking the
    /// delayed ones; needs a `delay` to have any effect (as netem's `reorder`).
    pub reorder_percent: f64,
    /// Share of packets sent twice, 0-100.
    pub duplicate_percent: f64,
    /// Bandwidth limit in kbit/s (1 kbit = 1000 bit), if any.
    pub rate_kbit: Option<u64>,
}

impl Impairment {
    /// Checks that the percentages lie in 0-100 and the rate is not 0.
    pub fn validate(&self) -> Result<(), PacketLinkError> {
        for (name, value) in [
            ("loss_percent", self.loss_percent),
            ("reorder_percent", self.reorder_percent),
            ("duplicate_percent", self.duplicate_percent),
        ] {
            if !(0.0..=100.0).contains(&value) {
                return Err(PacketLinkError::InvalidImpairment(format!(
                    "{name} is {value}; expected 0 to 100"
                )));
            }
        }
        if self.rate_kbit == Some(0) {
            return Err(PacketLinkError::InvalidImpairment(
                "rate_kbit is 0; expected at least 1 (or none for no limit)".into(),
            ));
        }
        Ok(())
    }

    /// The `netem` arguments for this impairment (after `... root netem`).
    pub fn netem_args(&self) -> Vec<String> {
        // Room for 100,000 packets in flight (netem's default of 1,000 would drop
        // at high rates with long delays).
        let mut args = vec!["limit".to_string(), "100000".to_string()];
        if !self.delay.is_zero() || !self.jitter.is_zero() {
            args.push("delay".into());
            args.push(format!("{}us", self.delay.as_micros()));
            if !self.jitter.is_zero() {
                args.push(format!("{}us", self.jitter.as_micros()));
            }
        }
        for (name, value) in [
            ("loss", self.loss_percent),
            ("duplicate", self.duplicate_percent),
            ("reorder", self.reorder_percent),
        ] {
            // netem refuses `reorder` without a delay; it would do nothing anyway.
            if value > 0.0 && (name != "reorder" || !self.delay.is_zero()) {
                args.push(name.into());
                args.push(format!("{value}%"));
            }
        }
        if let Some(rate) = self.rate_kbit {
            args.push("rate".into());
            args.push(format!("{rate}kbit"));
        }
        args
    }
}

/// How impairments are made on this machine (partitions are always iptables drops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// The kernel's `netem` qdisc on the sender's veth.
    Netem,
    /// No `sch_netem` in the kernel: iptables (loss, duplication), `tbf` (rate) and a
    /// user-space NFQUEUE delayer in this process (delay, jitter, reordering).
    Emulated,
}

/// Where each site's processes listen when the host reaches them
/// ([`PacketLink::reach_from_host`]): from the host directly, from the other site
/// across the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteAddresses {
    /// The outpost's address.
    pub outpost: Ipv4Addr,
    /// The region's address.
    pub region: Ipv4Addr,
}

/// The two sites and the veth between them. Dropping it deletes both namespaces.
pub struct PacketLink {
    outpost_ns: String,
    region_ns: String,
    mechanism: Mechanism,
    /// The delayer thread of each leg, with [`Mechanism::Emulated`] and a delay set.
    delayers: Mutex<[Option<Delayer>; 2]>,
    /// Set once the namespaces are deleted, so `Drop` does not try again.
    destroyed: bool,
}

impl std::fmt::Debug for PacketLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketLink")
            .field("outpost_ns", &self.outpost_ns)
            .field("region_ns", &self.region_ns)
            .field("mechanism", &self.mechanism)
            .finish()
    }
}

/// A prefix unique to this process and call: `<root><pid in hex>x<counter in hex>`,
/// e.g. `tt1a2bx0`. [`cleanup_stale`] reads the pid back to spare live runs.
pub fn unique_prefix(root: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{root}{:x}x{n:x}", std::process::id())
}

impl PacketLink {
    /// Creates `<prefix>-outpost` and `<prefix>-region`, the veth pair between them
    /// with 169.254.77.1/30 (outpost) and .2 (region), loopback up in both, and
    /// picks the [`Mechanism`] this kernel supports. On failure nothing is left.
    pub fn create(prefix: &str) -> Result<PacketLink, PacketLinkError> {
        PacketLink::create_with(prefix, None)
    }

    /// As [`PacketLink::create`], forcing a mechanism (`None` picks netem where the
    /// kernel has it). Forcing [`Mechanism::Netem`] where it is missing fails.
    pub fn create_with(
        prefix: &str,
        force: Option<Mechanism>,
    ) -> Result<PacketLink, PacketLinkError> {
        let valid = (1..=MAX_PREFIX).contains(&prefix.len())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            return Err(PacketLinkError::InvalidPrefix(prefix.to_string()));
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(PacketLinkError::Unavailable(
                "network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN)".into(),
            ));
        }
        let outpost_ns = format!("{prefix}-outpost");
        let region_ns = format!("{prefix}-region");

        // Namespace creation is the environment check: failing here means the
        // machine cannot do it at all.
        run(Command::new("ip").args(["netns", "add", &outpost_ns]), None)
            .map_err(|e| PacketLinkError::Unavailable(e.to_string()))?;
        // From here on, dropping `link` deletes whatever was made.
        let mut link = PacketLink {
            outpost_ns,
            region_ns,
            mechanism: Mechanism::Emulated,
            delayers: Mutex::new([None, None]),
            destroyed: false,
        };
        link.build(force)
            .map_err(|e| PacketLinkError::Unavailable(e.to_string()))?;
        Ok(link)
    }

    /// The steps of `create` after the first namespace exists.
    fn build(&mut self, force: Option<Mechanism>) -> Result<(), PacketLinkError> {
        let (o, r) = (self.outpost_ns.clone(), self.region_ns.clone());
        run(Command::new("ip").args(["netns", "add", &r]), None)?;
        // Both veth ends are created directly inside their namespaces, so the
        // fixed names never meet in the host namespace.
        run(
            Command::new("ip").args([
                "link",
                "add",
                "name",
                OUTPOST_VETH,
                "netns",
                &o,
                "type",
                "veth",
                "peer",
                "name",
                REGION_VETH,
                "netns",
                &r,
            ]),
            None,
        )?;
        for (ns, veth, addr) in [
            (&o, OUTPOST_VETH, OUTPOST_ADDR),
            (&r, REGION_VETH, REGION_ADDR),
        ] {
            let cidr = format!("{addr}/30");
            run(
                Command::new("ip").args(["-n", ns, "addr", "add", &cidr, "dev", veth]),
                None,
            )?;
            run(
                Command::new("ip").args(["-n", ns, "link", "set", veth, "up"]),
                None,
            )?;
            run(
                Command::new("ip").args(["-n", ns, "link", "set", "lo", "up"]),
                None,
            )?;
            // Empty chains the faults fill: TETHER-CUT (partition) and TETHER-IN
            // (loss, delay) for packets entering on the veth, TETHER-OUT
            // (duplication) for packets leaving on it.
            let rules = format!(
                "*mangle\n:TETHER-CUT - [0:0]\n:TETHER-IN - [0:0]\n:TETHER-OUT - [0:0]\n\
                 -A PREROUTING -i {veth} -j TETHER-CUT\n\
                 -A PREROUTING -i {veth} -j TETHER-IN\n\
                 -A POSTROUTING -o {veth} -j TETHER-OUT\nCOMMIT\n"
            );
            iptables_restore(ns, &rules)?;
        }
        self.mechanism = match force {
            Some(Mechanism::Emulated) => Mechanism::Emulated,
            Some(Mechanism::Netem) => {
                self.probe_netem()?;
                Mechanism::Netem
            }
            None if self.probe_netem().is_ok() => Mechanism::Netem,
            None => Mechanism::Emulated,
        };
        Ok(())
    }

    /// Succeeds when a netem qdisc can be put on the outpost veth (and removes it).
    fn probe_netem(&self) -> Result<(), PacketLinkError> {
        let ns = &self.outpost_ns;
        run(
            command_in(ns, "tc").args(["qdisc", "replace", "dev", OUTPOST_VETH, "root", "netem"]),
            None,
        )?;
        run(
            command_in(ns, "tc").args(["qdisc", "del", "dev", OUTPOST_VETH, "root"]),
            None,
        )
    }

    /// The outpost namespace's name (for `ip netns exec`, [`command_in`], [`in_namespace`]).
    pub fn outpost_ns(&self) -> &str {
        &self.outpost_ns
    }

    /// The region namespace's name.
    pub fn region_ns(&self) -> &str {
        &self.region_ns
    }

    /// The outpost's address on the link (169.254.77.1).
    pub fn outpost_addr(&self) -> IpAddr {
        IpAddr::V4(OUTPOST_ADDR)
    }

    /// The region's address on the link (169.254.77.2).
    pub fn region_addr(&self) -> IpAddr {
        IpAddr::V4(REGION_ADDR)
    }

    /// How impairments are made on this machine.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Sets the impairment of `direction`, replacing the one it had (partitions stay).
    pub fn impair(&self, direction: Direction, imp: &Impairment) -> Result<(), PacketLinkError> {
        imp.validate()?;
        for &leg in direction.legs() {
            self.clear_leg(leg)?;
            match self.mechanism {
                Mechanism::Netem => {
                    let (sender, _, veth, _) = self.ends(leg);
                    run(
                        command_in(sender, "tc")
                            .args(["qdisc", "replace", "dev", veth, "root", "netem"])
                            .args(imp.netem_args()),
                        None,
                    )?;
                }
                Mechanism::Emulated => self.emulate(leg, imp)?,
            }
        }
        Ok(())
    }

    /// Removes the impairment of `direction` (partitions stay).
    pub fn clear(&self, direction: Direction) -> Result<(), PacketLinkError> {
        direction
            .legs()
            .iter()
            .try_for_each(|&leg| self.clear_leg(leg))
    }

    /// Drops every packet going `direction`; open connections stay open but hear nothing.
    pub fn partition(&self, direction: Direction) -> Result<(), PacketLinkError> {
        for &leg in direction.legs() {
            let (_, receiver, _, _) = self.ends(leg);
            iptables_restore(
                receiver,
                "*mangle\n-F TETHER-CUT\n-A TETHER-CUT -j DROP\nCOMMIT\n",
            )?;
        }
        Ok(())
    }

    /// Ends the partition of `direction` (impairments stay).
    pub fn reconnect(&self, direction: Direction) -> Result<(), PacketLinkError> {
        for &leg in direction.legs() {
            let (_, receiver, _, _) = self.ends(leg);
            iptables_restore(receiver, "*mangle\n-F TETHER-CUT\nCOMMIT\n")?;
        }
        Ok(())
    }

    /// Removes every partition and impairment, both ways.
    pub fn heal(&self) -> Result<(), PacketLinkError> {
        self.reconnect(Direction::Both)?;
        self.clear(Direction::Both)
    }

    /// Deletes both namespaces (and with them the veth, qdiscs and rules), reporting
    /// the first failure. Processes still running inside keep their namespace alive
    /// until they exit: stop them first.
    pub fn destroy(mut self) -> Result<(), PacketLinkError> {
        self.teardown()
    }

    /// (sender namespace, receiver namespace, sender's veth, receiver's address) of a leg.
    fn ends(&self, leg: Leg) -> (&str, &str, &'static str, Ipv4Addr) {
        match leg {
            Leg::ToRegion => (&self.outpost_ns, &self.region_ns, OUTPOST_VETH, REGION_ADDR),
            Leg::ToOutpost => (&self.region_ns, &self.outpost_ns, REGION_VETH, OUTPOST_ADDR),
        }
    }

    /// The delayer slots, even if a thread panicked while holding the lock.
    fn delayers_mut(&self) -> std::sync::MutexGuard<'_, [Option<Delayer>; 2]> {
        self.delayers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stops the delayers and deletes both namespaces; tries both, reports the first error.
    fn teardown(&mut self) -> Result<(), PacketLinkError> {
        if self.destroyed {
            return Ok(());
        }
        self.destroyed = true;
        for slot in self.delayers_mut().iter_mut() {
            if let Some(delayer) = slot.take() {
                delayer.stop();
            }
        }
        let outpost = delete_namespace(&self.outpost_ns);
        let region = delete_namespace(&self.region_ns);
        outpost.and(region)
    }
}

impl Drop for PacketLink {
    fn drop(&mut self) {
        // Best effort; a failure leaves work for `cleanup_stale`.
        let _ = self.teardown();
    }
}

#[cfg(test)]
mod tests;
