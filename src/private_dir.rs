//! A private folder for plaintext that must briefly exist as a file: mode
//! 0700, on tmpfs where there is one (`/dev/shm`), files in it 0600, and
//! everything overwritten with zeros and removed when it is dropped.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// The folder; removed with its contents on drop.
pub struct PrivateDir(PathBuf);

impl PrivateDir {
    /// Creates `envcloak-PURPOSE-PID-N` in `/dev/shm` (RAM) or else the
    /// temporary folder.
    pub fn create(purpose: &str) -> Result<Self, CliError> {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        for attempt in 0..16 {
            let path = base.join(format!("envcloak-{purpose}-{}-{attempt}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Self(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(CliError::new(format!("cannot create a private folder in {}: {e}", base.display())))
                }
            }
        }
        Err(CliError::new(format!("cannot create a private folder in {}", base.display())))
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
        if let Ok(entries) = std::fs::read_dir(&self.0) {
            for entry in entries.flatten() {
                let len = entry.metadata().map_or(0, |m| m.len());
                let _ = std::fs::OpenOptions::new().write(true).open(entry.path()).and_then(|mut file| {
                    file.write_all(&vec![0; usize::try_from(len).unwrap_or(0)]).and_then(|()| file.sync_data())
                });
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
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
}
