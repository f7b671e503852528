//! [`FaultProxy`]: an HTTP/1 proxy on a loopback port in front of
//! `127.0.0.1:target` that passes requests to the real server or injects a
//! [`Fault`] into the requests a selector picks: an answer of its own (a 5xx,
//! a 429 with `Retry-After`, an AWS JSON error…), a reset in the middle of
//! the server's answer, a body shorter than its `Content-Length`, no answer
//! at all, or a listener that goes away. It stops when dropped.
//!
//! Each connection carries one request: answers are sent with
//! `Connection: close` (and the server is asked for the same), so every
//! retry a client makes is a new connection the proxy sees. Answers are
//! re-framed with a `Content-Length` (a chunked answer is de-chunked first).
#![allow(unsafe_code)] // setsockopt(2) for SO_LINGER

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::bao::Threads;

/// One request as the proxy read it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target, query included.
    pub path: String,
    /// Header names in lower case, values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the body contains `needle` (e.g. `"SecretId":"db"`).
    pub fn body_has(&self, needle: &str) -> bool {
        super::contains(&self.body, needle.as_bytes())
    }
}

/// An answer the proxy makes up instead of asking the server.
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
        Answer {
            status,
            headers: vec![
                ("Content-Type".into(), "application/x-amz-json-1.1".into()),
                ("x-amzn-ErrorType".into(), code.into()),
            ],
            body,
        }
    }

    /// A Vault error: `{"errors": [message]}`.
    pub fn vault(status: u16, message: &str) -> Answer {
        Answer::json(status, serde_json::json!({ "errors": [message] }).to_string())
    }

    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What the proxy does with a selected request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Ask the server and pass its answer on.
    Pass,
    /// Answer without asking the server.
    Answer(Answer),
    /// Ask the server, send its status line, headers and half its body,
    /// then reset the connection (RST: `SO_LINGER` 0 and close).
    ResetMidBody,
    /// Ask the server, send its headers (with the full `Content-Length`)
    /// and half its body, then close the connection normally.
    Truncate,
    /// Read the request and never answer (until the proxy stops).
    Stall,
    /// Reset the connection without answering.
    Reset,
    /// Reset the connection and close the listener: every later
    /// connection is refused, as if the server had gone away.
    Refuse,
}

/// Which fault a selected request gets: `fault` for the first `times`
/// selected requests (all of them for `None`), then [`Fault::Pass`].
#[derive(Clone, Debug)]
pub struct Plan {
    pub fault: Fault,
    pub times: Option<usize>,
}

impl Plan {
    pub fn always(fault: Fault) -> Plan {
        Plan { fault, times: None }
    }

    pub fn first(times: usize, fault: Fault) -> Plan {
        Plan { fault, times: Some(times) }
    }

    fn for_hit(&self, hit: usize) -> Fault {
        match self.times {
            Some(times) if hit >= times => Fault::Pass,
            _ => self.fault.clone(),
        }
    }
}

type Selector = dyn Fn(&Request) -> bool + Send + Sync;

/// Shared by the acceptor and the connection threads.
struct State {
    target: u16,
    select: Box<Selector>,
    plan: Plan,
    hits: AtomicUsize,
    requests: Mutex<Vec<Request>>,
    refusing: AtomicBool,
    threads: Threads,
}

