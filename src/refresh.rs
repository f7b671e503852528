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
mod poll;

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use digest::{DigestKey, EnvDigests};

use crate::backends::Backends;
use crate::inject::{self, EnvOptions};
use crate::leases::{LeaseKeeper, LeaseView};
use crate::mask::masker_for;
use crate::plan::Plan;
use crate::resolve::{self, Interrupt, Resolution};
use crate::secret_file::SecretFiles;
use crate::supervise::{Change, Next};
use crate::supervision::{OnChange, Supervision};

/// How long changes are collected into one restart: a poll that saw a
/// change is repeated after this, until two polls agree.
const DEBOUNCE: Duration = Duration::from_secs(2);

/// How many times a changing source is polled again before the refresh
/// goes ahead anyway.
const DEBOUNCE_ROUNDS: u32 = 5;

/// The first wait after a failed refresh; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);

/// The longest wait between tries after failed refreshes (or the watch
/// interval, when longer).
const MAX_BACKOFF: Duration = Duration::from_secs(300);

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
            .spawn(move || {
                let known = watching.stamps.take();
                let mut state =
                    State { watching, changes, stopped, runtime, known, refresh_by: None, retiring: Vec::new() };
                state.run();
            })
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

/// What the running command's secrets and credentials are kept with while
/// it runs: its secret files and the leases of its credentials. Shared by
/// the supervisor (until the command has ended) and the refresher (while it
/// is the running one); when the last holder lets go, the leases are revoked.
#[derive(Clone)]
pub struct Generation(Arc<Held>);

struct Held {
    files: SecretFiles,
    leases: std::sync::Mutex<Option<LeaseKeeper>>,
    report: Reporter,
}

impl Generation {
    /// Keeps `files` and `leases`; `report` hears of revocations.
    pub fn new(files: SecretFiles, leases: Option<LeaseKeeper>, report: Reporter) -> Self {
        Self(Arc::new(Held { files, leases: std::sync::Mutex::new(leases), report }))
    }

    /// The leases the command's credentials have now.
    fn view(&self) -> Option<LeaseView> {
        self.lock().as_ref().map(LeaseKeeper::view)
    }

    /// Puts `leases` in place of the current ones; returns those.
    fn swap_leases(&self, leases: Option<LeaseKeeper>) -> Option<LeaseKeeper> {
        std::mem::replace(&mut *self.lock(), leases)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<LeaseKeeper>> {
        self.0.leases.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let leases = self.leases.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(leases) = leases.take() {
            leases.release();
            (self.report)(&Event::Revoked);
        }
    }
}

/// What woke the refresher.
enum Wake {
    Stop,
    Due,
    Renewed,
}

/// The refresher's state between wake-ups.
struct State {
    watching: Watching,
    changes: Sender<Change>,
    stopped: watch::Receiver<bool>,
    runtime: tokio::runtime::Runtime,
    /// The stamps the running environment was resolved at.
    known: Option<poll::Stamps>,
    /// When to read new credentials, once they cannot be renewed.
    refresh_by: Option<Instant>,
    /// Leases replaced under `signal:NAME`, and when to revoke them (the
    /// command reloads its files meanwhile).
    retiring: Vec<(Instant, LeaseKeeper)>,
}

impl State {
    fn run(&mut self) {
        let interval = self.watching.supervision.watch;
        if interval.is_some() && self.known.is_none() {
            self.known = self.poll().ok();
        }
        let mut next_poll = interval.map(|interval| Instant::now() + interval);
        let mut failures = 0u32;
        loop {
            self.plan_credentials_refresh();
            let retire_at = self.retiring.iter().map(|(at, _)| *at).min();
            let due = [next_poll, self.refresh_by, retire_at].into_iter().flatten().min();
            match self.wait(due) {
                Wake::Stop => return self.retire(None),
                Wake::Renewed => {
                    self.report_leases();
                    continue;
                }
                Wake::Due => {}
            }
            let now = Instant::now();
            self.retire(Some(now));
            let reason = if self.refresh_by.is_some_and(|by| by <= now) {
                Reason::Credentials
            } else if next_poll.is_some_and(|at| at <= now) {
                Reason::Watch
            } else {
                continue;
            };
            let outcome = match reason {
                Reason::Credentials => self.refresh(reason, None),
                Reason::Watch => self.poll_and_refresh(),
            };
            match outcome {
                Ok(()) => {
                    failures = 0;
                    next_poll = interval.map(|interval| Instant::now() + interval);
                }
                Err(error) => {
                    if *self.stopped.borrow() {
                        return self.retire(None);
                    }
                    let retry_in = backoff(failures, interval);
                    failures += 1;
                    crate::diag::warning!(
                        "could not refresh the secrets ({error}); the command keeps its current ones, trying again in {} s",
                        retry_in.as_secs()
                    );
                    (self.watching.report)(&Event::Failed { reason, error, retry_in });
                    let retry = Instant::now() + retry_in;
                    match reason {
                        Reason::Credentials => self.refresh_by = Some(retry),
                        Reason::Watch => next_poll = Some(retry),
                    }
                }
            }
        }
    }

