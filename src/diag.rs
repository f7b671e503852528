//! Diagnostics on stderr, by verbosity: `-q` none, default warnings, `-v`
//! notes, `-vv` debug, `-vvv` trace. Nothing here ever receives a value.

use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(Level::Warn as u8);

/// How much to say.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing but fatal errors.
    Quiet = 0,
    /// Warnings (the default).
    Warn = 1,
    /// `-v`: what envcloak is doing.
    Note = 2,
    /// `-vv`: details.
    Debug = 3,
    /// `-vvv`: everything.
    Trace = 4,
}

/// Sets the level from the `-q` flag and the number of `-v`.
pub fn init(quiet: bool, verbose: u8) {
    let level = if quiet {
        Level::Quiet
    } else {
        match verbose {
            0 => Level::Warn,
            1 => Level::Note,
            2 => Level::Debug,
            _ => Level::Trace,
        }
    };
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether messages of `level` are shown.
pub fn enabled(level: Level) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level as u8
}

/// Prints `message` on stderr if `level` is enabled.
pub fn say(level: Level, message: std::fmt::Arguments<'_>) {
    if enabled(level) {
        let tag = match level {
            Level::Quiet => "error",
            Level::Warn => "warning",
            Level::Note => "note",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        eprintln!("envcloak: {tag}: {}", crate::error::printable(&message.to_string()));
    }
}

/// `warning!(...)`: a warning, shown unless `-q`.
macro_rules! warning {
    ($($arg:tt)*) => { $crate::diag::say($crate::diag::Level::Warn, format_args!($($arg)*)) };
}
/// `note!(...)`: shown with `-v`.
macro_rules! note {
    ($($arg:tt)*) => { $crate::diag::say($crate::diag::Level::Note, format_args!($($arg)*)) };
}
/// `debug!(...)`: shown with `-vv`.
macro_rules! debug {
    ($($arg:tt)*) => { $crate::diag::say($crate::diag::Level::Debug, format_args!($($arg)*)) };
}
/// `trace!(...)`: shown with `-vvv`.
macro_rules! trace {
    ($($arg:tt)*) => { $crate::diag::say($crate::diag::Level::Trace, format_args!($($arg)*)) };
}
pub(crate) use {debug, note, trace, warning};
