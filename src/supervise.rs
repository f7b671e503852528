//! Supervised mode: envcloak stays while the child runs, to mask its output.
//!
//! The child gets its own process group and, when envcloak runs in the
//! terminal's foreground, the terminal's foreground, so a Ctrl-C from the
//! terminal reaches the child once (from the kernel) and never again through
//! envcloak. Every catchable signal sent to envcloak itself is forwarded
//! once: those that end a command to the child's whole process group, the
//! others to the child alone. Ctrl-Z stops the child, then envcloak, so
//! the shell's job control works; `fg` resumes both. A child that needs the
//! terminal while envcloak's job is in the background stops envcloak too,
//! and gets the terminal once the job is brought to the foreground.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
use nix::sys::signal::{kill, killpg, pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::stat::fstat;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{getpgrp, getpid, pipe2, tcgetpgrp, tcsetpgrp, Pid};
use signal_hook::consts::signal::*;
use signal_hook::iterator::Signals;

use crate::error::CliError;
use crate::exit::Outcome;
use crate::inject::{exec_error, shell_argv, CEntry};
use crate::mask::{self, Masker};

/// The signals forwarded to the child: every catchable one a process manager
/// uses (gunicorn's master relies on TERM, INT, QUIT, HUP, TTIN, TTOU, USR1,
/// USR2 and WINCH).
const FORWARDED: &[i32] = &[
    SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU, SIGTSTP, SIGCONT, SIGALRM,
    SIGVTALRM, SIGXCPU, SIGXFSZ, SIGURG,
];

/// The forwarded signals that go to the child's whole process group: those
/// that end a command (so what it started ends with it, as the terminal or
/// `timeout` would end it without envcloak), and SIGCONT (so all of it
/// resumes). The others (USR1, USR2, WINCH, TTIN, TTOU, TSTP…) are messages
/// to one process, as a process manager means them, and go to the child alone.
const GROUP_WIDE: &[Signal] = &[Signal::SIGHUP, Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTERM, Signal::SIGCONT];

/// How long output of a half-written value is held on a terminal before it
/// is shown anyway (prompts and progress bars must appear).
const IDLE_FLUSH: Duration = Duration::from_millis(200);

/// How long output is still copied after the command has exited, for
/// background processes that hold its stdout/stderr open.
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// What to run and how.
pub struct Child<'a> {
    /// The program (already looked up).
    pub program: &'a Path,
    /// Its arguments, argv[0] first.
    pub argv: Vec<CEntry>,
    /// Its environment; wiped as soon as the child has started.
    pub env: Vec<CEntry>,
    /// Masks stdout and stderr when set.
    pub masker: Option<Arc<Masker>>,
}

/// Starts the child, forwards signals, masks output, and returns the exit
/// status to end with.
pub fn run(child: Child<'_>, before_spawn: impl FnOnce(), after_spawn: impl FnOnce()) -> Result<Outcome, CliError> {
    let mut signals =
        Signals::new(FORWARDED).map_err(|e| CliError::new(format!("cannot install signal handlers: {e}")))?;
    let outputs = child.masker.as_ref().map(|_| Outputs::create()).transpose()?;
    let terminal = ForegroundTerminal::detect().map(Arc::new);
    let actions = file_actions(outputs.as_ref())?;
    let attr = spawn_attributes()?;

    before_spawn();
    let spawned = spawn(&child, &actions, &attr);
    after_spawn();
    drop(child.env);
    let pid = spawned?;
    crate::diag::debug!("started process {pid} in its own process group");
    if let Some(terminal) = &terminal {
        terminal.give_to(pid);
    }

    let pumps = outputs.zip(child.masker).map(|(outputs, masker)| outputs.start_pumps(&masker));
    let handle = signals.handle();
    let forwarder_terminal = terminal.clone();
    let forwarder = std::thread::spawn(move || {
        for signal in signals.forever() {
            if let Ok(signal) = Signal::try_from(signal) {
                forward(signal, pid, forwarder_terminal.as_deref());
            }
        }
    });

    let status = wait(pid, terminal.as_deref());
    handle.close();
    let _ = forwarder.join();
    if let Some(terminal) = &terminal {
        terminal.take_back(pid);
    }
    if let Some((done, count)) = pumps {
        wait_for_pumps(&done, count);
    }
    status
}

