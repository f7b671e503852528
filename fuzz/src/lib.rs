//! The properties the fuzz targets check, one function per target. Each takes
//! the raw fuzz input and panics when a property does not hold;
//! `tests/replay.rs` replays the committed seed corpora through the same
//! functions on stable Rust (`cargo test --manifest-path fuzz/Cargo.toml`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use envcloak::config::Config;
use envcloak::exit::Outcome;
use envcloak_providers::age_file::{self, Identities, PassphrasePrompt, MAX_SCRYPT_LOG_N};
use envcloak_providers::dotenv::{self, DotenvError};
use envcloak_providers::SecretRef;
use secrecy::ExposeSecret;

/// A value no input can produce by accident; it must never appear in an
/// error message.
const CANARY: &str = "fuzz-canary-value-93c1e7";
/// The name the canary is assigned to, on the first line of every document.
const CANARY_NAME: &str = "FUZZ_CANARY";

/// Dotenv documents: the canary line in front of the input never shows in an
/// error or `Debug` output; entries come in line order; and the final
/// name/value map, written out again as a dotenv document, parses back to
/// the same map.
pub fn dotenv(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.contains(CANARY) {
        return;
    }
    let document = format!("{CANARY_NAME}={CANARY}\n{text}");
    let lookup = |_: &str| -> Option<String> { None };
    let entries = match dotenv::parse(&document, &lookup) {
        Ok(entries) => entries,
        Err(e) => {
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(CANARY), "a dotenv error shows the canary value");
            let line = match &e {
                DotenvError::Syntax { line }
                | DotenvError::MissingEquals { line }
                | DotenvError::TooLong { line }
                | DotenvError::NulByte { line, .. } => *line,
            };
            assert!(line >= 2 && line <= lines(&document), "error line {line} is outside the document");
            return;
        }
    };
    assert!(!format!("{entries:?}").contains(CANARY), "Debug of the entries shows the canary value");
    assert_eq!(entries[0].name, CANARY_NAME);
    assert!(entries[0].value.expose_secret() == CANARY, "the canary line parsed to another value");
    assert!(entries.windows(2).all(|w| w[0].line <= w[1].line), "entries out of line order");
    assert!(entries.iter().all(|e| e.line >= 1 && e.line <= lines(&document)), "an entry line is outside the document");
    assert!(entries.iter().all(|e| !e.value.expose_secret().contains('\0')), "a value with a NUL byte was accepted");

    let mut expected: HashMap<&str, &str> = HashMap::new();
    for entry in &entries {
        expected.insert(&entry.name, entry.value.expose_secret());
    }
    // Only what the syntax can write back: a name that is not both quotable
    // and unquotable, a value ending in `\` (python-dotenv's quote regex
    // takes `\"` as an escaped quote) or holding `${` (expanded again) has
    // no exact dotenv form.
    expected.retain(|name, value| write_name(name).is_some() && !value.ends_with('\\') && !value.contains("${"));
    let mut written = String::new();
    for (name, value) in &expected {
        written.push_str(&write_name(name).unwrap_or_default());
        written.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => written.push_str("\\\\"),
                '"' => written.push_str("\\\""),
                '\r' => written.push_str("\\r"),
                c => written.push(c),
            }
        }
        written.push_str("\"\n");
    }
    let again = match dotenv::parse(&written, &lookup) {
        Ok(again) => again,
        Err(e) => panic!("the written document does not parse again: {e}"),
    };
    assert_eq!(again.len(), expected.len(), "a different number of entries after writing out");
    for entry in &again {
        assert!(
            expected.get(entry.name.as_str()) == Some(&entry.value.expose_secret()),
            "`{}` has another value after writing out",
            entry.name
        );
    }
}

/// How a name is written so python-dotenv reads it back: `'NAME'`, or bare
/// when it holds a `'` (a bare name runs up to `=`, `#` or whitespace).
fn write_name(name: &str) -> Option<String> {
    if !name.is_empty() && !name.contains('\'') {
        return Some(format!("'{name}'"));
    }
    let bare = !name.is_empty()
        && !name.starts_with('\'')
        && !name.contains(['=', '#'])
        && !name.chars().any(|c| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c));
    bare.then(|| name.to_owned())
}

/// Lines of `text` as the parser counts them (universal newlines).
fn lines(text: &str) -> usize {
    text.replace("\r\n", "\n").replace('\r', "\n").matches('\n').count() + 1
}

/// References: a parsed reference shows as written, its source's `Display`
/// plus `#KEY` parses back to the same source and key, and parsing is
/// deterministic (the same error for the same text).
pub fn reference(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    match SecretRef::parse(raw) {
        Ok(reference) => {
            assert_eq!(reference.to_string(), raw, "Display differs from the text parsed");
            assert_eq!(reference.as_str(), raw);
            let mut shown = reference.source.to_string();
            if let Some(key) = &reference.key {
                assert!(!key.is_empty(), "an empty #KEY was accepted");
                shown.push('#');
                shown.push_str(key);
            }
            let again = match SecretRef::parse(&shown) {
                Ok(again) => again,
                Err(e) => panic!("`{shown}` (the Display of a parsed source) does not parse: {e}"),
            };
            assert_eq!(again.source, reference.source, "the source differs after a round trip");
            assert_eq!(again.key, reference.key, "the key differs after a round trip");
            assert!(!reference.source.location.is_empty(), "an empty location was accepted");
        }
        Err(e) => {
            assert_eq!(SecretRef::parse(raw).err(), Some(e.clone()), "parsing is not deterministic");
            assert!(!e.to_string().is_empty());
        }
    }
}

