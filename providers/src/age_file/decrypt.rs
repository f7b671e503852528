//! Decrypting one age file (binary or ASCII-armored) into a zeroizing buffer.

use std::io::Read;
use std::sync::Arc;

use age::armor::ArmoredReader;
use zeroize::Zeroizing;

use super::identity::Identities;
use crate::backend::PassphrasePrompt;
use crate::{FailureKind, FetchError};

/// The highest scrypt work factor (log2 N) accepted for passphrase-encrypted
/// files: 2^20 needs 1 GiB of memory and about 1–4 s of CPU. A file that asks
/// for more is refused rather than allowed to exhaust the machine.
pub const MAX_SCRYPT_LOG_N: u8 = 20;

/// The reason given for a file that ends inside its header or nonce.
const ENDS_EARLY: &str = "the file ends too early (in the header or before the payload)";

const BINARY_MAGIC: &[u8] = b"age-encryption.org/";
const ARMOR_BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// Whether `bytes` start like an age file, binary or armored.
pub fn looks_like_age(bytes: &[u8]) -> bool {
    let trimmed = trim_leading_whitespace(bytes);
    bytes.starts_with(BINARY_MAGIC) || trimmed.starts_with(ARMOR_BEGIN)
}

fn trim_leading_whitespace(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Decrypts `ciphertext` (named `label` in messages) with `identities`, or
/// with a passphrase asked through `prompt` if the file is passphrase-encrypted.
pub fn decrypt(
    ciphertext: &[u8],
    label: &str,
    identities: &Identities,
    prompt: Option<&Arc<dyn PassphrasePrompt>>,
) -> Result<Zeroizing<Vec<u8>>, FetchError> {
    if !looks_like_age(ciphertext) {
        return Err(FetchError::new(FailureKind::Malformed, format!("{label} is not an age-encrypted file"))
            .with_hint("encrypt it first: envcloak encrypt -r RECIPIENT -o FILE.age FILE"));
    }
    // Only armored text goes through the armor reader: a short binary file
    // would otherwise be reported as invalid armor.
    let dearmored = if trim_leading_whitespace(ciphertext).starts_with(ARMOR_BEGIN) {
        let mut dearmored = Vec::with_capacity(ciphertext.len());
        ArmoredReader::new(ciphertext)
            .read_to_end(&mut dearmored)
            .map_err(|e| damaged(label, &format!("the ASCII armor is invalid ({e})")))?;
        std::borrow::Cow::Owned(dearmored)
    } else {
        std::borrow::Cow::Borrowed(ciphertext)
    };
    let decryptor = age::Decryptor::new_buffered(&dearmored[..]).map_err(|e| header_error(label, &dearmored, e))?;

    let passphrase_identity;
    let list: Vec<&dyn age::Identity> = if decryptor.is_scrypt() {
        // Refused before anyone is asked for a passphrase that could not be used.
        if let Some(log_n) = scrypt_work_factor(&dearmored).filter(|log_n| *log_n > u64::from(MAX_SCRYPT_LOG_N)) {
            return Err(excessive_work(label, log_n));
        }
        let Some(passphrase) = prompt.and_then(|p| p.passphrase(&format!("Passphrase for {label}"))) else {
            return Err(FetchError::new(
                FailureKind::NoIdentity,
                format!("{label} is encrypted with a passphrase and no terminal is available to ask for it"),
            )
            .with_hint(
                "run on a terminal, or re-encrypt the file to an identity: envcloak encrypt -r AGE-PUBLIC-KEY",
            ));
        };
        let mut identity = age::scrypt::Identity::new(passphrase);
        identity.set_max_work_factor(MAX_SCRYPT_LOG_N);
        passphrase_identity = identity;
        vec![&passphrase_identity as &dyn age::Identity]
    } else {
        identities.list.iter().map(|id| id.as_ref() as &dyn age::Identity).collect()
    };

    let mut reader = decryptor.decrypt(list.into_iter()).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => no_match(label, &dearmored, identities),
        age::DecryptError::DecryptionFailed if passphrase_identity_used(&dearmored) => {
            FetchError::new(FailureKind::NoIdentity, format!("wrong passphrase for {label}"))
        }
        age::DecryptError::ExcessiveWork { required, .. } => excessive_work(label, required.into()),
        age::DecryptError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => damaged(label, ENDS_EARLY),
        other => damaged(label, &other.to_string()),
    })?;
    // The plaintext is shorter than the ciphertext: with this capacity the
    // buffer never reallocates, so no unzeroized copy is left behind.
    let mut plaintext = Zeroizing::new(Vec::with_capacity(dearmored.len() + 1));
    reader.read_to_end(&mut plaintext).map_err(|e| damaged(label, &format!("the payload does not decrypt ({e})")))?;
    Ok(plaintext)
}

fn excessive_work(label: &str, log_n: u64) -> FetchError {
    FetchError::new(
        FailureKind::Malformed,
        format!("{label} asks for scrypt work factor 2^{log_n}; envcloak accepts at most 2^{MAX_SCRYPT_LOG_N}"),
    )
    .with_hint("re-encrypt the file with a smaller work factor or to an identity")
}

/// The work factor (log2 N) of the `-> scrypt SALT LOG_N` stanza, if it is
/// written in decimal digits; too many digits for a number reads as the
/// largest one.
fn scrypt_work_factor(header: &[u8]) -> Option<u64> {
    let line = header_stanzas(header).find_map(|line| line.strip_prefix(b"-> scrypt "))?;
    let digits = line.split(|b| *b == b' ').nth(1)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(std::str::from_utf8(digits).ok()?.parse().unwrap_or(u64::MAX))
}

