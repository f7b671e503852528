//! [`TlsFront`]: an HTTPS listener on a loopback port in front of a plain
//! one, terminated by a small `python3` `ssl` server that reports each
//! handshake.

use std::io::{BufRead, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// The TLS side of [`TlsFront`]: accepts on a free 127.0.0.1 port (printed
/// first), does the handshake with argv[1]/argv[2] (certificate chain,
/// key), prints `handshake-ok` or `handshake-failed` for each connection,
/// and relays a good one's bytes to the plain port argv[3] and back.
const TLS_FRONT_PY: &str = r#"
import socket, ssl, sys, threading
cert, key, backend = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(64)
print(listener.getsockname()[1], flush=True)
lock = threading.Lock()

def say(word):
    with lock:
        print(word, flush=True)

def copy(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass

def serve(raw):
    raw.settimeout(10)
    try:
        tls = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        say("handshake-failed")
        raw.close()
        return
    say("handshake-ok")
    try:
        upstream = socket.create_connection(("127.0.0.1", backend), timeout=10)
    except OSError:
        tls.close()
        return
    threading.Thread(target=copy, args=(tls, upstream), daemon=True).start()
    copy(upstream, tls)
    for s in (tls, upstream):
        try:
            s.close()
        except OSError:
            pass

while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

/// An HTTPS listener on a loopback port in front of a plain one (an
/// [`HttpStub`]): TLS with the given certificate, terminated by a small
/// `python3` `ssl` server. A client that refuses the certificate never
/// reaches the stub: the stub sees no connection, and the front counts a
/// failed handshake. Killed (with its process group) when dropped.
pub struct TlsFront {
    child: Child,
    port: u16,
    events: Arc<Mutex<Vec<String>>>,
}

impl TlsFront {
    /// Serves `cert` (a PEM chain for 127.0.0.1) and `key` in front of
    /// `127.0.0.1:backend`.
    pub fn start(cert: &Path, key: &Path, backend: u16) -> TlsFront {
        let log = tempfile::tempfile().expect("create the TLS front's log");
        let mut child = Command::new("python3")
            .args(["-c", TLS_FRONT_PY])
            .arg(cert)
            .arg(key)
            .arg(backend.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.try_clone().expect("clone the log handle"))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start python3 for the TLS front: {e}"));
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let port = match lines.next().and_then(Result::ok).and_then(|l| l.trim().parse::<u16>().ok()) {
            Some(port) => port,
            None => {
                super::kill_group(&mut child);
                let mut log = log;
                let mut text = String::new();
                let _ = std::io::Seek::rewind(&mut log).and_then(|()| log.read_to_string(&mut text));
                panic!("the TLS front did not start:\n{text}");
            }
        };
        let events: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = Arc::clone(&events);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                record.lock().unwrap().push(line.trim().to_owned());
            }
        });
        TlsFront { child, port, events }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Handshakes so far: (completed, failed).
    pub fn handshakes(&self) -> (usize, usize) {
        let events = self.events.lock().unwrap();
        let count = |word: &str| events.iter().filter(|e| *e == word).count();
        (count("handshake-ok"), count("handshake-failed"))
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        super::kill_group(&mut self.child);
    }
}