/// Sends `signal` to the child: to its whole process group when it is in
/// [`GROUP_WIDE`], else to the child alone. On `fg` (SIGCONT while
/// envcloak's job has the terminal) the child gets the terminal first.
fn forward(signal: Signal, pid: Pid, terminal: Option<&ForegroundTerminal>) {
    if signal == Signal::SIGCONT {
        if let Some(terminal) = terminal {
            terminal.give_to(pid);
        }
    }
    if GROUP_WIDE.contains(&signal) {
        crate::diag::debug!("forwarding {signal} to the command's process group");
        let _ = killpg(pid, signal);
    } else {
        crate::diag::debug!("forwarding {signal} to the command");
        let _ = kill(pid, signal);
    }
}

/// Background processes the command left behind may hold its output open;
/// their output is copied for a moment, not waited for forever.
fn wait_for_pumps(done: &Receiver<()>, count: usize) {
    let deadline = Instant::now() + OUTPUT_GRACE;
    for _ in 0..count {
        if done.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_err() {
            crate::diag::note!("the command's output is still open (a background process?); not waiting for it");
            break;
        }
    }
}

/// Starts the program; a script without `#!` (`ENOEXEC`) is run by
/// `/bin/sh`, as `execvp` (and so exec mode) does.
fn spawn(child: &Child<'_>, actions: &PosixSpawnFileActions, attr: &PosixSpawnAttr) -> Result<Pid, CliError> {
    let spawned = match nix::spawn::posix_spawn(child.program, actions, attr, &child.argv, &child.env) {
        Err(Errno::ENOEXEC) => {
            crate::diag::debug!("{} has no #! line; running it with /bin/sh", child.program.display());
            let argv = shell_argv(child.program, &child.argv);
            nix::spawn::posix_spawn(Path::new("/bin/sh"), actions, attr, &argv, &child.env)
        }
        spawned => spawned,
    };
    spawned.map_err(|errno| exec_error(&child.program.display().to_string(), errno))
}

/// The child's stdout and stderr become the write ends of `outputs`.
fn file_actions(outputs: Option<&Outputs>) -> Result<PosixSpawnFileActions, CliError> {
    let mut actions = PosixSpawnFileActions::init().map_err(spawn_error)?;
    if let Some(outputs) = outputs {
        let (_, out_w) = &outputs.stdout;
        let err_w = outputs.stderr.as_ref().map_or(out_w, |(_, w)| w);
        actions.add_dup2(out_w.as_raw_fd(), 1).map_err(spawn_error)?;
        actions.add_dup2(err_w.as_raw_fd(), 2).map_err(spawn_error)?;
    }
    Ok(actions)
}

/// Its own process group, an empty signal mask, and the default SIGPIPE
/// (Rust ignores SIGPIPE in its own processes).
fn spawn_attributes() -> Result<PosixSpawnAttr, CliError> {
    let mut attr = PosixSpawnAttr::init().map_err(spawn_error)?;
    attr.set_pgroup(Pid::from_raw(0)).map_err(spawn_error)?;
    attr.set_sigmask(&SigSet::empty()).map_err(spawn_error)?;
    let mut defaults = SigSet::empty();
    defaults.add(Signal::SIGPIPE);
    attr.set_sigdefault(&defaults).map_err(spawn_error)?;
    attr.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETPGROUP
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
    )
    .map_err(spawn_error)?;
    Ok(attr)
}

/// The pipes the child writes its output to, as (read end, write end).
struct Outputs {
    /// For stdout, and for stderr too when `stderr` is `None`.
    stdout: (OwnedFd, OwnedFd),
    /// A pipe of its own for stderr, unless envcloak's stdout and stderr
    /// are the same file (`2>&1`): then one pipe keeps their order exact and
    /// masking sees one stream.
    stderr: Option<(OwnedFd, OwnedFd)>,
}

impl Outputs {
    fn create() -> Result<Self, CliError> {
        let shared = same_file(std::io::stdout().as_fd(), std::io::stderr().as_fd());
        if shared {
            crate::diag::debug!("stdout and stderr are the same file; the command gets one pipe for both");
        }
        Ok(Self { stdout: output_pipe()?, stderr: if shared { None } else { Some(output_pipe()?) } })
    }

