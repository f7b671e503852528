//! The `vault://` backend: KV v1 and v2 secrets from HashiCorp Vault or
//! OpenBao.
//!
//! One run makes at most one login, one mount lookup per distinct mount
//! (concurrently), and one read per distinct path (concurrently, at most
//! [`MAX_IN_FLIGHT`] at a time, overlapping the lookups) over one connection
//! pool; a token obtained by logging in is revoked by
//! [`Provider::release`], which the caller runs on every way out (success,
//! failure, timeout, a signal), with a grace period of its own.
//!
//! A path in another engine than KV (`database/creds/ROLE`) is a plain read
//! whose `data` keys are the `#KEY`s; its lease is held, and revoked by
//! [`Provider::release`], which then runs when the command has ended. While
//! the command runs, [`Provider::renew`] renews the leases and the token
//! envcloak logged in with to read them (Vault revokes a token's leases when
//! the token expires).
//!
//! [`Provider::stamps`] (for `run --watch`) reads no value: the same login
//! and mount lookups as a fetch, then one `MOUNT/metadata/PATH` read per
//! unpinned KV v2 secret; KV v1 secrets are left to the caller, and a
//! dynamic secret is never read (a read would create new credentials).

mod auth;
mod config;
mod errors;
mod http;
mod kv;
mod leases;
mod module;
mod read;
mod settings;
mod transport;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

pub use config::VaultConfig;
pub use module::{VaultModule, MODULE};
pub use settings::{AuthMethod, Credential, JwtSource, VaultSettings};

use crate::backend::Warn;
use crate::{Backend, BoxFuture, FailureKind, FetchError, Fetched, Provider, Source, Stamps};
use http::Transport;
use leases::{HeldLease, HeldLogin};
use read::{find_mounts, metadata_stamp, read_all, stamp_plan, Context, StampPlan};

/// Reads in flight at once.
pub const MAX_IN_FLIGHT: usize = 64;

/// How long revoking the tokens envcloak logged in for may take, counted
/// from when the run is done with Vault (not from its `--timeout`, which
/// may have run out).
pub const REVOKE_GRACE: Duration = Duration::from_secs(3);

/// The Vault/OpenBao provider.
pub struct VaultProvider {
    settings: VaultSettings,
    deadline: Instant,
    warn: Warn,
    /// Tokens envcloak logged in for, with the transport to renew and
    /// revoke them through; emptied by [`Provider::release`].
    logins: Mutex<Vec<HeldLogin>>,
    /// Leases of dynamic reads, with the transport and token to revoke them
    /// with; emptied by [`Provider::release`].
    leases: Mutex<Vec<HeldLease>>,
}

impl VaultProvider {
    /// A provider for `settings` that gives up at `deadline` (the run's
    /// `--timeout`) and reports what it cannot clean up through `warn`.
    pub fn new(settings: VaultSettings, deadline: Instant, warn: Warn) -> Self {
        Self { settings, deadline, warn, logins: Mutex::new(Vec::new()), leases: Mutex::new(Vec::new()) }
    }

    /// A transport and a token for one batch (a fetch or stamps): a token
    /// obtained by logging in is kept for [`Provider::release`] at once, so
    /// it is revoked even if the batch is dropped at the deadline. Whether
    /// the token is such a login comes with it.
    async fn session(&self) -> Result<(Arc<Context>, bool), FetchError> {
        let base = self.settings.checked_address()?;
        let transport = Arc::new(Transport {
            http: transport::vault_client(&self.settings, &base)?,
            base,
            namespace: self.settings.namespace.clone(),
        });
        let session = auth::login(&self.settings, &transport, self.deadline).await?;
        if let (true, Some(granted)) = (session.owned, session.granted) {
            lock(&self.logins).push(HeldLogin::new(Arc::clone(&transport), session.token.clone(), granted));
        }
        let context = Arc::new(Context {
            transport,
            token: session.token,
            deadline: self.deadline,
            leases: Mutex::new(Vec::new()),
        });
        Ok((context, session.owned))
    }

    async fn fetch_all(&self, sources: &[Source]) -> Result<Fetched, FetchError> {
        let (context, owned) = self.session().await?;
        let fetched = read_all(&context, sources).await;
        let leases = std::mem::take(&mut *lock(&context.leases));
        lock(&self.leases).extend(
            leases
                .into_iter()
                .map(|lease| HeldLease::new(Arc::clone(&context.transport), context.token.clone(), owned, lease)),
        );
        fetched
    }

