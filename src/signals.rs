//! Signals that end envcloak while it is still resolving, before any child
//! exists: they stop resolution so that what a backend obtained (a Vault
//! login token) is given back before envcloak exits with 128+N.

use nix::sys::signal::Signal;
use tokio::signal::unix::{signal, SignalKind};

/// Waits for the first of SIGINT, SIGTERM, SIGHUP and SIGQUIT; its number.
/// Runs inside a runtime with the I/O driver. If the handlers cannot be
/// installed, it never completes (the signals keep their default action).
pub async fn first_terminating() -> i32 {
    let (Ok(mut interrupt), Ok(mut terminate), Ok(mut hangup), Ok(mut quit)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::quit()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => Signal::SIGINT as i32,
        _ = terminate.recv() => Signal::SIGTERM as i32,
        _ = hangup.recv() => Signal::SIGHUP as i32,
        _ = quit.recv() => Signal::SIGQUIT as i32,
    }
}

/// `SIGTERM` for 15.
pub fn name(signal: i32) -> String {
    Signal::try_from(signal).map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_owned())
}
