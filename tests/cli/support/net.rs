//! Loopback networking for the test servers: a free port ([`free_port`]),
//! a one-shot HTTP/1.0 client ([`http`]), HTTP/1 requests and made-up
//! answers ([`Request`], [`Answer`]), a listener that serves each
//! connection until stopped ([`serve_on`], [`Threads`]), and a tiny HTTP
//! server that answers with a closure ([`HttpStub`]). Everything listens on
//! loopback only and stops when dropped.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// An HTTP answer read by [`http`].
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    /// The body as JSON (`null` when empty); panics (without the body) when
    /// it is not JSON.
    pub fn json(&self) -> Value {
        if self.body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("HTTP {} body is not JSON: {e}", self.status))
        }
    }

    /// Vault's `errors` array, joined (error text only, no data).
    pub fn errors(&self) -> String {
        match serde_json::from_str::<Value>(&self.body) {
            Ok(v) => v["errors"]
                .as_array()
                .map(|e| e.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("; "))
                .unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

/// One HTTP/1.0 request to `127.0.0.1:port` (so the answer is neither
/// chunked nor kept alive): plain text, no TLS.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        request += &format!("{name}: {value}\r\n");
    }
    request += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, "no HTTP status line"))?;
    Ok(Reply { status, body: body.to_owned() })
}

/// One HTTP/1 request as a server read it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target, query included.
    pub path: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Header names as sent, values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// Reads one request (head and `Content-Length` body); `None` at the
    /// end of the stream or on bytes that are not HTTP/1.
    pub fn read(reader: &mut impl BufRead) -> Option<Request> {
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line).ok()? == 0 {
                return None;
            }
            let line = String::from_utf8(line).ok()?.trim_end_matches(['\r', '\n']).to_owned();
            if line.is_empty() {
                break;
            }
            lines.push(line);
        }
        let mut words = lines.first()?.split_whitespace();
        let (method, path, version) = (words.next()?.to_owned(), words.next()?.to_owned(), words.next()?.to_owned());
        if !version.starts_with("HTTP/1.") {
            return None;
        }
        let headers: Vec<(String, String)> = lines[1..]
            .iter()
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let mut request = Request { method, path, version, headers, body: Vec::new() };
        let length = request.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        request.body = vec![0u8; length];
        reader.read_exact(&mut request.body).ok()?;
        Some(request)
    }

    /// Every request in `bytes` (what a client sent on one connection), up
    /// to the first that is not HTTP/1 (a TLS stream has none).
    pub fn read_all(bytes: &[u8]) -> Vec<Request> {
        let mut reader = BufReader::new(bytes);
        std::iter::from_fn(|| Request::read(&mut reader)).collect()
    }

    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the body contains `needle` (e.g. `"SecretId":"db"`).
    pub fn body_has(&self, needle: &str) -> bool {
        super::contains(&self.body, needle.as_bytes())
    }

    /// The request line, `METHOD TARGET VERSION`: safe to show, unlike the
    /// headers, which may carry a token.
    pub fn line(&self) -> String {
        format!("{} {} {}", self.method, self.path, self.version)
    }

    /// The request's bytes with `Connection: close` in place of any
    /// connection header, so the server answers once and closes.
    pub fn closing_bytes(&self) -> Vec<u8> {
        let mut raw = format!("{}\r\n", self.line());
        for (name, value) in &self.headers {
            if !["connection", "keep-alive"].iter().any(|h| name.eq_ignore_ascii_case(h)) {
                raw += &format!("{name}: {value}\r\n");
            }
        }
        raw += "Connection: close\r\n\r\n";
        [raw.into_bytes(), self.body.clone()].concat()
    }
}

/// An answer a stub or proxy makes up instead of asking a server.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// `status` with a JSON body.
    pub fn json(status: u16, body: impl Into<String>) -> Answer {
        Answer { status, headers: vec![("Content-Type".into(), "application/json".into())], body: body.into() }
    }

    /// An AWS JSON-protocol error: `code` in `x-amzn-ErrorType` and `__type`.
    pub fn aws(status: u16, code: &str, message: &str) -> Answer {
        let body = serde_json::json!({"__type": code, "message": message}).to_string();
        Answer::json(status, body).content_type("application/x-amz-json-1.1").header("x-amzn-ErrorType", code)
    }

    /// A Vault error: `{"errors": [message]}`.
    pub fn vault(status: u16, message: &str) -> Answer {
        Answer::json(status, serde_json::json!({ "errors": [message] }).to_string())
    }

    /// The answer with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn content_type(mut self, value: &str) -> Answer {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        self.header("Content-Type", value)
    }

    /// The answer on the wire: `Content-Length` framed, `Connection: close`.
    pub fn bytes(&self) -> Vec<u8> {
        let mut bytes = format!("HTTP/1.1 {} Stub\r\n", self.status);
        for (name, value) in &self.headers {
            bytes += &format!("{name}: {value}\r\n");
        }
        bytes += &format!("Content-Length: {}\r\nConnection: close\r\n\r\n{}", self.body.len(), self.body);
        bytes.into_bytes()
    }
}