    /// Once the running command's credentials cannot be renewed any more,
    /// plans to read new ones at about 85 to 90 % of the time they have left.
    fn plan_credentials_refresh(&mut self) {
        if self.refresh_by.is_some() {
            return;
        }
        let Some(end) = self.watching.generation.view().as_ref().and_then(LeaseView::credentials_end) else {
            return;
        };
        let left = end.saturating_duration_since(Instant::now());
        let share = 0.85 + 0.05 * crate::refresh::jitter();
        let by = Instant::now() + left.mul_f64(share);
        crate::diag::note!(
            "credentials of this run end in {} s and cannot be renewed; reading new ones in {} s",
            left.as_secs(),
            by.saturating_duration_since(Instant::now()).as_secs()
        );
        self.refresh_by = Some(by);
    }

    /// Reports when the running command's first lease ends unless renewed.
    fn report_leases(&self) {
        let end = self.watching.generation.view().and_then(|view| view.leases_end());
        let expiry = end.map(|end| std::time::SystemTime::now() + end.saturating_duration_since(Instant::now()));
        (self.watching.report)(&Event::Leases { expiry });
    }

    /// Revokes the replaced leases whose time has come (`None`: all of them).
    fn retire(&mut self, now: Option<Instant>) {
        let (due, keep) =
            std::mem::take(&mut self.retiring).into_iter().partition(|(at, _)| now.is_none_or(|now| *at <= now));
        self.retiring = keep;
        for (_, leases) in due {
            leases.release();
            (self.watching.report)(&Event::Revoked);
        }
    }

