//! Tests of the packet-level link. Those that build a link need root and `ip netns`:
//! without them they fail under `CI=true` and under nextest (which would report a test
//! that returns early as passed), and print a loud SKIPPED line elsewhere.
//! Traffic only ever flows between the two namespaces a test made.

use super::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Instant;

/// A link for one test, or `None` (after a SKIPPED line) where this machine cannot.
fn link() -> Option<PacketLink> {
    match PacketLink::create(&unique_prefix("tt")) {
        Ok(link) => Some(link),
        Err(PacketLinkError::Unavailable(reason)) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and the packet-level link cannot be built here: {reason}");
            }
            if std::env::var_os("NEXTEST_RUN_ID").is_some() {
                panic!("under nextest, which cannot mark a test skipped once it runs: {reason}");
            }
            eprintln!(
                "\n\n*** SKIPPED: this test needs root and `ip netns` to build a packet-level link: {reason} ***\n\n"
            );
            None
        }
        Err(e) => panic!("creating the link failed: {e}"),
    }
}

/// The namespaces `ip netns list` shows.
fn namespaces() -> Vec<String> {
    let out = capture(Command::new("ip").args(["netns", "list"])).expect("ip netns list");
    out.lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Destroys the link and asserts that neither namespace is left.
fn finish(link: PacketLink) {
    let names = [link.outpost_ns().to_string(), link.region_ns().to_string()];
    link.destroy().expect("destroy");
    let left = namespaces();
    for name in names {
        assert!(!left.contains(&name), "{name} is still there: {left:?}");
    }
}

/// A TCP listener on the region's address, inside the region namespace.
fn region_listener(link: &PacketLink) -> TcpListener {
    let addr = SocketAddr::new(link.region_addr(), 0);
    in_namespace(link.region_ns(), || TcpListener::bind(addr))
        .expect("enter region")
        .expect("bind in region")
}

/// Echoes every byte on every connection, for at most 20 s.
fn spawn_echo(listener: TcpListener) {
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    std::thread::spawn(move || {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(15)));
                        let mut buf = [0u8; 4096];
                        while let Ok(n) = conn.read(&mut buf) {
                            if n == 0 || conn.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
}

/// Dials `to` from inside the outpost namespace, waiting at most `timeout`.
fn dial(link: &PacketLink, to: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    in_namespace(link.outpost_ns(), || {
        TcpStream::connect_timeout(&to, timeout)
    })
    .expect("enter outpost")
}

/// The shortest of `n` one-byte round trips over `stream`.
fn min_rtt(stream: &mut TcpStream, n: usize) -> Duration {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    (0..n)
        .map(|_| {
            let start = Instant::now();
            stream.write_all(b"x").expect("write");
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).expect("echo");
            start.elapsed()
        })
        .min()
        .expect("n > 0")
}

/// A UDP socket bound inside `ns` at `ip`.
fn udp_in(ns: &str, ip: IpAddr) -> UdpSocket {
    let socket = in_namespace(ns, || UdpSocket::bind(SocketAddr::new(ip, 0)))
        .expect("enter")
        .expect("bind udp");
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    socket
}

/// Sends `count` numbered datagrams from `from` to `to` (1 ms apart) and returns the
/// numbers received, in arrival order, reading until 300 ms pass without one.
fn udp_numbers(from: &UdpSocket, to: &UdpSocket, count: u32) -> Vec<u32> {
    let dest = to.local_addr().expect("addr");
    let sender = from.try_clone().expect("clone");
    let send = std::thread::spawn(move || {
        for i in 0..count {
            sender.send_to(&i.to_be_bytes(), dest).expect("send");
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 16];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match to.recv(&mut buf) {
            Ok(4) => got.push(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]])),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if send.is_finished() || Instant::now() > deadline {
                    break;
                }
            }
            Err(e) => panic!("recv: {e}"),
        }
    }
    send.join().expect("sender");
    got
}

