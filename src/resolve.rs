//! Resolution: every backend fetched concurrently under one deadline, then
//! the plan applied in precedence order. Every failure is collected, so one
//! run reports all of them; the caller fails closed if any is required.
//! Whatever ends the fetching (all answers, the deadline, a signal), each
//! provider then releases what it obtained for itself (a Vault login token),
//! except one that holds leases of dynamic credentials the command will use:
//! that one is handed back in [`Resolution::held`], to be released when the
//! command has ended (see [`crate::leases`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envcloak_providers::{Backend, Document, FailureKind, FetchError, Provider, SecretValue, Source};

use crate::plan::Plan;
use crate::progress::Progress;

mod apply;
mod blocking;
mod refusals;

use apply::apply;
pub use blocking::{resolve_blocking, Interrupt};

/// One variable that will be injected.
pub struct ResolvedVar {
    /// The variable name.
    pub name: String,
    /// Its value.
    pub value: SecretValue,
    /// The mapping that set it last (the one that won).
    pub mapping: usize,
    /// Put into a file, the variable holding the path.
    pub as_file: bool,
    /// The backend's version of the source, if it has one.
    pub version: Option<String>,
    /// For a composed value, the value of each reference in it (masked and
    /// searched for on their own too).
    pub parts: Vec<SecretValue>,
}

/// A mapping (or one key of an import) that could not be resolved.
pub struct Failure {
    /// The variable name, or `import` for a whole import.
    pub name: String,
    /// The mapping it belongs to.
    pub mapping: usize,
    /// Why.
    pub error: FetchError,
    /// An optional variable: reported, but the run goes on without it.
    pub optional: bool,
}

/// The outcome of resolving a plan.
pub struct Resolution {
    /// The variables, in the order their names first appeared.
    pub vars: Vec<ResolvedVar>,
    /// Every failure, required and optional.
    pub failures: Vec<Failure>,
    /// Time spent per backend.
    pub timings: Vec<(Backend, Duration)>,
    /// Providers holding leases, to release once the command has ended.
    pub held: Vec<Arc<dyn Provider>>,
}

impl Resolution {
    /// Whether a required secret failed (the child must not start).
    pub fn has_required_failure(&self) -> bool {
        self.failures.iter().any(|f| !f.optional)
    }
}

/// Makes the provider of a backend, or says why there is none.
pub type ProviderFactory<'a> = dyn Fn(Backend) -> Result<Arc<dyn Provider>, FetchError> + 'a;

/// Resolution stopped by a signal (its number) before it was done.
pub struct Interrupted(pub i32);

/// Fetches every source of `plan` with the providers from `make_provider`,
/// all backends at once, giving up at `deadline`, or when `interrupt`
/// completes (with a signal's number).
pub async fn resolve(
    plan: &Plan,
    deadline: tokio::time::Instant,
    make_provider: &ProviderFactory<'_>,
    interrupt: impl std::future::Future<Output = i32>,
) -> Result<Resolution, Interrupted> {
    let groups = plan.sources();
    let mut tasks = Vec::new();
    let mut providers = Vec::new();
    let mut documents: HashMap<Source, Result<Document, FetchError>> = HashMap::new();
    let mut timings = Vec::new();
    let progress = Progress::start(groups.keys().copied());
    for (backend, sources) in groups {
        match make_provider(backend) {
            Ok(provider) => {
                providers.push(Arc::clone(&provider));
                let pending = progress.pending();
                let fetch = fetch_one(provider, sources.clone(), deadline);
                let task = tokio::spawn(async move {
                    let done = fetch.await;
                    pending.done(backend);
                    done
                });
                tasks.push((backend, sources, task));
            }
            Err(e) => {
                progress.pending().done(backend);
                documents.extend(sources.into_iter().map(|s| (s, Err(e.clone()))));
            }
        }
    }
    let collect = async {
        for (backend, sources, task) in tasks {
            let (outcome, took) = match task.await {
                Ok(done) => done,
                Err(e) => (
                    Err(FetchError::new(FailureKind::Internal, format!("the {backend} backend stopped: {e}"))),
                    Duration::ZERO,
                ),
            };
            crate::diag::note!("{backend}: {} source(s) in {:.1} ms", sources.len(), took.as_secs_f64() * 1e3);
            timings.push((backend, took));
            match outcome {
                Ok(fetched) => documents.extend(fetched),
                Err(e) => documents.extend(sources.into_iter().map(|s| (s, Err(e.clone())))),
            }
        }
    };
    let interrupted = tokio::select! {
        () = collect => None,
        signal = interrupt => Some(signal),
    };
    progress.finish();
    let mut held = Vec::new();
    for provider in providers {
        if interrupted.is_none() && provider.holds_leases() {
            held.push(provider);
        } else {
            provider.release().await;
        }
    }
    if let Some(signal) = interrupted {
        return Err(Interrupted(signal));
    }
    let mut resolution = apply(plan, &documents);
    resolution.timings = timings;
    resolution.held = held;
    Ok(resolution)
}

async fn fetch_one(
    provider: Arc<dyn Provider>,
    sources: Vec<Source>,
    deadline: tokio::time::Instant,
) -> (Result<envcloak_providers::Fetched, FetchError>, Duration) {
    let started = Instant::now();
    let backend = provider.backend();
    let outcome = match tokio::time::timeout_at(deadline, provider.fetch(&sources)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(FetchError::new(
            FailureKind::Timeout,
            format!(
                "the {backend} backend did not answer within the timeout ({:.1} s)",
                started.elapsed().as_secs_f64()
            ),
        )
        .with_hint("raise --timeout, or check that the backend is reachable")),
    };
    (outcome, started.elapsed())
}
