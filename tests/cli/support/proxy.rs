//! [`FaultProxy`]: a TCP proxy on a loopback port in front of
//! `127.0.0.1:target` that records what clients send and does one of
//! these ([`Mode`]) to the traffic:
//!
//! - relays bytes both ways, each of the server's delayed a while, so TLS
//!   and kept-alive connections pass as they are ([`Mode::Delay`]);
//! - relays requests and withholds every answer ([`Mode::Stall`]);
//! - relays requests and reads the server's answers one by one, replacing
//!   those a function rewrites ([`Mode::Rewrite`]);
//! - reads one request per connection and injects a [`Fault`] into those a
//!   selector picks ([`Mode::Faults`]): an answer of its own (a 5xx, a 429
//!   with `Retry-After`, an AWS JSON error…), a reset in the middle of the
//!   server's answer, a body shorter than its `Content-Length`, no answer at
//!   all, or a listener that goes away.
//!
//! It stops (and closes every connection) when dropped.
#![allow(unsafe_code)] // setsockopt(2) for SO_LINGER

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::net::{serve_on, Answer, Request, Threads};

/// What the proxy does to the traffic.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Bytes pass both ways as they come; each chunk of the server's is
    /// forwarded this long after it arrived (latency, not throttling:
    /// chunks in flight overlap).
    Delay(Duration),
    /// Requests pass; nothing of the server's ever reaches the client.
    Stall,
    /// Requests pass; each answer of the server's (read whole, by its
    /// `Content-Length`) is replaced by what the function returns, if
    /// anything. A replaced answer counts as a hit.
    Rewrite(fn(&Response) -> Option<Answer>),
    /// One request per connection, answered with `Connection: close` (so
    /// every retry is a new connection); `Plan` for the requests the
    /// selector picks (each a hit), the others pass. Answers are re-framed
    /// with a `Content-Length` (a chunked answer is de-chunked first).
    Faults(fn(&Request) -> bool, Plan),
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
    /// `fault` for every selected request.
    pub fn always(fault: Fault) -> Plan {
        Plan { fault, times: None }
    }

    /// `fault` for the first `times` selected requests.
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

/// Shared by the acceptor and the connection threads.
struct State {
    target: u16,
    mode: Mode,
    /// What clients sent, one entry per connection accepted.
    sent: Mutex<Vec<Vec<u8>>>,
    hits: AtomicUsize,
    threads: Threads,
}

impl State {
    /// A new connection's entry in `sent`.
    fn connection(&self) -> usize {
        let mut sent = self.sent.lock().unwrap();
        sent.push(Vec::new());
        sent.len() - 1
    }

    fn record(&self, connection: usize, bytes: &[u8]) {
        self.sent.lock().unwrap()[connection].extend_from_slice(bytes);
    }
}

/// See the module documentation.
pub struct FaultProxy {
    port: u16,
    state: Arc<State>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy in front of `127.0.0.1:target` doing `mode`.
    pub fn start(target: u16, mode: Mode) -> FaultProxy {
        let state = Arc::new(State {
            target,
            mode,
            sent: Mutex::default(),
            hits: AtomicUsize::new(0),
            threads: Threads::default(),
        });
        let shared = Arc::clone(&state);
        let (port, acceptor) = serve_on(Ipv4Addr::LOCALHOST, "proxy", &state.threads, move |client, threads| {
            let connection = shared.connection();
            let state = Arc::clone(&shared);
            if let Mode::Faults(..) = state.mode {
                // Not tracked: a copy of the socket would keep it open past
                // a reset. Its thread ends on its own (one request, read
                // with a timeout; a stall ends when the proxy stops).
                threads.spawn(move || serve_one(&state, client, connection));
            } else {
                threads.track(&client);
                relay(&state, client, connection);
            }
        });
        FaultProxy { port, state, acceptor: Some(acceptor) }
    }

    /// A proxy that passes everything as it comes (and records it).
    pub fn relay(target: u16) -> FaultProxy {
        FaultProxy::start(target, Mode::Delay(Duration::ZERO))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.sent.lock().unwrap().len()
    }

    /// The HTTP/1 requests clients sent so far (none through TLS).
    pub fn requests(&self) -> Vec<Request> {
        self.state.sent.lock().unwrap().iter().flat_map(|bytes| Request::read_all(bytes)).collect()
    }

    /// How many requests so far were for `path` (any method, any query).
    pub fn requests_to(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path.split('?').next() == Some(path)).count()
    }

    /// Requests a fault plan picked, or answers rewritten, so far.
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.threads.stop(self.acceptor.take());
    }
}