/// See the module documentation.
pub struct FaultProxy {
    port: u16,
    state: Arc<State>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy in front of `127.0.0.1:target` that applies `plan` to the
    /// requests `select` picks and passes every other request.
    pub fn start(target: u16, select: impl Fn(&Request) -> bool + Send + Sync + 'static, plan: Plan) -> FaultProxy {
        let state = Arc::new(State {
            target,
            select: Box::new(select),
            plan,
            hits: AtomicUsize::new(0),
            requests: Mutex::default(),
            refusing: AtomicBool::new(false),
            threads: Threads::default(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::clone(&state);
        let acceptor = std::thread::spawn(move || {
            // Dropping the listener (at the end of this loop) makes later
            // connections fail with "connection refused".
            while !shared.threads.stopped() && !shared.refusing.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        // Not tracked: a copy of the socket would keep it
                        // open past a reset. Its thread ends on its own
                        // (one request, read with a timeout; a stall ends
                        // when the proxy stops).
                        let _ = stream.set_nonblocking(false);
                        let state = Arc::clone(&shared);
                        let handle = std::thread::spawn(move || serve(&state, stream));
                        shared.threads.handles.lock().unwrap().push(handle);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        FaultProxy { port, state, acceptor: Some(acceptor) }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Requests the selector picked so far (faulted or passed).
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// Every request read so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.threads.stop(self.acceptor.take());
    }
}

/// Handles one connection: one request, one answer (or fault).
fn serve(state: &State, mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
    let Some((request, raw)) = read_request(&client) else { return };
    state.requests.lock().unwrap().push(request.clone());
    let fault = if (state.select)(&request) {
        let hit = state.hits.fetch_add(1, Ordering::SeqCst);
        state.plan.for_hit(hit)
    } else {
        Fault::Pass
    };
    match fault {
        Fault::Pass => {
            if let Some(answer) = ask(state, &raw) {
                let _ = client.write_all(&answer.bytes());
            }
            let _ = client.shutdown(Shutdown::Both);
        }
        Fault::Answer(answer) => {
            let _ = client.write_all(&Response::made_up(&answer).bytes());
            let _ = client.shutdown(Shutdown::Both);
        }
        Fault::ResetMidBody => {
            if let Some(answer) = ask(state, &raw) {
                let _ = client.write_all(&answer.cut());
                let _ = client.flush();
                // Let the bytes leave before the reset discards them.
                std::thread::sleep(Duration::from_millis(50));
            }
            reset(client);
        }
        Fault::Truncate => {
            if let Some(answer) = ask(state, &raw) {
                let _ = client.write_all(&answer.cut());
            }
            let _ = client.shutdown(Shutdown::Both);
        }
        Fault::Stall => {
            while !state.threads.stopped() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Fault::Reset => reset(client),
        Fault::Refuse => {
            state.refusing.store(true, Ordering::SeqCst);
            reset(client);
        }
    }
}

/// Closes `stream` with a TCP reset instead of a FIN.
fn reset(stream: TcpStream) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    let size = libc::socklen_t::try_from(std::mem::size_of::<libc::linger>()).expect("a small struct");
    // SAFETY: setsockopt on a socket this function owns, with a properly
    // sized `linger` value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::addr_of!(linger).cast(),
            size,
        );
    }
    drop(stream);
}

/// Reads one request (head and `Content-Length` body); the parsed request
/// and its raw bytes with `Connection: close` in place of any connection
/// header.
fn read_request(stream: &TcpStream) -> Option<(Request, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let mut words = lines.first()?.split_whitespace();
    let (method, path) = (words.next()?.to_owned(), words.next()?.to_owned());
    let headers: Vec<(String, String)> = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    let mut raw = format!("{}\r\n", lines[0]);
    for line in &lines[1..] {
        let name = line.split(':').next().unwrap_or("").trim();
        if !["connection", "keep-alive"].iter().any(|h| name.eq_ignore_ascii_case(h)) {
            raw += &format!("{line}\r\n");
        }
    }
    raw += "Connection: close\r\n\r\n";
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(&body);
    Some((Request { method, path, headers, body }, raw))
}

/// The server's answer to `raw`, read to its end (`None` if the server
/// cannot be reached or answers nothing).
fn ask(state: &State, raw: &[u8]) -> Option<Response> {
    let mut server = TcpStream::connect(("127.0.0.1", state.target)).ok()?;
    state.threads.track(&server);
    server.set_read_timeout(Some(Duration::from_secs(15))).ok()?;
    server.write_all(raw).ok()?;
    let mut answer = Vec::new();
    let _ = server.read_to_end(&mut answer);
    Response::parse(&answer)
}

/// An answer: status line, headers (framing headers removed), body.
struct Response {
    status_line: String,
    headers: Vec<String>,
    body: Vec<u8>,
}

impl Response {
    fn made_up(answer: &Answer) -> Response {
        Response {
            status_line: format!("HTTP/1.1 {} Fault", answer.status),
            headers: answer.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect(),
            body: answer.body.clone().into_bytes(),
        }
    }

    fn parse(raw: &[u8]) -> Option<Response> {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next()?.to_owned();
        let mut chunked = false;
        let mut length = None;
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            match name.trim().to_ascii_lowercase().as_str() {
                "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                "content-length" => length = value.trim().parse::<usize>().ok(),
                "connection" | "keep-alive" => {}
                _ => headers.push(line.to_owned()),
            }
        }
        let rest = &raw[end + 4..];
        let body = if chunked { dechunk(rest)? } else { rest[..length.unwrap_or(rest.len()).min(rest.len())].to_vec() };
        Some(Response { status_line, headers, body })
    }

    fn head(&self) -> Vec<u8> {
        let mut head = format!("{}\r\n", self.status_line);
        for line in &self.headers {
            head += &format!("{line}\r\n");
        }
        head += &format!("Content-Length: {}\r\nConnection: close\r\n\r\n", self.body.len());
        head.into_bytes()
    }

    fn bytes(&self) -> Vec<u8> {
        [self.head(), self.body.clone()].concat()
    }

    /// The head (announcing the whole body) and the first half of the body.
    fn cut(&self) -> Vec<u8> {
        [self.head(), self.body[..self.body.len() / 2].to_vec()].concat()
    }
}

/// Decodes a chunked body (trailers ignored).
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&rest[..end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}
