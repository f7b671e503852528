//! Replacing a file's content so that no reader sees half of it and no one
//! else's file is hit: the bytes go to a new file with an unguessable name
//! (made and created exclusively by `tempfile`, so a pre-placed symlink is
//! not followed) in the same folder, are synced, and the new file is renamed
//! over the old (a symlink is replaced, not followed) and the folder synced.
//! The result has the given mode whatever the old file's was. A FIFO or a
//! device (`/dev/stdout`, `/dev/null`) is written in place, never replaced,
//! and a FIFO nobody reads is an error, not a wait.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Writes `bytes` to `path` as described above, with `mode` for a new file.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| is_special(&m.file_type())) {
        return open_special(path).and_then(|mut f| f.write_all(bytes));
    }
    let name = path.file_name().ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // `.NAME.RANDOM.tmp`: hidden, and recognisable if a crash leaves it.
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    // Removed on drop until it is persisted.
    let mut temporary = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(folder)?;
    temporary.write_all(bytes)?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|e| e.error)?;
    // The rename reaches the disk with the folder. Best effort: the file is
    // already replaced, and a folder without read permission cannot be opened.
    let _ = std::fs::File::open(folder).and_then(|f| f.sync_all());
    Ok(())
}

/// A FIFO or a device: written in place.
pub fn is_special(kind: &std::fs::FileType) -> bool {
    use std::os::unix::fs::FileTypeExt;
    kind.is_fifo() || kind.is_char_device() || kind.is_block_device()
}

/// Opens a FIFO or device for writing without waiting for a reader (a FIFO
/// nobody reads fails with ENXIO) and without following a symlink; the
/// returned file blocks again for its writes.
pub fn open_special(path: &Path) -> std::io::Result<std::fs::File> {
    let file = OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW).open(path)?;
    let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL)?;
    let blocking = nix::fcntl::OFlag::from_bits_truncate(flags) - nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(blocking))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    use super::*;

    #[test]
    fn replaces_with_the_new_mode_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        replace(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_given_mode_wins_both_ways_and_the_old_mode_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        for (old, new) in [(0o600, 0o644), (0o644, 0o600), (0o755, 0o600)] {
            std::fs::write(&path, b"old").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(old)).unwrap();
            replace(&path, b"new", new).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, new, "over {old:o}");
        }
    }

    #[test]
    fn a_failed_replace_leaves_the_target_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("taken");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"keep").unwrap();
        assert!(replace(&target, b"new", 0o600).is_err(), "a folder was replaced");
        assert_eq!(std::fs::read(target.join("inside")).unwrap(), b"keep");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a temporary was left");
    }

    #[test]
    fn a_fifo_without_a_reader_is_an_error_not_a_wait() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let error = replace(&fifo, b"x", 0o600).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(nix::libc::ENXIO));
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced");
    }

    #[test]
    fn a_device_is_written_in_place() {
        replace(Path::new("/dev/null"), b"x", 0o600).unwrap();
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    }

    #[test]
    fn a_symlink_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        replace(&link, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(&link).unwrap(), b"new");
    }
}
