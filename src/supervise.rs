//! Supervised mode: envcloak stays while the child runs, to mask its output,
//! keep its leases, report its end, or start it again with new secrets.
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
//!
//! A restart (secrets changed, see [`crate::refresh`]) sends the stop signal
//! to the child's process group, waits for the grace period, then sends
//! `KILL`, and starts the command again; a signal that ends envcloak during
//! a restart ends it without starting the command again.

mod output;
mod terminal;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
use nix::sys::signal::{kill, killpg, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use signal_hook::consts::signal::*;
use signal_hook::iterator::Signals;

use crate::error::CliError;
use crate::exit::Outcome;
use crate::inject::{exec_error, shell_argv, CEntry};
use crate::mask::Masker;
use output::{wait_for_pumps, Outputs};
use terminal::{on_child_stopped, ForegroundTerminal};

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
/// resumes). The others (HUP, USR1, USR2, WINCH, TTIN, TTOU, TSTP…) are
/// messages to one process, as a process manager means them, and go to the
/// child alone: `HUP` reloads gunicorn, whose workers a `HUP` of their own
/// would kill.
const GROUP_WIDE: &[Signal] = &[Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTERM, Signal::SIGCONT];

/// The forwarded signals after which the command is not started again.
const ENDING: &[Signal] = &[Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTERM];

/// What to run first and how.
pub struct Child<'a> {
    /// The program (already looked up).
    pub program: &'a Path,
    /// Its arguments, argv[0] first.
    pub argv: Vec<CEntry>,
    /// Its environment; wiped as soon as the child has started.
    pub env: Vec<CEntry>,
    /// Masks stdout and stderr when set.
    pub masker: Option<Arc<Masker>>,
    /// What must live as long as it runs (see [`Next::keep`]).
    pub keep: Box<dyn Send>,
}

/// The command started again with new secrets.
pub struct Next {
    /// Its environment; wiped as soon as it has started.
    pub env: Vec<CEntry>,
    /// Masks its output (the new values and the old ones).
    pub masker: Option<Arc<Masker>>,
    /// What must live as long as it runs (its secret files, the leases of
    /// its credentials); dropped, and so released, once it has ended.
    pub keep: Box<dyn Send>,
    /// Called once it has started.
    pub started: Box<dyn FnOnce() + Send>,
}

/// What a refresh asks of the running command.
pub enum Change {
    /// Stop it and start it again.
    Restart(Next),
    /// Send it a signal (its secret files were replaced in place).
    Signal(Signal),
}

/// How a command is stopped for a restart.
#[derive(Clone, Copy, Debug)]
pub struct Stopping {
    /// Sent to its process group first.
    pub signal: Signal,
    /// How long it may take before `KILL`.
    pub grace: Duration,
}

/// Run around every start of the command (core dumps back on for the child,
/// off again for envcloak).
pub struct SpawnHooks<'a> {
    /// Just before.
    pub before: &'a dyn Fn(),
    /// Just after.
    pub after: &'a dyn Fn(),
}

/// What the supervising loop hears about.
enum Event {
    /// A child ended, with the status to end with.
    Ended(Pid, Result<Outcome, CliError>),
    /// A refresh asks for a change.
    Change(Change),
}

/// The running child, shared with the signal forwarder: a signal that ends
/// the run either reaches the new child or stops it from being started.
struct Current {
    pid: Mutex<Pid>,
    ending: AtomicBool,
}

/// The program and arguments, kept for every start.
struct Command<'a> {
    program: &'a Path,
    argv: Vec<CEntry>,
    attr: PosixSpawnAttr,
}

/// The output copying threads of every child so far.
struct Pumps {
    done: Sender<()>,
    finished: Receiver<()>,
    count: usize,
}

