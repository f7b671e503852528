//! The refresher's loop: wait, poll, debounce, resolve again, compare, and
//! apply the policy; fail closed with backoff.

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::generation::Generation;
use super::{poll, Event, Reason, Watching};
use crate::inject::{self, EnvOptions};
use crate::leases::{LeaseKeeper, LeaseView};
use crate::mask::masker_for;
use crate::plan::Plan;
use crate::resolve::{self, Interrupt, Resolution};
use crate::supervise::{Change, Next};
use crate::supervision::OnChange;

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

/// What woke the refresher.
enum Wake {
    Stop,
    Due,
    Renewed,
}

/// Runs the refresher until `stopped` turns `true`.
pub fn run(
    mut watching: Watching,
    changes: Sender<Change>,
    stopped: watch::Receiver<bool>,
    runtime: tokio::runtime::Runtime,
) {
    let known = watching.stamps.take();
    let mut state = State { watching, changes, stopped, runtime, known, refresh_by: None, retiring: Vec::new() };
    state.run();
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
        let share = 0.85 + 0.05 * jitter();
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
                watching.generation.replace_file(&var.name, &var.value).map_err(|e| e.message)?;
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
