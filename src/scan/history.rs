//! The history of a git repository: every line that any commit on any ref
//! added, read from `git log -p --all --unified=0` as it streams. A secret
//! removed later is still in the history, so it is found in the commit that
//! added it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use super::{Finder, Hit};
use crate::error::CliError;

/// A secret on a line that a commit added.
pub struct CommitHit {
    /// The commit's full id.
    pub commit: String,
    /// The file, relative to the top of the repository.
    pub path: String,
    /// Where and what.
    pub hit: Hit,
}

/// The top folder of the git repository that holds `path`.
pub fn repository_of(path: &Path) -> Result<PathBuf, CliError> {
    let folder = if path.is_dir() {
        path
    } else {
        path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
    };
    let output = git(folder).args(["rev-parse", "--show-toplevel"]).stderr(Stdio::null()).output().map_err(no_git)?;
    if !output.status.success() {
        return Err(CliError::new(format!("--history: {} is not in a git repository", path.display()))
            .hint("run `git init` first, or leave out --history to search the files only"));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim_end_matches(['\n', '\r'])))
}

/// Searches every added line of every commit of `repository`; calls `found`
/// for each secret and returns how many commits were read.
pub fn search(repository: &Path, finder: &Finder, found: &mut dyn FnMut(CommitHit)) -> Result<usize, CliError> {
    let mut child = git(repository)
        .args([
            "-c",
            "core.quotePath=false",
            "log",
            "-p",
            "--all",
            "--text",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
        ])
        .args(["--unified=0", "--format=commit %H"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(no_git)?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut parser = DiffParser::default();
    let mut line = Zeroizing::new(Vec::new());
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(CliError::new(format!("cannot read the output of `git log`: {e}"))),
        }
        if let Some((number, added)) = parser.feed(&line) {
            for mut hit in finder.find(added) {
                hit.line = number;
                found(CommitHit { commit: parser.commit.clone(), path: parser.path.clone(), hit });
            }
        }
    }
    let status = child.wait().map_err(|e| CliError::new(format!("cannot wait for `git log`: {e}")))?;
    if !status.success() {
        return Err(CliError::new(format!("`git log` failed in {} ({status})", repository.display())));
    }
    Ok(parser.commits)
}

fn git(folder: &Path) -> Command {
    let mut command = Command::new("git");
    command.arg("-C").arg(folder);
    command
}

fn no_git(error: std::io::Error) -> CliError {
    CliError::new(format!("--history needs git, which cannot be run: {error}"))
        .hint("install git, or leave out --history")
}

/// Where `git log -p --unified=0` output is: which commit, which file, and
/// how many lines of the current hunk are still to come.
#[derive(Default)]
struct DiffParser {
    commit: String,
    commits: usize,
    path: String,
    /// The new-file line number of the next added line.
    next_line: usize,
    /// Added and removed lines still to come in the current hunk.
    added_left: usize,
    removed_left: usize,
}

impl DiffParser {
    /// Takes one line of output; for an added line, returns its line number
    /// in the new file and its text (without the `+` and the line end).
    fn feed<'l>(&mut self, line: &'l [u8]) -> Option<(usize, &'l [u8])> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if self.added_left > 0 || self.removed_left > 0 {
            match line.first() {
                Some(b'+') if self.added_left > 0 => {
                    self.added_left -= 1;
                    self.next_line += 1;
                    return Some((self.next_line - 1, &line[1..]));
                }
                Some(b'-') if self.removed_left > 0 => {
                    self.removed_left -= 1;
                    return None;
                }
                // "\ No newline at end of file"
                Some(b'\\') => return None,
                // Anything else ends the hunk early (it cannot, but be safe).
                _ => (self.added_left, self.removed_left) = (0, 0),
            }
        }
        if let Some(id) = line.strip_prefix(b"commit ") {
            self.commit = String::from_utf8_lossy(id).into_owned();
            self.commits += 1;
            self.path.clear();
        } else if let Some(path) = line.strip_prefix(b"+++ ") {
            let path = String::from_utf8_lossy(path);
            let path = path.trim_matches('"');
            self.path = path.strip_prefix("b/").unwrap_or(path).to_owned();
        } else if line.starts_with(b"@@ ") {
            (self.next_line, self.added_left, self.removed_left) = hunk_header(line);
        }
        None
    }
}

/// `@@ -OLD[,COUNT] +NEW[,COUNT] @@ …` as (first new line, added, removed).
fn hunk_header(line: &[u8]) -> (usize, usize, usize) {
    let text = String::from_utf8_lossy(line);
    let mut fields = text.split(' ').skip(1);
    let range = |field: Option<&str>, sign: char| -> (usize, usize) {
        let Some(field) = field.and_then(|f| f.strip_prefix(sign)) else { return (0, 0) };
        let (start, count) = field.split_once(',').unwrap_or((field, "1"));
        (start.parse().unwrap_or(0), count.parse().unwrap_or(0))
    };
    let (_, removed) = range(fields.next(), '-');
    let (start, added) = range(fields.next(), '+');
    (start, added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_lines_get_their_new_line_numbers() {
        let log = "commit aaaa\n\ndiff --git a/app.py b/app.py\nindex 1..2 100644\n--- a/app.py\n+++ b/app.py\n\
                   @@ -3,0 +4,2 @@ def f():\n+line four\n+line five\n@@ -10 +11 @@\n-old\n+++ not a header\n\
                   commit bbbb\n\ndiff --git a/x b/x\ndeleted file mode 100644\n--- a/x\n+++ /dev/null\n@@ -1 +0,0 @@\n-gone\n";
        let mut parser = DiffParser::default();
        let mut added = Vec::new();
        for line in log.split_inclusive('\n') {
            if let Some((number, text)) = parser.feed(line.as_bytes()) {
                added.push((
                    parser.commit.clone(),
                    parser.path.clone(),
                    number,
                    String::from_utf8_lossy(text).into_owned(),
                ));
            }
        }
        let expected = [
            ("aaaa", "app.py", 4, "line four"),
            ("aaaa", "app.py", 5, "line five"),
            ("aaaa", "app.py", 11, "++ not a header"),
        ];
        let expected: Vec<_> =
            expected.iter().map(|(c, p, n, t)| (c.to_string(), p.to_string(), *n, t.to_string())).collect();
        assert_eq!(added, expected);
        assert_eq!(parser.commits, 2);
    }
}
