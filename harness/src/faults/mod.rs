//! Link faults: a Toxiproxy-compatible fault proxy and tether's client for it.
//!
//! [`server`] serves Shopify Toxiproxy's HTTP API (same paths, JSON shapes and
//! status codes) on top of the `noxious` proxy core, so tether needs no Go
//! binary: it runs the fault proxy in-process. [`client`] is tether's typed
//! async client for that API; it works against a real Toxiproxy as well.
//!
//! A proxy forwards TCP from its `listen` address to its `upstream` address.
//! Toxics (latency, blackhole, bandwidth, reset_peer, ...) change what happens
//! to the bytes, and apply to connections that are already open as well as to
//! new ones. Disabling a proxy closes its connections and refuses new ones.
//! [`populate`] reads the proxy lists of `POST /populate` and of
//! `tether fault-proxy --config FILE`.
//!
//! [`packet`] is the other kind of link: the two sites as network namespaces
//! joined by a veth pair, with delay, loss, reordering, duplication, rate and
//! partitions applied to packets (netem, or iptables and NFQUEUE without it), so
//! nothing answers TCP keepalives on the far side's behalf.

pub mod client;
mod edge;
/// The link-fault vocabulary suites use and how it maps onto toxics.
pub mod link;
pub mod packet;
pub mod populate;
pub mod server;

#[cfg(test)]
mod testutil;
