//! The `age://` backend: age-encrypted dotenv documents in the repository.
//!
//! Each distinct file is read and decrypted once per run, on the blocking
//! thread pool, and its plaintext lives only in zeroizing buffers. A file's
//! stamp (for `run --watch`) comes from its metadata alone: nothing is
//! decrypted to poll it.

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
use crate::{
    Backend, BoxFuture, Document, FailureKind, FetchError, Fetched, Provider, SecretValue, Source, Stamp, Stamps,
};

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

    fn stamps<'a>(&'a self, sources: &'a [Source]) -> BoxFuture<'a, Result<Stamps, FetchError>> {
        let sources = sources.to_vec();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                sources
                    .into_iter()
                    .map(|source| {
                        let stamp = file_stamp(Path::new(&source.location)).map(Stamp::Version);
                        (source, stamp)
                    })
                    .collect()
            })
            .await
            .map_err(|e| FetchError::new(FailureKind::Internal, format!("reading age file metadata stopped: {e}")))
        })
    }
}

/// A file's stamp: its size, modification time (to the nanosecond), inode
/// and device, which change when the file is rewritten or replaced (an
/// editor's rename over it, a `git checkout`). Nothing is read or decrypted.
fn file_stamp(path: &Path) -> Result<String, FetchError> {
    let label = path.display().to_string();
    let metadata = std::fs::metadata(path).map_err(|e| read_error(&label, &e))?;
    Ok(metadata_stamp(&metadata))
}

#[cfg(unix)]
fn metadata_stamp(metadata: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "size {} mtime {}.{:09} inode {} device {}",
        metadata.len(),
        metadata.mtime(),
        metadata.mtime_nsec(),
        metadata.ino(),
        metadata.dev()
    )
}

#[cfg(not(unix))]
fn metadata_stamp(metadata: &std::fs::Metadata) -> String {
    let modified = metadata.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let modified =
        modified.map_or_else(|| "unknown".to_owned(), |d| format!("{}.{:09}", d.as_secs(), d.subsec_nanos()));
    format!("size {} mtime {modified}", metadata.len())
}

/// Why the file `label` cannot be read (or its metadata): the same words for
/// a fetch and a stamp.
fn read_error(label: &str, error: &std::io::Error) -> FetchError {
    match error.kind() {
        std::io::ErrorKind::NotFound => FetchError::new(FailureKind::NotFound, format!("file {label} does not exist"))
            .with_hint("age:// paths in envcloak.toml are relative to the folder of envcloak.toml; on the command line, to the current folder"),
        _ => FetchError::new(FailureKind::NotFound, format!("cannot read {label}: {error}")),
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
    let ciphertext = std::fs::read(path).map_err(|e| read_error(&label, &e))?;
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use super::{file_stamp, AgeProvider, IdentitySources, MODULE};
    use crate::{Backend, FailureKind, Provider, Source, Stamp};

    fn source(path: &Path) -> Source {
        Source { backend: Backend::new(&MODULE), location: path.display().to_string(), selector: None }
    }

    #[test]
    fn a_file_stamp_changes_when_the_file_is_rewritten_or_replaced() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("dev.env.age");
        std::fs::write(&path, b"fake ciphertext one").unwrap();
        let first = file_stamp(&path).unwrap();
        assert_eq!(file_stamp(&path).unwrap(), first, "an untouched file keeps its stamp");

        // The same size in place: only the modification time tells.
        std::thread::sleep(Duration::from_millis(30));
        std::fs::write(&path, b"fake ciphertext two").unwrap();
        let rewritten = file_stamp(&path).unwrap();
        assert_ne!(rewritten, first, "a rewrite of the same size");

        // Replaced by a rename (as editors and git do): another inode.
        let other = dir.path().join("new.age");
        std::fs::write(&other, b"fake ciphertext two").unwrap();
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::File::options().write(true).open(&other).unwrap().set_modified(modified).unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_ne!(file_stamp(&path).unwrap(), rewritten, "a file renamed over it, with the same size and time");
    }

    #[test]
    fn stamps_read_no_identity_and_a_missing_file_fails_as_a_fetch_does() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let present = dir.path().join("present.age");
        std::fs::write(&present, b"not even an age file").unwrap();
        let missing = dir.path().join("missing.age");
        // No identity at all: a stamp decrypts nothing.
        let sources = IdentitySources::gather(&[], None, None);
        let provider = AgeProvider::new(sources, None, Arc::new(|_: &str| false));
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let wanted = [source(&present), source(&missing)];
        let stamps = runtime.block_on(provider.stamps(&wanted)).expect("stamps");
        assert_eq!(stamps.len(), 2);
        assert!(matches!(&stamps[&wanted[0]], Ok(Stamp::Version(v)) if v.starts_with("size 20 ")));
        let error = stamps[&wanted[1]].clone().expect_err("a missing file");
        assert_eq!(error.kind, FailureKind::NotFound);
        assert!(error.reason.ends_with("missing.age does not exist"), "{}", error.reason);
        assert!(error.hint.is_some());
    }
}