/// Shared state of a server or proxy: stop flag, open sockets, threads.
#[derive(Default)]
pub struct Threads {
    stop: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    handles: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Threads {
    /// Whether [`Self::stop`] was called.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Closes the listener: every later connection is refused.
    pub fn close_listener(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Shuts `stream` down when stopping (so a thread blocked on it ends).
    pub fn track(&self, stream: &TcpStream) {
        self.streams.lock().unwrap().push(stream.try_clone().expect("clone a socket"));
    }

    /// Joins `thread` when stopping.
    pub fn spawn(&self, thread: impl FnOnce() + Send + 'static) {
        self.handles.lock().unwrap().push(std::thread::spawn(thread));
    }

    /// Stops: the acceptor first (so nothing new is tracked), then every
    /// socket is shut down and every thread joined.
    pub fn stop(&self, acceptor: Option<JoinHandle<()>>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = acceptor {
            let _ = acceptor.join();
        }
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let handles: Vec<JoinHandle<()>> = self.handles.lock().unwrap().drain(..).collect();
        for handle in handles {
            let _ = handle.join();
        }
    }

    fn share(&self) -> Threads {
        Threads {
            stop: Arc::clone(&self.stop),
            closed: Arc::clone(&self.closed),
            streams: Arc::clone(&self.streams),
            handles: Arc::clone(&self.handles),
        }
    }
}

/// A listener on the loopback address `ip` (127.0.0.2 and the like are
/// routed to `lo` too: "another host" for a test) whose `accept` loop runs
/// `serve` on each connection until stopped or closed; its port and the
/// loop's thread.
pub fn serve_on(
    ip: Ipv4Addr,
    name: &str,
    threads: &Threads,
    serve: impl Fn(TcpStream, &Threads) + Send + 'static,
) -> (u16, JoinHandle<()>) {
    assert!(ip.is_loopback(), "test servers listen on loopback only, not {ip}");
    let listener = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind the {name} on {ip}: {e}"));
    listener.set_nonblocking(true).expect("non-blocking listener");
    let port = listener.local_addr().expect("local address").port();
    let threads = threads.share();
    let acceptor = std::thread::spawn(move || {
        // Dropping the listener (at the end of this loop) makes later
        // connections fail with "connection refused".
        while !threads.stopped() && !threads.closed.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    serve(stream, &threads);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    (port, acceptor)
}

/// A tiny HTTP server on a loopback port: a closure gives the [`Answer`]
/// to each request; connections and requests are recorded. Stops when
/// dropped.
pub struct HttpStub {
    ip: Ipv4Addr,
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Request>>>,
    threads: Threads,
    acceptor: Option<JoinHandle<()>>,
}

impl HttpStub {
    /// A stub on 127.0.0.1.
    pub fn start(answer: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> HttpStub {
        HttpStub::start_on(Ipv4Addr::LOCALHOST, answer)
    }

    /// A stub on the loopback address `ip`.
    pub fn start_on(ip: Ipv4Addr, answer: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> HttpStub {
        let threads = Threads::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let (count, record) = (Arc::clone(&connections), Arc::clone(&requests));
        let (port, acceptor) = serve_on(ip, "HTTP stub", &threads, move |mut stream, threads| {
            threads.track(&stream);
            count.fetch_add(1, Ordering::SeqCst);
            // One request at a time is enough here: answered inline.
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let Some(request) = Request::read(&mut BufReader::new(&stream)) else {
                return; // a connection without a request
            };
            let reply = answer(&request);
            record.lock().unwrap().push(request);
            let _ = stream.write_all(&reply.bytes());
            let _ = stream.shutdown(Shutdown::Both);
        });
        HttpStub { ip, port, connections, requests, threads, acceptor: Some(acceptor) }
    }

    /// Answers every request with `status` (a 3xx) and `Location: TO/PATH`,
    /// PATH being the request's own target: a server that sends clients to
    /// another origin `to` (e.g. `http://127.0.0.2:PORT`).
    pub fn redirect(status: u16, to: &str) -> HttpStub {
        let to = to.trim_end_matches('/').to_owned();
        HttpStub::start(move |request| {
            let path = if request.path.starts_with('/') { request.path.as_str() } else { "/" };
            Answer::json(status, "").header("Location", &format!("{to}{path}"))
        })
    }

    /// `http://IP:PORT` (`http://127.0.0.1:PORT` unless started elsewhere).
    pub fn addr(&self) -> String {
        format!("http://{}", self.host_port())
    }

    /// `IP:PORT`.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far (with a request or not).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The request lines received so far (see [`Request::line`]).
    pub fn request_lines(&self) -> Vec<String> {
        self.requests().iter().map(Request::line).collect()
    }
}

impl Drop for HttpStub {
    fn drop(&mut self) {
        self.threads.stop(self.acceptor.take());
    }
}
