//! What a backend module provides. Each backend (`age_file`, `vault`, `aws`)
//! is one module of this crate, behind its cargo feature, with one
//! [`BackendModule`]: its reference scheme and query rules, its config
//! section, its environment variables and bootstrap credentials, and its
//! [`Provider`]. The rest of envcloak knows backends only through
//! [`crate::registry`], this trait and [`Provider`].

use std::any::Any;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::SecretString;
use serde::de::DeserializeOwned;

use crate::{FetchError, Provider, RefError};

/// One backend: the rules of its references and how to configure it.
pub trait BackendModule: Send + Sync + 'static {
    /// The URL scheme of its references (`vault` for `vault://`), also its
    /// name in logs, metrics and the audit log.
    fn scheme(&self) -> &'static str;

    /// Its name in prose ("AWS Secrets Manager").
    fn title(&self) -> &'static str;

    /// Whether it reads files on this machine (no network; it may ask for a
    /// passphrase on the terminal).
    fn is_local(&self) -> bool {
        false
    }

    /// Whether a reference without `#KEY` names one value (an AWS
    /// SecretString) rather than a set of keys (a dotenv file, a KV secret).
    fn has_whole_values(&self) -> bool {
        false
    }

    /// Checks the location of a reference (what comes before `?` and `#`).
    fn check_location(&self, location: &str) -> Result<(), RefError>;

    /// The query parameters it takes, in one sentence for errors
    /// ("vault:// references take only ?version=N").
    fn query_rule(&self) -> &'static str;

    /// Checks one `?NAME=VALUE` of a reference; an unknown name or a bad
    /// value is a [`RefError::BadQuery`].
    fn check_selector(&self, name: &str, value: &str) -> Result<(), RefError>;

    /// The location as the provider reads it: the same text, or (for files)
    /// a path made absolute against `base`, the config's folder.
    fn place(&self, location: &str, _base: &Path) -> String {
        location.to_owned()
    }

    /// The name of its config section (`[vault]`).
    fn section(&self) -> &'static str;

    /// Its settings from its config section (`None` when the file has none,
    /// or there is no file); relative paths are relative to `dir`.
    fn configure(&self, section: Option<&Section<'_>>, dir: &Path) -> Result<Box<dyn BackendConfig>, SectionError>;
}

/// A backend's settings for a run, as the config file gave them; what the
/// file leaves unset, the backend's usual variables decide when asked.
pub trait BackendConfig: Send + Sync {
    /// Where it connects and which setting named the address (a variable,
    /// or `[section] field`); `None` for a local backend.
    fn destination(&self) -> Option<Destination> {
        None
    }

    /// What the config file decides about where credentials go: each is a
    /// reason the file must be trusted before it is used.
    fn trust_reasons(&self) -> Vec<String> {
        Vec::new()
    }

    /// Variables that carry credentials for envcloak itself; the command
    /// does not get them unless `--keep` names them.
    fn bootstrap_credentials(&self) -> Vec<String>;

    /// The provider of one run.
    fn provider(&self, run: &RunContext) -> Result<Arc<dyn Provider>, FetchError>;

    /// The settings themselves, for commands that are specific to the
    /// backend (the age tools read `[age] recipients_file`).
    fn as_any(&self) -> &dyn Any;
}

/// Where a network backend connects, and which setting named the address.
pub struct Destination {
    /// The address.
    pub address: String,
    /// `VAULT_ADDR`, `[vault] address`, …
    pub from: &'static str,
}

impl Destination {
    /// Whether the config file named the address (rather than a variable or
    /// the backend's default).
    pub fn from_file(&self) -> bool {
        self.from.starts_with('[')
    }
}

/// Asks the user for a passphrase (on a terminal); `None` where nobody can be
/// asked. Given by the CLI so providers never touch the terminal themselves.
pub trait PassphrasePrompt: Send + Sync {
    /// Prompts with `description` and returns what was typed.
    fn passphrase(&self, description: &str) -> Option<SecretString>;
}

/// Which variables of envcloak's environment `${VAR}` in a document may
/// read (the rest count as unset).
pub type Expandable = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Prints a warning the way the CLI does (respecting `-q`).
pub type Warn = Arc<dyn Fn(&str) + Send + Sync>;

/// What the CLI gives a provider for one run.
pub struct RunContext {
    /// When the run gives up (its `--timeout`).
    pub deadline: tokio::time::Instant,
    /// Asks for passphrases, where there is a terminal.
    pub prompt: Option<Arc<dyn PassphrasePrompt>>,
    /// Which variables `${VAR}` may read.
    pub expandable: Expandable,
    /// Where warnings go.
    pub warn: Warn,
}

/// A handle on a backend of the registry: compared, hashed and ordered by
/// its place in [`crate::registry`], shown as its scheme.
#[derive(Clone, Copy)]
pub struct Backend(&'static dyn BackendModule);

impl Backend {
    /// The handle of `module`.
    pub const fn new(module: &'static dyn BackendModule) -> Self {
        Self(module)
    }

    /// The backend's module.
    pub fn module(self) -> &'static dyn BackendModule {
        self.0
    }

    /// The URL scheme of its references.
    pub fn scheme(self) -> &'static str {
        self.0.scheme()
    }

    /// Its short name for messages, logs and the audit log (the scheme).
    pub fn name(self) -> &'static str {
        self.0.scheme()
    }

    /// Its name in prose.
    pub fn title(self) -> &'static str {
        self.0.title()
    }

    /// See [`BackendModule::is_local`].
    pub fn is_local(self) -> bool {
        self.0.is_local()
    }

    fn position(self) -> usize {
        crate::registry::position(self.scheme())
    }
}

