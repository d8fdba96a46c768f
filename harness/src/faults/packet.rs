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

mod delayer;

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

    /// Lets this (host) namespace reach both sites without crossing the link: a veth
    /// pair from the host into each namespace on a /30 of 169.254.0.0/16 no host
    /// interface uses, and routes that send each site's traffic for the *other* site's
    /// host-facing address across the link (so it feels the link's faults). Returns the
    /// addresses processes of each site listen on. The host-side veths (`tether<N>o`,
    /// `tether<N>r`) go away with the namespaces.
    pub fn reach_from_host(&self) -> Result<SiteAddresses, PacketLinkError> {
        let used = capture(Command::new("ip").args(["-4", "-o", "addr", "show"]))?;
        let pid = std::process::id();
        let n = (0..200u32)
            .map(|i| 10 + (pid + i) % 200)
            .find(|n| *n != 77 && !used.contains(&format!("169.254.{n}.")))
            .ok_or_else(|| {
                PacketLinkError::Unavailable("no free 169.254.N.0/29 on this host".into())
            })?;
        let n = n as u8;
        let outpost = Ipv4Addr::new(169, 254, n, 2);
        let region = Ipv4Addr::new(169, 254, n, 6);
        for (ns, side, host, inside, other_net, via) in [
            (
                &self.outpost_ns,
                'o',
                Ipv4Addr::new(169, 254, n, 1),
                outpost,
                format!("169.254.{n}.4/30"),
                REGION_ADDR,
            ),
            (
                &self.region_ns,
                'r',
                Ipv4Addr::new(169, 254, n, 5),
                region,
                format!("169.254.{n}.0/30"),
                OUTPOST_ADDR,
            ),
        ] {
            let host_veth = format!("tether{n}{side}");
            run(
                Command::new("ip").args([
                    "link", "add", "name", &host_veth, "type", "veth", "peer", "name", HOST_VETH,
                    "netns", ns,
                ]),
                None,
            )?;
            run(
                Command::new("ip").args(["addr", "add", &format!("{host}/30"), "dev", &host_veth]),
                None,
            )?;
            run(
                Command::new("ip").args(["link", "set", &host_veth, "up"]),
                None,
            )?;
            run(
                Command::new("ip").args([
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{inside}/30"),
                    "dev",
                    HOST_VETH,
                ]),
                None,
            )?;
            run(
                Command::new("ip").args(["-n", ns, "link", "set", HOST_VETH, "up"]),
                None,
            )?;
            run(
                Command::new("ip").args([
                    "-n",
                    ns,
                    "route",
                    "add",
                    &other_net,
                    "via",
                    &via.to_string(),
                ]),
                None,
            )?;
        }
        Ok(SiteAddresses { outpost, region })
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

    /// Installs an impairment on one leg with [`Mechanism::Emulated`].
    fn emulate(&self, leg: Leg, imp: &Impairment) -> Result<(), PacketLinkError> {
        let (sender, receiver, veth, peer) = self.ends(leg);
        if let Some(rate) = imp.rate_kbit {
            // tbf needs a bucket of at least one packet and one timer tick;
            // 10 ms of traffic or 3 KB, whichever is larger. Up to 1 s may queue.
            let burst = (rate * 1000 / 8 / 100).max(3_000);
            run(
                command_in(sender, "tc")
                    .args(["qdisc", "replace", "dev", veth, "root", "tbf"])
                    .args([
                        "rate".to_string(),
                        format!("{rate}kbit"),
                        "burst".into(),
                        burst.to_string(),
                        "latency".into(),
                        "1s".into(),
                    ]),
                None,
            )?;
        }
        if imp.duplicate_percent > 0.0 {
            // TEE sends a copy to the peer, then the original goes on.
            let rule = format!(
                "*mangle\n-F TETHER-OUT\n-A TETHER-OUT{} -j TEE --gateway {peer}\nCOMMIT\n",
                statistic(imp.duplicate_percent)
            );
            iptables_restore(sender, &rule)?;
        }
        let delayed = !imp.delay.is_zero() || !imp.jitter.is_zero();
        if delayed {
            // The queue must be served before packets are sent to it.
            let socket = in_namespace(receiver, || delayer::open_queue(QUEUE))?.map_err(|e| {
                PacketLinkError::Namespace {
                    ns: receiver.to_string(),
                    detail: format!("cannot bind NFQUEUE {QUEUE}: {e}"),
                }
            })?;
            let seed =
                (socket.as_raw_fd() as u64) ^ (u64::from(std::process::id()) << 20) ^ nanos();
            let spec = DelaySpec {
                delay: imp.delay,
                jitter: imp.jitter,
                reorder_percent: imp.reorder_percent,
            };
            let delayer = Delayer::start(socket, QUEUE, spec, seed).map_err(|e| {
                PacketLinkError::Namespace {
                    ns: receiver.to_string(),
                    detail: format!("cannot start the delayer thread: {e}"),
                }
            })?;
            self.delayers_mut()[leg.index()] = Some(delayer);
        }
        let mut rules = String::from("*mangle\n-F TETHER-IN\n");
        if imp.loss_percent > 0.0 {
            let _ = writeln!(rules, "-A TETHER-IN{} -j DROP", statistic(imp.loss_percent));
        }
        if delayed {
            // `--queue-bypass`: should the delayer be gone, packets pass undelayed.
            let _ = writeln!(
                rules,
                "-A TETHER-IN -j NFQUEUE --queue-num {QUEUE} --queue-bypass"
            );
        }
        rules.push_str("COMMIT\n");
        iptables_restore(receiver, &rules)
    }

    /// Removes one leg's impairment: rules first (no new packets queued), then the
    /// delayer (it lets held packets go), then the sender's qdisc.
    fn clear_leg(&self, leg: Leg) -> Result<(), PacketLinkError> {
        let (sender, receiver, veth, _) = self.ends(leg);
        iptables_restore(receiver, "*mangle\n-F TETHER-IN\nCOMMIT\n")?;
        iptables_restore(sender, "*mangle\n-F TETHER-OUT\nCOMMIT\n")?;
        if let Some(delayer) = self.delayers_mut()[leg.index()].take() {
            delayer.stop();
        }
        // Deleting a root qdisc that is not there fails; only a present one is removed.
        let shown = capture(command_in(sender, "tc").args(["qdisc", "show", "dev", veth, "root"]))?;
        if shown.contains("netem") || shown.contains("tbf") {
            run(
                command_in(sender, "tc").args(["qdisc", "del", "dev", veth, "root"]),
                None,
            )?;
        }
        Ok(())
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

/// A command that runs `program` inside network namespace `ns`
/// (`ip netns exec <ns> <program>`); add arguments, environment, and spawn it.
pub fn command_in(ns: &str, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns]).arg(program);
    command
}

