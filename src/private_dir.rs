//! A private folder for plaintext that must briefly exist as a file: mode
//! 0700, on tmpfs where there is one (`/dev/shm`), an unguessable name
//! (`envcloak-PURPOSE-PID-RANDOM`, created new, so a pre-placed folder or
//! link is never used), files in it 0600, and everything overwritten with
//! zeros and removed when it is dropped. Folders that a killed envcloak of
//! the same user left behind (its PID gone) are removed the same way when a
//! new one is made.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// The folder; removed with its contents on drop.
pub struct PrivateDir(PathBuf);

impl PrivateDir {
    /// Creates `envcloak-PURPOSE-PID-RANDOM` in `/dev/shm` (RAM) or else the
    /// temporary folder, after removing stale ones.
    pub fn create(purpose: &str) -> Result<Self, CliError> {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        remove_stale(&base);
        let failed = |e: &dyn std::fmt::Display| {
            CliError::new(format!("cannot create a private folder in {}: {e}", base.display()))
        };
        for _ in 0..16 {
            let random = crate::random::hex(16).map_err(|e| failed(&e))?;
            let path = base.join(format!("envcloak-{purpose}-{}-{random}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Self(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(failed(&e)),
            }
        }
        Err(failed(&"16 names were taken"))
    }

    /// Writes a new 0600 file `name` holding `bytes`; returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, CliError> {
        let path = self.0.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut file| file.write_all(bytes))
            .map_err(|e| CliError::new(format!("cannot write the private file {}: {e}", path.display())))?;
        Ok(path)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        wipe_and_remove(&self.0);
    }
}

/// Overwrites every file in `folder` with zeros, then removes it.
fn wipe_and_remove(folder: &Path) {
    if let Ok(entries) = std::fs::read_dir(folder) {
        for entry in entries.flatten() {
            let len = entry.metadata().map_or(0, |m| m.len());
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(entry.path())
                .and_then(|mut file| {
                    file.write_all(&vec![0; usize::try_from(len).unwrap_or(0)]).and_then(|()| file.sync_data())
                });
        }
    }
    let _ = std::fs::remove_dir_all(folder);
}

/// Removes the private folders in `base` that belong to this user and to an
/// envcloak that no longer runs (killed before it could clean up).
fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else { return };
    let me = nix::unistd::geteuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("envcloak-").and_then(|rest| rest.split('-').nth(1)) else { continue };
        let Ok(pid) = pid.parse::<i32>() else { continue };
        let ours = entry.metadata().is_ok_and(|m| m.is_dir() && m.uid() == me);
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH);
        if ours && gone {
            wipe_and_remove(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_private_and_removed() {
        let dir = PrivateDir::create("test").unwrap();
        let folder = dir.0.clone();
        let path = dir.write("secret.env", b"fake-private-value").unwrap();
        assert_eq!(std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(dir.write("secret.env", b"again").is_err(), "an existing file is never reused");
        drop(dir);
        assert!(!folder.exists(), "the folder must be gone");
    }

    #[test]
    fn names_are_unguessable_and_stale_folders_are_removed() {
        let one = PrivateDir::create("test").unwrap();
        let two = PrivateDir::create("test").unwrap();
        assert_ne!(one.0, two.0);
        let base = one.0.parent().unwrap().to_path_buf();
        // A folder of a process that no longer exists (PID 2^22 + 1 is above
        // Linux's maximum).
        let stale = base.join("envcloak-test-4194305-0000");
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join("secret.env"), b"fake-stale").unwrap();
        let three = PrivateDir::create("test").unwrap();
        assert!(!stale.exists(), "a stale folder was left");
        assert!(one.0.exists() && two.0.exists(), "a live folder was removed");
        drop((one, two, three));
    }
}
