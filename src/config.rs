//! `envcloak.toml`: discovery, parsing into typed sections, and errors that
//! point at file, line and column.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

pub use envcloak_providers::backend::expand_path;
use envcloak_providers::registry;

use crate::backends::Backends;
use crate::error::CliError;
use crate::supervision::{self, SupervisionKeys};

/// The keys a `[profiles.NAME]` table may have.
const PROFILE_KEYS: &[&str] = &["extends", "import", "env", "watch", "on_change", "stop_signal", "stop_grace"];

/// The file name looked for in the current folder and its parents.
pub const FILE_NAME: &str = "envcloak.toml";

/// A byte range in the config file.
pub type Span = Range<usize>;

/// A parsed `envcloak.toml`.
pub struct Config {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its folder: relative paths in it are relative to this.
    pub dir: PathBuf,
    text: String,
    /// `default_profile` and where it is.
    pub default_profile: Option<(String, Span)>,
    /// Each backend's settings, from its section (`[age]`, `[vault]`, …).
    pub backends: Backends,
    /// `[profiles.*]` in file order.
    pub profiles: Vec<Profile>,
}

/// One `[profiles.NAME]` table.
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// `extends = "other"`.
    pub extends: Option<(String, Span)>,
    /// `import = [...]` in order.
    pub imports: Vec<ImportEntry>,
    /// `[profiles.NAME.env]` in file order.
    pub env: Vec<EnvEntry>,
    /// `watch`, `on_change`, `stop_signal`, `stop_grace`.
    pub supervision: SupervisionKeys,
}

/// One entry of `import`: `"REF"` or `{ from = "REF", prefix = "P_" }`.
pub struct ImportEntry {
    /// The reference as written.
    pub reference: String,
    /// Prepended to every imported name.
    pub prefix: String,
    /// Where the entry is.
    pub at: Span,
}

/// One entry of `env`: `NAME = "REF"` or `NAME = { ref = "REF", optional = true, as = "file" }`.
pub struct EnvEntry {
    /// The variable name.
    pub name: String,
    /// Where the name is.
    pub name_at: Span,
    /// The reference as written.
    pub reference: String,
    /// Where the value is.
    pub at: Span,
    /// A failure skips the variable instead of failing the run.
    pub optional: bool,
    /// `as = "file"`: the variable holds a path to a file with the value.
    pub as_file: bool,
}

impl Config {
    /// Finds the config: `explicit` if given (it must exist), else
    /// `envcloak.toml` in `cwd` or the nearest parent, stopping at the
    /// repository root (a folder holding `.git`) or the home folder; `None`
    /// if there is none. `vet` sees the path and text before they are parsed
    /// and may refuse them (the CLI refuses a config another user owns or
    /// could have written).
    pub fn discover(
        explicit: Option<&Path>,
        cwd: &Path,
        vet: impl FnOnce(&Path, &str) -> Result<(), CliError>,
    ) -> Result<Option<Config>, CliError> {
        let Some(path) = Config::locate(explicit, cwd)? else { return Ok(None) };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display())))?;
        vet(&path, &text)?;
        Config::parse(path, text).map(Some)
    }

    /// The path [`Config::discover`] reads, without reading it.
    pub fn locate(explicit: Option<&Path>, cwd: &Path) -> Result<Option<PathBuf>, CliError> {
        match explicit {
            Some(path) if !path.is_file() => {
                Err(CliError::new(format!("config file {} does not exist", path.display()))
                    .hint("check --config / ENVCLOAK_CONFIG"))
            }
            Some(path) => Ok(Some(cwd.join(path))),
            None => Ok(search_folders(cwd).map(|dir| dir.join(FILE_NAME)).find(|p| p.is_file())),
        }
    }

    /// The file's text, as read.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Parses `text`, read from `path`.
    pub fn parse(path: PathBuf, text: String) -> Result<Config, CliError> {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let reader = Reader { path: &path, dir: &dir, text: &text };
        let root =
            DeTable::parse(&text).map_err(|e| reader.error(&e.span().unwrap_or(0..0), e.message().trim_end()))?;
        let parsed = reader.root(root.get_ref())?;
        drop(root);
        Ok(Config {
            default_profile: parsed.default_profile,
            backends: parsed.backends,
            profiles: parsed.profiles,
            path,
            dir,
            text,
        })
    }

    /// The profile called `name`.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// The names of all profiles, for "did you mean" messages.
    pub fn profile_names(&self) -> String {
        if self.profiles.is_empty() {
            return "none defined".into();
        }
        self.profiles.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// An error located at `at`.
    pub fn error(&self, at: &Span, message: &str) -> CliError {
        located_error(&self.path, &self.text, at, message)
    }
}

