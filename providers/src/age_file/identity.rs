//! Where age identities come from, and loading them with care: key files must
//! be private, key text is held in zeroizing buffers.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::backend::PassphrasePrompt;
use crate::{FailureKind, FetchError};

/// The variable that may hold the identity text itself (for CI secrets).
pub const KEY_VAR: &str = "ENVCLOAK_AGE_KEY";
/// The variable that may name an identity file.
pub const KEY_FILE_VAR: &str = "ENVCLOAK_AGE_KEY_FILE";

/// An identity the user can decrypt with, in a form that can be shared
/// between threads.
pub type BoxedIdentity = Box<dyn age::Identity + Send + Sync>;

/// One place an identity can come from.
enum Origin {
    /// Identity text from a variable.
    Text { var: &'static str, text: SecretString },
    /// An identity file, and what named it.
    File { path: PathBuf, named_by: String },
}

/// The identity sources of a run, in the documented order: explicit files
/// (`decrypt -i`), `ENVCLOAK_AGE_KEY`, `ENVCLOAK_AGE_KEY_FILE`, the config's
/// `[age] identity`; `~/.config/envcloak/identity.txt` only when none of
/// those is set.
pub struct IdentitySources {
    origins: Vec<Origin>,
}

/// Identities loaded from every source, with a description of each source for
/// messages ("which identity sources were tried").
pub struct Identities {
    /// The loaded identities.
    pub list: Vec<BoxedIdentity>,
    /// One line per source tried, e.g. `ENVCLOAK_AGE_KEY (1 identity)`.
    pub tried: Vec<String>,
    /// Passphrase-protected SSH keys that cannot be unlocked: no terminal to
    /// ask on.
    pub locked: Vec<String>,
    /// A key only the holder of these identities has (SHA3-256 of the text
    /// of every source used), for fingerprints of values that others cannot
    /// check a guess against (the git diff driver).
    pub fingerprint_key: Zeroizing<[u8; 32]>,
}

impl IdentitySources {
    /// Gathers the sources from the process environment, `explicit` files,
    /// the config's identity path and the home folder.
    pub fn gather(explicit: &[PathBuf], config_identity: Option<PathBuf>, home: Option<&Path>) -> Self {
        let mut origins: Vec<Origin> =
            explicit.iter().map(|path| Origin::File { path: path.clone(), named_by: "-i".into() }).collect();
        if let Some(text) = std::env::var_os(KEY_VAR).filter(|v| !v.is_empty()) {
            let text = Zeroizing::new(text.into_string().unwrap_or_default());
            origins.push(Origin::Text { var: KEY_VAR, text: SecretString::from(text.as_str().to_owned()) });
        }
        if let Some(path) = std::env::var_os(KEY_FILE_VAR).filter(|v| !v.is_empty()) {
            origins.push(Origin::File { path: path.into(), named_by: KEY_FILE_VAR.into() });
        }
        if let Some(path) = config_identity {
            origins.push(Origin::File { path, named_by: "the config's [age] identity".into() });
        }
        if origins.is_empty() {
            if let Some(home) = home {
                let path = home.join(".config/envcloak/identity.txt");
                if path.exists() {
                    origins.push(Origin::File { path, named_by: "the default location".into() });
                }
            }
        }
        Self { origins }
    }

    /// Whether any source is configured.
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }

    /// Reads and parses every source. `prompt` unlocks passphrase-protected
    /// SSH keys on a terminal.
    ///
    /// A source that cannot be used (missing, readable by others, not an
    /// identity) is skipped and named in [`Identities::tried`] when another
    /// source works; when none works, its error is the result.
    pub fn load(&self, prompt: Option<std::sync::Arc<dyn PassphrasePrompt>>) -> Result<Identities, FetchError> {
        let mut identities = Identities {
            list: Vec::new(),
            tried: Vec::new(),
            locked: Vec::new(),
            fingerprint_key: Zeroizing::new([0; 32]),
        };
        let mut key_hash = <sha3::Sha3_256 as sha3::Digest>::new_with_prefix(b"envcloak fingerprint key v1");
        let mut problems: Vec<FetchError> = Vec::new();
        for origin in &self.origins {
            let (label, text) = match origin {
                Origin::Text { var, text } => ((*var).to_owned(), Ok(Zeroizing::new(text.expose_secret().to_owned()))),
                Origin::File { path, named_by } => {
                    (format!("{} (from {named_by})", path.display()), read_private_file(path))
                }
            };
            let parsed = text.and_then(|text| {
                let found = parse_identities(&text, &label, prompt.clone())?;
                sha3::Digest::update(&mut key_hash, (text.len() as u64).to_le_bytes());
                sha3::Digest::update(&mut key_hash, text.as_bytes());
                Ok(found)
            });
            match parsed {
                Ok(found) => {
                    identities.tried.push(format!("{label}: {}", describe(&found)));
                    if prompt.is_none() && found.iter().any(|(kind, _)| *kind == LOCKED_SSH) {
                        identities.locked.push(label.clone());
                    }
                    identities.list.extend(found.into_iter().map(|(_, id)| id));
                }
                Err(problem) => {
                    identities.tried.push(format!("{label}: not used ({})", problem.reason));
                    problems.push(problem);
                }
            }
        }
        identities.fingerprint_key.copy_from_slice(&sha3::Digest::finalize(key_hash));
        match problems.len() {
            _ if !identities.list.is_empty() => Ok(identities),
            0 => Ok(identities),
            1 => Err(problems.remove(0)),
            n => {
                let error = FetchError::new(
                    FailureKind::NoIdentity,
                    format!("none of the {n} identity sources can be used: {}", identities.tried.join("; ")),
                );
                Err(match problems.into_iter().find_map(|p| p.hint) {
                    Some(hint) => error.with_hint(hint),
                    None => error,
                })
            }
        }
    }
}