/// Relays a connection to the server: requests recorded and forwarded as
/// they come, answers as the mode says.
fn relay(state: &Arc<State>, client: TcpStream, connection: usize) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", state.target)) else { return };
    state.threads.track(&server);
    let clone = |s: &TcpStream| s.try_clone().expect("clone a socket");
    let (mut from, mut to, shared) = (clone(&client), clone(&server), Arc::clone(state));
    state.threads.spawn(move || {
        let mut buf = [0u8; 16384];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            shared.record(connection, &buf[..n]);
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    match state.mode.clone() {
        Mode::Delay(delay) => delay_answers(state, server, client, delay),
        Mode::Stall => state.threads.spawn(move || {
            let _ = std::io::copy(&mut { server }, &mut std::io::sink());
            drop(client);
        }),
        Mode::Rewrite(rewrite) => {
            let shared = Arc::clone(state);
            state.threads.spawn(move || rewrite_answers(&shared, server, client, rewrite));
        }
        Mode::Faults(..) => unreachable!("a faults proxy serves one request per connection"),
    }
}

/// Forwards each chunk from `server` to `client` `delay` after it arrived.
fn delay_answers(state: &Arc<State>, mut server: TcpStream, mut client: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    state.threads.spawn(move || {
        let mut buf = [0u8; 16384];
        while let Ok(n @ 1..) = server.read(&mut buf) {
            if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    let shared = Arc::clone(state);
    state.threads.spawn(move || {
        while let Ok((arrived, chunk)) = rx.recv() {
            let due = arrived + delay;
            while Instant::now() < due {
                if shared.threads.stopped() {
                    return;
                }
                std::thread::sleep(due.saturating_duration_since(Instant::now()).min(Duration::from_millis(20)));
            }
            if client.write_all(&chunk).is_err() {
                return;
            }
        }
        let _ = client.shutdown(Shutdown::Write);
    });
}

/// Copies answers from `server` to `client` one by one (`Content-Length`
/// framed), replacing those `rewrite` rewrites.
fn rewrite_answers(state: &State, server: TcpStream, mut client: TcpStream, rewrite: fn(&Response) -> Option<Answer>) {
    let mut reader = BufReader::new(server);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => head.extend_from_slice(&line),
            }
            if line == b"\r\n" {
                break;
            }
        }
        if head.is_empty() {
            break;
        }
        let response = Response::parse_head(&head);
        let mut body = Vec::new();
        let framed = match response.as_ref().and_then(|r| r.length) {
            Some(n) => {
                body.resize(n, 0);
                reader.read_exact(&mut body).is_ok()
            }
            None => {
                let _ = reader.read_to_end(&mut body);
                false
            }
        };
        let replaced = response.and_then(|mut r| {
            r.body = body.clone();
            rewrite(&r)
        });
        let bytes = match replaced {
            Some(answer) => {
                state.hits.fetch_add(1, Ordering::SeqCst);
                answer.bytes()
            }
            None => [head, body].concat(),
        };
        if client.write_all(&bytes).is_err() || !framed {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Write);
}

/// Handles one connection of a faults proxy: one request, one answer (or
/// fault).
fn serve_one(state: &State, mut client: TcpStream, connection: usize) {
    let Mode::Faults(select, plan) = &state.mode else { return };
    let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(request) = Request::read(&mut BufReader::new(&client)) else { return };
    let raw = request.closing_bytes();
    state.record(connection, &raw);
    let fault = if select(&request) {
        let hit = state.hits.fetch_add(1, Ordering::SeqCst);
        plan.for_hit(hit)
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
            let _ = client.write_all(&answer.bytes());
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
            state.threads.close_listener();
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

/// A server's answer: status, headers (framing headers removed), body.
pub struct Response {
    status_line: String,
    /// The status code.
    pub status: u16,
    headers: Vec<String>,
    /// The `Content-Length` announced, if any.
    length: Option<usize>,
    chunked: bool,
    pub body: Vec<u8>,
}

impl Response {
    /// The status line and headers of `head` (without the body).
    fn parse_head(head: &[u8]) -> Option<Response> {
        let head = String::from_utf8_lossy(head).into_owned();
        let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
        let status_line = lines.next()?.to_owned();
        let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
        let mut response =
            Response { status_line, status, headers: Vec::new(), length: None, chunked: false, body: Vec::new() };
        for line in lines {
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            match name.trim().to_ascii_lowercase().as_str() {
                "transfer-encoding" => response.chunked = value.to_ascii_lowercase().contains("chunked"),
                "content-length" => response.length = value.trim().parse::<usize>().ok(),
                "connection" | "keep-alive" => {}
                _ => response.headers.push(line.to_owned()),
            }
        }
        Some(response)
    }

    /// A whole answer, its body de-chunked.
    fn parse(raw: &[u8]) -> Option<Response> {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let mut response = Response::parse_head(&raw[..end])?;
        let rest = &raw[end + 4..];
        response.body = if response.chunked {
            dechunk(rest)?
        } else {
            rest[..response.length.unwrap_or(rest.len()).min(rest.len())].to_vec()
        };
        Some(response)
    }

    /// The text of the body (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
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
