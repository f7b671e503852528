//! `as = "file"` secrets: the variable holds a path to a file with the value,
//! and nothing is left on disk.
//!
//! On Linux the file is a sealed memfd that the child inherits; the variable
//! holds `/dev/fd/N`. It lives in RAM only, works when envcloak execs the
//! child, and disappears with the last process holding it, even after
//! SIGKILL. Elsewhere the file is a 0600 file in a private 0700 folder
//! ([`crate::private_dir`]), removed when the child exits (envcloak forwards
//! signals and waits for the child, so also when it is interrupted); that
//! needs supervised mode.
//!
//! With `on_change = "signal:NAME"` the files are replaceable: envcloak
//! keeps a writable descriptor (the memfd is not sealed against writes) and
//! writes a new value over the old one before it sends the signal, so a
//! child that re-reads `/dev/fd/N` on that signal gets the new value.

use std::io::Write;

use envcloak_providers::SecretValue;

use crate::error::CliError;

/// The secret files of one run; dropping it closes (or removes) them.
#[derive(Default)]
pub struct SecretFiles {
    #[cfg(target_os = "linux")]
    memfds: Vec<std::os::fd::OwnedFd>,
    /// Each replaceable file's variable and writable descriptor.
    #[cfg(target_os = "linux")]
    writers: Vec<(String, std::fs::File)>,
    #[cfg(not(target_os = "linux"))]
    folder: Option<crate::private_dir::PrivateDir>,
    /// Whether [`SecretFiles::replace`] may write new values over the files.
    replaceable: bool,
}

impl SecretFiles {
    /// Files whose values [`SecretFiles::replace`] can change in place.
    pub fn replaceable() -> Self {
        Self { replaceable: true, ..Self::default() }
    }

    /// Writes `value` over the file of variable `name`, at the same path.
    #[cfg(target_os = "linux")]
    pub fn replace(&self, name: &str, value: &SecretValue) -> Result<(), CliError> {
        use std::os::unix::fs::FileExt;
        let (_, file) = self
            .writers
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| CliError::new(format!("the secret file of {name} cannot be replaced in place")))?;
        let bytes = value.expose().as_bytes();
        file.set_len(0)
            .and_then(|()| file.write_all_at(bytes, 0))
            .map_err(|e| CliError::new(format!("cannot replace the secret file of {name}: {e}")))
    }

    /// Writes `value` over the file of variable `name`, at the same path.
    #[cfg(not(target_os = "linux"))]
    pub fn replace(&self, name: &str, value: &SecretValue) -> Result<(), CliError> {
        match (&self.folder, self.replaceable) {
            (Some(folder), true) => folder.overwrite(name, value.expose().as_bytes()).map(|_| ()),
            _ => Err(CliError::new(format!("the secret file of {name} cannot be replaced in place"))),
        }
    }

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
        nix::sys::stat::fchmod(&fd, nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR)
            .map_err(|e| failed("chmod 600", &e))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(value.expose().as_bytes()).map_err(|e| failed("write", &e))?;
        // Sealed unless envcloak is to write new values over it.
        let seals = if self.replaceable {
            SealFlag::F_SEAL_SEAL
        } else {
            SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_SEAL
        };
        fcntl(&file, FcntlArg::F_ADD_SEALS(seals)).map_err(|e| failed("seal", &e))?;
        // The child gets a read-only descriptor at offset 0 (a new open of
        // the same memfd), not the read-write one at the end of the value.
        let read_only = std::fs::File::open(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(|e| failed("reopen read-only", &e))?;
        if self.replaceable {
            // envcloak's own writable descriptor: never the child's.
            fcntl(&file, FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).map_err(|e| failed("fcntl", &e))?;
            self.writers.push((name.to_owned(), file));
        } else {
            drop(file);
        }
        // std opens close-on-exec; the child must inherit this one.
        fcntl(&read_only, FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty())).map_err(|e| failed("fcntl", &e))?;
        let fd = std::os::fd::OwnedFd::from(read_only);
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
            None => self.folder.insert(crate::private_dir::PrivateDir::create("files")?),
        };
        Ok(folder.write(name, value.expose().as_bytes())?.display().to_string())
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
        assert!(files.replace("TLS_KEY", &value).is_err(), "a sealed file was replaced");
    }

    #[test]
    fn a_replaceable_file_gets_the_new_value_at_the_same_path() {
        let mut files = SecretFiles::replaceable();
        let path = files.add("TLS_KEY", &SecretValue::new("fake-first-value-long".into())).unwrap();
        files.replace("TLS_KEY", &SecretValue::new("fake-second".into())).unwrap();
        assert!(std::fs::read(&path).unwrap() == b"fake-second", "the file does not hold the new value");
    }

    #[test]
    fn the_inherited_descriptor_is_read_only_at_the_start() {
        use std::io::Read;
        use std::os::fd::AsRawFd;

        let mut files = SecretFiles::default();
        let value = SecretValue::new("fake-inherited-secret".into());
        let path = files.add("KEY", &value).unwrap();
        let fd: i32 = path.trim_start_matches("/dev/fd/").parse().unwrap();
        let held = &files.memfds[0];
        assert_eq!(held.as_raw_fd(), fd);
        let flags = nix::fcntl::fcntl(held, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_eq!(flags & libc::O_ACCMODE, libc::O_RDONLY, "the descriptor is not read-only");
        let inherit = nix::fcntl::fcntl(held, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_eq!(inherit & libc::FD_CLOEXEC, 0, "the child would not inherit it");
        let mut read = String::new();
        let mut file = std::fs::File::from(held.try_clone().unwrap());
        file.read_to_string(&mut read).unwrap();
        assert!(read == value.expose(), "reading the descriptor itself does not start at the value");
    }
}