fn describe(found: &[(&'static str, BoxedIdentity)]) -> String {
    let kinds: Vec<&str> = found.iter().map(|(kind, _)| *kind).collect();
    match kinds.len() {
        1 => format!("1 {} identity", kinds[0]),
        n => format!("{n} identities ({})", kinds.join(", ")),
    }
}

/// Reads an identity file, refusing one that group or others can read, or
/// write (whoever can write it can swap in a key of their own choosing).
fn read_private_file(path: &Path) -> Result<Zeroizing<String>, FetchError> {
    let unreadable = |e: std::io::Error| {
        FetchError::new(FailureKind::Settings, format!("cannot read identity file {}: {e}", path.display()))
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(unreadable)?.permissions().mode();
        if mode & 0o044 != 0 {
            return Err(FetchError::new(
                FailureKind::Settings,
                format!("identity file {} is readable by group or others, so it is not used", path.display()),
            )
            .with_hint(format!("run: chmod 600 {}", path.display())));
        }
        if mode & 0o022 != 0 {
            return Err(FetchError::new(
                FailureKind::Settings,
                format!("identity file {} is writable by group or others, so it is not used", path.display()),
            )
            .with_hint(format!("run: chmod 600 {}", path.display())));
        }
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(unreadable)?);
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err(FetchError::new(
            FailureKind::Settings,
            format!(
                "identity file {} is not text (expected an AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1… line or an OpenSSH private key)",
                path.display()
            ),
        )),
    }
}

/// The kind of a passphrase-protected SSH key.
const LOCKED_SSH: &str = "passphrase-protected SSH";

/// Parses identity text: an OpenSSH/PEM private key, or lines of
/// `AGE-SECRET-KEY-1…` (X25519) and `AGE-SECRET-KEY-PQ-1…` (post-quantum)
/// with `#` comments.
fn parse_identities(
    text: &str,
    label: &str,
    prompt: Option<std::sync::Arc<dyn PassphrasePrompt>>,
) -> Result<Vec<(&'static str, BoxedIdentity)>, FetchError> {
    let invalid = |what: String| {
        FetchError::new(FailureKind::Settings, format!("{label}: {what}")).with_hint(
            "an identity is an AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1… line (envcloak keygen [--pq]) or an unencrypted or passphrase-protected OpenSSH ed25519/RSA private key",
        )
    };
    if text.trim_start().starts_with("-----BEGIN") {
        let identity = age::ssh::Identity::from_buffer(BufReader::new(text.as_bytes()), Some(label.into()))
            .map_err(|e| invalid(format!("not a usable SSH private key ({e})")))?;
        let kind = match &identity {
            age::ssh::Identity::Unencrypted(_) => "SSH",
            age::ssh::Identity::Encrypted(_) => LOCKED_SSH,
            age::ssh::Identity::Unsupported(_) => {
                return Err(invalid("this SSH key type is not supported by age (use ed25519 or RSA)".into()))
            }
        };
        let identity: BoxedIdentity = Box::new(identity.with_callbacks(PromptCallbacks(prompt)));
        return Ok(vec![(kind, identity)]);
    }
    let mut list: Vec<(&'static str, BoxedIdentity)> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The line is never quoted: it is a secret, or part of one.
        let not_identity = |why: &str| invalid(format!("line {} is not an identity ({why})", number + 1));
        if super::pq::is_identity(line) {
            let identity = line.parse::<super::pq::HybridIdentity>().map_err(not_identity)?;
            list.push((POST_QUANTUM, Box::new(identity)));
        } else {
            let identity = line
                .parse::<age::x25519::Identity>()
                .map_err(|_| not_identity("expected AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1…"))?;
            list.push(("X25519", Box::new(identity)));
        }
    }
    if list.is_empty() {
        return Err(invalid("holds no identity".into()));
    }
    Ok(list)
}

/// The kind of a hybrid ML-KEM-768 + X25519 identity.
const POST_QUANTUM: &str = "post-quantum (ML-KEM-768 + X25519)";

/// Bridges age's callbacks to the CLI's passphrase prompt.
#[derive(Clone)]
struct PromptCallbacks(Option<std::sync::Arc<dyn PassphrasePrompt>>);

impl age::Callbacks for PromptCallbacks {
    fn display_message(&self, _message: &str) {}

    fn confirm(&self, _message: &str, _yes: &str, _no: Option<&str>) -> Option<bool> {
        None
    }

    fn request_public_string(&self, _description: &str) -> Option<String> {
        None
    }

    fn request_passphrase(&self, description: &str) -> Option<SecretString> {
        self.0.as_ref()?.passphrase(description)
    }
}