/// Starts the child, forwards signals, masks output, applies `changes`
/// (when given, restarting with `stopping`), and returns the exit status
/// to end with. `started` runs once the first child has started.
pub fn run(
    child: Child<'_>,
    hooks: &SpawnHooks<'_>,
    started: impl FnOnce(),
    changes: Option<(Receiver<Change>, Stopping)>,
) -> Result<Outcome, CliError> {
    let mut signals =
        Signals::new(FORWARDED).map_err(|e| CliError::new(format!("cannot install signal handlers: {e}")))?;
    let terminal = ForegroundTerminal::detect().map(Arc::new);
    let command = Command { program: child.program, argv: child.argv, attr: spawn_attributes()? };
    let (done, finished) = mpsc::channel();
    let mut pumps = Pumps { done, finished, count: 0 };

    let pid = start(&command, child.env, child.masker.as_ref(), hooks, &mut pumps)?;
    started();
    crate::diag::debug!("started process {pid} in its own process group");
    if let Some(terminal) = &terminal {
        terminal.give_to(pid);
    }
    let (events_tx, events) = mpsc::channel();
    watch(pid, terminal.clone(), events_tx.clone());
    let current = Arc::new(Current { pid: Mutex::new(pid), ending: AtomicBool::new(false) });

    let handle = signals.handle();
    let forwarder = {
        let (current, terminal) = (Arc::clone(&current), terminal.clone());
        std::thread::spawn(move || {
            for signal in signals.forever() {
                if let Ok(signal) = Signal::try_from(signal) {
                    let pid = current.pid.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if ENDING.contains(&signal) {
                        current.ending.store(true, Ordering::SeqCst);
                    }
                    forward(signal, *pid, terminal.as_deref());
                }
            }
        })
    };
    let stopping = changes.map(|(changes, stopping)| {
        let events_tx = events_tx.clone();
        std::thread::spawn(move || {
            for change in changes {
                if events_tx.send(Event::Change(change)).is_err() {
                    break;
                }
            }
        });
        stopping
    });

    let mut running = pid;
    let mut keep = Some(child.keep);
    let status = loop {
        match events.recv() {
            Ok(Event::Ended(pid, status)) if pid == running => break status,
            Ok(Event::Ended(..)) => {}
            Ok(Event::Change(Change::Signal(signal))) => {
                crate::diag::note!("sending {signal} to the command: its secret files were replaced");
                let _ = kill(running, signal);
            }
            Ok(Event::Change(Change::Restart(mut next))) => {
                let Some(stopping) = stopping else { continue };
                if current.ending.load(Ordering::SeqCst) {
                    continue;
                }
                crate::diag::note!("restarting the command with new secrets: sending {} to it", stopping.signal);
                let ended = stop(running, stopping, &events, &mut next);
                if let Some(terminal) = &terminal {
                    terminal.take_back(running);
                }
                // The old command is gone: so are its files and leases.
                drop(keep.take());
                let mut pid = current.pid.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if current.ending.load(Ordering::SeqCst) {
                    break ended;
                }
                match start(&command, next.env, next.masker.as_ref(), hooks, &mut pumps) {
                    Ok(started) => {
                        *pid = started;
                        running = started;
                    }
                    Err(e) => break Err(e),
                }
                drop(pid);
                crate::diag::debug!("started process {running} in its own process group");
                if let Some(terminal) = &terminal {
                    terminal.give_to(running);
                }
                watch(running, terminal.clone(), events_tx.clone());
                keep = Some(next.keep);
                (next.started)();
            }
            Err(_) => break Err(CliError::new("lost track of the command")),
        }
    };
    handle.close();
    let _ = forwarder.join();
    if let Some(terminal) = &terminal {
        terminal.take_back(running);
    }
    wait_for_pumps(&pumps.finished, pumps.count);
    drop(keep);
    status
}

/// Stops the child `pid` for a restart: the stop signal to its process
/// group, `KILL` after the grace period. A newer restart asked for
/// meanwhile replaces `next`. Returns how the child ended.
fn stop(pid: Pid, stopping: Stopping, events: &Receiver<Event>, next: &mut Next) -> Result<Outcome, CliError> {
    let _ = killpg(pid, stopping.signal);
    let deadline = Instant::now() + stopping.grace;
    let mut killed = false;
    loop {
        let wait = if killed { Duration::MAX } else { deadline.saturating_duration_since(Instant::now()) };
        match events.recv_timeout(wait) {
            Ok(Event::Ended(ended, status)) if ended == pid => return status,
            Ok(Event::Ended(..)) => {}
            Ok(Event::Change(Change::Restart(newer))) => *next = newer,
            Ok(Event::Change(Change::Signal(_))) => {}
            Err(RecvTimeoutError::Timeout) => {
                crate::diag::warning!(
                    "the command did not stop within {:.0} s of {}; sending KILL",
                    stopping.grace.as_secs_f64(),
                    stopping.signal
                );
                let _ = killpg(pid, Signal::SIGKILL);
                killed = true;
            }
            Err(RecvTimeoutError::Disconnected) => return Err(CliError::new("lost track of the command")),
        }
    }
}

/// Starts the program with `env` (wiped once it has started) and, when
/// masking, its output pumps.
fn start(
    command: &Command<'_>,
    env: Vec<CEntry>,
    masker: Option<&Arc<Masker>>,
    hooks: &SpawnHooks<'_>,
    pumps: &mut Pumps,
) -> Result<Pid, CliError> {
    let outputs = masker.map(|_| Outputs::create()).transpose()?;
    let mut actions = PosixSpawnFileActions::init().map_err(spawn_error)?;
    if let Some(outputs) = &outputs {
        outputs.add_to(&mut actions).map_err(spawn_error)?;
    }
    (hooks.before)();
    let spawned = spawn(command, &env, &actions);
    (hooks.after)();
    drop(env);
    let pid = spawned?;
    if let (Some(outputs), Some(masker)) = (outputs, masker) {
        pumps.count += outputs.start_pumps(masker, &pumps.done);
    }
    Ok(pid)
}

/// Waits for the child `pid` on a thread of its own and tells `events` how
/// it ended.
fn watch(pid: Pid, terminal: Option<Arc<ForegroundTerminal>>, events: Sender<Event>) {
    std::thread::spawn(move || {
        let status = wait(pid, terminal.as_deref());
        let _ = events.send(Event::Ended(pid, status));
    });
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

/// Starts the program; a script without `#!` (`ENOEXEC`) is run by
/// `/bin/sh`, as `execvp` (and so exec mode) does.
fn spawn(command: &Command<'_>, env: &[CEntry], actions: &PosixSpawnFileActions) -> Result<Pid, CliError> {
    let (program, argv, attr) = (command.program, &command.argv, &command.attr);
    let spawned = match nix::spawn::posix_spawn(program, actions, attr, argv, env) {
        Err(Errno::ENOEXEC) => {
            crate::diag::debug!("{} has no #! line; running it with /bin/sh", program.display());
            let argv = shell_argv(program, argv);
            nix::spawn::posix_spawn(Path::new("/bin/sh"), actions, attr, &argv, env)
        }
        spawned => spawned,
    };
    spawned.map_err(|errno| exec_error(&program.display().to_string(), errno))
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

fn spawn_error(e: Errno) -> CliError {
    CliError::new(format!("cannot prepare to start the command: {}", e.desc()))
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