fn passphrase_identity_used(header: &[u8]) -> bool {
    header_stanzas(header).any(|line| line.starts_with(b"-> scrypt "))
}

/// The recipient stanza lines (`-> TYPE …`) of a dearmored age header.
fn header_stanzas(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    header.split(|b| *b == b'\n').take_while(|line| !line.starts_with(b"---")).filter(|line| line.starts_with(b"-> "))
}

fn no_match(label: &str, header: &[u8], identities: &Identities) -> FetchError {
    if !identities.locked.is_empty() {
        return FetchError::new(FailureKind::NoIdentity, format!(
            "{label}: the passphrase-protected SSH key {} cannot be unlocked: there is no terminal to ask for its passphrase",
            identities.locked.join(", ")
        ))
        .with_hint("run on a terminal, or (in CI) use a key without a passphrase: ENVCLOAK_AGE_KEY or an age identity file");
    }
    // rage adds a random `…-grease` stanza to every file; it is no recipient.
    let is_grease = |line: &[u8]| line.split(|b| *b == b' ').nth(1).is_some_and(|tag| tag.ends_with(b"-grease"));
    let recipients = header_stanzas(header).filter(|line| !is_grease(line)).count();
    let tried = if identities.tried.is_empty() {
        "no identity source is set".to_owned()
    } else {
        format!("tried {}", identities.tried.join("; "))
    };
    FetchError::new(FailureKind::NoIdentity, format!(
        "no identity matched {label} (the file has {recipients} recipient{}; {tried})",
        if recipients == 1 { "" } else { "s" }
    ))
    .with_hint(format!(
        "set {} to the key text, {} or [age] identity to a key file, or create ~/.config/envcloak/identity.txt; ask a holder of the file to add your public key as a recipient",
        super::identity::KEY_VAR,
        super::identity::KEY_FILE_VAR
    ))
}

fn header_error(label: &str, file: &[u8], e: age::DecryptError) -> FetchError {
    match e {
        // The age crate reads a v1 header it cannot parse as a header of an
        // unknown version: that file is damaged, not from the future.
        age::DecryptError::UnknownFormat if file.starts_with(b"age-encryption.org/v1\n") => {
            damaged(label, "the header is malformed")
        }
        // "failed to fill whole buffer" and the like say nothing to a user.
        age::DecryptError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => damaged(label, ENDS_EARLY),
        age::DecryptError::UnknownFormat => FetchError::new(
            FailureKind::Malformed,
            format!("{label} uses an age format version envcloak does not know"),
        )
        .with_hint("update envcloak"),
        other => damaged(label, &other.to_string()),
    }
}

fn damaged(label: &str, what: &str) -> FetchError {
    FetchError::new(FailureKind::Malformed, format!("{label} is damaged or truncated: {what}"))
        .with_hint("restore the file from version control or re-encrypt it")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails the test if envcloak asks for a passphrase.
    struct NoPrompt;

    impl PassphrasePrompt for NoPrompt {
        fn passphrase(&self, _description: &str) -> Option<age::secrecy::SecretString> {
            panic!("asked for a passphrase");
        }
    }

    fn scrypt_file(log_n: &str) -> Vec<u8> {
        format!(
            "age-encryption.org/v1\n-> scrypt c2FsdHNhbHRzYWx0c2FsdA {log_n}\nd3JhcHBlZC1maWxlLWtleS1ieXRlcy0zMi1ieXRlcyE\n--- bWFjLW1hYy1tYWMtbWFjLW1hYy1tYWMtbWFjLW1hYzI\nnonce-nonce-16b!payload"
        )
        .into_bytes()
    }

    fn refusal(file: &[u8], prompt: Option<&Arc<dyn PassphrasePrompt>>) -> String {
        let identities = Identities {
            list: Vec::new(),
            tried: Vec::new(),
            locked: Vec::new(),
            fingerprint_key: Zeroizing::new([0; 32]),
        };
        match decrypt(file, "f.age", &identities, prompt) {
            Ok(_) => panic!("decrypted a malformed file"),
            Err(e) => e.reason,
        }
    }

    #[test]
    fn huge_scrypt_work_factor_is_refused_before_the_prompt() {
        let prompt: Arc<dyn PassphrasePrompt> = Arc::new(NoPrompt);
        for log_n in ["21", "40", "255", "99999999999999999999999"] {
            let reason = refusal(&scrypt_file(log_n), Some(&prompt));
            assert!(reason.contains("scrypt work factor 2^") && reason.contains("at most 2^20"), "{reason}");
        }
    }

    #[test]
    fn malformed_v1_header_is_damaged_not_unknown() {
        let reason = refusal(b"age-encryption.org/v1\n-> X25519\n!!!!\n--- AAAA\n", None);
        assert!(reason.contains("damaged") && reason.contains("header is malformed"), "{reason}");
        let newer = refusal(b"age-encryption.org/v2\n", None);
        assert!(newer.contains("format version"), "{newer}");
    }

    #[test]
    fn short_binary_file_is_not_reported_as_armor() {
        let reason = refusal(b"age-encryption.org/", None);
        assert!(
            reason.contains("damaged") && reason.contains("ends too early") && !reason.contains("armor"),
            "{reason}"
        );
    }
}
