//! Delay, jitter and reordering in user space, for kernels without `sch_netem`.
//!
//! An iptables `NFQUEUE` rule hands every packet entering a namespace on its veth
//! to queue 0 of that namespace. [`open_queue`] binds a netlink socket to that
//! queue (it must be called inside the namespace: the socket belongs to the
//! namespace it was created in); [`Delayer`] then holds each packet's verdict
//! back until its due time and accepts it then. Only packet metadata is copied
//! to user space (`NFQNL_COPY_META`), never the payload.
//!
//! The netlink messages are written by hand (no C library): `nlmsghdr`, then
//! `nfgenmsg`, then attributes, as in `linux/netfilter/nfnetlink_queue.h`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `NETLINK_NETFILTER`, the netlink family of nfnetlink.
const NETLINK_NETFILTER: libc::c_int = 12;
/// nfnetlink subsystem id of the packet queue.
const NFNL_SUBSYS_QUEUE: u16 = 3;
/// Message types of the queue subsystem (low byte of `nlmsg_type`).
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
/// Config attributes.
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
/// Config command: bind this socket to a queue number.
const NFQNL_CFG_CMD_BIND: u8 = 1;
/// Copy mode: metadata only.
const NFQNL_COPY_META: u8 = 1;
/// Packet attribute holding `nfqnl_msg_packet_hdr` (the packet id first).
const NFQA_PACKET_HDR: u16 = 1;
/// Verdict attribute holding `nfqnl_msg_verdict_hdr`.
const NFQA_VERDICT_HDR: u16 = 2;
/// The verdict that lets a packet continue.
const NF_ACCEPT: u32 = 1;
/// Netlink basics.
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;
/// Attribute type bits other than the type itself (nested, byte order).
const NLA_TYPE_MASK: u16 = 0x3fff;
/// `SOL_NETLINK` / `NETLINK_NO_ENOBUFS`: do not report receive-buffer overruns.
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_NO_ENOBUFS: libc::c_int = 5;

/// How many packets the kernel may hold for us before it drops new ones
/// (500 Mbit/s with 1 s of delay is about 42,000 full-size packets).
const QUEUE_MAXLEN: u32 = 100_000;
/// The longest the delayer thread sleeps before it looks at its stop flag.
const MAX_IDLE: Duration = Duration::from_millis(20);
/// At most this many verdicts go into one `sendto`.
const VERDICT_BATCH: usize = 256;

/// How a [`Delayer`] treats each packet.
#[derive(Debug, Clone, Copy)]
pub(super) struct DelaySpec {
    /// The base delay.
    pub delay: Duration,
    /// Each packet's delay is drawn uniformly from `delay ± jitter` (never below 0).
    pub jitter: Duration,
    /// This share of packets (0-100) skips the delay and goes at once, as netem's `reorder`.
    pub reorder_percent: f64,
}

/// A thread that holds queued packets back and accepts them when due.
/// Stopping it (or dropping it) accepts every packet still held.
pub(super) struct Delayer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Delayer {
    /// Starts the thread on a socket from [`open_queue`].
    pub(super) fn start(
        socket: OwnedFd,
        queue: u16,
        spec: DelaySpec,
        seed: u64,
    ) -> io::Result<Delayer> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("tether-delayer-q{queue}"))
            .spawn(move || run(socket, queue, spec, seed, &flag))?;
        Ok(Delayer {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread, after it has accepted every packet it held.
    pub(super) fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            // The thread never panics on its own; a join error is ignored.
            let _ = thread.join();
        }
    }
}

impl Drop for Delayer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Opens a netlink socket bound to `queue` of the current thread's network namespace,
/// copying metadata only. Call it from a thread that has entered the namespace.
pub(super) fn open_queue(queue: u16) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            NETLINK_NETFILTER,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    let fd = socket.as_raw_fd();

    // SAFETY: sockaddr_nl is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `addr` is a valid sockaddr_nl of the size given.
    let bound = unsafe {
        libc::bind(
            fd,
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if bound < 0 {
        return Err(io::Error::last_os_error());
    }
    // Best effort: a large receive buffer, no ENOBUFS errors, a bounded wait for ACKs.
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 8 << 20);
    set_int_option(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1);
    let timeout = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: `timeout` is a valid timeval of the size given.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const timeout).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }

    // nfqnl_msg_config_cmd { u8 command; u8 pad; be16 pf }
    let mut cmd = vec![NFQNL_CFG_CMD_BIND, 0];
    cmd.extend_from_slice(&(libc::AF_INET as u16).to_be_bytes());
    send(fd, &config_message(1, queue, &[(NFQA_CFG_CMD, &cmd)]))?;
    wait_ack(fd)?;

    // nfqnl_msg_config_params { be32 copy_range; u8 copy_mode } (packed)
    let mut params = 0u32.to_be_bytes().to_vec();
    params.push(NFQNL_COPY_META);
    let maxlen = QUEUE_MAXLEN.to_be_bytes();
    send(
        fd,
        &config_message(
            2,
            queue,
            &[(NFQA_CFG_PARAMS, &params), (NFQA_CFG_QUEUE_MAXLEN, &maxlen)],
        ),
    )?;
    wait_ack(fd)?;
    Ok(socket)
}