    async fn stamps_all(&self, sources: &[Source]) -> Result<Stamps, FetchError> {
        let (context, _) = self.session().await?;
        let mounts = find_mounts(&context, sources).await?;
        let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut stamps = Stamps::new();
        let mut tasks = tokio::task::JoinSet::new();
        for source in sources {
            let mount = match mounts.get(&source.location) {
                Some(Ok(mount)) => mount,
                Some(Err(e)) => {
                    stamps.insert(source.clone(), Err(e.clone()));
                    continue;
                }
                None => continue,
            };
            match stamp_plan(mount, source) {
                StampPlan::Known(stamp) => {
                    stamps.insert(source.clone(), stamp);
                }
                StampPlan::Unstamped => {}
                StampPlan::Metadata(path) => {
                    let (context, limit, mount, source) =
                        (Arc::clone(&context), Arc::clone(&limit), mount.clone(), source.clone());
                    tasks.spawn(async move {
                        let _permit = limit.acquire_owned().await;
                        let stamp = metadata_stamp(context.get(&path).await, &mount, &source)?;
                        Some((source, stamp))
                    });
                }
            }
        }
        while let Some(done) = tasks.join_next().await {
            let stamped = done
                .map_err(|e| FetchError::new(FailureKind::Internal, format!("a Vault metadata read stopped: {e}")))?;
            stamps.extend(stamped);
        }
        Ok(stamps)
    }
}

impl Provider for VaultProvider {
    fn backend(&self) -> Backend {
        Backend::new(&MODULE)
    }

    fn fetch<'a>(&'a self, sources: &'a [Source]) -> BoxFuture<'a, Result<Fetched, FetchError>> {
        Box::pin(self.fetch_all(sources))
    }

    /// KV v2: the current version from the secret's metadata (a pinned
    /// `?version=N` is constant); KV v1: left out (the caller reads it);
    /// another engine: [`Stamp::Dynamic`], never read. A login is kept for
    /// [`Provider::release`] as a fetch's is.
    fn stamps<'a>(&'a self, sources: &'a [Source]) -> BoxFuture<'a, Result<Stamps, FetchError>> {
        Box::pin(self.stamps_all(sources))
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        let leases = std::mem::take(&mut *lock(&self.leases));
        let logins = std::mem::take(&mut *lock(&self.logins));
        let warn = Arc::clone(&self.warn);
        Box::pin(async move {
            let deadline = Instant::now() + REVOKE_GRACE;
            // Leases first: revoking a login token revokes its leases too,
            // but a token of the user's own is never revoked.
            for held in leases {
                held.revoke(deadline, &warn).await;
            }
            // A token past its end is gone already (with its leases).
            for login in logins.into_iter().filter(|login| login.ends.is_none_or(|ends| ends > Instant::now())) {
                if let Err(e) = auth::revoke(&login.transport, &login.token, deadline).await {
                    // The token expires with its TTL; the run itself is not at fault.
                    warn(&format!("could not revoke the Vault token envcloak logged in with ({e})"));
                }
            }
        })
    }

    fn holds_leases(&self) -> bool {
        !lock(&self.leases).is_empty()
    }

    /// Renews what is due: first the login tokens that hold leases (a
    /// lease dies with its token), then the leases.
    fn renew(&self) -> BoxFuture<'_, Option<Duration>> {
        Box::pin(async move {
            let mut held = std::mem::take(&mut *lock(&self.leases));
            let mut logins = std::mem::take(&mut *lock(&self.logins));
            let holding = |login: &HeldLogin| held.iter().any(|lease| login.holds(lease));
            for login in logins.iter_mut().filter(|login| holding(login)) {
                login.keep(&self.warn).await;
            }
            let next_login = logins.iter().filter(|login| holding(login)).filter_map(|login| login.due).min();
            let now = Instant::now();
            for lease in held.iter_mut().filter(|lease| lease.due.is_some_and(|due| due <= now)) {
                lease.renew(&self.warn).await;
            }
            let next = held.iter().filter_map(|lease| lease.due).chain(next_login).min();
            lock(&self.leases).extend(held);
            lock(&self.logins).extend(logins);
            next.map(|due| due.saturating_duration_since(Instant::now()))
        })
    }

    /// The soonest end of a lease that will not be renewed any more, or of
    /// a login token holding leases that will not be.
    fn credentials_end(&self) -> Option<std::time::Instant> {
        let leases = lock(&self.leases);
        let lease_end = leases.iter().filter(|lease| lease.due.is_none()).map(|lease| lease.ends).min();
        let login_end = lock(&self.logins)
            .iter()
            .filter(|login| login.due.is_none() && leases.iter().any(|lease| login.holds(lease)))
            .filter_map(|login| login.ends)
            .min();
        lease_end.into_iter().chain(login_end).min().map(Instant::into_std)
    }

    /// The soonest end of a held lease, or of a login token holding leases.
    fn leases_end(&self) -> Option<std::time::Instant> {
        let leases = lock(&self.leases);
        let login_end = lock(&self.logins)
            .iter()
            .filter(|login| leases.iter().any(|lease| login.holds(lease)))
            .filter_map(|login| login.ends)
            .min();
        leases.iter().map(|lease| lease.ends).chain(login_end).min().map(Instant::into_std)
    }

    fn abandon(&self) {
        let leases = std::mem::take(&mut *lock(&self.leases));
        let logins = std::mem::take(&mut *lock(&self.logins));
        if let Some(longest) = leases.iter().map(|held| held.lease.seconds).max() {
            (self.warn)(&format!(
                "{} Vault lease(s){} stay valid until they expire (up to {longest} s): export cannot revoke them",
                leases.len(),
                if logins.is_empty() { "" } else { " and the login token" }
            ));
        }
    }
}

/// The lock of `mutex`, even if a panicking thread held it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
