//! An age-encrypted dotenv file opened for a change: decrypted with the
//! user's identities, checked, re-encrypted to the current recipients, and
//! written back atomically with its mode and its armor kept. Shared by
//! `edit`, `set`, `unset`, `get`, `rekey` and the git drivers.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::CliError;
use crate::recipients::RecipientSet;

use super::Context;

/// A decrypted secrets file.
pub struct SecretsFile {
    /// Where it is.
    pub path: PathBuf,
    /// Whether it existed (a new one starts empty).
    pub existed: bool,
    /// Whether it is ASCII-armored (a new one is when its name ends in `.asc`).
    pub armor: bool,
    /// The decrypted text.
    pub plaintext: Zeroizing<Vec<u8>>,
}

impl SecretsFile {
    /// Decrypts `path` with `identities` first, then the usual identity
    /// sources. A missing file is empty when `may_be_new`, else an error.
    pub fn open(context: &Context, path: &Path, identities: &[PathBuf], may_be_new: bool) -> Result<Self, CliError> {
        let existed = path.exists();
        if !existed && !may_be_new {
            return Err(CliError::new(format!("{} does not exist", path.display())));
        }
        let armor = is_armored(path);
        let plaintext = if existed {
            let ciphertext = super::read_input(Some(path))?;
            decrypt(context, &ciphertext, &path.display().to_string(), identities)?.0
        } else {
            Zeroizing::new(Vec::new())
        };
        Ok(Self { path: path.to_owned(), existed, armor, plaintext })
    }

    /// A file to write without reading it first (its armor kept).
    pub fn replacing(path: &Path) -> Self {
        Self { path: path.to_owned(), existed: path.exists(), armor: is_armored(path), plaintext: Zeroizing::default() }
    }

    /// The decrypted text, which must be UTF-8.
    pub fn text(&self) -> Result<&str, CliError> {
        std::str::from_utf8(&self.plaintext)
            .map_err(|_| CliError::new(format!("{} does not hold UTF-8 text", self.path.display())))
    }

    /// Checks `plaintext` (see [`validate`]), encrypts it to `recipients` and
    /// replaces the file with it.
    pub fn save(&self, plaintext: &[u8], recipients: &RecipientSet) -> Result<(), CliError> {
        validate(plaintext)?;
        self.save_unchecked(plaintext, recipients)
    }

    /// [`Self::save`] without the check: for a merge result that holds
    /// conflict markers, to be resolved with `envcloak edit`.
    pub fn save_unchecked(&self, plaintext: &[u8], recipients: &RecipientSet) -> Result<(), CliError> {
        let ciphertext = super::age_tools::encrypt_bytes(plaintext, recipients, self.armor)?;
        // The file keeps its mode; a new one is 0644 (it is ciphertext).
        let mode = std::fs::metadata(&self.path).map_or(0o644, |m| m.permissions().mode() & 0o777);
        super::age_tools::write_output(Some(&self.path), &ciphertext, mode)
    }
}

/// A key only the holder of the identities has (`Identities::fingerprint_key`).
pub type FingerprintKey = Zeroizing<[u8; 32]>;

/// Decrypts `ciphertext` (named `label` in messages) with `identities`
/// first, then the usual identity sources; also the identities'
/// fingerprint key (see `Identities::fingerprint_key`).
pub fn decrypt(
    context: &Context,
    ciphertext: &[u8],
    label: &str,
    identities: &[PathBuf],
) -> Result<(Zeroizing<Vec<u8>>, FingerprintKey), CliError> {
    let sources = super::age_settings(context)?.identity_sources(identities);
    let prompt = super::prompt();
    let loaded = sources.load(prompt.clone())?;
    let plaintext = envcloak_providers::age_file::decrypt(ciphertext, label, &loaded, prompt.as_ref())?;
    Ok((plaintext, loaded.fingerprint_key))
}

/// Keeps the armor of an existing file; new files ending in `.asc` are armored.
fn is_armored(path: &Path) -> bool {
    match std::fs::read(path) {
        Ok(bytes) => bytes.trim_ascii_start().starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"),
        Err(_) => path.extension().is_some_and(|e| e == "asc"),
    }
}

/// A secrets file's text must be UTF-8, a valid dotenv document, and
/// assign only valid variable names.
pub fn validate(text: &[u8]) -> Result<(), CliError> {
    let text =
        std::str::from_utf8(text).map_err(|_| CliError::new("the text is not UTF-8; the file was not changed"))?;
    let entries = envcloak_providers::dotenv::parse(text, &|_| None).map_err(|e| {
        CliError::new(format!("the text is not a valid dotenv document ({e}); the file was not changed"))
            .hint(crate::dotenv_edit::conflict_hint(text))
    })?;
    if let Some(entry) = entries.iter().find(|e| !crate::plan::is_valid_name(&e.name)) {
        return Err(CliError::new(format!(
            "line {}: `{}` is not a valid variable name; the file was not changed",
            entry.line, entry.name
        )));
    }
    Ok(())
}
