//! One resolution on an async runtime of its own, for the thread that asks:
//! the first one of a command, and each refresh while it runs.

use std::time::Duration;

use envcloak_providers::Backend;
use tokio::sync::watch;

use super::{Interrupted, Resolution};
use crate::backends::Backends;
use crate::error::CliError;
use crate::leases::LeaseKeeper;
use crate::plan::Plan;

/// What else ends a resolution before it is done.
pub enum Interrupt {
    /// A signal that ends envcloak (before the command has started; only
    /// network backends, which may log in, listen for it).
    Signals,
    /// The run ending (set to `true`) while a refresh resolves.
    Stop(watch::Receiver<bool>),
}

/// Resolves `plan` with `backends` within `timeout`. Leases of dynamic
/// credentials stay with a [`LeaseKeeper`] (with the runtime their
/// connections belong to) until it is released or dropped; without leases
/// the runtime is shut down without waiting for a backend still blocked
/// after the deadline (a stalled read, a passphrase prompt).
pub fn resolve_blocking(
    plan: &Plan,
    backends: &Backends,
    timeout: Duration,
    interrupt: Interrupt,
) -> Result<(Resolution, Option<LeaseKeeper>), CliError> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_time();
    // Only network backends need the I/O driver (an epoll set-up).
    let network = plan.backends().iter().any(|backend| !backend.is_local());
    if network {
        builder.enable_io();
    }
    let runtime = builder.build().map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))?;
    let resolution = runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + timeout;
        let make = |backend: Backend| backends.provider(backend, deadline);
        // A network backend may log in: an interruption stops resolution,
        // and the login is revoked before envcloak goes on.
        let interrupt = async {
            match interrupt {
                Interrupt::Signals if network => crate::signals::first_terminating().await,
                Interrupt::Signals => std::future::pending().await,
                Interrupt::Stop(mut stop) => {
                    if stop.wait_for(|stop| *stop).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                    STOPPED
                }
            }
        };
        super::resolve(plan, deadline, &make, interrupt).await
    });
    let mut resolution = match resolution {
        Ok(resolution) => resolution,
        Err(Interrupted(signal)) => {
            runtime.shutdown_background();
            return Err(interrupted_error(signal));
        }
    };
    let leases = if resolution.held.is_empty() {
        runtime.shutdown_background();
        None
    } else {
        Some(LeaseKeeper::new(runtime, std::mem::take(&mut resolution.held)))
    };
    Ok((resolution, leases))
}

/// Stands for the run ending in [`Interrupted`] (no signal has number 0).
const STOPPED: i32 = 0;

/// The error for a resolution stopped by `signal` before the command
/// started, or by the run ending.
fn interrupted_error(signal: i32) -> CliError {
    if signal == STOPPED {
        return CliError::new("stopped: the run is ending");
    }
    CliError::new(format!("stopped by {} before the command started", crate::signals::name(signal)))
        .status(crate::exit::Outcome::Signal(signal))
}
