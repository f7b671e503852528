//! Running a program with a timeout: [`Cmd`] (a builder), [`Running`] (a
//! started program, for signals and incremental output) and [`Out`] (how it
//! ended, with output that is safe to print).
#![allow(unsafe_code)] // setsid(2) in pre_exec, kill(2)

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::{contains, Secrets};

/// A program to run, with a timeout.
pub struct Cmd {
    pub(super) command: Command,
    pub(super) shown: String,
    pub(super) stdin: Option<Vec<u8>>,
    pub(super) timeout: Duration,
    pub(super) secrets: Secrets,
}

impl Cmd {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.shown.push(' ');
        self.shown.push_str(&arg.as_ref().to_string_lossy());
        self.command.arg(arg);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        for arg in args {
            self = self.arg(arg);
        }
        self
    }

    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(name, value);
        self
    }

    pub fn env_remove(mut self, name: impl AsRef<OsStr>) -> Self {
        self.command.env_remove(name);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    pub fn stdin(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.stdin = Some(bytes.as_ref().to_vec());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs to the end (or kills it after the timeout) and captures output.
    pub fn run(self) -> Out {
        self.spawn().wait()
    }

    /// Starts the program in a new session (no controlling terminal, its
    /// own process group) with piped stdout and stderr.
    pub fn spawn(mut self) -> Running {
        self.command
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setsid is async-signal-safe and touches no memory.
        unsafe {
            self.command.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = self.command.spawn().unwrap_or_else(|e| panic!("cannot start `{}`: {e}", self.shown));
        if let (Some(bytes), Some(mut pipe)) = (self.stdin.take(), child.stdin.take()) {
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let stdout = Stream::start(child.stdout.take().expect("piped stdout"));
        let stderr = Stream::start(child.stderr.take().expect("piped stderr"));
        let started = Instant::now();
        Running {
            child,
            started,
            deadline: started + self.timeout,
            stdout,
            stderr,
            shown: self.shown,
            secrets: self.secrets,
        }
    }
}

/// One output pipe, read by a thread into a channel.
struct Stream {
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    closed: bool,
}

impl Stream {
    fn start(mut pipe: impl Read + Send + 'static) -> Stream {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                if tx.send(chunk[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Stream { rx, buf: Vec::new(), closed: false }
    }

    /// Takes what has arrived, waiting at most until `until`.
    fn pull(&mut self, until: Instant) {
        if self.closed {
            return;
        }
        match self.rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(chunk) => {
                self.buf.extend(chunk);
                while let Ok(chunk) = self.rx.try_recv() {
                    self.buf.extend(chunk);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => self.closed = true,
        }
    }
}

/// A started program.
pub struct Running {
    child: Child,
    started: Instant,
    deadline: Instant,
    stdout: Stream,
    stderr: Stream,
    shown: String,
    secrets: Secrets,
}

impl Running {
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("a pid fits in pid_t")
    }

    /// Sends `signal` to the process (not its group).
    pub fn signal(&self, signal: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert!(rc == 0, "kill({}, {signal}) failed: {}", self.pid(), std::io::Error::last_os_error());
    }

    /// Waits until `path` exists; false after `limit` or if the program ended.
    pub fn wait_for_file(&mut self, path: &Path, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if path.exists() {
                return true;
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return path.exists();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Reads stdout as it arrives until `found` holds for what has arrived;
    /// returns when that was (from the start), or `None` after `limit`.
    pub fn stdout_until(&mut self, limit: Duration, found: impl Fn(&[u8]) -> bool) -> Option<Instant> {
        let until = Instant::now() + limit;
        loop {
            if found(&self.stdout.buf) {
                return Some(Instant::now());
            }
            if Instant::now() >= until || self.stdout.closed {
                return None;
            }
            self.stdout.pull(until.min(Instant::now() + Duration::from_millis(10)));
        }
    }

    /// Waits for the end (killing the whole session after the timeout) and
    /// for both output pipes to close.
    pub fn wait(mut self) -> Out {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < self.deadline => std::thread::sleep(Duration::from_millis(5)),
                Ok(None) => {
                    kill_group(&mut self.child);
                    panic!("`{}` did not finish within {:?}; killed", self.shown, self.deadline - self.started);
                }
                Err(e) => panic!("waiting for `{}`: {e}", self.shown),
            }
        };
        let drain_until = Instant::now() + Duration::from_secs(5);
        while !(self.stdout.closed && self.stderr.closed) && Instant::now() < drain_until {
            self.stdout.pull(Instant::now() + Duration::from_millis(10));
            self.stderr.pull(Instant::now() + Duration::from_millis(10));
        }
        let secrets = self.secrets.lock().unwrap().clone();
        let (stdout, stderr) = (std::mem::take(&mut self.stdout.buf), std::mem::take(&mut self.stderr.buf));
        let out = Out { status, stdout, stderr, shown: std::mem::take(&mut self.shown), secrets };
        assert!(
            self.stdout.closed && self.stderr.closed,
            "output pipes still open 5 s after the program ended: something it started is still running\n{}",
            out.diag()
        );
        out
    }
}

/// How a program ended and what it printed.
pub struct Out {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    shown: String,
    secrets: Vec<String>,
}

impl Out {
    /// The exit code; 128+N for death by signal N (as a shell reports it).
    pub fn code(&self) -> i32 {
        self.status.code().or(self.status.signal().map(|s| 128 + s)).unwrap_or(-1)
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// The command, its status and its output with every registered secret
    /// replaced by `[SECRET]`: safe to print in a failure message.
    pub fn diag(&self) -> String {
        let redact = |text: String| {
            self.secrets.iter().filter(|s| !s.is_empty()).fold(text, |t, s| t.replace(s.as_str(), "[SECRET]"))
        };
        format!(
            "`{}` ended with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.shown,
            self.code(),
            redact(self.stdout()),
            redact(self.stderr())
        )
    }

    /// Asserts the exit code.
    pub fn expect(&self, code: i32) -> &Self {
        assert!(self.code() == code, "expected exit {code}\n{}", self.diag());
        self
    }

    /// Asserts that stderr contains every one of `needles`.
    pub fn stderr_has(&self, needles: &[&str]) -> &Self {
        let stderr = self.stderr();
        for needle in needles {
            assert!(stderr.contains(needle), "stderr lacks `{needle}`\n{}", self.diag());
        }
        self
    }

    /// Asserts that none of `values` appears in stdout or stderr; the
    /// message names the value by its position, never shows it.
    pub fn no_leak(&self, values: &[&str]) -> &Self {
        for (i, value) in values.iter().enumerate() {
            let value = value.as_bytes();
            assert!(!contains(&self.stdout, value), "secret #{i} appears in stdout\n{}", self.diag());
            assert!(!contains(&self.stderr, value), "secret #{i} appears in stderr\n{}", self.diag());
        }
        self
    }
}

/// A program still running when its test ends (a failed assertion) is
/// killed with everything in its session: a supervising envcloak's command
/// has a process group of its own, and `run --watch` never ends by itself.
impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            kill_session(&mut self.child);
        }
    }
}

/// Kills every process of the session `child` leads (it was started with
/// `setsid`), and reaps `child`.
fn kill_session(child: &mut std::process::Child) {
    let session = child.id().to_string();
    let members: Vec<i32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            // Field 6 of /proc/PID/stat, after the command in parentheses.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| stat.rsplit_once(") ").map(|(_, rest)| rest.split(' ').nth(3) == Some(&session)))
                .unwrap_or(false)
        })
        .collect();
    for pid in members {
        // SAFETY: kill(2) of a process in the session our own child leads.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Kills `child`'s process group (it must lead one) and the child itself,
/// and reaps it.
pub fn kill_group(child: &mut std::process::Child) {
    let pid = i32::try_from(child.id()).expect("a pid fits in pid_t");
    // SAFETY: kill(2) on a process group our own child leads, and on its pid.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}
