//! Changing variables of a dotenv document with every other byte kept:
//! comments, blank lines, order, quoting and line endings of the lines not
//! changed stay exactly as they were. Used by `set`, `unset` and the git
//! merge driver.

use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use envcloak_providers::dotenv::{self, DotenvEntry};

use crate::error::CliError;

/// The document's assignments, read as `run` reads them (no outside
/// variables for `${VAR}`).
pub fn entries(text: &str, label: &str) -> Result<Vec<DotenvEntry>, CliError> {
    dotenv::parse(text, &|_| None)
        .map_err(|e| CliError::new(format!("{label} is not a valid dotenv document ({e})")).hint(conflict_hint(text)))
}

/// `text` with `name` set to `value`: its last assignment replaced (an
/// earlier duplicate is left alone, as it no longer counts), or a new line at
/// the end. Refused when python-dotenv would read the result back as
/// anything but `value` (e.g. a `${…}` it would expand).
pub fn set(text: &str, name: &str, value: &str, label: &str) -> Result<Zeroizing<String>, CliError> {
    let found = entries(text, label)?;
    let line = assignment(name, value);
    let mut out = Zeroizing::new(String::with_capacity(text.len() + line.len() + 1));
    match found.iter().rev().find(|e| e.name == name) {
        Some(entry) => {
            out.push_str(&text[..entry.span.start]);
            out.push_str(&line);
            let old = &text[entry.span.clone()];
            let ending = &old[old.trim_end_matches(['\r', '\n']).len()..];
            out.push_str(if ending.is_empty() && entry.span.end == text.len() { "" } else { line_ending(ending) });
            out.push_str(&text[entry.span.end..]);
        }
        None => {
            out.push_str(text);
            if !text.is_empty() && !text.ends_with('\n') && !text.ends_with('\r') {
                out.push_str(line_ending_of(text));
            }
            out.push_str(&line);
            out.push_str(line_ending_of(text));
        }
    }
    let reread = entries(&out, label)?;
    let kept = reread.iter().rev().find(|e| e.name == name).is_some_and(|e| e.value.expose_secret() == value);
    if !kept {
        return Err(CliError::new(format!(
            "the value for {name} cannot be stored so that python-dotenv reads it back unchanged; {label} was not changed"
        ))
        .hint("a value with `${` followed by `}` is expanded by python-dotenv and cannot be written literally"));
    }
    Ok(out)
}

/// `text` without any assignment of `names` (every duplicate, with its
/// line), and the names that were there.
pub fn unset(text: &str, names: &[String], label: &str) -> Result<(Zeroizing<String>, Vec<String>), CliError> {
    let found = entries(text, label)?;
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    let mut removed: Vec<String> = Vec::new();
    let mut copied = 0;
    for entry in found.iter().filter(|e| names.contains(&e.name)) {
        let start = line_start(text, entry.span.start);
        out.push_str(&text[copied..start]);
        copied = entry.span.end;
        if !removed.contains(&entry.name) {
            removed.push(entry.name.clone());
        }
    }
    out.push_str(&text[copied..]);
    Ok((out, removed))
}

/// `NAME=value` as python-dotenv reads it back: unquoted when the value is
/// plain, else double-quoted with `\\`, `\"`, `\n` and `\r` escaped.
pub fn assignment(name: &str, value: &str) -> Zeroizing<String> {
    let plain = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:/@+=,%~^".contains(&b))
        && !value.contains("${");
    let mut out = Zeroizing::new(String::with_capacity(name.len() + value.len() * 2 + 3));
    out.push_str(name);
    out.push('=');
    if plain {
        out.push_str(value);
        return out;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Where the line holding `pos` starts, when only indentation precedes
/// `pos` on it; else `pos`.
fn line_start(text: &str, pos: usize) -> usize {
    let start = text[..pos].rfind(['\n', '\r']).map_or(0, |i| i + 1);
    if text[start..pos].chars().all(|c| c == ' ' || c == '\t') {
        start
    } else {
        pos
    }
}

/// The line ending a document uses (its first one), `\n` when it has none.
fn line_ending_of(text: &str) -> &'static str {
    match text.find(['\n', '\r']) {
        Some(i) => line_ending(&text[i..]),
        None => "\n",
    }
}

fn line_ending(text: &str) -> &'static str {
    if text.starts_with("\r\n") {
        "\r\n"
    } else if text.starts_with('\r') {
        "\r"
    } else {
        "\n"
    }
}

/// A hint for a document that still holds merge conflict markers.
pub fn conflict_hint(text: &str) -> String {
    if text.lines().any(|l| l.starts_with("<<<<<<< ") || l.starts_with(">>>>>>> ")) {
        "it holds merge conflict markers (<<<<<<< … >>>>>>>): resolve them with envcloak edit FILE".into()
    } else {
        "fix it with envcloak edit FILE".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_ok(text: &str, name: &str, value: &str) -> String {
        set(text, name, value, "test.env").unwrap().to_string()
    }

    #[test]
    fn set_replaces_the_last_assignment_and_keeps_every_other_byte() {
        let text = "# top\r\nA=1 # note\r\n  B='x'\r\nexport C=\"multi\r\nline\"\r\nB=2\r\n";
        assert_eq!(
            set_ok(text, "B", "new"),
            "# top\r\nA=1 # note\r\n  B='x'\r\nexport C=\"multi\r\nline\"\r\nB=new\r\n"
        );
        assert_eq!(set_ok(text, "C", "one"), "# top\r\nA=1 # note\r\n  B='x'\r\nC=one\r\nB=2\r\n");
        assert_eq!(set_ok(text, "D", "a b"), format!("{text}D=\"a b\"\r\n"));
        assert_eq!(set_ok("A=1", "A", "2"), "A=2");
        assert_eq!(set_ok("A=1", "B", "2"), "A=1\nB=2\n");
        assert_eq!(set_ok("", "B", "2"), "B=2\n");
    }

    #[test]
    fn values_read_back_exactly() {
        for value in ["", "plain", "with space", "q\"uote's", "back\\slash\\n", "two\nlines\r\n", "tab\there #x", "é😀"]
        {
            let text = set_ok("A=1\n", "V", value);
            let read = dotenv::parse(&text, &|_| None).unwrap();
            assert!(read.iter().any(|e| e.name == "V" && e.value.expose_secret() == value), "value {value:?}");
        }
    }

    #[test]
    fn a_value_python_dotenv_would_expand_is_refused() {
        let error = set("A=1\n", "V", "x${A}y", "test.env").unwrap_err().to_string();
        assert!(error.contains("V") && !error.contains("x${A}y"), "{error}");
    }

    #[test]
    fn unset_removes_every_assignment_with_its_line() {
        let text = "A=1\n  B=2 # c\n# keep\nB='3'\nC=4";
        let (out, removed) = unset(text, &["B".into(), "Z".into()], "t").unwrap();
        assert_eq!(&*out, "A=1\n# keep\nC=4");
        assert_eq!(removed, ["B"]);
        let (out, _) = unset(text, &["C".into()], "t").unwrap();
        assert_eq!(&*out, "A=1\n  B=2 # c\n# keep\nB='3'\n");
    }
}
