//! `envcloak scan`: search files, and optionally git history, for the
//! profile's secret values and their encoded forms; report `path:line: NAME`,
//! never a value.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::cli::ScanArgs;
use crate::error::CliError;
use crate::exit::Outcome;
use crate::scan::{dotenv_files, history, tree, Finder, Hit, MIN_SEARCHED_LEN};

use super::Context;

/// Files larger than this are not read (and are reported as skipped).
const MAX_FILE_LEN: u64 = 256 * 1024 * 1024;

/// What was searched and found, for the closing summary.
#[derive(Default)]
struct Tally {
    files: usize,
    unreadable: usize,
    commits: Option<usize>,
    findings: usize,
    files_with_findings: BTreeSet<String>,
}

/// Resolves the profile, searches, prints the findings; exit 1 when there
/// are any.
pub fn scan(context: &Context, args: &ScanArgs) -> Result<Outcome, CliError> {
    let super::ResolvedRun { plan, resolution, .. } = context.resolve(&args.mappings)?;
    if resolution.has_required_failure() {
        return Err(super::failures_error(&plan, &resolution, "cannot scan")
            .hint("scan searches for the values themselves, so every secret must resolve"));
    }
    super::warn_skipped(&plan, &resolution);
    // A composed value's parts are searched for on their own too.
    let finder = Finder::new(
        resolution
            .vars
            .iter()
            .flat_map(|v| std::iter::once(&v.value).chain(&v.parts).map(|value| (v.name.as_str(), value.expose()))),
    );
    // The values now live only inside the automaton.
    drop(resolution);
    let names: Vec<&str> = finder.searched().into_iter().chain(finder.too_short()).collect();
    let too_short = finder.too_short();
    if !too_short.is_empty() {
        crate::diag::note!("not searched for (shorter than {MIN_SEARCHED_LEN} bytes): {}", too_short.join(", "));
    }

    let paths = if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths.clone() };
    let mut tally = Tally::default();
    let mut out = std::io::stdout().lock();
    for entry in tree::files(&paths, !args.no_ignore) {
        match entry {
            Ok(path) => search_file(&path, &finder, &names, &mut tally, &mut out),
            Err(reason) => not_searched(&mut tally, &finder.masked(&reason)),
        }
    }
    if args.history {
        let repository = history::repository_of(&paths[0])?;
        let commits = history::search(&repository, &finder, &mut |found| {
            let commit = &found.commit[..found.commit.len().min(12)];
            let path = finder.masked(&crate::error::printable(&found.path));
            let line = finding(&path, &found.hit, &format!("commit {commit}"));
            // Reporting stops at a closed stdout; the summary still counts.
            let _ = out.write_all(line.as_bytes());
            tally.findings += 1;
            tally.files_with_findings.insert(found.path);
        })?;
        tally.commits = Some(commits);
    }
    out.flush().ok();
    summarize(&tally, finder.searched().len(), too_short.len());
    Ok(if tally.findings > 0 {
        Outcome::Found
    } else if tally.unreadable > 0 {
        // Not "clean": something it was asked to search was not searched.
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

/// A path that was not searched: said even with `-q` (a hook that reads only
/// the exit status still fails), and counted.
fn not_searched(tally: &mut Tally, reason: &str) {
    tally.unreadable += 1;
    eprintln!("envcloak: error: not searched: {reason}");
}

/// Searches one file for values, and a dotenv file for definitions.
fn search_file(path: &Path, finder: &Finder, names: &[&str], tally: &mut Tally, out: &mut dyn Write) {
    let escaped = tree::shown(path);
    // A file named after a secret is a finding, and its name is shown masked.
    let shown = finder.masked(&escaped);
    let text = match read(path) {
        Ok(text) => text,
        Err(reason) => return not_searched(tally, &format!("{shown}: {reason}")),
    };
    tally.files += 1;
    let mut lines: Vec<String> = finder
        .find(escaped.as_bytes())
        .iter()
        .map(|hit| format!("{shown}: {} (in the file name)\n", hit.name))
        .collect();
    lines.extend(finder.find(&text).iter().map(|hit| finding(&shown, hit, "")));
    if dotenv_files::is_plaintext_dotenv(path) {
        for (line, name) in dotenv_files::definitions(&text, names) {
            lines.push(format!("{shown}:{line}: {name} (defined in a plaintext dotenv file)\n"));
        }
    }
    if !lines.is_empty() {
        tally.findings += lines.len();
        tally.files_with_findings.insert(shown);
    }
    for line in lines {
        // A closed stdout (`| head`) ends the report, not the scan's verdict.
        let _ = out.write_all(line.as_bytes());
    }
}

/// The file's bytes, in a buffer that is wiped when dropped.
fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if len > MAX_FILE_LEN {
        return Err(format!("larger than {} MiB, skipped", MAX_FILE_LEN >> 20));
    }
    let mut text = Zeroizing::new(Vec::with_capacity(usize::try_from(len).unwrap_or(0)));
    file.read_to_end(&mut text).map_err(|e| e.to_string())?;
    Ok(text)
}

/// `path:line: NAME`, with the form and `extra` in parentheses when there
/// is something to say.
fn finding(path: &str, hit: &Hit, extra: &str) -> String {
    let mut notes: Vec<&str> = Vec::new();
    if hit.encoding != crate::mask::Encoding::Plain {
        notes.push(hit.encoding.label());
    }
    if !extra.is_empty() {
        notes.push(extra);
    }
    let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join(", ")) };
    format!("{path}:{}: {}{notes}\n", hit.line, hit.name)
}

fn summarize(tally: &Tally, searched: usize, too_short: usize) {
    if tally.unreadable > 0 {
        eprintln!("envcloak: error: {} could not be searched", plural(tally.unreadable, "path"));
    }
    if !crate::diag::enabled(crate::diag::Level::Warn) {
        return;
    }
    let mut what = plural(tally.files, "file");
    if let Some(commits) = tally.commits {
        what += &format!(" and {}", plural(commits, "commit"));
    }
    let mut secrets = plural(searched, "secret");
    if too_short > 0 {
        secrets += &format!(" ({too_short} shorter than {MIN_SEARCHED_LEN} bytes not searched; -v names them)");
    }
    let verdict = match tally.findings {
        0 => "no secret found".to_owned(),
        n => format!("{} in {}", plural(n, "finding"), plural(tally.files_with_findings.len(), "file")),
    };
    eprintln!("envcloak scan: {verdict}; searched {what} for {secrets}");
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}
