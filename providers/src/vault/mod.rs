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
//! [`Provider::release`], which then runs when the command has ended.

mod auth;
mod config;
mod errors;
mod http;
mod kv;
mod leases;
mod module;
mod settings;
mod transport;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

pub use config::VaultConfig;
pub use module::{VaultModule, MODULE};
pub use settings::{AuthMethod, Credential, JwtSource, VaultSettings};

use crate::backend::Warn;
use crate::{Backend, BoxFuture, Document, FailureKind, FetchError, Fetched, Provider, Source};
use errors::{mount_error, read_error, unreachable};
use http::{HttpError, Transport};
use kv::{Lease, Mount};
use leases::HeldLease;

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
    /// Tokens envcloak logged in for, with the transport to revoke them
    /// through; emptied by [`Provider::release`].
    logins: Mutex<Vec<(Arc<Transport>, SecretString)>>,
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

    async fn fetch_all(&self, sources: &[Source]) -> Result<Fetched, FetchError> {
        let base = self.settings.checked_address()?;
        let transport = Arc::new(Transport {
            http: transport::vault_client(&self.settings, &base)?,
            base,
            namespace: self.settings.namespace.clone(),
        });
        let session = auth::login(&self.settings, &transport, self.deadline).await?;
        if session.owned {
            self.logins
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((Arc::clone(&transport), session.token.clone()));
        }
        let context = Arc::new(Context {
            transport: Arc::clone(&transport),
            token: session.token.clone(),
            deadline: self.deadline,
            leases: Mutex::new(Vec::new()),
        });
        let fetched = read_all(&context, sources).await;
        let leases = std::mem::take(&mut *lock(&context.leases));
        lock(&self.leases).extend(
            leases
                .into_iter()
                .map(|lease| HeldLease::new(Arc::clone(&transport), session.token.clone(), session.owned, lease)),
        );
        fetched
    }
}

impl Provider for VaultProvider {
    fn backend(&self) -> Backend {
        Backend::new(&MODULE)
    }

    fn fetch<'a>(&'a self, sources: &'a [Source]) -> BoxFuture<'a, Result<Fetched, FetchError>> {
        Box::pin(self.fetch_all(sources))
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
            for (transport, token) in logins {
                if let Err(e) = auth::revoke(&transport, &token, deadline).await {
                    // The token expires with its TTL; the run itself is not at fault.
                    warn(&format!("could not revoke the Vault token envcloak logged in with ({e})"));
                }
            }
        })
    }

    fn holds_leases(&self) -> bool {
        !lock(&self.leases).is_empty()
    }

    fn renew(&self) -> BoxFuture<'_, Option<Duration>> {
        Box::pin(async move {
            let mut held = std::mem::take(&mut *lock(&self.leases));
            let now = Instant::now();
            for lease in held.iter_mut().filter(|lease| lease.due.is_some_and(|due| due <= now)) {
                lease.renew(&self.warn).await;
            }
            let next = held.iter().filter_map(|lease| lease.due).min();
            lock(&self.leases).extend(held);
            next.map(|due| due.saturating_duration_since(Instant::now()))
        })
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

/// Shared by the concurrent requests of one run.
struct Context {
    transport: Arc<Transport>,
    token: SecretString,
    deadline: Instant,
    /// The leases of the dynamic reads so far.
    leases: Mutex<Vec<Lease>>,
}

impl Context {
    async fn get(&self, path: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, HttpError> {
        self.transport.get(&self.token, path, self.deadline).await
    }
}

/// Where each location's mount was found, or why it was not: shared by the
/// reads once the lookups are done.
type Mounts = HashMap<String, Result<Mount, FetchError>>;

/// Looks up the mounts and reads every source, overlapping the two: a read
/// that starts before the lookups are done guesses the most common layout
/// (a KV v2 mount named by the first path segment) and is used only if the
/// lookup confirms the guess; otherwise it is read again. Against a remote
/// server this saves the lookup's round trip; a wrong guess costs at most
/// [`MAX_IN_FLIGHT`] extra requests.
async fn read_all(context: &Arc<Context>, sources: &[Source]) -> Result<Fetched, FetchError> {
    let (found_tx, found_rx) = watch::channel::<Option<Result<Arc<Mounts>, FetchError>>>(None);
    let lookup = {
        let (context, sources) = (Arc::clone(context), sources.to_vec());
        tokio::spawn(async move {
            let found = find_mounts(&context, &sources).await.map(Arc::new);
            let _ = found_tx.send(Some(found.clone()));
            found.map(drop)
        })
    };
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    for source in sources {
        let (context, limit, source, mut found_rx) =
            (Arc::clone(context), Arc::clone(&limit), source.clone(), found_rx.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let looked_up = found_rx.borrow().is_some();
            let early = match Mount::guess(&source.location) {
                Some(guess) if !looked_up => Some((context.get(&read_path(&guess, &source)).await, guess)),
                _ => None,
            };
            let mounts = match found_rx.wait_for(Option::is_some).await.as_deref() {
                Ok(Some(Ok(mounts))) => Arc::clone(mounts),
                _ => return None,
            };
            let document = match mounts.get(&source.location)? {
                Err(e) => Err(e.clone()),
                Ok(mount) => match early {
                    Some((answer, guess)) if guess == *mount => document(&context, answer, mount, &source),
                    _ => read_one(&context, mount, &source).await,
                },
            };
            Some((source, document))
        });
    }
    let mut fetched = Fetched::new();
    while let Some(done) = tasks.join_next().await {
        if let Some((source, document)) =
            done.map_err(|e| FetchError::new(FailureKind::Internal, format!("a Vault read stopped: {e}")))?
        {
            fetched.insert(source, document);
        }
    }
    lookup.await.map_err(|e| FetchError::new(FailureKind::Internal, format!("a Vault lookup stopped: {e}")))??;
    Ok(fetched)
}

