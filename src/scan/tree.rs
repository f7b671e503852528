//! The files to search: every regular file under the given paths, in a
//! stable order, leaving out what `.gitignore`, `.ignore` and git's exclude
//! files leave out (unless told not to) and the `.git` folder itself. Hidden
//! files such as `.env` are searched. In a git repository, a tracked file is
//! searched even when an ignore file matches it (git still commits it). A
//! FIFO, socket or device is reported as not searched, never skipped quietly;
//! a symlink is not followed (git stores the link, not its target).

use std::path::{Path, PathBuf};

use ignore::WalkBuilder;

/// A file to search, or why a path could not be walked.
pub type Entry = Result<PathBuf, String>;

/// The files under `paths`; with `respect_ignore`, what ignore files exclude
/// is skipped (a file named explicitly is always searched).
pub fn files(paths: &[PathBuf], respect_ignore: bool) -> impl Iterator<Item = Entry> {
    let mut builder = WalkBuilder::new(&paths[0]);
    for path in &paths[1..] {
        builder.add(path);
    }
    builder
        .standard_filters(respect_ignore)
        .hidden(false)
        // A folder copied out of a repository (or not committed yet) keeps
        // its .gitignore rules.
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|entry| entry.file_name() != ".git");
    let mut walked = std::collections::BTreeSet::new();
    let mut entries: Vec<Entry> = builder
        .build()
        .filter_map(|entry| match entry {
            Ok(entry) => match entry.file_type() {
                Some(kind) if kind.is_file() => {
                    let path = tidy(entry.into_path());
                    walked.insert(path.clone());
                    Some(Ok(path))
                }
                Some(kind) if kind.is_dir() || kind.is_symlink() => None,
                _ => Some(Err(format!("{}: not a regular file (a FIFO, socket or device)", shown(entry.path())))),
            },
            Err(error) => Some(Err(error.to_string())),
        })
        .collect();
    if respect_ignore {
        let tracked = tracked_files(paths).into_iter().filter(|p| !walked.contains(p) && p.is_file());
        entries.extend(tracked.map(Ok));
    }
    entries.into_iter()
}

/// The files git tracks under `paths` (empty outside a repository or
/// without git).
fn tracked_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let output = std::process::Command::new("git")
        .args(["ls-files", "-z", "--cached", "--"])
        .args(paths)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => output
            .stdout
            .split(|b| *b == 0)
            .filter(|name| !name.is_empty())
            .map(|name| tidy(PathBuf::from(std::ffi::OsStr::from_bytes(name))))
            .collect(),
        _ => Vec::new(),
    }
}

/// `./app.py` as `app.py`.
fn tidy(path: PathBuf) -> PathBuf {
    match path.strip_prefix(".") {
        Ok(rest) if !rest.as_os_str().is_empty() => rest.to_path_buf(),
        _ => path,
    }
}

/// How a path is shown in a report: control characters escaped, so a file
/// name cannot add a line or move the cursor.
pub fn shown(path: &Path) -> String {
    crate::error::printable(&path.to_string_lossy()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_hidden_files_respects_gitignore_and_skips_dot_git() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [".env", "app.py", "ignored.log", ".git/config", "sub/x.txt"] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "x").unwrap();
        }
        std::fs::write(root.join(".gitignore"), "*.log\n").unwrap();
        let found = |respect: bool, paths: &[PathBuf]| -> Vec<String> {
            files(paths, respect)
                .map(|entry| entry.unwrap().strip_prefix(root).unwrap().to_string_lossy().into_owned())
                .collect()
        };
        let all = [root.to_path_buf()];
        assert_eq!(found(true, &all), [".env", ".gitignore", "app.py", "sub/x.txt"]);
        assert_eq!(found(false, &all), [".env", ".gitignore", "app.py", "ignored.log", "sub/x.txt"]);
        // A file named on the command line is searched even when ignored.
        assert_eq!(found(true, &[root.join("ignored.log")]), ["ignored.log"]);
    }
}
