//! Reading: the mount lookups, the reads of KV and dynamic paths, and the
//! stamps of `run --watch`, over one login and one connection pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use super::errors::{mount_error, read_error, unreachable};
use super::http::{HttpError, Transport};
use super::kv::{Lease, Mount};
use super::{kv, lock, MAX_IN_FLIGHT};
use crate::{Document, FailureKind, FetchError, Fetched, Source, Stamp};

/// Shared by the concurrent requests of one run.
pub(super) struct Context {
    pub(super) transport: Arc<Transport>,
    pub(super) token: SecretString,
    pub(super) deadline: Instant,
    /// The leases of the dynamic reads so far.
    pub(super) leases: Mutex<Vec<Lease>>,
}

impl Context {
    pub(super) async fn get(&self, path: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, HttpError> {
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
pub(super) async fn read_all(context: &Arc<Context>, sources: &[Source]) -> Result<Fetched, FetchError> {
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
pub(super) async fn find_mounts(
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
pub(super) enum StampPlan {
    /// Without a request.
    Known(Result<Stamp, FetchError>),
    /// From this KV v2 metadata path.
    Metadata(String),
    /// Not at all: the caller reads the source and digests it (KV v1 has no
    /// versions).
    Unstamped,
}

pub(super) fn stamp_plan(mount: &Mount, source: &Source) -> StampPlan {
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
pub(super) fn metadata_stamp(
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
pub(super) fn version(source: &Source) -> Option<u64> {
    source.selected("version").and_then(|v| v.parse().ok())
}

/// The API path that reads `source` from `mount`.
pub(super) fn read_path(mount: &Mount, source: &Source) -> String {
    mount.read_path(&source.location, version(source))
}

/// Why `source` cannot be read from `mount`: a `?version=` outside KV v2.
pub(super) fn version_refused(mount: &Mount, source: &Source) -> Option<FetchError> {
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

pub(super) async fn read_one(context: &Context, mount: &Mount, source: &Source) -> Result<Document, FetchError> {
    if let Some(refused) = version_refused(mount, source) {
        return Err(refused);
    }
    document(context, context.get(&read_path(mount, source)).await, mount, source)
}

/// Interprets the answer to a read of `source` from `mount`; keeps the
/// lease of a dynamic read in `context`.
pub(super) fn document(
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
pub(super) async fn token_works(context: &Context) -> bool {
    context.get("auth/token/lookup-self").await.is_ok()
}