/// The delayer thread: read packet ids, schedule them, accept them when due.
fn run(socket: OwnedFd, queue: u16, spec: DelaySpec, seed: u64, stop: &AtomicBool) {
    let fd = socket.as_raw_fd();
    let mut rng = XorShift::new(seed);
    // Min-heap of (due, arrival number, packet id).
    let mut held: BinaryHeap<Reverse<(Instant, u64, u32)>> = BinaryHeap::new();
    let mut arrivals = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    let mut ids = Vec::new();
    loop {
        // Accept what is due.
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(Reverse((at, _, id))) = held.peek().copied() {
            if at > now {
                break;
            }
            held.pop();
            due.push(id);
        }
        accept(fd, queue, &due);
        if stop.load(Ordering::SeqCst) {
            break;
        }

        // Sleep until the next due time, new packets, or the stop check.
        let wait = held
            .peek()
            .map(|Reverse((at, _, _))| at.saturating_duration_since(now))
            .unwrap_or(MAX_IDLE)
            .min(MAX_IDLE);
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let wait_ms = wait.as_micros().div_ceil(1000) as libc::c_int;
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&raw mut pfd, 1, wait_ms) };
        if ready <= 0 {
            continue;
        }

        // Read every message waiting, without blocking.
        loop {
            // SAFETY: `buf` is valid for its length.
            let n =
                unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if n <= 0 {
                // EAGAIN (drained), ENOBUFS (the kernel dropped some) or an error: poll again.
                break;
            }
            ids.clear();
            packet_ids(buf.get(..n as usize).unwrap_or_default(), &mut ids);
            let now = Instant::now();
            for &id in &ids {
                let at = if rng.percent() < spec.reorder_percent {
                    now
                } else {
                    now + jittered(spec.delay, spec.jitter, &mut rng)
                };
                arrivals += 1;
                held.push(Reverse((at, arrivals, id)));
            }
        }
    }
    // Stopping: let every held packet go now.
    let rest: Vec<u32> = held.into_iter().map(|Reverse((_, _, id))| id).collect();
    accept(fd, queue, &rest);
}

/// `delay` plus a uniform draw from `[-jitter, +jitter]`, never below zero.
fn jittered(delay: Duration, jitter: Duration, rng: &mut XorShift) -> Duration {
    if jitter.is_zero() {
        return delay;
    }
    let offset = jitter.as_secs_f64() * (2.0 * rng.unit() - 1.0);
    Duration::from_secs_f64((delay.as_secs_f64() + offset).max(0.0))
}

/// Sends NF_ACCEPT for each id, batched into few datagrams. Errors are ignored:
/// a packet whose verdict is lost is dropped by the kernel when the queue closes.
fn accept(fd: RawFd, queue: u16, ids: &[u32]) {
    for chunk in ids.chunks(VERDICT_BATCH) {
        let mut batch = Vec::with_capacity(chunk.len() * 32);
        for &id in chunk {
            let mut verdict = NF_ACCEPT.to_be_bytes().to_vec();
            verdict.extend_from_slice(&id.to_be_bytes());
            batch.extend_from_slice(&message(
                (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT,
                NLM_F_REQUEST,
                0,
                queue,
                &[(NFQA_VERDICT_HDR, &verdict)],
            ));
        }
        let _ = send(fd, &batch);
    }
}

/// Collects the packet ids of every `NFQNL_MSG_PACKET` in a netlink datagram.
fn packet_ids(buf: &[u8], out: &mut Vec<u32>) {
    let mut off = 0;
    while let (Some(len), Some(ty)) = (u32_at(buf, off), u16_at(buf, off + 4)) {
        let len = len as usize;
        let end = off + len;
        if len < NLMSG_HDRLEN || end > buf.len() {
            break;
        }
        if ty == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
            let mut attr = off + NLMSG_HDRLEN + NFGENMSG_LEN;
            while let (Some(alen), Some(aty)) = (u16_at(buf, attr), u16_at(buf, attr + 2)) {
                let alen = alen as usize;
                if alen < 4 || attr + alen > end {
                    break;
                }
                if aty & NLA_TYPE_MASK == NFQA_PACKET_HDR
                    && let Some(id) = buf.get(attr + 4..attr + 8)
                    && let Ok(id) = <[u8; 4]>::try_from(id)
                {
                    out.push(u32::from_be_bytes(id));
                }
                attr += align4(alen);
            }
        }
        off += align4(len);
    }
}