impl PartialEq for Backend {
    fn eq(&self, other: &Self) -> bool {
        self.scheme() == other.scheme()
    }
}

impl Eq for Backend {}

impl Hash for Backend {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.scheme().hash(state);
    }
}

impl PartialOrd for Backend {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Backend {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.position().cmp(&other.position())
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A config section as parsed, with the byte spans of its parts.
pub type Section<'i> = toml::Spanned<toml::de::DeValue<'i>>;

/// Why a config section was refused, and where in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionError {
    /// What is wrong.
    pub message: String,
    /// The bytes of the file it is about.
    pub span: Option<Range<usize>>,
}

/// Reads `[name]` into `T` with serde (its defaults when the file has no
/// such section); an error names the section and the key, keeps the position,
/// and never repeats a value other than an unknown choice.
pub fn read_section<T: DeserializeOwned + Default>(
    name: &str,
    section: Option<&Section<'_>>,
) -> Result<T, SectionError> {
    let Some(section) = section else { return Ok(T::default()) };
    T::deserialize(toml::de::ValueDeserializer::from(section.clone())).map_err(|e| {
        let span = e.span().unwrap_or_else(|| section.span());
        let place = match key_at(section, &span) {
            Some(key) => format!("[{name}] `{key}`"),
            None => format!("[{name}]"),
        };
        SectionError { message: section_message(name, &place, e.message().trim_end()), span: Some(span) }
    })
}

/// The dotted key whose value sits at `span` inside `section`, if any.
fn key_at(section: &Section<'_>, span: &Range<usize>) -> Option<String> {
    let toml::de::DeValue::Table(table) = section.get_ref() else { return None };
    table.iter().find_map(|(key, value)| {
        if value.span() == *span {
            return Some(key.get_ref().to_string());
        }
        key_at(value, span).map(|rest| format!("{}.{rest}", key.get_ref()))
    })
}

/// Rewords serde's messages the way the rest of the config reader words
/// them, and drops the offending value (it may be a misplaced secret).
fn section_message(name: &str, place: &str, serde_message: &str) -> String {
    if let Some(rest) = serde_message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        return format!("unknown key `{field}` in [{name}] (expected one of: {})", quoted_words(expected));
    }
    if let Some(rest) = serde_message.strip_prefix("unknown variant `") {
        let (choice, expected) = rest.split_once('`').unwrap_or((rest, ""));
        return format!("{place} must be one of {} (got `{choice}`)", quoted_words(expected));
    }
    if let Some(rest) = serde_message.strip_prefix("missing field `") {
        let field = rest.trim_end_matches('`');
        return format!("{place} needs `{field}`");
    }
    if let Some(rest) = serde_message.strip_prefix("invalid type: ") {
        if let Some((found, expected)) = rest.split_once(", expected ") {
            let found = found.split([' ', '`', '"']).next().unwrap_or(found);
            let expected = if expected == "a boolean" { "true or false" } else { expected };
            return format!("{place} must be {expected}, not {found}");
        }
    }
    format!("{place}: {serde_message}")
}

/// `a`, `b` or `c` → a, b, c
fn quoted_words(list: &str) -> String {
    list.split('`').skip(1).step_by(2).collect::<Vec<_>>().join(", ")
}

/// Expands a leading `~/` and makes relative paths relative to `base`.
pub fn expand_path(text: &str, base: &Path) -> PathBuf {
    if let Some(rest) = text.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    base.join(text)
}

/// A variable's value, unless unset or blank.
pub fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::{read_section, Section};

    #[derive(serde::Deserialize, Default, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        region: Option<String>,
        batch: Option<bool>,
        auth: Option<Auth>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(tag = "method", rename_all = "lowercase", deny_unknown_fields)]
    #[allow(dead_code)]
    enum Auth {
        Token,
        Kubernetes { role: String },
    }

    fn message(text: &str) -> String {
        let table = toml::de::DeTable::parse(text).expect("valid TOML");
        let section: Section<'_> = toml::Spanned::new(0..text.len(), toml::de::DeValue::Table(table.into_inner()));
        read_section::<Sample>("aws", Some(&section)).expect_err("refused").message
    }

    #[test]
    fn messages_name_the_key_and_never_the_value() {
        assert_eq!(message("regoin = 'x'"), "unknown key `regoin` in [aws] (expected one of: region, batch, auth)");
        assert_eq!(message("batch = 'hidden'"), "[aws] `batch` must be true or false, not string");
        assert_eq!(message("region = 3"), "[aws] `region` must be a string, not integer");
        assert_eq!(
            message("auth = { method = 'ldap' }"),
            "[aws] `auth.method` must be one of token, kubernetes (got `ldap`)"
        );
        assert_eq!(message("auth = { method = 'kubernetes' }"), "[aws] `auth` needs `role`");
        assert_eq!(message("auth = {}"), "[aws] `auth` needs `method`");
        assert_eq!(
            message("[auth]\nmethod = 'ldap'"),
            "[aws] `auth.method` must be one of token, kubernetes (got `ldap`)"
        );
    }
}