    /// Closes envcloak's copies of the write ends and starts one copying
    /// thread per pipe; returns where they report their end, and how many.
    fn start_pumps(self, masker: &Arc<Masker>) -> (Receiver<()>, usize) {
        let (done, finished) = mpsc::channel();
        let (out_r, out_w) = self.stdout;
        drop(out_w);
        start_pump(out_r, Arc::clone(masker), false, done.clone());
        let count = match self.stderr {
            Some((err_r, err_w)) => {
                drop(err_w);
                start_pump(err_r, Arc::clone(masker), true, done);
                2
            }
            None => 1,
        };
        (finished, count)
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

fn spawn_error(e: Errno) -> CliError {
    CliError::new(format!("cannot prepare to start the command: {}", e.desc()))
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

/// Waits for the child, following it through stops, and maps its end to an
/// exit status (its own code, or 128+N for signal N).
fn wait(pid: Pid, terminal: Option<&ForegroundTerminal>) -> Result<Outcome, CliError> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::WUNTRACED)) {
            // An exit code is 0..=255 and a signal number below 128.
            Ok(WaitStatus::Exited(_, code)) => return Ok(Outcome::Child(u8::try_from(code).unwrap_or(u8::MAX))),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(Outcome::Signal(signal as i32)),
            Ok(WaitStatus::Stopped(_, signal)) => on_child_stopped(pid, signal, terminal),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(CliError::new(format!("lost track of the command: {}", e.desc()))),
        }
    }
}

fn on_child_stopped(pid: Pid, signal: Signal, terminal: Option<&ForegroundTerminal>) {
    let Some(terminal) = terminal else {
        return;
    };
    let ours = terminal.foreground().is_some_and(|fg| fg == pid || fg == getpgrp());
    if matches!(signal, Signal::SIGTTIN | Signal::SIGTTOU) && ours {
        // It touched the terminal before it was handed the foreground.
        terminal.give_to(pid);
        let _ = killpg(pid, Signal::SIGCONT);
        return;
    }
    // Ctrl-Z, or the child needs the terminal while envcloak's job is in the
    // background: stop envcloak too, so the shell sees the job stopped; on
    // `fg` give the terminal to the child, and on `fg` or `bg` wake it.
    terminal.take_back(pid);
    let _ = kill(getpid(), Signal::SIGSTOP);
    terminal.give_to(pid);
    let _ = killpg(pid, Signal::SIGCONT);
}

/// envcloak's controlling terminal, found on stdin, stdout, stderr or
/// `/dev/tty`; the foreground is only ever passed between envcloak's process
/// group and the child's, never taken from another job.
struct ForegroundTerminal {
    fd: OwnedFd,
}

impl ForegroundTerminal {
    fn detect() -> Option<Self> {
        let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
        let standard = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
        let fd = match standard.into_iter().find(|fd| tcgetpgrp(fd).is_ok()) {
            Some(fd) => fd.try_clone_to_owned().ok()?,
            None => OwnedFd::from(OpenOptions::new().read(true).write(true).open("/dev/tty").ok()?),
        };
        tcgetpgrp(&fd).is_ok().then_some(Self { fd })
    }

    /// The terminal's foreground process group.
    fn foreground(&self) -> Option<Pid> {
        tcgetpgrp(&self.fd).ok()
    }

    /// Hands the foreground to `pgrp` if envcloak's group has it.
    fn give_to(&self, pgrp: Pid) {
        if self.foreground() == Some(getpgrp()) {
            self.set_foreground(pgrp);
        }
    }

    /// Takes the foreground back from `pgrp` if it has it.
    fn take_back(&self, pgrp: Pid) {
        if self.foreground() == Some(pgrp) {
            self.set_foreground(getpgrp());
        }
    }

    /// tcsetpgrp from a background group raises SIGTTOU unless it is
    /// blocked, so it is blocked for the call.
    fn set_foreground(&self, pgrp: Pid) {
        let mut ttou = SigSet::empty();
        ttou.add(Signal::SIGTTOU);
        let mut old = SigSet::empty();
        let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&ttou), Some(&mut old));
        if let Err(e) = tcsetpgrp(&self.fd, pgrp) {
            crate::diag::debug!("cannot hand the terminal to process group {pgrp}: {}", e.desc());
        }
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    }
}
