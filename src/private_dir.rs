//! A private folder for plaintext that must briefly exist as a file: mode
//! 0700, on tmpfs where there is one (`/dev/shm`), an unguessable name
//! (`envcloak-PURPOSE-PID-RANDOM`, made and created new by `tempfile`, so a
//! pre-placed folder or link is never used), files in it 0600, and
//! everything overwritten with zeros and removed when it is dropped. Folders
//! that a killed envcloak of the same user left behind (its PID gone) are
//! removed the same way when a new one is made.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// Random characters in a folder's name (letters and digits: about 71 bits).
const RANDOM_CHARS: usize = 12;

/// The folder; its files are overwritten with zeros on drop, then it is
/// removed with them.
pub struct PrivateDir(tempfile::TempDir);

impl PrivateDir {
    /// Creates `envcloak-PURPOSE-PID-RANDOM` in `/dev/shm` (RAM) or else the
    /// temporary folder, after removing stale ones.
    pub fn create(purpose: &str) -> Result<Self, CliError> {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        remove_stale(&base);
        tempfile::Builder::new()
            .prefix(&format!("envcloak-{purpose}-{}-", std::process::id()))
            .rand_bytes(RANDOM_CHARS)
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&base)
            .map(Self)
            .map_err(|e| CliError::new(format!("cannot create a private folder in {}: {e}", base.display())))
    }

    /// Writes a new 0600 file `name` holding `bytes`; returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, CliError> {
        let path = self.0.path().join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut file| file.write_all(bytes))
            .map_err(|e| CliError::new(format!("cannot write the private file {}: {e}", path.display())))?;
        Ok(path)
    }

    /// Writes `bytes` over the file `name` of the folder (in place, then cut
    /// to their length), or creates it if the editor removed it.
    pub fn overwrite(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, CliError> {
        let path = self.0.path().join(name);
        let existing = std::fs::OpenOptions::new().write(true).custom_flags(nix::libc::O_NOFOLLOW).open(&path);
        match existing {
            Ok(mut file) => file
                .write_all(bytes)
                .and_then(|()| file.set_len(bytes.len() as u64))
                .map_err(|e| CliError::new(format!("cannot write the private file {}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return self.write(name, bytes),
            Err(e) => return Err(CliError::new(format!("cannot write the private file {}: {e}", path.display()))),
        }
        Ok(path)
    }
}

impl Drop for PrivateDir {
    /// Overwrites the files; the `TempDir` dropped next removes the folder.
    fn drop(&mut self) {
        wipe(self.0.path());
    }
}

/// Overwrites every file in `folder` with zeros.
fn wipe(folder: &Path) {
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
            wipe(&entry.path());
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_are_private_overwritten_and_removed() {
        let dir = PrivateDir::create("test").unwrap();
        let folder = dir.0.path().to_path_buf();
        let path = dir.write("secret.env", b"fake-private-value").unwrap();
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(&path), 0o600);
        assert!(dir.write("secret.env", b"again").is_err(), "an existing file is never reused");
        // A second link to the file shows what the drop left in its data.
        let witness =
            tempfile::Builder::new().make_in(folder.parent().unwrap(), |link| std::fs::hard_link(&path, link)).unwrap();
        drop(dir);
        assert!(!folder.exists(), "the folder must be gone");
        assert_eq!(std::fs::read(witness.path()).unwrap(), [0; 18], "the file was not overwritten with zeros");
    }

    #[test]
    fn names_are_new_and_unguessable() {
        let prefix = format!("envcloak-test-{}-", std::process::id());
        let dirs: Vec<PrivateDir> = (0..8).map(|_| PrivateDir::create("test").unwrap()).collect();
        let mut randoms: Vec<String> = dirs
            .iter()
            .map(|dir| {
                assert_eq!(mode(dir.0.path()), 0o700);
                let name = dir.0.path().file_name().unwrap().to_str().unwrap();
                let random = name.strip_prefix(&prefix).unwrap_or_else(|| panic!("{name}: not envcloak-test-PID-…"));
                assert!(random.len() == RANDOM_CHARS && random.bytes().all(|b| b.is_ascii_alphanumeric()), "{name}");
                random.to_owned()
            })
            .collect();
        randoms.sort();
        randoms.dedup();
        assert_eq!(randoms.len(), dirs.len(), "a name was made twice");
    }

    #[test]
    fn stale_folders_are_removed_and_live_ones_kept() {
        let one = PrivateDir::create("test").unwrap();
        let base = one.0.path().parent().unwrap().to_path_buf();
        // A folder of a process that no longer exists (PID 2^22 + 1 is above
        // Linux's maximum).
        let stale = base.join(format!("envcloak-test-4194305-{}", std::process::id()));
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join("secret.env"), b"fake-stale").unwrap();
        let two = PrivateDir::create("test").unwrap();
        assert!(!stale.exists(), "a stale folder was left");
        assert!(one.0.path().exists() && two.0.path().exists(), "a live folder was removed");
    }
}
