//! Secrets that change while the command runs (`run --watch`, leases of
//! dynamic credentials that reach their maximum TTL).
//!
//! A thread of its own polls what the profile reads every interval (see
//! [`poll`]), and asks the leases when their credentials end. On a change
//! (debounced: changes arriving together make one restart), or at about 85
//! to 90 % of the time left before credentials end, it resolves the whole
//! environment again. Fail closed: a failed refresh keeps the running
//! command and its secrets, is reported, and is tried again with backoff.
//! The new environment is compared with the running one by keyed digests
//! (never values); when a variable differs, the `on_change` policy decides.

mod digest;
mod generation;
mod poll;
mod state;

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use digest::{DigestKey, EnvDigests};
pub use generation::Generation;

use crate::backends::Backends;
use crate::plan::Plan;
use crate::supervise::Change;
use crate::supervision::Supervision;

/// Why a refresh happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A poll saw a source change.
    Watch,
    /// Credentials of a lease or login end soon and cannot be renewed.
    Credentials,
}

impl Reason {
    /// A short label for the audit log.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Watch => "watch",
            Reason::Credentials => "credentials_expiring",
        }
    }
}

/// What the refresher did, for the audit log and the metrics (names of
/// variables and sources only).
pub enum Event {
    /// The environment was resolved again; `changed` names the variables
    /// that differ, `action` what was done about them.
    Refreshed {
        /// Why.
        reason: Reason,
        /// The variables that differ, sorted.
        changed: Vec<String>,
        /// `restart`, `signal`, `none` (nothing changed) or `kept` (`never`).
        action: &'static str,
    },
    /// A poll or a refresh failed; the command keeps its secrets.
    Failed {
        /// Why it was tried.
        reason: Reason,
        /// What went wrong (names and reasons, never values).
        error: String,
        /// When it is tried again.
        retry_in: Duration,
    },
    /// The command was started again with new secrets.
    Restarted,
    /// The leases of a generation of credentials were revoked.
    Revoked,
    /// The leases were renewed (or replaced): when the first of them ends
    /// unless renewed (for the metrics; no audit line).
    Leases {
        /// When, or `None` without leases.
        expiry: Option<std::time::SystemTime>,
    },
}

/// Where the refresher's events go.
pub type Reporter = Arc<dyn Fn(&Event) + Send + Sync>;

/// What the refresher needs to know about a run.
pub struct Watching {
    /// The plan to resolve again.
    pub plan: Plan,
    /// The backends' settings (prompts are turned off).
    pub backends: Backends,
    /// Each resolution's and each poll's timeout.
    pub timeout: Duration,
    /// The interval and the policy.
    pub supervision: Supervision,
    /// Whether the command's output is masked.
    pub mask: bool,
    /// `--no-override`.
    pub no_override: bool,
    /// The digest key, and the running environment's digests.
    pub key: Arc<DigestKey>,
    /// The running environment's digests.
    pub digests: EnvDigests,
    /// The running command's secret files and leases.
    pub generation: Generation,
    /// The sources' stamps taken before the first resolution (see [`stamps`]).
    pub stamps: Option<poll::Stamps>,
    /// Where events go.
    pub report: Reporter,
}

/// The refresher's thread; stopping it (or dropping it) waits for it.
pub struct Refresher {
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Refresher {
    /// Starts refreshing; changes for the command go to `changes`.
    pub fn start(mut watching: Watching, changes: Sender<Change>) -> Result<Self, crate::error::CliError> {
        let (stop, stopped) = watch::channel(false);
        watching.backends.interactive = false;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| crate::error::CliError::new(format!("cannot start the async runtime: {e}")))?;
        let thread = std::thread::Builder::new()
            .name("envcloak-refresh".into())
            .spawn(move || state::run(watching, changes, stopped, runtime))
            .map_err(|e| crate::error::CliError::new(format!("cannot start the refresh thread: {e}")))?;
        Ok(Self { stop, thread: Some(thread) })
    }

    /// Stops refreshing (a refresh under way is abandoned, and what it
    /// obtained given back).
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The stamps of `plan`'s sources, taken before the first resolution; `None`
/// if a poll fails (the refresher then takes them at its start).
pub fn stamps(plan: &Plan, backends: &Backends, timeout: Duration, key: &Arc<DigestKey>) -> Option<poll::Stamps> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    let (_, never) = watch::channel(false);
    let stamps = runtime.block_on(poll::poll(plan, backends, timeout, key, &never)).ok();
    runtime.shutdown_background();
    stamps
}