/// `cwd` and its parents, up to and including the first that is a
/// repository root (holds `.git`) or the home folder: a config above those
/// belongs to someone or something else.
fn search_folders(cwd: &Path) -> impl Iterator<Item = &Path> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut done = false;
    cwd.ancestors().take_while(move |dir| {
        if done {
            return false;
        }
        done = dir.join(".git").exists() || home.as_deref() == Some(*dir);
        true
    })
}

fn located_error(path: &Path, text: &str, at: &Span, message: &str) -> CliError {
    let before = &text[..at.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    CliError::new(format!("{}:{line}:{column}: {message}", path.display()))
}

/// What the top level of the file holds, before it becomes a [`Config`].
struct Parsed {
    default_profile: Option<(String, Span)>,
    backends: Backends,
    profiles: Vec<Profile>,
}

/// Walks the parsed document. Spans index `text`.
struct Reader<'a> {
    path: &'a Path,
    dir: &'a Path,
    text: &'a str,
}

impl Reader<'_> {
    fn error(&self, at: &Span, message: &str) -> CliError {
        located_error(self.path, self.text, at, message)
    }

    fn root(&self, root: &DeTable<'_>) -> Result<Parsed, CliError> {
        let sections: Vec<&str> = registry::built().map(|b| b.module().section()).collect();
        let mut default_profile = None;
        let mut profiles = Vec::new();
        for (key, value) in root {
            match key.get_ref().as_ref() {
                "default_profile" => default_profile = Some((self.string(value, "default_profile")?, value.span())),
                "profiles" => {
                    for (name, profile) in self.table(value, "[profiles]")? {
                        profiles.push(self.profile(name, profile)?);
                    }
                }
                name if sections.contains(&name) => {
                    self.table(value, &format!("[{name}]"))?;
                }
                other => {
                    let allowed: Vec<&str> =
                        ["default_profile"].into_iter().chain(sections.iter().copied()).chain(["profiles"]).collect();
                    return Err(self.unknown(key, other, "the top level", &allowed));
                }
            }
        }
        let section = |name: &str| root.get(name);
        let backends =
            Backends::configure(section, self.dir).map_err(|e| self.error(&e.span.unwrap_or(0..0), &e.message))?;
        Ok(Parsed { default_profile, backends, profiles })
    }

    fn profile(
        &self,
        name: &Spanned<toml::de::DeString<'_>>,
        value: &Spanned<DeValue<'_>>,
    ) -> Result<Profile, CliError> {
        let where_ = format!("[profiles.{}]", name.get_ref());
        let mut profile = Profile {
            name: name.get_ref().to_string(),
            extends: None,
            imports: Vec::new(),
            env: Vec::new(),
            supervision: SupervisionKeys::default(),
        };
        for (key, value) in self.table(value, &where_)? {
            match key.get_ref().as_ref() {
                "extends" => profile.extends = Some((self.string(value, "extends")?, value.span())),
                "import" => {
                    let DeValue::Array(items) = value.get_ref() else {
                        return Err(self.error(
                            &value.span(),
                            "`import` must be a list, e.g. import = [\"age://secrets/dev.env.age\"]",
                        ));
                    };
                    for item in items {
                        profile.imports.push(self.import(item)?);
                    }
                }
                "env" => {
                    for (name, entry) in self.table(value, &format!("[profiles.{}.env]", profile.name))? {
                        profile.env.push(self.env_entry(name, entry)?);
                    }
                }
                "watch" => {
                    profile.supervision.watch = Some(match value.get_ref() {
                        DeValue::Boolean(on) => on.then_some(supervision::DEFAULT_WATCH),
                        _ => Some(self.parsed(value, "watch", supervision::parse_interval)?),
                    });
                }
                "on_change" => {
                    profile.supervision.on_change =
                        Some(self.parsed(value, "on_change", supervision::parse_on_change)?);
                }
                "stop_signal" => {
                    profile.supervision.stop_signal =
                        Some(self.parsed(value, "stop_signal", supervision::parse_signal)?);
                }
                "stop_grace" => {
                    profile.supervision.stop_grace = Some(self.parsed(value, "stop_grace", crate::duration::parse)?);
                }
                other => return Err(self.unknown(key, other, &where_, PROFILE_KEYS)),
            }
        }
        Ok(profile)
    }

    fn import(&self, item: &Spanned<DeValue<'_>>) -> Result<ImportEntry, CliError> {
        let mut entry = ImportEntry { reference: String::new(), prefix: String::new(), at: item.span() };
        match item.get_ref() {
            DeValue::String(reference) => entry.reference = reference.to_string(),
            DeValue::Table(table) => {
                for (key, value) in table {
                    match key.get_ref().as_ref() {
                        "from" => entry.reference = self.string(value, "from")?,
                        "prefix" => entry.prefix = self.string(value, "prefix")?,
                        other => return Err(self.unknown(key, other, "an import entry", &["from", "prefix"])),
                    }
                }
                if entry.reference.is_empty() {
                    return Err(self.error(
                        &item.span(),
                        "import entry has no `from`, e.g. { from = \"vault://secret/app\", prefix = \"APP_\" }",
                    ));
                }
            }
            _ => {
                return Err(self.error(
                    &item.span(),
                    "an import entry is a reference string or { from = \"REF\", prefix = \"P_\" }",
                ))
            }
        }
        Ok(entry)
    }

    fn env_entry(
        &self,
        name: &Spanned<toml::de::DeString<'_>>,
        value: &Spanned<DeValue<'_>>,
    ) -> Result<EnvEntry, CliError> {
        let mut entry = EnvEntry {
            name: name.get_ref().to_string(),
            name_at: name.span(),
            reference: String::new(),
            at: value.span(),
            optional: false,
            as_file: false,
        };
        match value.get_ref() {
            DeValue::String(reference) => entry.reference = reference.to_string(),
            DeValue::Table(table) => {
                for (key, field) in table {
                    match key.get_ref().as_ref() {
                        "ref" => entry.reference = self.string(field, "ref")?,
                        "optional" => entry.optional = self.boolean(field, "optional")?,
                        "as" => {
                            entry.as_file = match self.string(field, "as")?.as_str() {
                                "file" => true,
                                "env" => false,
                                other => {
                                    return Err(self.error(
                                        &field.span(),
                                        &format!(
                                            "`as = \"{other}\"` is not known: use \"env\" (the default) or \"file\""
                                        ),
                                    ))
                                }
                            }
                        }
                        other => {
                            return Err(self.unknown(
                                key,
                                other,
                                &format!("env entry `{}`", entry.name),
                                &["ref", "optional", "as"],
                            ))
                        }
                    }
                }
                if entry.reference.is_empty() {
                    return Err(self.error(&value.span(), &format!("env entry `{}` has no `ref`", entry.name)));
                }
            }
            _ => {
                return Err(self.error(
                    &value.span(),
                    &format!(
                    "env entry `{}` must be a reference string or {{ ref = \"REF\", optional = true, as = \"file\" }}",
                    entry.name
                ),
                ))
            }
        }
        Ok(entry)
    }

    fn table<'v, 'i>(&self, value: &'v Spanned<DeValue<'i>>, what: &str) -> Result<&'v DeTable<'i>, CliError> {
        value.get_ref().as_table().ok_or_else(|| self.error(&value.span(), &format!("{what} must be a table")))
    }

    fn string(&self, value: &Spanned<DeValue<'_>>, what: &str) -> Result<String, CliError> {
        value.get_ref().as_str().map(str::to_owned).ok_or_else(|| {
            self.error(&value.span(), &format!("`{what}` must be a string, not {}", value.get_ref().type_str()))
        })
    }

    /// A string parsed by `parse`; its complaint points at the value.
    fn parsed<T>(
        &self,
        value: &Spanned<DeValue<'_>>,
        what: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, CliError> {
        parse(&self.string(value, what)?).map_err(|why| self.error(&value.span(), &format!("`{what}`: {why}")))
    }

    fn boolean(&self, value: &Spanned<DeValue<'_>>, what: &str) -> Result<bool, CliError> {
        value.get_ref().as_bool().ok_or_else(|| self.error(&value.span(), &format!("`{what}` must be true or false")))
    }

    fn unknown(&self, key: &Spanned<toml::de::DeString<'_>>, name: &str, place: &str, allowed: &[&str]) -> CliError {
        self.error(&key.span(), &format!("unknown key `{name}` in {place} (expected one of: {})", allowed.join(", ")))
    }
}

#[cfg(test)]
mod tests;