#[test]
fn tcp_and_udp_cross_the_link_and_commands_run_inside_a_site() {
    let Some(link) = link() else { return };
    let listener = region_listener(&link);
    let to = listener.local_addr().expect("addr");
    spawn_echo(listener);
    let mut stream = dial(&link, to, Duration::from_secs(2)).expect("connect outpost -> region");
    stream.write_all(b"hello").expect("write");
    let mut back = [0u8; 5];
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    stream.read_exact(&mut back).expect("echo");
    assert_eq!(&back, b"hello");
    // The peer saw the outpost's link address: traffic really crossed the veth.
    assert_eq!(stream.local_addr().expect("addr").ip(), link.outpost_addr());

    let outpost = udp_in(link.outpost_ns(), link.outpost_addr());
    let region = udp_in(link.region_ns(), link.region_addr());
    assert_eq!(udp_numbers(&outpost, &region, 5), vec![0, 1, 2, 3, 4]);
    assert_eq!(udp_numbers(&region, &outpost, 5), vec![0, 1, 2, 3, 4]);

    // command_in: the region namespace holds the region's address and nothing else.
    let out =
        capture(command_in(link.region_ns(), "ip").args(["-4", "-o", "addr"])).expect("ip addr");
    assert!(out.contains(&format!("{}/30", link.region_addr())), "{out}");
    assert!(!out.contains(&link.outpost_addr().to_string()), "{out}");
    finish(link);
}

#[test]
fn delay_one_way_adds_to_the_round_trip_and_clearing_removes_it() {
    let Some(link) = link() else { return };
    let listener = region_listener(&link);
    let to = listener.local_addr().expect("addr");
    spawn_echo(listener);
    let mut stream = dial(&link, to, Duration::from_secs(2)).expect("connect");
    let base = min_rtt(&mut stream, 5);

    let delay = Impairment {
        delay: Duration::from_millis(100),
        ..Impairment::default()
    };
    link.impair(Direction::ToRegion, &delay).expect("impair");
    let delayed = min_rtt(&mut stream, 5);
    assert!(
        delayed >= base + Duration::from_millis(100),
        "base {base:?}, with 100 ms one way {delayed:?}"
    );

    link.clear(Direction::ToRegion).expect("clear");
    let cleared = min_rtt(&mut stream, 5);
    assert!(
        cleared < Duration::from_millis(50),
        "base {base:?}, after clear {cleared:?}"
    );

    // Both ways: 60 ms each way is at least 120 ms per round trip.
    let both = Impairment {
        delay: Duration::from_millis(60),
        ..Impairment::default()
    };
    link.impair(Direction::Both, &both).expect("impair both");
    let round = min_rtt(&mut stream, 3);
    assert!(
        round >= base + Duration::from_millis(120),
        "60 ms each way gave {round:?}"
    );
    link.heal().expect("heal");
    assert!(min_rtt(&mut stream, 3) < Duration::from_millis(50));
    eprintln!(
        "mechanism {:?}: base rtt {base:?}, 100 ms one way {delayed:?}, cleared {cleared:?}, 60 ms both ways {round:?}",
        link.mechanism()
    );
    finish(link);
}

#[test]
fn partition_both_ways_blackholes_and_heal_restores() {
    let Some(link) = link() else { return };
    let listener = region_listener(&link);
    let to = listener.local_addr().expect("addr");
    spawn_echo(listener);
    let mut open = dial(&link, to, Duration::from_secs(2)).expect("connect");
    min_rtt(&mut open, 1);

    link.partition(Direction::Both).expect("partition");
    let refused = dial(&link, to, Duration::from_secs(1));
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::TimedOut),
        "a connect across a partition must time out, got {refused:?}"
    );
    // The open connection is not reset: its bytes just vanish.
    open.set_read_timeout(Some(Duration::from_millis(800)))
        .expect("timeout");
    open.write_all(b"y").expect("write is buffered");
    let mut byte = [0u8; 1];
    let silent = open.read(&mut byte);
    assert!(
        silent
            .as_ref()
            .is_err_and(|e| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "nothing may come back across a partition, got {silent:?}"
    );

    link.heal().expect("heal");
    // TCP retransmits the byte sent during the partition; its echo arrives now.
    open.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    open.read_exact(&mut byte)
        .expect("the open connection survives the partition");
    assert_eq!(&byte, b"y");
    dial(&link, to, Duration::from_secs(2)).expect("connect after heal");
    finish(link);
}

