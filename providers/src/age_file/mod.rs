//! The `age://` backend: age-encrypted dotenv documents in the repository.
//!
//! Each distinct file is read and decrypted once per run, on the blocking
//! thread pool, and its plaintext lives only in zeroizing buffers.

mod decrypt;
mod identity;
mod module;
pub mod pq;

use std::path::Path;
use std::sync::Arc;

pub use decrypt::{decrypt, looks_like_age, MAX_SCRYPT_LOG_N};
pub use identity::{BoxedIdentity, Identities, IdentitySources, KEY_FILE_VAR, KEY_VAR};
pub use module::{AgeConfig, AgeModule, MODULE};

pub use crate::backend::{Expandable, PassphrasePrompt};

use secrecy::ExposeSecret;

use crate::dotenv;
use crate::{Backend, BoxFuture, Document, FailureKind, FetchError, Fetched, Provider, SecretValue, Source};

/// The largest age file read, as for a Vault or AWS answer.
pub const MAX_FILE_LEN: u64 = 16 << 20;

/// The age-file provider.
pub struct AgeProvider {
    sources: Arc<IdentitySources>,
    prompt: Option<Arc<dyn PassphrasePrompt>>,
    expandable: Expandable,
}

impl AgeProvider {
    /// A provider that decrypts with the identities of `sources`, asking for
    /// passphrases through `prompt` where one is needed and possible; `${VAR}`
    /// expands only the variables `expandable` allows.
    pub fn new(sources: IdentitySources, prompt: Option<Arc<dyn PassphrasePrompt>>, expandable: Expandable) -> Self {
        Self { sources: Arc::new(sources), prompt, expandable }
    }
}

impl Provider for AgeProvider {
    fn backend(&self) -> Backend {
        Backend::new(&MODULE)
    }

    fn fetch<'a>(&'a self, sources: &'a [Source]) -> BoxFuture<'a, Result<Fetched, FetchError>> {
        let identity_sources = Arc::clone(&self.sources);
        let prompt = self.prompt.clone();
        let sources = sources.to_vec();
        let expandable = Arc::clone(&self.expandable);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || fetch_all(&identity_sources, prompt.as_ref(), &sources, &expandable))
                .await
                .map_err(|e| FetchError::new(FailureKind::Internal, format!("age decryption stopped: {e}")))?
        })
    }
}

fn fetch_all(
    identity_sources: &IdentitySources,
    prompt: Option<&Arc<dyn PassphrasePrompt>>,
    sources: &[Source],
    expandable: &Expandable,
) -> Result<Fetched, FetchError> {
    let identities = identity_sources.load(prompt.cloned())?;
    let lookup = |name: &str| if expandable(name) { std::env::var(name).ok() } else { None };
    Ok(sources
        .iter()
        .map(|source| {
            let document = read_document(Path::new(&source.location), &identities, prompt, &lookup);
            (source.clone(), document)
        })
        .collect())
}

/// Reads, decrypts and parses one file into a document of keys.
pub fn read_document(
    path: &Path,
    identities: &Identities,
    prompt: Option<&Arc<dyn PassphrasePrompt>>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Document, FetchError> {
    let label = path.display().to_string();
    if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_FILE_LEN) {
        return Err(FetchError::new(
            FailureKind::Malformed,
            format!("{label} is larger than {} MiB, the most envcloak reads as a secrets file", MAX_FILE_LEN >> 20),
        ));
    }
    let ciphertext = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FetchError::new(FailureKind::NotFound, format!("file {label} does not exist"))
            .with_hint("age:// paths in envcloak.toml are relative to the folder of envcloak.toml; on the command line, to the current folder"),
        _ => FetchError::new(FailureKind::NotFound, format!("cannot read {label}: {e}")),
    })?;
    let plaintext = decrypt(&ciphertext, &label, identities, prompt)?;
    let text = std::str::from_utf8(&plaintext).map_err(|e| {
        FetchError::new(
            FailureKind::Malformed,
            format!("{label} decrypts to bytes that are not UTF-8 text (at byte {})", e.valid_up_to()),
        )
        .with_hint("the decrypted content must be a dotenv document")
    })?;
    let entries = dotenv::parse(text, lookup).map_err(|e| {
        FetchError::new(FailureKind::Malformed, format!("{label}: {e}"))
            .with_hint("the decrypted content must be a dotenv document (NAME=value lines); fix it with envcloak edit")
    })?;
    if let Some(line) = entries.iter().find_map(|entry| not_an_assignment(entry).then_some(entry.line)) {
        return Err(FetchError::new(FailureKind::Malformed, format!(
            "{label}: line {line} is not a NAME=value line with a variable name (letters, digits and _, not starting with a digit)"
        ))
        .with_hint("the line is not shown, as it may be part of a secret: a value that spans lines must be quoted; fix it with envcloak edit"));
    }
    Ok(Document {
        whole: None,
        fields: Some(entries.into_iter().map(|entry| (entry.name, SecretValue::from(entry.value))).collect()),
        ..Document::default()
    })
}

/// Whether an entry's name cannot be a variable name, or the line looks
/// like part of a multi-line value rather than an assignment: then its text
/// (which may be secret) must not become a name shown by `check`, the audit
/// log and the child's environment.
fn not_an_assignment(entry: &dotenv::DotenvEntry) -> bool {
    let name = entry.name.as_str();
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    !valid || looks_like_base64_line(name, entry.value.expose_secret())
}

/// A line of base64 text (a PEM body, a key) that a missing quote left
/// outside its value, e.g. `ZmFrZS1zZWNyZXQxMjM0NTY=PQ==`: a name of at
/// least 16 characters mixing upper case, lower case and digits without `_`,
/// and a value of base64 characters ending in padding, or empty. Variable
/// names are rarely written that way.
fn looks_like_base64_line(name: &str, value: &str) -> bool {
    let mixed = name.len() >= 16
        && !name.contains('_')
        && name.chars().any(|c| c.is_ascii_uppercase())
        && name.chars().any(|c| c.is_ascii_lowercase())
        && name.chars().any(|c| c.is_ascii_digit());
    let base64_tail = value.is_empty()
        || (value.ends_with('=') && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')));
    mixed && base64_tail
}
