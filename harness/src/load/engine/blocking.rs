//! The closed loop with a thread per connection: HTTP/1.1 on a standard socket with
//! blocking reads, so a request costs two system calls (a write and a read that sleeps
//! until the answer) and no event loop stands between the socket and the loop. At one
//! connection, where every request is a round trip between two sleeping processes, this
//! is what makes tether cheaper per request than wrk (see the README's "Numbers"); with
//! more connections than cores, threads would cost more in switches than they save, and
//! the async workers ([`super::worker`]) carry them instead.

use super::Shared;
use crate::load::connection::{self, outcome};
use crate::load::http1::{self, Http1};
use crate::load::record::Timing;
use std::net::TcpStream;
use std::sync::Arc;

/// Send requests as fast as answers come, on this thread, until the run stops.
pub(super) fn run(shared: Arc<Shared>, index: usize) {
    let c = &shared.config;
    let request = http1::request_bytes(&c.target);
    let mut conn: Option<Http1<TcpStream>> = None;
    let mut served_by = String::new();
    let mut on_second = None;
    while let Some(sent) = shared.next_closed(index, &mut on_second) {
        let deadline = sent.into_std() + c.timeout;
        let result = match conn.take().filter(Http1::is_open) {
            Some(open) => Ok(open),
            None => connection::connect_blocking(&c.target, c.timeout),
        }
        .and_then(|mut open| {
            let status = open.request_blocking(&request, &mut served_by, deadline);
            conn = Some(open);
            outcome(status?)
        });
        let us = sent.elapsed().as_micros() as u64;
        let timing = Timing {
            response_us: us,
            service_us: us,
            lag_us: None,
        };
        let by = (!served_by.is_empty()).then_some(served_by.as_str());
        shared.seconds.record(sent, timing, result.map(|_| by));
    }
    shared.seconds.done(index);
}

#[cfg(test)]
mod tests {
    use crate::load::connection::{Protocol, Target};
    use crate::load::engine::{Config, Pace, Stop, run};
    use crate::load::record::ErrorKind;
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    /// A server answering every request on every connection, and closing each connection
    /// after `per_connection` answers (saying so in the last).
    async fn server(per_connection: usize) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    for answer in 1..=per_connection {
                        let mut got = Vec::new();
                        while !got.ends_with(b"\r\n\r\n") {
                            match s.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => got.extend_from_slice(&buf[..n]),
                            }
                        }
                        // The last answer says the connection closes after it.
                        let close = if answer == per_connection {
                            "Connection: close\r\n"
                        } else {
                            ""
                        };
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n{close}x-served-by: b\r\n\r\nok"
                        );
                        if s.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    fn config(addr: std::net::SocketAddr, connections: usize, stop: Stop) -> Config {
        Config {
            target: Target::new(addr, "svc.local", "/"),
            protocol: Protocol::Http1,
            connections,
            streams: 1,
            pace: Pace::Closed,
            stop,
            timeout: Duration::from_secs(2),
            spin: 0.0,
            blocking: true,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn threads_send_exactly_the_count_and_reconnect_when_the_server_closes() {
        let addr = server(7).await;
        let totals = run(
            config(addr, 2, Stop::Requests(100)),
            tokio::time::Instant::now(),
            None,
            CancellationToken::new(),
        )
        .await;
        assert_eq!(totals.all.sent, 100);
        assert_eq!(totals.all.ok, 100, "{:?}", totals.all.errors);
        assert_eq!(totals.all.served_by.get("b"), Some(&100));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_connection_is_counted_as_refused() {
        // A port nothing listens on: bind, read the port, close.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let totals = run(
            config(addr, 1, Stop::Requests(3)),
            tokio::time::Instant::now(),
            None,
            CancellationToken::new(),
        )
        .await;
        assert_eq!(totals.all.ok, 0);
        assert_eq!(
            totals.all.errors.get(&ErrorKind::ConnectRefused),
            Some(&3),
            "{:?}",
            totals.all.errors
        );
    }
}
