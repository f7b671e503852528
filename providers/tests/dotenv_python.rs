//! Differential test: `envcloak_providers::dotenv::parse` against python-dotenv
//! itself, over every `.env` file of `tests/corpus/dotenv/`.
//!
//! For each file, python-dotenv reports every statement of the document
//! (`dotenv.parser.parse_stream`: parse errors, names without a value, and each
//! assignment with its value resolved by `dotenv.main.resolve_variables` like
//! `dotenv_values` does) and the final `dotenv_values(path)` mapping. `parse`
//! must refuse the first statement python-dotenv would skip or drop (or whose
//! value holds a NUL byte) with the matching error and line, and otherwise
//! produce the same entries, lines, values, and last-wins mapping.
//!
//! Without `python3` or the `dotenv` module the test is skipped, unless `CI`
//! is set to a true value, where it fails.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use envcloak_providers::dotenv::{parse, DotenvEntry, DotenvError};
use secrecy::ExposeSecret;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/corpus/dotenv");

/// The whole environment both parsers expand `${VAR}` from.
const ENV: &[(&str, &str)] = &[
    ("FROM_ENV", "outer"),
    ("EMPTY_ENV", ""),
    ("SPACED_ENV", "  two  words  "),
    ("DOC_OVERRIDE", "from-env"),
    ("UNICODE_ENV", "\u{fc}n\u{ef} \u{2713}"),
];

