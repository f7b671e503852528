//! Which config files envcloak believes.
//!
//! A config decides where credentials go: its `[vault] address` receives the
//! user's `VAULT_TOKEN` (or a login with the variables it names), its
//! `[aws] endpoint_url` the AWS credential chain's signed requests. A config
//! the user never read (a freshly cloned repository's) must not decide that.
//! So, as `direnv allow` and `mise trust` do:
//!
//! - a config that would send credentials to an address the environment did
//!   not name, or that weakens TLS for it, is used only once trusted:
//!   `envcloak trust` records its path and SHA-256 in the user's config
//!   folder, and a changed byte needs trusting again;
//! - `ENVCLOAK_TRUST=1` trusts the config of this run (containers and scripts
//!   that ship their own config), and with `CI` true a config inside the
//!   checked-out repository is trusted, since the job runs that repository's
//!   code anyway;
//! - a config owned by another user, or writable by others (or by a group
//!   that is not the user's own), is refused unless trusted, with git's
//!   `safe.directory` reasoning: whoever can write it decides where the
//!   credentials go.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::CliError;

/// The variable that trusts the config of one run.
pub const TRUST_VAR: &str = "ENVCLOAK_TRUST";

/// Why a config needs trust: one line each, e.g. "Vault at
/// https://vault.example.com ([vault] address)".
pub type Reasons = Vec<String>;

/// The SHA-256 of a config's bytes, in hex.
pub fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `ENVCLOAK_TRUST` is set to a true value.
fn trusted_by_variable() -> bool {
    crate::env_flag::is_true(TRUST_VAR)
}

/// Whether `path` (with content `text`) was trusted with `envcloak trust`.
fn trusted_in_store(path: &Path, text: &str) -> bool {
    let Ok(path) = path.canonicalize() else { return false };
    let hash = digest(text);
    TrustStore::open().is_ok_and(|store| store.entries.iter().any(|(h, p)| *h == hash && *p == path))
}

/// Refuses a config that another user owns or could have written, unless
/// it is trusted.
pub fn check_owner(path: &Path, text: &str) -> Result<(), CliError> {
    let Ok(metadata) = std::fs::metadata(path) else { return Ok(()) };
    let problem = ownership_problem(&metadata);
    match problem {
        None => Ok(()),
        Some(_) if trusted_by_variable() || trusted_in_store(path, text) => Ok(()),
        Some((why, fix)) => Err(CliError::new(format!("refusing the config {}: {why}", path.display())).hint(
            format!(
                "whoever can write a config decides where your credentials go: {fix}, or after reading it run `envcloak trust {}`",
                path.display()
            ),
        )),
    }
}

/// What is wrong with a config's owner or mode, and the fix.
fn ownership_problem(metadata: &std::fs::Metadata) -> Option<(String, String)> {
    let me = nix::unistd::geteuid();
    if metadata.uid() != me.as_raw() {
        let owner = nix::unistd::User::from_uid(metadata.uid().into())
            .ok()
            .flatten()
            .map_or_else(|| format!("uid {}", metadata.uid()), |u| format!("{} (uid {})", u.name, metadata.uid()));
        return Some((format!("it is owned by {owner}, not by you"), "take ownership of it (chown)".into()));
    }
    let mode = metadata.permissions().mode();
    if mode & 0o002 != 0 {
        return Some((format!("any user can write it (mode {:04o})", mode & 0o7777), "chmod o-w it".into()));
    }
    if mode & 0o020 != 0 && !is_private_group(metadata.gid()) {
        return Some((
            format!("its group (gid {}) can write it (mode {:04o})", metadata.gid(), mode & 0o7777),
            "chmod g-w it".into(),
        ));
    }
    None
}

/// Whether `gid` is the user's private group: named like the user, with no
/// other member (the usual set-up behind a 002 umask).
fn is_private_group(gid: u32) -> bool {
    let uid = nix::unistd::geteuid();
    let (Ok(Some(user)), Ok(Some(group))) =
        (nix::unistd::User::from_uid(uid), nix::unistd::Group::from_gid(gid.into()))
    else {
        return false;
    };
    group.gid == user.gid && group.name == user.name && group.mem.iter().all(|m| *m == user.name)
}

