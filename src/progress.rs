//! A progress line on a terminal while network backends are slow: after
//! [`SHOW_AFTER`], `envcloak: waiting for vault, aws-sm (1.4 s)` on stderr,
//! redrawn every [`REDRAW`] and erased when resolution ends. Never when
//! stderr is not a terminal, with `-q`, or while the age backend (which may
//! be asking for a passphrase on the terminal) is still working.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use envcloak_providers::Backend;

/// How long resolution may take before the line appears.
pub const SHOW_AFTER: Duration = Duration::from_secs(1);
/// How often the line is redrawn.
pub const REDRAW: Duration = Duration::from_millis(250);

/// Erases the current terminal line.
const ERASE: &str = "\r\x1b[2K";

/// The backends still working, shared with the fetch tasks.
#[derive(Clone)]
pub struct Pending(Arc<Mutex<BTreeSet<Backend>>>);

impl Pending {
    /// `backend` has finished.
    pub fn done(&self, backend: Backend) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&backend);
    }

    fn names(&self) -> Option<String> {
        let pending = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if pending.is_empty() || pending.iter().any(|b| b.is_local()) {
            return None;
        }
        Some(pending.iter().map(|b| b.name()).collect::<Vec<_>>().join(", "))
    }
}

/// The progress line of one resolution.
pub struct Progress {
    pending: Pending,
    drawn: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts watching `backends`; draws only on a terminal and without `-q`.
    /// Must be called inside the runtime.
    pub fn start(backends: impl IntoIterator<Item = Backend>) -> Progress {
        let pending = Pending(Arc::new(Mutex::new(backends.into_iter().collect())));
        let drawn = Arc::new(AtomicBool::new(false));
        let show = std::io::stderr().is_terminal() && crate::diag::enabled(crate::diag::Level::Warn);
        let task = show.then(|| {
            let (pending, drawn) = (pending.clone(), Arc::clone(&drawn));
            tokio::spawn(async move {
                let started = Instant::now();
                tokio::time::sleep(SHOW_AFTER).await;
                loop {
                    let line = pending.names().map(|names| {
                        format!("{ERASE}envcloak: waiting for {names} ({:.1} s)", started.elapsed().as_secs_f64())
                    });
                    match line {
                        Some(line) => {
                            write_stderr(&line);
                            drawn.store(true, Ordering::Relaxed);
                        }
                        None if drawn.swap(false, Ordering::Relaxed) => write_stderr(ERASE),
                        None => {}
                    }
                    tokio::time::sleep(REDRAW).await;
                }
            })
        });
        Progress { pending, drawn, task }
    }

    /// A handle for the fetch tasks to report with.
    pub fn pending(&self) -> Pending {
        self.pending.clone()
    }

    /// Stops drawing and erases the line if it was drawn.
    pub fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
        }
        if self.drawn.load(Ordering::Relaxed) {
            write_stderr(ERASE);
        }
    }
}

fn write_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}