/// Variables passed through to python3 only so that it can find its modules;
/// the script removes them (and anything else not in `ENV`) from `os.environ`
/// before reading the file.
const PASS_THROUGH: &[&str] =
    &["PATH", "HOME", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYENV_ROOT", "PYENV_VERSION"];

/// Prints one line per statement and per final key; every string is UTF-8 in
/// hex behind an `x`, so values of any shape survive the trip.
const SCRIPT: &str = r#"
import os, re, sys
split = sys.argv.index("--")
keep = set(sys.argv[1:split])
for name in list(os.environ):
    if name not in keep:
        del os.environ[name]
from dotenv import dotenv_values
from dotenv.main import resolve_variables
from dotenv.parser import parse_stream

def h(s):
    return "x" + s.encode("utf-8").hex()

out = []
for number, path in enumerate(sys.argv[split + 1:]):
    out.append("file %d" % number)
    pairs = []
    with open(path, encoding="utf-8") as stream:
        for b in parse_stream(stream):
            # python-dotenv counts a statement from before its leading blank
            # lines; report the line where its text starts.
            line = b.original.line + re.match(r"\s*", b.original.string).group(0).count("\n")
            if b.error:
                out.append("error %d" % line)
            elif b.key is None:
                continue
            elif b.value is None:
                pairs.append((b.key, None))
                out.append("none %d %s" % (line, h(b.key)))
            else:
                pairs.append((b.key, b.value))
                value = resolve_variables(pairs, override=True)[b.key]
                out.append("entry %d %s %s" % (line, h(b.key), h(value)))
    for key, value in dotenv_values(path).items():
        out.append("final %s %s" % (h(key), "none" if value is None else h(value)))
print("\n".join(out))
"#;

fn lookup(name: &str) -> Option<String> {
    ENV.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
}

fn python() -> Command {
    let mut cmd = Command::new("python3");
    cmd.env_clear();
    for name in PASS_THROUGH {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd.envs(ENV.iter().copied());
    cmd
}

/// `Err(reason)` when python-dotenv cannot be used.
fn python_dotenv_version() -> Result<String, String> {
    let output = python()
        .args(["-c", "import importlib.metadata as m; print(m.version('python-dotenv'))"])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !output.status.success() {
        return Err("python3 cannot import python-dotenv (pip install python-dotenv)".into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false" | "no" | "off"))
}

enum Statement {
    Error { line: usize },
    NoValue { line: usize },
    Entry { line: usize, name: String, value: String },
}

struct PythonView {
    statements: Vec<Statement>,
    /// `dotenv_values(path)` in its order; `None` for a name without a value.
    last_wins: Vec<(String, Option<String>)>,
}

fn unhex(field: &str) -> String {
    let hex = field.strip_prefix('x').expect("hex field");
    let bytes: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit")).collect();
    String::from_utf8(bytes).expect("UTF-8 from python")
}

/// python-dotenv's view of every file, in order, from one python3 run.
fn run_python(paths: &[PathBuf]) -> Result<Vec<PythonView>, String> {
    let output = python()
        .arg("-c")
        .arg(SCRIPT)
        .args(ENV.iter().map(|(k, _)| OsString::from(k)))
        .arg("--")
        .args(paths)
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !output.status.success() {
        return Err(format!("python3 failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let stdout = String::from_utf8(output.stdout).map_err(|e| e.to_string())?;
    let mut views: Vec<PythonView> = Vec::new();
    for row in stdout.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = row.split(' ').collect();
        if fields[0] == "file" {
            views.push(PythonView { statements: Vec::new(), last_wins: Vec::new() });
            continue;
        }
        let view = views.last_mut().ok_or("output before the first file")?;
        let line = || fields[1].parse::<usize>().expect("line number");
        match fields[0] {
            "error" => view.statements.push(Statement::Error { line: line() }),
            "none" => view.statements.push(Statement::NoValue { line: line() }),
            "entry" => {
                view.statements.push(Statement::Entry { line: line(), name: unhex(fields[2]), value: unhex(fields[3]) })
            }
            "final" => view.last_wins.push((unhex(fields[1]), (fields[2] != "none").then(|| unhex(fields[2])))),
            _ => return Err("unexpected output from python3".into()),
        }
    }
    if views.len() != paths.len() {
        return Err(format!("python3 reported {} of {} files", views.len(), paths.len()));
    }
    Ok(views)
}

/// The error `parse` must return: the first statement python-dotenv skips
/// (parse error) or cannot load (no value, NUL byte).
fn expected_error(view: &PythonView) -> Option<DotenvError> {
    view.statements.iter().find_map(|s| match s {
        Statement::Error { line } => Some(DotenvError::Syntax { line: *line }),
        Statement::NoValue { line } => Some(DotenvError::MissingEquals { line: *line }),
        Statement::Entry { line, name, value } if value.contains('\0') => {
            Some(DotenvError::NulByte { line: *line, name: name.clone() })
        }
        Statement::Entry { .. } => None,
    })
}

/// Compares the entries with python-dotenv's; messages name keys, never values.
fn compare_entries(file: &str, view: &PythonView, got: &[DotenvEntry], failures: &mut Vec<String>) {
    let want: Vec<(usize, &str, &str)> = view
        .statements
        .iter()
        .filter_map(|s| match s {
            Statement::Entry { line, name, value } => Some((*line, name.as_str(), value.as_str())),
            _ => None,
        })
        .collect();
    let got_names: Vec<&str> = got.iter().map(|e| e.name.as_str()).collect();
    let want_names: Vec<&str> = want.iter().map(|w| w.1).collect();
    if got_names != want_names {
        failures.push(format!("{file}: entry names differ: parse {got_names:?}, python-dotenv {want_names:?}"));
        return;
    }
    for (entry, (line, name, value)) in got.iter().zip(&want) {
        if entry.line != *line {
            failures
                .push(format!("{file}: `{name}` starts on line {} for parse, {line} for python-dotenv", entry.line));
        }
        if entry.value.expose_secret() != *value {
            failures.push(format!("{file}: value of `{name}` (line {line}) differs"));
        }
    }

    // The caller lets the later duplicate win: that must be dotenv_values().
    let mut last_wins: Vec<(&str, &str)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for entry in got {
        let value = entry.value.expose_secret();
        match index.get(entry.name.as_str()) {
            Some(&i) => last_wins[i].1 = value,
            None => {
                index.insert(&entry.name, last_wins.len());
                last_wins.push((&entry.name, value));
            }
        }
    }
    let got_keys: Vec<&str> = last_wins.iter().map(|(k, _)| *k).collect();
    let want_keys: Vec<&str> = view.last_wins.iter().map(|(k, _)| k.as_str()).collect();
    if got_keys != want_keys {
        failures.push(format!("{file}: dotenv_values keys differ: parse {got_keys:?}, python-dotenv {want_keys:?}"));
        return;
    }
    for ((key, got), (_, want)) in last_wins.iter().zip(&view.last_wins) {
        if want.as_deref() != Some(*got) {
            failures.push(format!("{file}: dotenv_values value of `{key}` differs"));
        }
    }
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .unwrap_or_else(|e| panic!("cannot read {CORPUS}: {e}"))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "env"))
        .collect();
    files.sort();
    files
}

#[test]
fn parse_agrees_with_python_dotenv() {
    let version = match python_dotenv_version() {
        Ok(version) => version,
        Err(why) if ci() => panic!("CI is set but python-dotenv is unavailable: {why}"),
        Err(why) => {
            println!("skipping the python-dotenv differential test: {why}");
            return;
        }
    };

    let files = corpus_files();
    assert!(files.len() >= 41, "the corpus has only {} files", files.len());

    let mut failures = Vec::new();
    let mut refused = HashMap::<&'static str, usize>::new();
    let mut fifty_entries = None;
    let views = run_python(&files).unwrap_or_else(|e| panic!("{e}"));
    for (path, view) in files.iter().zip(&views) {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let result = parse(&text, &lookup);
        match (expected_error(view), result) {
            (Some(want), Err(got)) => {
                if want != got {
                    failures.push(format!("{file}: expected {want:?}, parse returned {got:?}"));
                }
                let kind = match want {
                    DotenvError::Syntax { .. } => "Syntax",
                    DotenvError::MissingEquals { .. } => "MissingEquals",
                    DotenvError::NulByte { .. } => "NulByte",
                    // python-dotenv has no size limit; no corpus file expands that far.
                    DotenvError::TooLong { .. } => "TooLong",
                };
                *refused.entry(kind).or_default() += 1;
            }
            (Some(want), Ok(entries)) => {
                failures.push(format!("{file}: expected {want:?}, parse returned {} entries", entries.len()))
            }
            (None, Err(got)) => {
                failures.push(format!("{file}: python-dotenv reads it cleanly, parse returned {got:?}"))
            }
            (None, Ok(entries)) => {
                if file == "fifty.env" {
                    fifty_entries = Some(entries.len());
                }
                compare_entries(&file, view, &entries, &mut failures);
            }
        }
    }

    assert!(failures.is_empty(), "parse disagrees with python-dotenv {version}:\n{}", failures.join("\n"));
    assert!(
        fifty_entries.is_some_and(|n| n >= 50),
        "fifty.env must parse cleanly with at least 50 entries (got {fifty_entries:?})"
    );
    for kind in ["Syntax", "MissingEquals", "NulByte"] {
        assert!(refused.contains_key(kind), "no corpus file exercises DotenvError::{kind}");
    }
}
