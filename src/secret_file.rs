//! `as = "file"` secrets: the variable holds a path to a file with the value,
//! and nothing is left on disk.
//!
//! On Linux the file is a sealed memfd that the child inherits; the variable
//! holds `/dev/fd/N`. It lives in RAM only, works when envcloak execs the
//! child, and disappears with the last process holding it, even after
//! SIGKILL. Elsewhere the file is a 0600 file in a private 0700 folder under
//! the temporary folder, removed when the child exits or envcloak is
//! interrupted; that needs supervised mode.

use std::io::Write;

use envcloak_providers::SecretValue;

use crate::error::CliError;

/// The secret files of one run; dropping it closes (or removes) them.
#[derive(Default)]
pub struct SecretFiles {
    #[cfg(target_os = "linux")]
    memfds: Vec<std::os::fd::OwnedFd>,
    #[cfg(not(target_os = "linux"))]
    folder: Option<tempdir::PrivateFolder>,
}

impl SecretFiles {
    /// Whether these files outlive an exec of the child (memfds do; files in
    /// a folder need envcloak to stay and remove them).
    pub fn survive_exec(&self) -> bool {
        cfg!(target_os = "linux")
    }

    /// Writes `value` to a new secret file for variable `name` and returns
    /// the path the child should read.
    #[cfg(target_os = "linux")]
    pub fn add(&mut self, name: &str, value: &SecretValue) -> Result<String, CliError> {
        use nix::fcntl::{fcntl, FcntlArg, SealFlag};
        use nix::sys::memfd::{memfd_create, MFdFlags};
        use std::os::fd::AsRawFd;

        let failed = |what: &str, e: &dyn std::fmt::Display| {
            CliError::new(format!("cannot create the secret file for {name}: {what}: {e}"))
        };
        // Not close-on-exec: the child inherits it.
        let fd = memfd_create(format!("envcloak:{name}").as_str(), MFdFlags::MFD_ALLOW_SEALING)
            .map_err(|e| failed("memfd_create", &e))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(value.expose().as_bytes()).map_err(|e| failed("write", &e))?;
        let seals = SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_SEAL;
        fcntl(&file, FcntlArg::F_ADD_SEALS(seals)).map_err(|e| failed("seal", &e))?;
        let fd = std::os::fd::OwnedFd::from(file);
        let path = format!("/dev/fd/{}", fd.as_raw_fd());
        self.memfds.push(fd);
        Ok(path)
    }

    /// Writes `value` to a new secret file for variable `name` and returns
    /// the path the child should read.
    #[cfg(not(target_os = "linux"))]
    pub fn add(&mut self, name: &str, value: &SecretValue) -> Result<String, CliError> {
        let folder = match &mut self.folder {
            Some(folder) => folder,
            None => self.folder.insert(tempdir::PrivateFolder::create()?),
        };
        folder.write(name, value)
    }
}

#[cfg(not(target_os = "linux"))]
mod tempdir {
    //! A private folder of secret files, removed on drop.

    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    use std::path::PathBuf;

    use envcloak_providers::SecretValue;

    use crate::error::CliError;

    pub struct PrivateFolder(PathBuf);

    impl PrivateFolder {
        pub fn create() -> Result<Self, CliError> {
            let base = std::env::temp_dir();
            for attempt in 0..16u32 {
                let path = base.join(format!("envcloak-{}-{attempt}", std::process::id()));
                match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                    Ok(()) => return Ok(Self(path)),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => {
                        return Err(CliError::new(format!("cannot create a private folder in {}: {e}", base.display())))
                    }
                }
            }
            Err(CliError::new("cannot create a private folder for secret files"))
        }

        pub fn write(&self, name: &str, value: &SecretValue) -> Result<String, CliError> {
            let path = self.0.join(name);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .and_then(|mut f| f.write_all(value.expose().as_bytes()).map(|()| f));
            match &mut file {
                Ok(_) => Ok(path.display().to_string()),
                Err(e) => Err(CliError::new(format!("cannot write the secret file for {name}: {e}"))),
            }
        }
    }

    impl Drop for PrivateFolder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn memfd_holds_the_value_and_is_sealed() {
        let mut files = SecretFiles::default();
        let value = SecretValue::new("fake-file-secret\nline two".into());
        let path = files.add("TLS_KEY", &value).unwrap();
        assert!(path.starts_with("/dev/fd/"));
        let read = std::fs::read_to_string(&path).unwrap();
        assert!(read == value.expose(), "memfd content differs");
        let rewrite = std::fs::OpenOptions::new().write(true).open(&path).and_then(|mut f| f.write_all(b"x"));
        assert!(rewrite.is_err(), "sealed memfd must refuse writes");
    }
}