/// Looks up the mount of every location: one lookup per distinct first path
/// segment, then one more for paths in nested mounts the first round did not
/// cover. An unreachable server fails the whole backend.
async fn find_mounts(
    context: &Arc<Context>,
    sources: &[Source],
) -> Result<HashMap<String, Result<Mount, FetchError>>, FetchError> {
    let mut found: Vec<Mount> = Vec::new();
    let mut result: HashMap<String, Result<Mount, FetchError>> = HashMap::new();
    for round in 0..2 {
        let mut pending: Vec<&str> = Vec::new();
        for source in sources {
            let location = source.location.as_str();
            if result.contains_key(location) {
                continue;
            }
            if let Some(mount) = found.iter().filter(|m| m.contains(location)).max_by_key(|m| m.path.len()) {
                result.insert(location.to_owned(), Ok(mount.clone()));
                continue;
            }
            let first = location.split('/').next().unwrap_or("");
            if round == 1 || !pending.iter().any(|p| p.split('/').next() == Some(first)) {
                pending.push(location);
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for location in pending {
            let (context, location) = (Arc::clone(context), location.to_owned());
            tasks.spawn(async move {
                let answer = context.get(&format!("sys/internal/ui/mounts/{location}")).await;
                (location, answer)
            });
        }
        let mut token_checked: Option<bool> = None;
        while let Some(done) = tasks.join_next().await {
            let (location, answer) =
                done.map_err(|e| FetchError::new(FailureKind::Internal, format!("a Vault lookup stopped: {e}")))?;
            match answer {
                Ok(body) => match Mount::from_answer(&body) {
                    Some(mount) => found.push(mount),
                    None => {
                        result.insert(
                            location,
                            Err(FetchError::new(
                                FailureKind::Malformed,
                                "Vault's mount lookup gave no mount for this path",
                            )),
                        );
                    }
                },
                Err(e) if e.status.is_none() || e.redirect => return Err(unreachable(&e, &context.transport.base)),
                Err(e) => {
                    let works = e.status == Some(403)
                        && match token_checked {
                            Some(works) => works,
                            None => *token_checked.insert(token_works(context).await),
                        };
                    let error = mount_error(&e, &location, works);
                    result.insert(location, Err(error));
                }
            }
        }
    }
    Ok(result)
}

/// The KV v2 version a source asks for (`?version=N`, checked when the
/// reference was parsed).
fn version(source: &Source) -> Option<u64> {
    source.selected("version").and_then(|v| v.parse().ok())
}

/// The API path that reads `source` from `mount`.
fn read_path(mount: &Mount, source: &Source) -> String {
    mount.read_path(&source.location, version(source))
}

async fn read_one(context: &Context, mount: &Mount, source: &Source) -> Result<Document, FetchError> {
    if mount.version != 2 && version(source).is_some() {
        return Err(FetchError::new(
            FailureKind::Settings,
            format!(
                "?version= needs a KV v2 mount; {} is {}",
                mount.path,
                if mount.is_kv() { "KV v1".to_owned() } else { format!("a {} engine", mount.engine) }
            ),
        ));
    }
    document(context, context.get(&read_path(mount, source)).await, mount, source)
}

/// Interprets the answer to a read of `source` from `mount`; keeps the
/// lease of a dynamic read in `context`.
fn document(
    context: &Context,
    answer: Result<zeroize::Zeroizing<Vec<u8>>, HttpError>,
    mount: &Mount,
    source: &Source,
) -> Result<Document, FetchError> {
    match answer {
        Ok(body) if !mount.is_kv() => {
            let (document, lease) =
                kv::engine_document(mount, &body).map_err(|e| FetchError::new(FailureKind::Malformed, e))?;
            lock(&context.leases).extend(lease);
            Ok(document)
        }
        Ok(body) => kv::document(mount, &body).map_err(|e| FetchError::new(FailureKind::Malformed, e)),
        Err(e) if e.status == Some(404) && mount.version == 2 => {
            match e.body.as_deref().and_then(|body| kv::deleted_version(body)) {
                Some(deleted) => Err(FetchError::new(
                    FailureKind::NotFound,
                    format!("version {deleted} of this secret was deleted or destroyed (HTTP 404)"),
                )
                .with_hint("undelete it (vault kv undelete), or ask for another version with ?version=N")),
                None => Err(read_error(&e, mount, &source.location)),
            }
        }
        Err(e) => Err(read_error(&e, mount, &source.location)),
    }
}

/// Whether Vault accepts the token (its own lookup, which the default
/// policy allows).
async fn token_works(context: &Context) -> bool {
    context.get("auth/token/lookup-self").await.is_ok()
}
