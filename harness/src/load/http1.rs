//! The generator's HTTP/1.1 connection: one prebuilt request written with one system call,
//! the answer parsed in place with `httparse` (a `Content-Length` or chunked body, or one
//! that ends with the connection), and nothing else between the socket and the loop. It
//! is the hot path `tether bench` measures against wrk, so it does without the
//! per-connection task and channel a general HTTP client needs.
//!
//! The framing ([`frame`]) is pure: it reads what the buffer holds and says whether a
//! whole answer is there. Two loops drive it: [`Http1::request`] on tokio's socket, and
//! [`Http1::request_blocking`] on a standard one owned by a thread of its own (the
//! closed loop's fastest path: two system calls per request and no event loop).

use super::connection::Target;
use super::record::ErrorKind;
use crate::service::SERVED_BY;
use std::io::{Read, Write};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One keep-alive connection (on tokio's socket or a standard, blocking one) and its read
/// buffer.
pub struct Http1<S> {
    stream: S,
    /// Bytes read and not yet consumed: `buf[..filled]`.
    buf: Vec<u8>,
    filled: usize,
    /// The server said `Connection: close`, or the body ran to the end of the stream.
    closed: bool,
}

/// The request bytes for `target`: `GET path` with `Host: authority` and its headers.
pub fn request_bytes(target: &Target) -> Vec<u8> {
    let mut head = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: tether\r\n",
        target.path, target.authority
    );
    for (name, value) in &target.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// How much of an answer a buffer holds.
#[derive(Debug, PartialEq)]
enum Framed {
    /// Not all of it yet.
    Partial,
    /// All of it: `end` bytes, then the connection closes if `close`.
    Whole {
        status: u16,
        end: usize,
        close: bool,
    },
    /// The head; the body runs until the server closes the connection.
    ToEnd { status: u16 },
}

/// What the head of an answer says about it.
struct Head {
    status: u16,
    /// Bytes of the head (status line and headers).
    len: usize,
    body: Body,
    close: bool,
}

enum Body {
    Length(usize),
    Chunked,
    /// Until the server closes the connection.
    ToEnd,
}

/// How much of an answer `buf` holds; `served_by` gets the sample service's
/// `x-served-by` once the head is there.
fn frame(buf: &[u8], served_by: &mut String) -> Result<Framed, ErrorKind> {
    served_by.clear();
    let Some(head) = parse_head(buf, served_by)? else {
        return Ok(Framed::Partial);
    };
    let end = match head.body {
        Body::Length(n) => (buf.len() >= head.len + n).then_some(head.len + n),
        Body::Chunked => chunked_end(buf, head.len)?,
        Body::ToEnd => {
            return Ok(Framed::ToEnd {
                status: head.status,
            });
        }
    };
    Ok(match end {
        Some(end) => Framed::Whole {
            status: head.status,
            end,
            close: head.close,
        },
        None => Framed::Partial,
    })
}

/// The head, once the buffer holds all of it.
fn parse_head(buf: &[u8], served_by: &mut String) -> Result<Option<Head>, ErrorKind> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ErrorKind::Reset),
    };
    let status = response.code.unwrap_or(0);
    let mut body = Body::ToEnd;
    let mut close = response.version == Some(0);
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or(ErrorKind::Reset)?;
            body = Body::Length(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            && h.value.eq_ignore_ascii_case(b"chunked")
        {
            body = Body::Chunked;
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.eq_ignore_ascii_case(b"close");
        } else if h.name.eq_ignore_ascii_case(SERVED_BY)
            && let Ok(v) = std::str::from_utf8(h.value)
        {
            served_by.push_str(v);
        }
    }
    // No body, whatever the headers say.
    if status == 204 || status == 304 || (100..200).contains(&status) {
        body = Body::Length(0);
    }
    Ok(Some(Head {
        status,
        len,
        body,
        close,
    }))
}

