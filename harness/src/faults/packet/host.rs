//! Reaching both sites from the harness's own namespace without crossing the link.

use super::*;

impl PacketLink {
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
}
