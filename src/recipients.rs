//! Who a file is encrypted to: recipients from `-r`, recipients files and
//! folders of them, and the record envcloak writes into each file it
//! encrypts so that `rekey --check` can tell, without any private key,
//! whether a file is encrypted to exactly the current recipients.
//!
//! The record is one extra stanza in the age header,
//! `-> envcloak-recipients FINGERPRINT…`, a fingerprint being the first 8
//! bytes of the SHA-256 of a recipient's public key, in unpadded base64.
//! Public keys are no secret (they sit in the recipients files in the same
//! repository), and age, rage, Go age and typage skip a stanza type they do
//! not know, so the file stays a plain age file.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use age::armor::ArmoredReader;
use age_core::format::{FileKey, Stanza};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use envcloak_providers::age_file::pq;

use crate::error::CliError;

/// A recipient to encrypt to.
pub type BoxedRecipient = Box<dyn age::Recipient + Send>;

/// The stanza type of the record.
const RECORD_TAG: &str = "envcloak-recipients";

/// The stanza types that name a recipient (others, such as the random
/// "grease" stanzas age writers add, are not counted).
const RECIPIENT_TAGS: &[&str] = &["X25519", "ssh-ed25519", "ssh-rsa", "mlkem768x25519", "scrypt"];

/// The recipients of one encryption.
pub struct RecipientSet {
    recipients: Vec<Recipient>,
}

/// One recipient, where it was given (`-r`, `FILE:LINE`), and its
/// fingerprint.
pub struct Recipient {
    key: BoxedRecipient,
    /// `-r` or `FILE:LINE`.
    pub place: String,
    /// See the module documentation.
    pub fingerprint: String,
    post_quantum: bool,
}

impl RecipientSet {
    /// Recipients given on the command line (`-r`) and in `files` (each a
    /// recipients file, or a folder whose files are all recipients files).
    ///
    /// Post-quantum (`age1pq1…`) and classic recipients are not mixed in one
    /// file, as Go age refuses too: a classic recipient's stanza would let a
    /// future quantum computer recover the file key.
    pub fn read(given: &[String], files: &[PathBuf]) -> Result<Self, CliError> {
        let mut recipients = Vec::new();
        for text in given {
            recipients.push(parse(text, "-r")?);
        }
        for path in files {
            for file in expand_folder(path)? {
                recipients.extend(read_file(&file)?);
            }
        }
        if recipients.is_empty() {
            return Err(CliError::new("no recipients to encrypt to")
                .hint("pass -r age1… or -R FILE, or set [age] recipients_file in envcloak.toml"));
        }
        let post_quantum = recipients.iter().find(|r| r.post_quantum);
        let classic = recipients.iter().find(|r| !r.post_quantum);
        if let (Some(pq), Some(classic)) = (post_quantum, classic) {
            return Err(mixed(Some((pq.place.as_str(), classic.place.as_str()))));
        }
        let mut seen = HashSet::new();
        recipients.retain(|r| seen.insert(r.fingerprint.clone()));
        Ok(Self { recipients })
    }

    /// How many distinct recipients.
    pub fn len(&self) -> usize {
        self.recipients.len()
    }

    /// Whether there are none (never, once read).
    pub fn is_empty(&self) -> bool {
        self.recipients.is_empty()
    }

    /// The recipients.
    pub fn iter(&self) -> impl Iterator<Item = &Recipient> {
        self.recipients.iter()
    }

    /// The sorted fingerprints, as the record holds them.
    pub fn fingerprints(&self) -> Vec<String> {
        let mut list: Vec<String> = self.recipients.iter().map(|r| r.fingerprint.clone()).collect();
        list.sort();
        list
    }

    /// The recipients to hand to the age encryptor: each one, and the record.
    pub fn for_encryptor(&self) -> Vec<&dyn age::Recipient> {
        let mut list: Vec<&dyn age::Recipient> =
            self.recipients.iter().map(|r| r.key.as_ref() as &dyn age::Recipient).collect();
        list.push(self);
        list
    }
}

/// The record is written by the set itself, as one more recipient whose
/// stanza wraps nothing. It carries the same labels as the others (the
/// encryptor only combines recipients whose labels are equal).
impl age::Recipient for RecipientSet {
    fn wrap_file_key(&self, _file_key: &FileKey) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        let labels = if self.recipients.iter().any(|r| r.post_quantum) {
            HashSet::from([pq::POSTQUANTUM_LABEL.to_owned()])
        } else {
            HashSet::new()
        };
        let stanza = Stanza { tag: RECORD_TAG.to_owned(), args: self.fingerprints(), body: Vec::new() };
        Ok((vec![stanza], labels))
    }
}