/// Refuses to go on when the config `path` (content `text`) needs trust for
/// `reasons` and has none. `project_root` is where a CI job's checkout
/// starts.
pub fn require(path: &Path, text: &str, reasons: &Reasons, project_root: &Path) -> Result<(), CliError> {
    if reasons.is_empty() || trusted_by_variable() || trusted_in_store(path, text) {
        return Ok(());
    }
    if crate::env_flag::in_ci() && path.canonicalize().is_ok_and(|p| p.starts_with(project_root)) {
        crate::diag::note!("{} trusted: CI is set and it is inside {}", path.display(), project_root.display());
        return Ok(());
    }
    let changed = TrustStore::open().is_ok_and(|store| {
        path.canonicalize().is_ok_and(|canonical| store.entries.iter().any(|(_, p)| *p == canonical))
    });
    let message = if changed {
        format!("the config {} changed since it was trusted, and it would send credentials", path.display())
    } else {
        format!("the config {} is not trusted, and it would send credentials", path.display())
    };
    Err(CliError::new(message).details(reasons.iter().map(|r| format!("to {r}")).collect()).hint(format!(
        "nothing was contacted. Read the file; if those addresses are yours, run `envcloak trust {}` \
         (or name the address in VAULT_ADDR / AWS_ENDPOINT_URL, which needs no trust)",
        path.display()
    )))
}

/// The trusted configs: `$XDG_CONFIG_HOME/envcloak/trusted` (else
/// `~/.config/envcloak/trusted`), one `SHA256 PATH` line each.
pub struct TrustStore {
    file: PathBuf,
    entries: Vec<(String, PathBuf)>,
}

impl TrustStore {
    /// Reads the store (empty if there is none yet).
    pub fn open() -> Result<TrustStore, CliError> {
        let folder = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
            .ok_or_else(|| CliError::new("cannot find the config folder: HOME and XDG_CONFIG_HOME are unset"))?;
        let file = folder.join("envcloak").join("trusted");
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(CliError::new(format!("cannot read {}: {e}", file.display()))),
        };
        let entries = text
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(hash, path)| (hash.to_owned(), PathBuf::from(path)))
            .collect();
        Ok(TrustStore { file, entries })
    }

    /// Records `path` with the digest of `text`, replacing an older record.
    pub fn add(&mut self, path: &Path, text: &str) -> Result<(), CliError> {
        if path.to_string_lossy().contains('\n') {
            return Err(
                CliError::new("a config whose path holds a line break cannot be trusted").hint("rename its folder")
            );
        }
        self.entries.retain(|(_, p)| p != path);
        self.entries.push((digest(text), path.to_owned()));
        self.save()
    }

    /// Forgets `path`; whether it was there.
    pub fn remove(&mut self, path: &Path) -> Result<bool, CliError> {
        let before = self.entries.len();
        self.entries.retain(|(_, p)| p != path);
        let removed = self.entries.len() != before;
        if removed {
            self.save()?;
        }
        Ok(removed)
    }

    /// The trusted paths.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.entries.iter().map(|(_, p)| p.as_path())
    }

    /// Writes the store: a private folder, then a new file renamed over the
    /// old one.
    fn save(&self) -> Result<(), CliError> {
        let failed = |e: std::io::Error| CliError::new(format!("cannot write {}: {e}", self.file.display()));
        let folder = self.file.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(folder).map_err(failed)?;
        let mut text = String::new();
        for (hash, path) in &self.entries {
            text.push_str(&format!("{hash} {}\n", path.display()));
        }
        crate::atomic_file::replace(&self.file, text.as_bytes(), 0o600).map_err(failed)
    }
}

/// Where discovery stops and a CI job's checkout starts: the nearest folder
/// at or above `cwd` holding `.git`, else `cwd` itself.
pub fn project_root(cwd: &Path) -> PathBuf {
    let cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_owned());
    cwd.ancestors().find(|dir| dir.join(".git").exists()).unwrap_or(&cwd).to_owned()
}
