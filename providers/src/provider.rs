//! The batch-first provider API every backend implements.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::{Backend, SecretValue, Source};

/// A boxed future, so providers can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a backend returned for one source. Selecting `#KEY`, importing every
/// key and reporting a missing key is the caller's job, the same for every
/// backend.
#[derive(Debug, Default)]
pub struct Document {
    /// The source's single value, where the backend has one (an AWS
    /// SecretString); `None` for documents that are only a set of keys.
    pub whole: Option<SecretValue>,
    /// The source's named values in document order, where it is a set of keys
    /// (a dotenv file, a Vault KV secret, a JSON object); `None` otherwise.
    pub fields: Option<Vec<(String, SecretValue)>>,
    /// Keys the source has whose values cannot be injected (a nested object
    /// in a JSON secret), with the reason; never the value.
    pub unusable: Vec<(String, String)>,
    /// The version the backend reported (KV v2 version, AWS version id).
    pub version: Option<String>,
    /// Why a single-valued source has no keys (an AWS SecretString that is
    /// not a JSON object, or malformed JSON by position); never its text.
    pub keys_error: Option<String>,
}

impl Document {
    /// The value of `key`; the last one wins when a document repeats a key.
    pub fn field(&self, key: &str) -> Option<&SecretValue> {
        self.fields.as_ref()?.iter().rev().find(|(name, _)| name == key).map(|(_, value)| value)
    }
}

/// What kind of failure a [`FetchError`] is. Exit paths, the audit log and
/// the metrics decide by the kind; the message says the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    /// The source (a file, a secret, a path, a mount) does not exist.
    NotFound,
    /// The source exists but has no such `#KEY`.
    MissingKey,
    /// The credentials are good, but not allowed to read this.
    Denied,
    /// No credentials, or the backend refused them (invalid, expired, login failed).
    Credentials,
    /// No age identity (key, passphrase) opens the file.
    NoIdentity,
    /// The backend cannot be reached (network, TLS, a redirect not followed).
    Unreachable,
    /// The backend did not answer in time.
    Timeout,
    /// What came back cannot be used: not an age file, damaged, not a dotenv
    /// document, too large, a value no environment variable can hold.
    Malformed,
    /// envcloak's own settings for the backend are wrong or unusable (an
    /// address, a certificate file, an identity file's mode).
    Settings,
    /// A backend task stopped unexpectedly.
    Internal,
}

impl FailureKind {
    /// A short label for the metrics file and the audit log.
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::NotFound => "not_found",
            FailureKind::MissingKey => "missing_key",
            FailureKind::Denied => "denied",
            FailureKind::Credentials => "credentials",
            FailureKind::NoIdentity => "no_identity",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Timeout => "timeout",
            FailureKind::Malformed => "malformed",
            FailureKind::Settings => "settings",
            FailureKind::Internal => "internal",
        }
    }
}

/// A problem with one source (not found, cannot decrypt, malformed) or with a
/// whole backend (no credentials, unreachable). Never holds a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    /// What kind of failure it is.
    pub kind: FailureKind,
    /// What went wrong, in one sentence.
    pub reason: String,
    /// What the user can do about it, if there is something to say.
    pub hint: Option<String>,
}

impl FetchError {
    /// An error of `kind` with a reason only.
    pub fn new(kind: FailureKind, reason: impl Into<String>) -> Self {
        Self { kind, reason: reason.into(), hint: None }
    }

    /// Adds the fix to suggest.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for FetchError {}

/// The outcome of a batch: one entry per requested source.
pub type Fetched = HashMap<Source, Result<Document, FetchError>>;

/// How a source stands now, for `run --watch`: told without reading its
/// value where the backend can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stamp {
    /// A marker that changes when the value does: a KV v2 version, the AWS
    /// version id holding the stage, a file's size and modification time.
    Version(String),
    /// A dynamic secret: read anew by each resolution, so its lease, not a
    /// poll, decides when it is read again.
    Dynamic,
}

/// The stamps of a batch. A source missing from it is polled by fetching it
/// and comparing a digest of what came back.
pub type Stamps = HashMap<Source, Result<Stamp, FetchError>>;

/// A secrets backend. `fetch` receives every distinct source of one run for
/// this backend at once, so a backend can batch, share one login and run its
/// requests concurrently. An `Err` means the backend as a whole failed
/// (authentication, no identity, unreachable); problems with single sources go
/// in the returned map so one run reports every problem at once.
pub trait Provider: Send + Sync {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// Fetches every source in `sources`.
    fn fetch<'a>(&'a self, sources: &'a [Source]) -> BoxFuture<'a, Result<Fetched, FetchError>>;

    /// Gives back what the provider obtained for itself (a Vault login
    /// token): the caller runs it once the run is done with the backend, on
    /// every way out, whether `fetch` finished, failed or was dropped at the
    /// deadline. It bounds its own time.
    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }

    /// Whether what was fetched came with leases (dynamic credentials) that
    /// must live as long as the command: the caller then runs
    /// [`Provider::release`] when the command has ended, not before.
    fn holds_leases(&self) -> bool {
        false
    }

    /// Renews the leases that are due (while the command runs); how long
    /// until the next one is, or `None` when none can be renewed any more.
    fn renew(&self) -> BoxFuture<'_, Option<std::time::Duration>> {
        Box::pin(std::future::ready(None))
    }

    /// Lets go of leases and tokens without revoking them (`export`: the
    /// credentials go to another program, and expire with their TTL).
    fn abandon(&self) {}

    /// When the first held credential (a lease, a login token) stops working
    /// without a renewal that would extend it: the command must have new
    /// credentials by then. `None` while everything can still be renewed.
    fn credentials_end(&self) -> Option<std::time::Instant> {
        None
    }

    /// When the first held lease (or login token) ends unless renewed, for
    /// the metrics; `None` without leases.
    fn leases_end(&self) -> Option<std::time::Instant> {
        None
    }

    /// The stamps of `sources` (see [`Stamp`]), for `run --watch`. The
    /// default stamps nothing: every source is then polled by fetching it.
    fn stamps<'a>(&'a self, sources: &'a [Source]) -> BoxFuture<'a, Result<Stamps, FetchError>> {
        let _ = sources;
        Box::pin(std::future::ready(Ok(HashMap::new())))
    }
}