/// Where a chunked body that starts at `start` ends (after its last chunk and trailers),
/// if `buf` holds all of it.
fn chunked_end(buf: &[u8], start: usize) -> Result<Option<usize>, ErrorKind> {
    let mut pos = start;
    loop {
        // A size line: hex digits, maybe `;extensions`, CRLF.
        let Some(line_end) = find_crlf(&buf[pos..]).map(|i| pos + i) else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[pos..line_end]).map_err(|_| ErrorKind::Reset)?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| ErrorKind::Reset)?;
        pos = line_end + 2;
        if size == 0 {
            // Trailers, each a line, then an empty line.
            loop {
                let Some(end) = find_crlf(&buf[pos..]).map(|i| pos + i) else {
                    return Ok(None);
                };
                let empty = end == pos;
                pos = end + 2;
                if empty {
                    return Ok(Some(pos));
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        pos += size + 2;
    }
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

impl<S> Http1<S> {
    /// Wrap a connected stream.
    pub fn new(stream: S) -> Http1<S> {
        Http1 {
            stream,
            buf: vec![0; 16 * 1024],
            filled: 0,
            closed: false,
        }
    }

    /// Can it take another request?
    pub fn is_open(&self) -> bool {
        !self.closed
    }

    /// The free part of the buffer, grown when full, and the stream to read into it.
    fn space(&mut self) -> (&mut S, &mut [u8]) {
        if self.filled == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        (&mut self.stream, &mut self.buf[self.filled..])
    }

    /// Count what a read gave; a closed stream or an error is a reset.
    fn filled_by(&mut self, read: std::io::Result<usize>) -> Result<(), ErrorKind> {
        match read {
            Ok(0) | Err(_) => {
                self.closed = true;
                Err(ErrorKind::Reset)
            }
            Ok(n) => {
                self.filled += n;
                Ok(())
            }
        }
    }

    /// The answer's first `end` bytes are read: keep what follows (nothing, for a
    /// request at a time).
    fn consume(&mut self, end: usize, close: bool) {
        self.buf.copy_within(end..self.filled, 0);
        self.filled -= end;
        self.closed |= close;
    }
}

impl Http1<tokio::net::TcpStream> {
    /// Send `request` and read its whole answer; `served_by` gets the sample service's
    /// `x-served-by`. Returns the status. The caller bounds it with the request timeout.
    pub async fn request(
        &mut self,
        request: &[u8],
        served_by: &mut String,
    ) -> Result<u16, ErrorKind> {
        if self.stream.write_all(request).await.is_err() {
            self.closed = true;
            return Err(ErrorKind::Reset);
        }
        loop {
            match frame(&self.buf[..self.filled], served_by)? {
                Framed::Whole { status, end, close } => {
                    self.consume(end, close);
                    return Ok(status);
                }
                Framed::ToEnd { status } => {
                    while self.fill().await.is_ok() {}
                    self.consume(self.filled, true);
                    return Ok(status);
                }
                Framed::Partial => self.fill().await?,
            }
        }
    }

    async fn fill(&mut self) -> Result<(), ErrorKind> {
        let (stream, space) = self.space();
        let read = stream.read(space).await;
        self.filled_by(read)
    }
}

impl Http1<std::net::TcpStream> {
    /// [`Http1::request`] with blocking reads, given up at `deadline` (a timeout, after
    /// which the connection is not used again). The socket's own read timeout (set by
    /// whoever connected it) is how often the deadline is looked at.
    pub fn request_blocking(
        &mut self,
        request: &[u8],
        served_by: &mut String,
        deadline: Instant,
    ) -> Result<u16, ErrorKind> {
        if self.stream.write_all(request).is_err() {
            self.closed = true;
            return Err(ErrorKind::Reset);
        }
        loop {
            match frame(&self.buf[..self.filled], served_by)? {
                Framed::Whole { status, end, close } => {
                    self.consume(end, close);
                    return Ok(status);
                }
                Framed::ToEnd { status } => loop {
                    match self.fill_blocking(deadline) {
                        Ok(()) => {}
                        Err(ErrorKind::Timeout) => return Err(ErrorKind::Timeout),
                        Err(_) => {
                            self.consume(self.filled, true);
                            return Ok(status);
                        }
                    }
                },
                Framed::Partial => self.fill_blocking(deadline)?,
            }
        }
    }

    fn fill_blocking(&mut self, deadline: Instant) -> Result<(), ErrorKind> {
        loop {
            let (stream, space) = self.space();
            match stream.read(space) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        self.closed = true;
                        return Err(ErrorKind::Timeout);
                    }
                }
                read => return self.filled_by(read),
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    const ANSWERS: [&[u8]; 4] = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nx-served-by: svc-v1\r\n\r\nsvc-v1",
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\nbusy\r\n3\r\n!!!\r\n0\r\nx-trailer: 1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
    ];

    /// A server that answers each request with the next of `answers`, byte for byte.
    async fn server(answers: Vec<&'static [u8]>) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            for answer in answers {
                let mut got = Vec::new();
                while !got.ends_with(b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                // In two writes, so the client must read more than once.
                let half = answer.len() / 2;
                s.write_all(&answer[..half]).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                s.write_all(&answer[half..]).await.unwrap();
            }
            // Hold the connection open without answering (for a timeout).
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        });
        addr
    }

    #[test]
    fn every_prefix_of_an_answer_is_partial_and_the_whole_is_framed() {
        let mut by = String::new();
        for answer in &ANSWERS[..3] {
            for cut in 0..answer.len() {
                assert_eq!(frame(&answer[..cut], &mut by), Ok(Framed::Partial));
            }
            let framed = frame(answer, &mut by).unwrap();
            assert!(
                matches!(framed, Framed::Whole { end, close: false, .. } if end == answer.len()),
                "{framed:?}"
            );
        }
        assert_eq!(
            frame(ANSWERS[3], &mut by),
            Ok(Framed::ToEnd { status: 200 })
        );
        assert_eq!(
            frame(b"HTTP/1.1 2x0\r\n\r\n", &mut by),
            Err(ErrorKind::Reset)
        );
    }

    #[tokio::test]
    async fn reads_length_chunked_and_closing_answers_on_one_connection() {
        let addr = server(ANSWERS.to_vec()).await;
        let mut conn = Http1::new(TcpStream::connect(addr).await.unwrap());
        let request = request_bytes(&Target::new(addr, "svc.local", "/"));
        let mut by = String::new();
        assert_eq!(conn.request(&request, &mut by).await, Ok(200));
        assert_eq!(by, "svc-v1");
        assert_eq!(conn.request(&request, &mut by).await, Ok(503));
        assert_eq!(by, "");
        assert_eq!(conn.request(&request, &mut by).await, Ok(200));
        assert!(conn.is_open());
        assert_eq!(conn.request(&request, &mut by).await, Ok(200));
        assert!(!conn.is_open(), "the body ran to the end of the stream");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_reads_the_same_answers_and_times_out_at_its_deadline() {
        let addr = server(ANSWERS[..3].to_vec()).await;
        let client = tokio::task::spawn_blocking(move || {
            let stream = std::net::TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_millis(20)))
                .unwrap();
            let mut conn = Http1::new(stream);
            let request = request_bytes(&Target::new(addr, "svc.local", "/"));
            let mut by = String::new();
            let later = || Instant::now() + std::time::Duration::from_secs(2);
            assert_eq!(conn.request_blocking(&request, &mut by, later()), Ok(200));
            assert_eq!(by, "svc-v1");
            assert_eq!(conn.request_blocking(&request, &mut by, later()), Ok(503));
            assert_eq!(conn.request_blocking(&request, &mut by, later()), Ok(200));
            assert!(conn.is_open());
            // The server answers no more: the fourth request times out at its deadline.
            let asked = Instant::now();
            let deadline = asked + std::time::Duration::from_millis(200);
            let out = conn.request_blocking(&request, &mut by, deadline);
            let waited = asked.elapsed();
            assert_eq!(out, Err(ErrorKind::Timeout));
            assert!(!conn.is_open(), "a timed-out connection is not used again");
            assert!(
                waited >= std::time::Duration::from_millis(200),
                "{waited:?}"
            );
            assert!(waited < std::time::Duration::from_secs(2), "{waited:?}");
        });
        client.await.unwrap();
    }
}
