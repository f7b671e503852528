//! Asking for a passphrase on the controlling terminal, with echo off.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};

use age::secrecy::SecretString;
use envcloak_providers::age_file::PassphrasePrompt;
use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg, Termios};
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;
use zeroize::Zeroizing;

/// Prompts on `/dev/tty`; answers `None` when there is no terminal (CI, a
/// pipe), so the caller can fail with a hint instead of hanging.
pub struct TerminalPrompt;

impl TerminalPrompt {
    /// A prompt if a terminal is there to ask on.
    pub fn if_available() -> Option<Self> {
        open_tty().map(|_| TerminalPrompt)
    }
}

fn open_tty() -> Option<File> {
    OpenOptions::new().read(true).write(true).open("/dev/tty").ok()
}

impl PassphrasePrompt for TerminalPrompt {
    fn passphrase(&self, description: &str) -> Option<SecretString> {
        let mut tty = open_tty()?;
        write!(tty, "{description}: ").ok()?;
        tty.flush().ok()?;
        let saved = tcgetattr(&tty).ok()?;
        let mut silent = saved.clone();
        silent.local_flags.remove(LocalFlags::ECHO);
        silent.local_flags.insert(LocalFlags::ECHONL);
        let guard = EchoGuard::install(&tty, &saved)?;
        tcsetattr(&tty, SetArg::TCSANOW, &silent).ok()?;
        let mut line = Zeroizing::new(String::with_capacity(256));
        let read = BufReader::new(&tty).read_line(&mut line);
        let _ = tcsetattr(&tty, SetArg::TCSANOW, &saved);
        guard.remove();
        read.ok()?;
        let passphrase = line.trim_end_matches(['\r', '\n']);
        Some(SecretString::from(passphrase.to_owned()))
    }
}

/// The signals that end envcloak while it waits at the prompt.
const ENDING: &[i32] = &[SIGINT, SIGTERM, SIGHUP, SIGQUIT];

/// The terminal and its settings while a prompt has echo off, for
/// [`restore_terminal`].
static SILENCED: std::sync::Mutex<Option<(File, Termios)>> = std::sync::Mutex::new(None);

/// Turns echo back on if a prompt is still waiting (resolution gave up at
/// `--timeout` while the prompt thread reads): the terminal is never left
/// silent when envcloak exits.
pub fn restore_terminal() {
    let silenced = SILENCED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    if let Some((tty, saved)) = silenced {
        let _ = tcsetattr(&tty, SetArg::TCSANOW, &saved);
        let _ = writeln!(&tty);
    }
}

/// While echo is off, a Ctrl-C (or TERM, HUP, QUIT) first turns echo back
/// on, then ends envcloak as the signal would have: the terminal is never
/// left silent.
struct EchoGuard {
    handle: signal_hook::iterator::Handle,
    watcher: std::thread::JoinHandle<()>,
}

impl EchoGuard {
    fn install(tty: &File, saved: &Termios) -> Option<Self> {
        let restore = tty.try_clone().ok()?;
        *SILENCED.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((tty.try_clone().ok()?, saved.clone()));
        let saved = saved.clone();
        let mut signals = Signals::new(ENDING).ok()?;
        let handle = signals.handle();
        let watcher = std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let _ = tcsetattr(&restore, SetArg::TCSANOW, &saved);
                let _ = writeln!(&restore);
                let _ = signal_hook::low_level::emulate_default_handler(signal);
            }
        });
        Some(Self { handle, watcher })
    }

    fn remove(self) {
        *SILENCED.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.handle.close();
        let _ = self.watcher.join();
    }
}
