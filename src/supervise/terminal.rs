//! The terminal's foreground, passed between envcloak's process group and
//! the child's, so job control (Ctrl-C, Ctrl-Z, `fg`, `bg`) works as if
//! envcloak were not there.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::signal::{kill, killpg, pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::unistd::{getpgrp, getpid, tcgetpgrp, tcsetpgrp, Pid};

/// envcloak's controlling terminal, found on stdin, stdout, stderr or
/// `/dev/tty`; the foreground is only ever passed between envcloak's process
/// group and the child's, never taken from another job.
pub struct ForegroundTerminal {
    fd: OwnedFd,
}

impl ForegroundTerminal {
    /// The controlling terminal, if envcloak has one.
    pub fn detect() -> Option<Self> {
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
    pub fn give_to(&self, pgrp: Pid) {
        if self.foreground() == Some(getpgrp()) {
            self.set_foreground(pgrp);
        }
    }

    /// Takes the foreground back from `pgrp` if it has it.
    pub fn take_back(&self, pgrp: Pid) {
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

/// The child `pid` stopped with `signal`: it touched the terminal before it
/// had the foreground (it gets it and goes on), or the job was stopped
/// (Ctrl-Z, or the child needs the terminal while envcloak's job is in the
/// background): envcloak stops too, so the shell sees the job stopped; on
/// `fg` the child gets the terminal, and on `fg` or `bg` it wakes.
pub fn on_child_stopped(pid: Pid, signal: Signal, terminal: Option<&ForegroundTerminal>) {
    let Some(terminal) = terminal else {
        return;
    };
    let ours = terminal.foreground().is_some_and(|fg| fg == pid || fg == getpgrp());
    if matches!(signal, Signal::SIGTTIN | Signal::SIGTTOU) && ours {
        terminal.give_to(pid);
        let _ = killpg(pid, Signal::SIGCONT);
        return;
    }
    terminal.take_back(pid);
    let _ = kill(getpid(), Signal::SIGSTOP);
    terminal.give_to(pid);
    let _ = killpg(pid, Signal::SIGCONT);
}