    /// Sleeps until `due`, a renewal round of the leases, or the run's end.
    fn wait(&self, due: Option<Instant>) -> Wake {
        let mut stopped = self.stopped.clone();
        let leases = self.watching.generation.view();
        self.runtime.block_on(async move {
            let sleep = async {
                match due {
                    Some(due) => tokio::time::sleep_until(due.into()).await,
                    None => std::future::pending().await,
                }
            };
            let renewed = async {
                match &leases {
                    Some(leases) => leases.renewed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => Wake::Stop,
                () = sleep => Wake::Due,
                () = renewed => Wake::Renewed,
            }
        })
    }

    /// One poll; the stamps, or what failed, in words.
    fn poll(&self) -> Result<poll::Stamps, String> {
        let watching = &self.watching;
        let began = Instant::now();
        let polled = self
            .runtime
            .block_on(poll::poll(&watching.plan, &watching.backends, watching.timeout, &watching.key, &self.stopped))
            .map_err(|failures| {
                if *self.stopped.borrow() {
                    return "the run is ending".to_owned();
                }
                let listed: Vec<String> =
                    failures.iter().map(|f| format!("{}: {}", f.source, f.error.reason)).collect();
                format!("polling failed for {}", listed.join("; "))
            });
        if let Ok(stamps) = &polled {
            let took = began.elapsed().as_secs_f64() * 1e3;
            crate::diag::debug!("polled {} source(s) in {took:.1} ms", stamps.len());
        }
        polled
    }

    /// Polls; on a change, waits for the changes to settle, then refreshes.
    fn poll_and_refresh(&mut self) -> Result<(), String> {
        let mut seen = self.poll()?;
        if self.known.as_ref() == Some(&seen) {
            return Ok(());
        }
        crate::diag::note!("a secret source changed; waiting {} s for more changes", DEBOUNCE.as_secs());
        for _ in 0..DEBOUNCE_ROUNDS {
            if let Wake::Stop = self.wait(Some(Instant::now() + DEBOUNCE)) {
                return Err("the run is ending".into());
            }
            let again = self.poll()?;
            if again == seen {
                break;
            }
            seen = again;
        }
        self.refresh(Reason::Watch, Some(seen))
    }

    /// Resolves everything again and, if a variable differs, applies the
    /// policy. `stamps` are the sources' stamps just before.
    fn refresh(&mut self, reason: Reason, stamps: Option<poll::Stamps>) -> Result<(), String> {
        let watching = &self.watching;
        let interrupt = Interrupt::Stop(self.stopped.clone());
        let (resolution, leases) =
            resolve::resolve_blocking(&watching.plan, &watching.backends, watching.timeout, interrupt)
                .map_err(|e| e.message)?;
        if resolution.has_required_failure() {
            return Err(failures(&watching.plan, &resolution));
        }
        let digests = watching.key.of_env(&resolution.vars);
        let changed = watching.digests.changed(&digests);
        if stamps.is_some() {
            self.known = stamps;
        }
        self.refresh_by = None;
        let action = if changed.is_empty() {
            crate::diag::note!("secrets refreshed; no variable changed");
            "none"
        } else {
            let (action, change) = self.apply(&changed, resolution, leases)?;
            self.watching.digests = digests;
            (self.watching.report)(&Event::Refreshed { reason, changed, action });
            if let Some(change) = change {
                self.changes.send(change).map_err(|_| "the command has ended".to_owned())?;
            }
            return Ok(());
        };
        (self.watching.report)(&Event::Refreshed { reason, changed, action });
        Ok(())
    }

    /// Applies the policy to a changed environment; returns what is done,
    /// and the change for the supervisor.
    fn apply(
        &mut self,
        changed: &[String],
        resolution: Resolution,
        leases: Option<LeaseKeeper>,
    ) -> Result<(&'static str, Option<Change>), String> {
        let watching = &mut self.watching;
        let names = changed.join(", ");
        let signal = match watching.supervision.on_change {
            OnChange::Never => {
                crate::diag::warning!("{names} changed; the command keeps its secrets (on_change = never)");
                return Ok(("kept", None));
            }
            OnChange::Signal(signal) => Some(signal),
            OnChange::Restart => None,
        };
        let only_files = changed.iter().all(|name| {
            watching.digests.has(name) && resolution.vars.iter().any(|var| var.name == *name && var.as_file)
        });
        if let (Some(signal), true) = (signal, only_files) {
            crate::diag::note!("{names} changed; replacing the secret files and sending {signal}");
            for var in resolution.vars.iter().filter(|var| changed.contains(&var.name)) {
                watching.generation.0.files.replace(&var.name, &var.value).map_err(|e| e.message)?;
            }
            drop(resolution);
            if let Some(old) = watching.generation.swap_leases(leases) {
                self.retiring.push((Instant::now() + watching.supervision.stopping.grace, old));
            }
            return Ok(("signal", Some(Change::Signal(signal))));
        }
        if signal.is_some() {
            crate::diag::note!("{names} changed, not only secret files: restarting the command");
        } else {
            crate::diag::note!("{names} changed; restarting the command");
        }
        for var in &resolution.vars {
            crate::memory::lock(var.value.expose().as_bytes());
        }
        let options = EnvOptions {
            passthrough: &watching.backends.passthrough,
            no_override: watching.no_override,
            replaceable_files: signal.is_some(),
        };
        let env = inject::build_env(&resolution.vars, &options).map_err(|e| e.message)?;
        let masker = watching.mask.then(|| masker_for(&resolution.vars));
        drop(resolution);
        let report = Arc::clone(&watching.report);
        let started = Box::new(move || report(&Event::Restarted));
        watching.generation = Generation::new(env.files, leases, Arc::clone(&watching.report));
        let keep = Box::new(watching.generation.clone());
        let next = Next { env: env.entries, masker, keep, started };
        Ok(("restart", Some(Change::Restart(next))))
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

/// The failed required secrets of a refresh, by name and reason.
fn failures(plan: &Plan, resolution: &Resolution) -> String {
    let listed: Vec<String> = resolution
        .failures
        .iter()
        .filter(|f| !f.optional)
        .map(|f| format!("{} ({}): {}", f.name, plan.mappings[f.mapping].shown(), f.error.reason))
        .collect();
    listed.join("; ")
}

/// The wait before try `failures + 1`: doubling from [`FIRST_BACKOFF`], at
/// most [`MAX_BACKOFF`] or the watch interval, whichever is longer.
fn backoff(failures: u32, interval: Option<Duration>) -> Duration {
    let cap = interval.map_or(MAX_BACKOFF, |interval| interval.max(MAX_BACKOFF));
    FIRST_BACKOFF.saturating_mul(1 << failures.min(16)).min(cap)
}

/// A number in [0, 1) that differs between runs and calls.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1000) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(0, None), Duration::from_secs(5));
        assert_eq!(backoff(1, None), Duration::from_secs(10));
        assert_eq!(backoff(10, None), MAX_BACKOFF);
        assert_eq!(backoff(30, Some(Duration::from_secs(600))), Duration::from_secs(600));
    }
}
