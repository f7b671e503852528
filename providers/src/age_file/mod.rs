//! The `age://` backend: age-encrypted dotenv documents in the repository.
//!
//! Each distinct file is read and decrypted once per run, on the blocking
//! thread pool, and its plaintext lives only in zeroizing buffers.

mod decrypt;
mod identity;

use std::path::Path;
use std::sync::Arc;

pub use decrypt::{decrypt, looks_like_age, MAX_SCRYPT_LOG_N};
pub use identity::{BoxedIdentity, Identities, IdentitySources, PassphrasePrompt, KEY_FILE_VAR, KEY_VAR};

use crate::dotenv;
use crate::{Backend, BoxFuture, Document, FetchError, Fetched, Provider, SecretValue, Source};

/// The age-file provider.
pub struct AgeProvider {
    sources: Arc<IdentitySources>,
    prompt: Option<Arc<dyn PassphrasePrompt>>,
}

impl AgeProvider {
    /// A provider that decrypts with the identities of `sources`, asking for
    /// passphrases through `prompt` where one is needed and possible.
    pub fn new(sources: IdentitySources, prompt: Option<Arc<dyn PassphrasePrompt>>) -> Self {
        Self { sources: Arc::new(sources), prompt }
    }
}

impl Provider for AgeProvider {
    fn backend(&self) -> Backend {
        Backend::Age
    }

    fn fetch<'a>(&'a self, sources: &'a [Source]) -> BoxFuture<'a, Result<Fetched, FetchError>> {
        let identity_sources = Arc::clone(&self.sources);
        let prompt = self.prompt.clone();
        let sources = sources.to_vec();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || fetch_all(&identity_sources, prompt.as_ref(), &sources))
                .await
                .map_err(|e| FetchError::new(format!("age decryption stopped: {e}")))?
        })
    }
}

fn fetch_all(
    identity_sources: &IdentitySources,
    prompt: Option<&Arc<dyn PassphrasePrompt>>,
    sources: &[Source],
) -> Result<Fetched, FetchError> {
    let identities = identity_sources.load(prompt.cloned())?;
    let lookup = |name: &str| std::env::var(name).ok();
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
    let ciphertext = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FetchError::new(format!("file {label} does not exist"))
            .with_hint("age:// paths in envcloak.toml are relative to the folder of envcloak.toml; on the command line, to the current folder"),
        _ => FetchError::new(format!("cannot read {label}: {e}")),
    })?;
    let plaintext = decrypt(&ciphertext, &label, identities, prompt)?;
    let text = std::str::from_utf8(&plaintext).map_err(|e| {
        FetchError::new(format!("{label} decrypts to bytes that are not UTF-8 text (at byte {})", e.valid_up_to()))
            .with_hint("the decrypted content must be a dotenv document")
    })?;
    let entries = dotenv::parse(text, lookup).map_err(|e| {
        FetchError::new(format!("{label}: {e}"))
            .with_hint("the decrypted content must be a dotenv document (NAME=value lines); fix it with envcloak edit")
    })?;
    Ok(Document {
        whole: None,
        fields: Some(entries.into_iter().map(|entry| (entry.name, SecretValue::from(entry.value))).collect()),
        ..Document::default()
    })
}
