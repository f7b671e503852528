//! The child's output through envcloak, masked: one pipe for stdout and one
//! for stderr (one for both when they are the same file), each copied by a
//! thread of its own.

use std::io::{IsTerminal, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::spawn::PosixSpawnFileActions;
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::stat::fstat;
use nix::unistd::pipe2;

use crate::error::CliError;
use crate::mask::{self, Masker};

/// How long output of a half-written value is held on a terminal before it
/// is shown anyway (prompts and progress bars must appear).
const IDLE_FLUSH: Duration = Duration::from_millis(200);

/// How long output is still copied after the command has exited, for
/// background processes that hold its stdout/stderr open.
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// The pipes one child writes its output to, as (read end, write end).
pub struct Outputs {
    /// For stdout, and for stderr too when `stderr` is `None`.
    stdout: (OwnedFd, OwnedFd),
    /// A pipe of its own for stderr, unless envcloak's stdout and stderr
    /// are the same file (`2>&1`): then one pipe keeps their order exact and
    /// masking sees one stream.
    stderr: Option<(OwnedFd, OwnedFd)>,
}

impl Outputs {
    /// New pipes for one child.
    pub fn create() -> Result<Self, CliError> {
        let shared = same_file(std::io::stdout().as_fd(), std::io::stderr().as_fd());
        if shared {
            crate::diag::debug!("stdout and stderr are the same file; the command gets one pipe for both");
        }
        Ok(Self { stdout: output_pipe()?, stderr: if shared { None } else { Some(output_pipe()?) } })
    }

    /// Makes the write ends the child's stdout and stderr.
    pub fn add_to(&self, actions: &mut PosixSpawnFileActions) -> Result<(), nix::errno::Errno> {
        let (_, out_w) = &self.stdout;
        let err_w = self.stderr.as_ref().map_or(out_w, |(_, w)| w);
        actions.add_dup2(out_w.as_raw_fd(), 1)?;
        actions.add_dup2(err_w.as_raw_fd(), 2)
    }

    /// Closes envcloak's copies of the write ends and starts one copying
    /// thread per pipe, each sending to `done` when its pipe is closed;
    /// returns how many were started.
    pub fn start_pumps(self, masker: &Arc<Masker>, done: &Sender<()>) -> usize {
        let (out_r, out_w) = self.stdout;
        drop(out_w);
        start_pump(out_r, Arc::clone(masker), false, done.clone());
        match self.stderr {
            Some((err_r, err_w)) => {
                drop(err_w);
                start_pump(err_r, Arc::clone(masker), true, done.clone());
                2
            }
            None => 1,
        }
    }
}

/// Background processes the command left behind may hold its output open;
/// their output is copied for a moment, not waited for forever.
pub fn wait_for_pumps(done: &Receiver<()>, count: usize) {
    let deadline = Instant::now() + OUTPUT_GRACE;
    for _ in 0..count {
        if done.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_err() {
            crate::diag::note!("the command's output is still open (a background process?); not waiting for it");
            break;
        }
    }
}

/// Whether `a` and `b` are the same open file (same device and inode).
fn same_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
    match (fstat(a), fstat(b)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

fn output_pipe() -> Result<(OwnedFd, OwnedFd), CliError> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| CliError::new(format!("cannot create an output pipe: {e}")))
}

/// Copies one pipe to envcloak's stdout (or stderr), masking. Held bytes
/// are released after [`IDLE_FLUSH`] only on a terminal. SIGTTOU is blocked
/// in the thread: with `stty tostop` a write from envcloak's process group
/// (in the background while the child has the terminal) then goes through
/// instead of raising SIGTTOU over and over.
fn start_pump(read: OwnedFd, masker: Arc<Masker>, stderr: bool, done: Sender<()>) {
    std::thread::spawn(move || {
        let mut ttou = SigSet::empty();
        ttou.add(Signal::SIGTTOU);
        let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&ttou), None);
        let result = if stderr {
            let idle = std::io::stderr().is_terminal().then_some(IDLE_FLUSH);
            mask::pump(read, &mut std::io::stderr(), masker, idle)
        } else {
            let idle = std::io::stdout().is_terminal().then_some(IDLE_FLUSH);
            mask::pump(read, &mut std::io::stdout(), masker, idle)
        };
        if let Err(e) = result {
            crate::diag::note!("output copy ended: {e}");
        }
        let _ = std::io::stdout().flush();
        let _ = done.send(());
    });
}