/// What an age file's header says about its recipients, read without any
/// key: the record's fingerprints (when envcloak wrote the file), and how
/// many recipient stanzas it has.
pub struct HeaderRecipients {
    /// The record, if there is one.
    pub recorded: Option<Vec<String>>,
    /// How many recipient stanzas (X25519, SSH, post-quantum, scrypt).
    pub stanzas: usize,
}

/// Reads the header of an age file (binary or armored).
pub fn header_recipients(ciphertext: &[u8], label: &str) -> Result<HeaderRecipients, CliError> {
    let mut header = Vec::new();
    let mut reader = ArmoredReader::new(ciphertext);
    // The header ends at the `---` line; 1 MiB is far more than any header.
    let mut chunk = [0u8; 4096];
    while !header.windows(4).any(|w| w == b"\n---") && header.len() < 1 << 20 {
        let n = reader.read(&mut chunk).map_err(|e| CliError::new(format!("cannot read {label}: {e}")))?;
        if n == 0 {
            break;
        }
        header.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&header);
    let mut lines = text.lines();
    if lines.next() != Some("age-encryption.org/v1") {
        return Err(CliError::new(format!("{label} is not an age file")));
    }
    let mut result = HeaderRecipients { recorded: None, stanzas: 0 };
    for line in lines {
        if line.starts_with("---") {
            return Ok(result);
        }
        let Some(stanza) = line.strip_prefix("-> ") else { continue };
        let mut words = stanza.split(' ');
        match words.next() {
            Some(RECORD_TAG) => {
                let mut list: Vec<String> = words.map(str::to_owned).collect();
                list.sort();
                result.recorded = Some(list);
            }
            Some(tag) if RECIPIENT_TAGS.contains(&tag) => result.stanzas += 1,
            _ => {}
        }
    }
    Err(CliError::new(format!("{label}: the age header has no end")))
}

/// A recipients file: one recipient a line, `#` comments.
fn read_file(path: &Path) -> Result<Vec<Recipient>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::new(format!("cannot read recipients file {}: {e}", path.display())))?;
    let mut list = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        list.push(parse(line, &format!("{}:{}", path.display(), number + 1))?);
    }
    Ok(list)
}

/// `path` itself, or for a folder its files (not hidden ones), sorted.
fn expand_folder(path: &Path) -> Result<Vec<PathBuf>, CliError> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let unreadable =
        |e: std::io::Error| CliError::new(format!("cannot read recipients folder {}: {e}", path.display()));
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && entry.path().is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// One recipient's text, given at `place`.
fn parse(text: &str, place: &str) -> Result<Recipient, CliError> {
    let unknown = || {
        CliError::new(format!("{place}: `{text}` is not a recipient"))
            .hint("a recipient is an age public key (age1… or post-quantum age1pq1…) or an SSH public key (ssh-ed25519 … / ssh-rsa …)")
    };
    let post_quantum = pq::is_recipient(text);
    let (key, canonical): (BoxedRecipient, String) = if post_quantum {
        let key = text.parse::<pq::HybridRecipient>().map_err(|why| {
            CliError::new(format!("{place}: not a valid post-quantum recipient ({why})"))
                .hint("copy the whole age1pq1… line from the `# public key:` comment of the identity file")
        })?;
        (Box::new(key), text.to_ascii_lowercase())
    } else if text.starts_with("age1") {
        let key = text.parse::<age::x25519::Recipient>().map_err(|_| unknown())?;
        (Box::new(key), text.to_ascii_lowercase())
    } else if text.starts_with("ssh-") {
        let key = text.parse::<age::ssh::Recipient>().map_err(|_| unknown())?;
        // The key type and the key, without the comment.
        (Box::new(key), text.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
    } else {
        return Err(unknown());
    };
    let digest = Sha256::digest(canonical.as_bytes());
    Ok(Recipient { key, place: place.to_owned(), fingerprint: STANDARD_NO_PAD.encode(&digest[..8]), post_quantum })
}

/// The refusal to mix post-quantum and classic recipients, naming one of
/// each where known.
pub fn mixed(places: Option<(&str, &str)>) -> CliError {
    let which = places.map_or(String::new(), |(pq, classic)| format!(" ({pq} is post-quantum, {classic} is not)"));
    CliError::new(format!(
        "refusing to encrypt to post-quantum (age1pq1…) and classic recipients together{which}: a classic recipient would leave the file open to a future quantum computer"
    ))
    .hint("give everyone a post-quantum identity (envcloak keygen --pq) and list only their age1pq1… recipients, or use only classic recipients")
}
