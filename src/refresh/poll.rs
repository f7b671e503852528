//! One poll of what a run reads: each source's stamp (a version told
//! without the value where the backend can, see [`Provider::stamps`]), or
//! for a source the backend cannot stamp, a keyed digest of it fetched
//! anew. All backends at once, each within the run's timeout; every login a
//! poll makes is revoked when it is done.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use envcloak_providers::{Backend, FailureKind, FetchError, Provider, Source, Stamp};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::digest::DigestKey;
use crate::backends::Backends;
use crate::plan::Plan;

/// Each source (as written) and how it stands.
pub type Stamps = BTreeMap<String, String>;

/// A source that could not be polled, and why.
pub struct PollFailure {
    /// The source as written.
    pub source: String,
    /// Why.
    pub error: FetchError,
}

/// Polls every source of `plan`; gives up (still releasing every login)
/// when `stop` turns `true`.
pub async fn poll(
    plan: &Plan,
    backends: &Backends,
    timeout: Duration,
    key: &Arc<DigestKey>,
    stop: &watch::Receiver<bool>,
) -> Result<Stamps, Vec<PollFailure>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tasks = JoinSet::new();
    let mut failures = Vec::new();
    for (backend, sources) in plan.sources() {
        match backends.provider(backend, deadline) {
            Ok(provider) => {
                let (key, mut stop) = (Arc::clone(key), stop.clone());
                tasks.spawn(async move {
                    // A stop channel whose sender is gone never stops the poll.
                    let stopped = async move {
                        if stop.wait_for(|stop| *stop).await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    };
                    poll_backend(provider, sources, deadline, &key, stopped).await
                });
            }
            Err(error) => {
                failures.extend(sources.iter().map(|s| PollFailure { source: s.to_string(), error: error.clone() }))
            }
        }
    }
    let mut stamps = Stamps::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(polled) => {
                for (source, stamp) in polled {
                    match stamp {
                        Ok(stamp) => {
                            stamps.insert(source, stamp);
                        }
                        Err(error) => failures.push(PollFailure { source, error }),
                    }
                }
            }
            Err(e) => failures.push(PollFailure {
                source: "(a backend)".into(),
                error: FetchError::new(FailureKind::Internal, format!("a poll stopped: {e}")),
            }),
        }
    }
    if failures.is_empty() {
        Ok(stamps)
    } else {
        Err(failures)
    }
}

/// Stamps the sources of one backend; digests those it cannot stamp. Ends
/// early when `stopped` completes; either way, releases what it obtained.
async fn poll_backend(
    provider: Arc<dyn Provider>,
    sources: Vec<Source>,
    deadline: tokio::time::Instant,
    key: &DigestKey,
    stopped: impl std::future::Future<Output = ()>,
) -> Vec<(String, Result<String, FetchError>)> {
    let polled = tokio::select! {
        polled = stamp_or_digest(&provider, sources, deadline, key) => polled,
        () = stopped => vec![("(the run is ending)".to_owned(), Err(FetchError::new(FailureKind::Internal, "the run is ending")))],
    };
    // A login of this poll, and anything read with a lease, is given back now.
    provider.release().await;
    polled
}

async fn stamp_or_digest(
    provider: &Arc<dyn Provider>,
    sources: Vec<Source>,
    deadline: tokio::time::Instant,
    key: &DigestKey,
) -> Vec<(String, Result<String, FetchError>)> {
    let backend = provider.backend();
    let stamped = within(backend, deadline, provider.stamps(&sources)).await;
    let mut polled = Vec::new();
    let mut unstamped = Vec::new();
    match stamped {
        Ok(mut stamps) => {
            for source in sources {
                match stamps.remove(&source) {
                    Some(stamp) => polled.push((source.to_string(), stamp.map(|s| text(&s)))),
                    None => unstamped.push(source),
                }
            }
        }
        Err(error) => polled.extend(sources.iter().map(|s| (s.to_string(), Err(error.clone())))),
    }
    if !unstamped.is_empty() {
        match within(backend, deadline, provider.fetch(&unstamped)).await {
            Ok(mut fetched) => {
                for source in unstamped {
                    let digest = match fetched.remove(&source) {
                        Some(document) => document.map(|document| format!("digest:{}", key.of_document(&document))),
                        None => Err(FetchError::new(FailureKind::Internal, "the backend did not answer for it")),
                    };
                    polled.push((source.to_string(), digest));
                }
            }
            Err(error) => polled.extend(unstamped.iter().map(|s| (s.to_string(), Err(error.clone())))),
        }
    }
    polled
}

fn text(stamp: &Stamp) -> String {
    match stamp {
        Stamp::Version(version) => format!("version:{version}"),
        Stamp::Dynamic => "dynamic".into(),
    }
}

/// `future` within `deadline`, or a timeout error for `backend`.
async fn within<T>(
    backend: Backend,
    deadline: tokio::time::Instant,
    future: impl std::future::Future<Output = Result<T, FetchError>>,
) -> Result<T, FetchError> {
    tokio::time::timeout_at(deadline, future).await.unwrap_or_else(|_| {
        Err(FetchError::new(FailureKind::Timeout, format!("the {backend} backend did not answer a poll in time")))
    })
}