#[test]
fn partition_one_way_cuts_only_that_way() {
    let Some(link) = link() else { return };
    let listener = region_listener(&link);
    let to = listener.local_addr().expect("addr");
    spawn_echo(listener);
    let outpost = udp_in(link.outpost_ns(), link.outpost_addr());
    let region = udp_in(link.region_ns(), link.region_addr());

    link.partition(Direction::ToRegion)
        .expect("partition to region");
    let refused = dial(&link, to, Duration::from_secs(1));
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::TimedOut),
        "the SYN to the region must be lost, got {refused:?}"
    );
    assert_eq!(
        udp_numbers(&outpost, &region, 10),
        Vec::<u32>::new(),
        "outpost -> region must be cut"
    );
    assert_eq!(
        udp_numbers(&region, &outpost, 10),
        (0..10).collect::<Vec<_>>(),
        "region -> outpost must flow"
    );

    link.heal().expect("heal");
    dial(&link, to, Duration::from_secs(2)).expect("connect after heal");
    assert_eq!(
        udp_numbers(&outpost, &region, 10),
        (0..10).collect::<Vec<_>>()
    );
    finish(link);
}

#[test]
fn loss_duplication_reordering_and_rate_are_observable() {
    let Some(link) = link() else { return };
    let outpost = udp_in(link.outpost_ns(), link.outpost_addr());
    let region = udp_in(link.region_ns(), link.region_addr());
    let up = Direction::ToRegion;

    let loss = |percent| Impairment {
        loss_percent: percent,
        ..Impairment::default()
    };
    link.impair(up, &loss(100.0)).expect("loss 100");
    assert!(
        udp_numbers(&outpost, &region, 100).is_empty(),
        "loss 100% lets nothing through"
    );
    // The other way is untouched.
    assert_eq!(udp_numbers(&region, &outpost, 20).len(), 20);
    link.impair(up, &loss(0.0)).expect("loss 0");
    assert_eq!(
        udp_numbers(&outpost, &region, 100).len(),
        100,
        "loss 0% loses nothing"
    );
    link.impair(up, &loss(50.0)).expect("loss 50");
    let half = udp_numbers(&outpost, &region, 200).len();
    // Binomial(200, 0.5): 40-160 is more than 8 standard deviations wide.
    assert!(
        (40..=160).contains(&half),
        "loss 50% let {half} of 200 through"
    );

    let dup = Impairment {
        duplicate_percent: 100.0,
        ..Impairment::default()
    };
    link.impair(up, &dup).expect("duplicate");
    let mut twice = udp_numbers(&outpost, &region, 50);
    twice.sort();
    let expected: Vec<u32> = (0..50).flat_map(|i| [i, i]).collect();
    assert_eq!(
        twice, expected,
        "duplicate 100% delivers each datagram twice"
    );

    let reorder = Impairment {
        delay: Duration::from_millis(30),
        reorder_percent: 50.0,
        ..Impairment::default()
    };
    link.impair(up, &reorder).expect("reorder");
    let order = udp_numbers(&outpost, &region, 100);
    let inversions = order.windows(2).filter(|w| w[0] > w[1]).count();
    assert_eq!(order.len(), 100);
    assert!(
        inversions > 0,
        "reorder 50% with 30 ms delay kept the order: {order:?}"
    );

    // 800 kbit/s: 100 KB cannot cross in less than 1 s (the bucket lets a few KB go at once).
    link.heal().expect("heal");
    let listener = region_listener(&link);
    let to = listener.local_addr().expect("addr");
    let sink = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut total = 0;
        let mut buf = [0u8; 8192];
        while total < 100_000 {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        let _ = conn.write_all(b"k");
        total
    });
    link.impair(
        up,
        &Impairment {
            rate_kbit: Some(800),
            ..Impairment::default()
        },
    )
    .expect("rate");
    let mut stream = dial(&link, to, Duration::from_secs(2)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let start = Instant::now();
    stream.write_all(&[7u8; 100_000]).expect("write");
    let mut ack = [0u8; 1];
    stream.read_exact(&mut ack).expect("sink done");
    let took = start.elapsed();
    assert_eq!(sink.join().expect("sink"), 100_000);
    assert!(
        took >= Duration::from_millis(900),
        "100 KB at 800 kbit/s took only {took:?}"
    );
    eprintln!(
        "mechanism {:?}: loss 50% passed {half}/200, reorder inversions {inversions}, 100 KB at 800 kbit/s {took:?}",
        link.mechanism()
    );
    finish(link);
}

