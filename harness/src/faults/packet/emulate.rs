//! Impairments without `sch_netem`: iptables drops and copies, `tbf` for rate, and the
//! delayer's NFQUEUE for delay, jitter and reordering.

use super::*;

impl PacketLink {
    /// Installs an impairment on one leg with [`Mechanism::Emulated`].
    pub(super) fn emulate(&self, leg: Leg, imp: &Impairment) -> Result<(), PacketLinkError> {
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
    pub(super) fn clear_leg(&self, leg: Leg) -> Result<(), PacketLinkError> {
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
}