/// `envcloak.toml`: every error points at `PATH:LINE:COLUMN` inside the text,
/// and every span a parsed config keeps can be used for an error message
/// (the plan reports problems at them).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = PathBuf::from("/fuzz/envcloak.toml");
    match Config::parse(path.clone(), text.to_owned()) {
        Ok(config) => {
            assert_eq!(config.dir, Path::new("/fuzz"));
            let mut spans = Vec::new();
            spans.extend(config.default_profile.iter().map(|(_, at)| at.clone()));
            for profile in &config.profiles {
                spans.extend(profile.extends.iter().map(|(_, at)| at.clone()));
                spans.extend(profile.imports.iter().map(|i| i.at.clone()));
                for entry in &profile.env {
                    assert!(!entry.reference.is_empty(), "env entry `{}` without a reference", entry.name);
                    spans.push(entry.at.clone());
                    spans.push(entry.name_at.clone());
                }
            }
            for at in spans {
                assert!(at.start <= at.end && at.end <= text.len(), "span {at:?} outside the text");
                located(&config.error(&at, "fuzz").message, text);
            }
        }
        Err(e) => {
            located(&e.message, text);
            assert_eq!(e.status, Outcome::Failed);
        }
    }
}

/// Checks that `message` starts with `/fuzz/envcloak.toml:LINE:COLUMN: ` and
/// that the position is inside `text`.
fn located(message: &str, text: &str) {
    let Some(rest) = message.strip_prefix("/fuzz/envcloak.toml:") else {
        panic!("an error that does not name the file: {message}");
    };
    let mut parts = rest.splitn(3, ':');
    let line: usize = parts.next().and_then(|l| l.parse().ok()).unwrap_or(0);
    let column: usize = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let lines = text.matches('\n').count() + 1;
    assert!(line >= 1 && line <= lines, "line {line} outside the file ({lines} lines): {message}");
    let longest = text.split('\n').map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(column >= 1 && column <= longest + 1, "column {column} outside the file: {message}");
    assert!(parts.next().is_some_and(|m| !m.trim().is_empty()), "an error without a message: {message}");
}

/// The corpus identity (tests/corpus/age/identity.txt): it opens the valid
/// seeds of the `age_file` target. A test key, public on purpose.
const AGE_IDENTITY: &str = include_str!("../../tests/corpus/age/identity.txt");
/// The post-quantum identity of the C2SP CCTV age vectors (public on
/// purpose): it opens the `cctv_hybrid*` seeds of the `age_file` target, the
/// age files of the suite's `hybrid*` vectors.
const AGE_PQ_IDENTITY: &str = "AGE-SECRET-KEY-PQ-1HZLGZUPT4ETPKDEV8HSGFDCYZ4E522W0A7PU2LHT8EH9W6YLNC3SW78XKG";
/// The value every age seed's plaintext holds.
const AGE_CANARY: &str = "fake-corpus-canary-5520";

/// Refuses to give a passphrase, and fails when asked for one for a file
/// whose scrypt work factor is beyond what envcloak accepts: such a file
/// must be refused before anyone is asked.
struct CheckingPrompt(Vec<u8>);

impl PassphrasePrompt for CheckingPrompt {
    fn passphrase(&self, _description: &str) -> Option<secrecy::SecretString> {
        if let Some(log_n) = scrypt_work_factor(&self.0) {
            assert!(log_n <= u64::from(MAX_SCRYPT_LOG_N), "asked for a passphrase for work factor 2^{log_n}");
        }
        None
    }
}

/// The work factor of a binary file's `-> scrypt SALT LOG_N` stanza.
fn scrypt_work_factor(file: &[u8]) -> Option<u64> {
    let header_end = file.windows(4).position(|w| w == b"\n---").unwrap_or(file.len());
    let header = &file[..header_end];
    let line = header.split(|b| *b == b'\n').find_map(|line| line.strip_prefix(b"-> scrypt "))?;
    let digits = line.split(|b| *b == b' ').nth(1)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(std::str::from_utf8(digits).ok()?.parse().unwrap_or(u64::MAX))
}

/// Age files (binary or armored): decrypting with the corpus identity and
/// a post-quantum one never panics; a passphrase is never asked for a work factor beyond the limit;
/// every error names the file and never holds plaintext (the canary of the
/// valid seeds); whatever decrypts goes through the dotenv properties.
pub fn age_file(data: &[u8]) {
    static IDENTITY: OnceLock<age::x25519::Identity> = OnceLock::new();
    let identity = IDENTITY.get_or_init(|| {
        let line = AGE_IDENTITY.lines().find(|l| l.starts_with("AGE-SECRET-KEY-")).expect("an identity line");
        age::x25519::Identity::from_str(line).expect("the corpus identity parses")
    });
    static PQ_IDENTITY: OnceLock<age_file::pq::HybridIdentity> = OnceLock::new();
    let pq_identity = PQ_IDENTITY.get_or_init(|| AGE_PQ_IDENTITY.parse().expect("the CCTV identity parses"));
    let identities = Identities {
        list: vec![Box::new(identity.clone()), Box::new(pq_identity.clone())],
        tried: vec!["fuzz identities".into()],
        locked: Vec::new(),
        fingerprint_key: Default::default(),
    };
    let prompt: Arc<dyn PassphrasePrompt> = Arc::new(CheckingPrompt(data.to_vec()));
    match age_file::decrypt(data, "fuzz.age", &identities, Some(&prompt)) {
        Ok(plaintext) => {
            if let Ok(text) = std::str::from_utf8(&plaintext) {
                if !text.contains(CANARY) {
                    dotenv(text.as_bytes());
                }
            }
        }
        Err(e) => {
            assert!(e.reason.contains("fuzz.age"), "an age error that does not name the file: {}", e.reason);
            let shown = format!("{} {:?}", e.reason, e.hint);
            assert!(!shown.contains(AGE_CANARY), "an age error shows plaintext");
        }
    }
}