#[test]
fn drop_and_panic_delete_the_namespaces() {
    let Some(link) = link() else { return };
    let names = [link.outpost_ns().to_string(), link.region_ns().to_string()];
    // A delayer thread is running too: drop must stop it.
    let delay = Impairment {
        delay: Duration::from_millis(10),
        ..Impairment::default()
    };
    link.impair(Direction::Both, &delay).expect("impair");
    drop(link);
    let left = namespaces();
    assert!(
        names.iter().all(|n| !left.contains(n)),
        "after drop: {left:?}"
    );

    let mut made = Vec::new();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let link = PacketLink::create(&unique_prefix("tt")).expect("create");
        made.push(link.outpost_ns().to_string());
        made.push(link.region_ns().to_string());
        link.partition(Direction::Both).expect("partition");
        panic!("a test closure panicking while it holds a link");
    }));
    assert!(caught.is_err());
    assert_eq!(made.len(), 2);
    let left = namespaces();
    assert!(
        made.iter().all(|n| !left.contains(n)),
        "after a panic: {left:?}"
    );
}

#[test]
fn cleanup_stale_removes_dead_runs_and_spares_live_ones() {
    let Some(live) = link() else { return };
    // A root no other test uses; a pid far above any pid_max marks a dead run,
    // and this process's pid after it keeps the name unique between processes.
    let root = "tz";
    let dead_prefix = format!("{root}fffffffx{:x}", std::process::id());
    let dead = PacketLink::create(&dead_prefix).expect("create");
    let dead_names = [dead.outpost_ns().to_string(), dead.region_ns().to_string()];
    std::mem::forget(dead); // as if the run was killed
    let live_here = PacketLink::create(&unique_prefix(root)).expect("create");

    let removed = cleanup_stale(root).expect("cleanup_stale");
    let left = namespaces();
    for name in &dead_names {
        assert!(removed.contains(name), "{name} not in {removed:?}");
        assert!(!left.contains(name), "{name} left: {left:?}");
    }
    assert!(
        left.contains(&live_here.outpost_ns().to_string()),
        "a live run's namespace was removed"
    );
    assert!(
        !removed.iter().any(|n| n.starts_with("tt")),
        "only the given root is touched"
    );
    finish(live_here);
    finish(live);
}

#[test]
fn netem_arguments_and_validation() {
    assert_eq!(Impairment::default().netem_args(), vec!["limit", "100000"]);
    let all = Impairment {
        delay: Duration::from_millis(100),
        jitter: Duration::from_millis(10),
        loss_percent: 1.5,
        reorder_percent: 25.0,
        duplicate_percent: 2.0,
        rate_kbit: Some(500_000),
    };
    assert_eq!(
        all.netem_args().join(" "),
        "limit 100000 delay 100000us 10000us loss 1.5% duplicate 2% reorder 25% rate 500000kbit"
    );
    // reorder without delay is left out (netem refuses it).
    let reorder_only = Impairment {
        reorder_percent: 5.0,
        ..Impairment::default()
    };
    assert_eq!(reorder_only.netem_args(), vec!["limit", "100000"]);

    assert!(all.validate().is_ok());
    let bad = Impairment {
        loss_percent: 101.0,
        ..Impairment::default()
    };
    assert!(
        matches!(bad.validate(), Err(PacketLinkError::InvalidImpairment(m)) if m.contains("loss_percent"))
    );
    let nan = Impairment {
        duplicate_percent: f64::NAN,
        ..Impairment::default()
    };
    assert!(nan.validate().is_err());
    let zero_rate = Impairment {
        rate_kbit: Some(0),
        ..Impairment::default()
    };
    assert!(zero_rate.validate().is_err());

    assert!(matches!(
        PacketLink::create("Bad Name"),
        Err(PacketLinkError::InvalidPrefix(_))
    ));
    assert!(matches!(
        PacketLink::create(""),
        Err(PacketLinkError::InvalidPrefix(_))
    ));

    assert_eq!(owner_pid("tt", "tt1a2bx0-outpost"), Some(0x1a2b));
    assert_eq!(owner_pid("tt", "ttzzx0-outpost"), None);
    assert_eq!(owner_pid("tt", "other"), None);
    assert!(unique_prefix("tt").starts_with(&format!("tt{:x}x", std::process::id())));
    assert_eq!(statistic(100.0), "");
    assert_eq!(
        statistic(25.0),
        " -m statistic --mode random --probability 0.250000"
    );

    let err = run(
        Command::new("ip").args(["netns", "del", "tether-no-such-namespace"]),
        None,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("ip netns del tether-no-such-namespace") && text.contains("failed"),
        "{text}"
    );
}