/// Runs `f` on a fresh thread that has entered network namespace `ns`, and returns
/// its result. Sockets made inside `f` stay in `ns` wherever they are used later,
/// so this is how this process listens or dials from a site.
pub fn in_namespace<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T, PacketLinkError> {
    let fail = |detail: String| PacketLinkError::Namespace {
        ns: ns.to_string(),
        detail,
    };
    let path = format!("{NETNS_DIR}/{ns}");
    let handle = std::fs::File::open(&path).map_err(|e| fail(format!("{path}: {e}")))?;
    std::thread::scope(|scope| {
        let thread = scope.spawn(move || {
            // SAFETY: `handle` is an open namespace file; setns only affects this thread.
            if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(f())
        });
        match thread.join() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(fail(format!("setns: {e}"))),
            Err(_) => Err(fail("the function run inside it panicked".into())),
        }
    })
}

/// Deletes the namespaces a killed run left behind: every one whose name starts with
/// `root`, except those whose name carries the pid of a live process (as
/// [`unique_prefix`] writes it). Returns the names it deleted; tries all and reports
/// the first failure.
pub fn cleanup_stale(root: &str) -> Result<Vec<String>, PacketLinkError> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        // No directory: no namespace was ever made here.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PacketLinkError::Unavailable(format!("{NETNS_DIR}: {e}"))),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.starts_with(root) && !owner_alive(root, name))
        .collect();
    names.sort();
    let mut first_error = None;
    let mut removed = Vec::new();
    for name in names {
        match delete_namespace(&name) {
            Ok(()) => removed.push(name),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

/// True when `name` is `<root><pid hex>x...` and that pid is a live process.
fn owner_alive(root: &str, name: &str) -> bool {
    let Some(pid) = owner_pid(root, name) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The pid in a name made from [`unique_prefix`], if it has one.
fn owner_pid(root: &str, name: &str) -> Option<libc::pid_t> {
    let (hex, _) = name.strip_prefix(root)?.split_once('x')?;
    let pid = libc::pid_t::from_str_radix(hex, 16).ok()?;
    (pid > 0).then_some(pid)
}

/// `ip netns del`; a namespace that is already gone counts as deleted.
fn delete_namespace(ns: &str) -> Result<(), PacketLinkError> {
    if !std::path::Path::new(NETNS_DIR).join(ns).exists() {
        return Ok(());
    }
    run(Command::new("ip").args(["netns", "del", ns]), None)
}

/// ` -m statistic --mode random --probability <p>` for a percentage; empty at 100 %.
fn statistic(percent: f64) -> String {
    if percent >= 100.0 {
        String::new()
    } else {
        format!(
            " -m statistic --mode random --probability {:.6}",
            percent / 100.0
        )
    }
}

/// `iptables-restore --noflush` inside `ns`, with `rules` on its standard input.
fn iptables_restore(ns: &str, rules: &str) -> Result<(), PacketLinkError> {
    run(
        command_in(ns, "iptables-restore").args(["-w", "5", "--noflush"]),
        Some(rules),
    )
}

/// Nanoseconds of the wall clock, for seeding.
fn nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The command line as text, for error messages.
fn render(command: &Command) -> String {
    let mut shown = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        shown.push(' ');
        shown.push_str(&arg.to_string_lossy());
    }
    shown
}

/// Runs a command to completion, feeding `stdin`; fails with its stderr if it fails.
fn run(command: &mut Command, stdin: Option<&str>) -> Result<(), PacketLinkError> {
    output(command, stdin).map(drop)
}

/// Runs a command and returns its stdout.
fn capture(command: &mut Command) -> Result<String, PacketLinkError> {
    output(command, None)
}

fn output(command: &mut Command, stdin: Option<&str>) -> Result<String, PacketLinkError> {
    let shown = render(command);
    let fail = |detail: String| PacketLinkError::Command {
        command: shown.clone(),
        detail,
    };
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| fail(format!("could not start: {e}")))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A write error shows up as the command's failure below.
        let _ = pipe.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("could not wait: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(fail(format!("{}: {}", out.status, stderr.trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests;
