//! Byte searches, `env -0` parsing, and finding files left behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Parses `env -0` output.
pub fn parse_env0(bytes: &[u8]) -> BTreeMap<String, String> {
    bytes
        .split(|b| *b == 0)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let text = String::from_utf8(entry.to_vec()).expect("environment entry is UTF-8");
            let (name, value) = text.split_once('=').expect("NAME=value");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// Regular files under `roots` (not following symlinks) that contain
/// `needle`; under `recent_only` roots only files changed since `since`.
pub fn files_containing(roots: &[(&Path, bool)], needle: &[u8], since: SystemTime) -> Vec<PathBuf> {
    fn walk(dir: &Path, recent_only: bool, needle: &[u8], since: SystemTime, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else { continue };
            if meta.is_dir() {
                walk(&entry.path(), recent_only, needle, since, found);
            } else if meta.is_file() && meta.len() < 16 << 20 {
                if recent_only && meta.modified().map_or(true, |m| m < since) {
                    continue;
                }
                if std::fs::read(entry.path()).is_ok_and(|bytes| contains(&bytes, needle)) {
                    found.push(entry.path());
                }
            }
        }
    }
    let mut found = Vec::new();
    for (root, recent_only) in roots {
        walk(root, *recent_only, needle, since, &mut found);
    }
    found
}