/// Waits for the kernel's answer to a request sent with `NLM_F_ACK`.
fn wait_ack(fd: RawFd) -> io::Result<()> {
    let mut buf = vec![0u8; 8192];
    // SAFETY: `buf` is valid for its length.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let buf = buf.get(..n as usize).unwrap_or_default();
    match (u16_at(buf, 4), i32_at(buf, NLMSG_HDRLEN)) {
        (Some(NLMSG_ERROR), Some(0)) => Ok(()),
        (Some(NLMSG_ERROR), Some(errno)) => Err(io::Error::from_raw_os_error(-errno)),
        _ => Err(io::Error::other(
            "unexpected netlink answer to a queue config request",
        )),
    }
}

/// A queue config request asking for an ACK.
fn config_message(seq: u32, queue: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    message(
        (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_CONFIG,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        queue,
        attrs,
    )
}

/// One nfnetlink message: `nlmsghdr`, `nfgenmsg` (AF_UNSPEC, version 0, the queue
/// number big-endian), then each attribute padded to 4 bytes.
fn message(ty: u16, flags: u16, seq: u32, queue: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut body = vec![libc::AF_UNSPEC as u8, 0];
    body.extend_from_slice(&queue.to_be_bytes());
    for (kind, payload) in attrs {
        let len = 4 + payload.len();
        body.extend_from_slice(&(len as u16).to_ne_bytes());
        body.extend_from_slice(&kind.to_ne_bytes());
        body.extend_from_slice(payload);
        body.resize(body.len() + (align4(len) - len), 0);
    }
    let mut msg = Vec::with_capacity(NLMSG_HDRLEN + body.len());
    msg.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&ty.to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&body);
    msg
}

/// Sends one datagram to the kernel.
fn send(fd: RawFd, msg: &[u8]) -> io::Result<()> {
    // SAFETY: sockaddr_nl is plain data; all zeroes (pid 0) addresses the kernel.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `msg` and `kernel` are valid for the sizes given.
    let sent = unsafe {
        libc::sendto(
            fd,
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&raw const kernel).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets an integer socket option, ignoring failure.
fn set_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: `value` is a valid c_int of the size given.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

fn i32_at(buf: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// A small xorshift64* generator: enough for delay draws, no dependency.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, 100).
    fn percent(&mut self) -> f64 {
        self.unit() * 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_are_read_from_a_packet_message() {
        // A packet message whose header attribute carries id 0x01020304.
        let mut hdr = 0x0102_0304u32.to_be_bytes().to_vec();
        hdr.extend_from_slice(&[0x08, 0x00, 3]); // hw_protocol, hook
        let msg = message(
            (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET,
            0,
            0,
            0,
            &[(NFQA_PACKET_HDR, &hdr)],
        );
        let mut two = msg.clone();
        two.extend_from_slice(&msg);
        let mut ids = Vec::new();
        packet_ids(&two, &mut ids);
        assert_eq!(ids, vec![0x0102_0304, 0x0102_0304]);
        // Truncated input yields nothing and does not panic.
        ids.clear();
        packet_ids(&msg[..10], &mut ids);
        assert!(ids.is_empty());
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        let mut rng = XorShift::new(7);
        let delay = Duration::from_millis(50);
        let jitter = Duration::from_millis(10);
        for _ in 0..1000 {
            let d = jittered(delay, jitter, &mut rng);
            assert!(
                d >= Duration::from_millis(40) && d <= Duration::from_millis(60),
                "{d:?}"
            );
        }
        assert_eq!(
            jittered(Duration::from_millis(1), Duration::from_millis(5), &mut rng).as_secs(),
            0
        );
    }
}
