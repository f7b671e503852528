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
use crate::{Backend, BoxFuture, Document, FailureKind, FetchError, Fetched, Provider, Source, Stamp, Stamps};
use errors::{mount_error, read_error, unreachable};
use http::{HttpError, Transport};
use kv::{Lease, Mount};
use leases::{HeldLease, HeldLogin};

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

/// How the stamp of a source is had, once its mount is known.
#[derive(Debug, PartialEq, Eq)]
enum StampPlan {
    /// Without a request.
    Known(Result<Stamp, FetchError>),
    /// From this KV v2 metadata path.
    Metadata(String),
    /// Not at all: the caller reads the source and digests it (KV v1 has no
    /// versions).
    Unstamped,
}

fn stamp_plan(mount: &Mount, source: &Source) -> StampPlan {
    if let Some(refused) = version_refused(mount, source) {
        return StampPlan::Known(Err(refused));
    }
    match (mount.version, version(source)) {
        (0, _) => StampPlan::Known(Ok(Stamp::Dynamic)),
        (2, Some(pinned)) => StampPlan::Known(Ok(Stamp::Version(pinned.to_string()))),
        (2, None) => StampPlan::Metadata(mount.metadata_path(&source.location)),
        _ => StampPlan::Unstamped,
    }
}

/// The stamp from the answer to a metadata read; `None` (left to the
/// caller, who reads the value) when the token may read the secret but not
/// its metadata: a policy often grants `MOUNT/data/PATH` alone.
fn metadata_stamp(
    answer: Result<zeroize::Zeroizing<Vec<u8>>, HttpError>,
    mount: &Mount,
    source: &Source,
) -> Option<Result<Stamp, FetchError>> {
    match answer {
        Ok(body) => Some(kv::current_version(&body).map(Stamp::Version).map_err(|e| {
            FetchError::new(FailureKind::Malformed, e)
                .with_hint("check that this is a KV v2 secret: vault kv metadata get")
        })),
        Err(e) if e.status == Some(403) => None,
        Err(e) => Some(Err(read_error(&e, mount, &source.location))),
    }
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

/// Why `source` cannot be read from `mount`: a `?version=` outside KV v2.
fn version_refused(mount: &Mount, source: &Source) -> Option<FetchError> {
    (mount.version != 2 && version(source).is_some()).then(|| {
        FetchError::new(
            FailureKind::Settings,
            format!(
                "?version= needs a KV v2 mount; {} is {}",
                mount.path,
                if mount.is_kv() { "KV v1".to_owned() } else { format!("a {} engine", mount.engine) }
            ),
        )
        .with_hint("only KV v2 secrets have versions: remove ?version= from the reference")
    })
}

async fn read_one(context: &Context, mount: &Mount, source: &Source) -> Result<Document, FetchError> {
    if let Some(refused) = version_refused(mount, source) {
        return Err(refused);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::auth::Granted;
    use super::http::{HttpError, Transport};
    use super::{
        lock, metadata_stamp, stamp_plan, AuthMethod, HeldLease, HeldLogin, Lease, Mount, StampPlan, VaultProvider,
        VaultSettings, MODULE,
    };
    use crate::{Backend, FailureKind, Provider, Selector, Source, Stamp};

    fn source(location: &str, version: Option<&str>) -> Source {
        let selector = version.map(|v| Selector { name: "version".into(), value: v.into() });
        Source { backend: Backend::new(&MODULE), location: location.into(), selector }
    }

    fn mount(path: &str, engine: &str, version: u8) -> Mount {
        Mount { path: path.into(), engine: engine.into(), version }
    }

    fn refused(status: u16) -> HttpError {
        HttpError { status: Some(status), message: "fake reason".into(), body: None, tls: false, redirect: false }
    }

    #[test]
    fn stamps_read_kv_v2_metadata_only_and_never_a_dynamic_path() {
        let v2 = mount("secret/", "kv", 2);
        assert_eq!(stamp_plan(&v2, &source("secret/app", None)), StampPlan::Metadata("secret/metadata/app".into()));
        assert_eq!(stamp_plan(&v2, &source("secret/app", Some("4"))), StampPlan::Known(Ok(Stamp::Version("4".into()))));
        let v1 = mount("kv1/", "kv", 1);
        assert_eq!(stamp_plan(&v1, &source("kv1/app", None)), StampPlan::Unstamped);
        let database = mount("database/", "database", 0);
        assert_eq!(stamp_plan(&database, &source("database/creds/app", None)), StampPlan::Known(Ok(Stamp::Dynamic)));
        match stamp_plan(&v1, &source("kv1/app", Some("2"))) {
            StampPlan::Known(Err(e)) => assert_eq!(e.kind, FailureKind::Settings, "{}", e.reason),
            other => panic!("a version outside KV v2 must be refused as a fetch refuses it: {other:?}"),
        }
    }

    #[test]
    fn a_metadata_read_fails_as_a_value_read_does_but_a_denial_leaves_the_source_to_the_caller() {
        let v2 = mount("secret/", "kv", 2);
        let app = source("secret/app", None);
        assert_eq!(metadata_stamp(Err(refused(403)), &v2, &app), None);
        let missing = metadata_stamp(Err(refused(404)), &v2, &app).expect("a stamp").expect_err("an error");
        assert_eq!(missing.kind, FailureKind::NotFound);
        assert!(missing.hint.is_some());
        let token = metadata_stamp(Err(refused(401)), &v2, &app).expect("a stamp").expect_err("an error");
        assert_eq!(token.kind, FailureKind::Credentials);
        let body = zeroize::Zeroizing::new(br#"{"data":{"current_version":2}}"#.to_vec());
        assert_eq!(metadata_stamp(Ok(body), &v2, &app), Some(Ok(Stamp::Version("2".into()))));
    }

    fn transport() -> Arc<Transport> {
        let base = reqwest::Url::parse("http://127.0.0.1:1").unwrap();
        Arc::new(Transport { http: reqwest::Client::new(), base, namespace: None })
    }

    fn lease(seconds: u64, renewable: bool) -> Lease {
        Lease { id: "database/creds/app/fake".into(), seconds, renewable }
    }

    fn provider() -> VaultProvider {
        let settings = VaultSettings {
            address: "http://127.0.0.1:1".into(),
            namespace: None,
            ca_certs: Vec::new(),
            client_cert: None,
            skip_verify: false,
            auth: AuthMethod::Token,
            home: None,
        };
        VaultProvider::new(settings, tokio::time::Instant::now(), Arc::new(|_: &str| {}))
    }

    /// Seconds from now until `end`, rounded.
    fn left(end: Option<std::time::Instant>) -> Option<u64> {
        end.map(|end| (end.saturating_duration_since(std::time::Instant::now()) + Duration::from_millis(500)).as_secs())
    }

    #[test]
    fn credentials_end_with_the_first_lease_or_lease_holding_login_that_cannot_be_renewed() {
        let vault = provider();
        let token = || secrecy::SecretString::from("fake-token");
        assert_eq!(vault.credentials_end(), None, "nothing held");

        let session = transport();
        let renewable = Granted { lease_duration: 60, renewable: true };
        lock(&vault.logins).push(HeldLogin::new(Arc::clone(&session), token(), renewable));
        lock(&vault.leases).push(HeldLease::new(Arc::clone(&session), token(), true, lease(300, true)));
        assert_eq!(vault.credentials_end(), None, "everything can be renewed");

        lock(&vault.leases).push(HeldLease::new(Arc::clone(&session), token(), true, lease(200, false)));
        assert_eq!(left(vault.credentials_end()), Some(200), "a lease that cannot be renewed");

        // A login that holds no lease (a stamps-only login) does not count.
        let fixed = Granted { lease_duration: 100, renewable: false };
        lock(&vault.logins).push(HeldLogin::new(transport(), token(), fixed));
        assert_eq!(left(vault.credentials_end()), Some(200));

        let other = transport();
        lock(&vault.logins).push(HeldLogin::new(Arc::clone(&other), token(), fixed));
        lock(&vault.leases).push(HeldLease::new(Arc::clone(&other), token(), true, lease(300, true)));
        assert_eq!(left(vault.credentials_end()), Some(100), "the login holding a lease ends first");

        // A token without a TTL never ends.
        let endless = HeldLogin::new(transport(), token(), Granted { lease_duration: 0, renewable: false });
        assert_eq!((endless.due, endless.ends), (None, None));
        let due = lock(&vault.logins)[0].due.expect("a renewable login is due");
        let after = due.saturating_duration_since(tokio::time::Instant::now());
        assert!(after <= Duration::from_secs(40) && after >= Duration::from_secs(33), "{after:?}");
    }
}
