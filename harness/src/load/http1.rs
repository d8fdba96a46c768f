//! The generator's HTTP/1.1 connection: one prebuilt request written with one system call,
//! the answer parsed in place with `httparse` (a `Content-Length` or chunked body, or one
//! that ends with the connection), and nothing else between the socket and the loop. It
//! is the hot path `tether bench` measures against wrk, so it does without the
//! per-connection task and channel a general HTTP client needs.

use super::connection::Target;
use super::record::ErrorKind;
use crate::service::SERVED_BY;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One keep-alive connection and its read buffer.
pub struct Http1 {
    stream: TcpStream,
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

impl Http1 {
    /// Wrap a connected stream.
    pub fn new(stream: TcpStream) -> Http1 {
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

    /// Read more bytes into the buffer (growing it when full); a closed stream is a reset.
    async fn fill(&mut self) -> Result<(), ErrorKind> {
        if self.filled == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        match self.stream.read(&mut self.buf[self.filled..]).await {
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

    /// Send `request` and read its whole answer; `served_by` gets the sample service's
    /// `x-served-by`. Returns the status.
    pub async fn request(
        &mut self,
        request: &[u8],
        served_by: &mut String,
    ) -> Result<u16, ErrorKind> {
        if self.stream.write_all(request).await.is_err() {
            self.closed = true;
            return Err(ErrorKind::Reset);
        }
        served_by.clear();
        let head = loop {
            if let Some(head) = self.parse_head(served_by)? {
                break head;
            }
            self.fill().await?;
        };
        let end = match head.body {
            Body::Length(n) => {
                while self.filled < head.len + n {
                    self.fill().await?;
                }
                head.len + n
            }
            Body::Chunked => self.chunked_end(head.len).await?,
            Body::ToEnd => {
                while self.fill().await.is_ok() {}
                self.closed = true;
                self.filled
            }
        };
        // Keep what follows the answer (nothing, for a request at a time).
        self.buf.copy_within(end..self.filled, 0);
        self.filled -= end;
        if head.close {
            self.closed = true;
        }
        Ok(head.status)
    }

    /// The head, once the buffer holds all of it.
    fn parse_head(&self, served_by: &mut String) -> Result<Option<Head>, ErrorKind> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let len = match response.parse(&self.buf[..self.filled]) {
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

    /// Where a chunked body that starts at `start` ends (after its last chunk and
    /// trailers), reading as much as it takes.
    async fn chunked_end(&mut self, start: usize) -> Result<usize, ErrorKind> {
        let mut pos = start;
        loop {
            // A size line: hex digits, maybe `;extensions`, CRLF.
            let line_end = loop {
                if let Some(i) = find_crlf(&self.buf[pos..self.filled]) {
                    break pos + i;
                }
                self.fill().await?;
            };
            let line =
                std::str::from_utf8(&self.buf[pos..line_end]).map_err(|_| ErrorKind::Reset)?;
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| ErrorKind::Reset)?;
            pos = line_end + 2;
            if size == 0 {
                // Trailers, each a line, then an empty line.
                loop {
                    let end = loop {
                        if let Some(i) = find_crlf(&self.buf[pos..self.filled]) {
                            break pos + i;
                        }
                        self.fill().await?;
                    };
                    let empty = end == pos;
                    pos = end + 2;
                    if empty {
                        return Ok(pos);
                    }
                }
            }
            while self.filled < pos + size + 2 {
                self.fill().await?;
            }
            pos += size + 2;
        }
    }
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

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
        });
        addr
    }

    #[tokio::test]
    async fn reads_length_chunked_and_closing_answers_on_one_connection() {
        let addr = server(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nx-served-by: svc-v1\r\n\r\nsvc-v1",
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\nbusy\r\n3\r\n!!!\r\n0\r\nx-trailer: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
        ])
        .await;
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
}
