//! The age backend as the registry sees it: `age://PATH[#KEY]` references,
//! the `[age]` section, the identity variables, and its provider.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::{AgeProvider, IdentitySources, KEY_VAR};
use crate::backend::{expand_path, read_section, BackendConfig, BackendModule, RunContext, Section, SectionError};
use crate::{FetchError, Provider, RefError};

/// The age backend.
pub struct AgeModule;

/// The registry's entry for the age backend.
pub static MODULE: AgeModule = AgeModule;

impl BackendModule for AgeModule {
    fn scheme(&self) -> &'static str {
        "age"
    }

    fn title(&self) -> &'static str {
        "age"
    }

    fn is_local(&self) -> bool {
        true
    }

    fn check_location(&self, location: &str) -> Result<(), RefError> {
        if location.is_empty() {
            return Err(RefError::MissingLocation("file path"));
        }
        Ok(())
    }

    fn query_rule(&self) -> &'static str {
        "age:// references take no query parameters"
    }

    fn check_selector(&self, name: &str, _value: &str) -> Result<(), RefError> {
        Err(RefError::BadQuery(format!("unknown query parameter `{name}`: {}", self.query_rule())))
    }

    fn place(&self, location: &str, base: &Path) -> String {
        expand_path(location, base).display().to_string()
    }

    fn section(&self) -> &'static str {
        "age"
    }

    fn configure(&self, section: Option<&Section<'_>>, dir: &Path) -> Result<Box<dyn BackendConfig>, SectionError> {
        let written: AgeSection = read_section(self.section(), section)?;
        Ok(Box::new(AgeConfig {
            identity: written.identity.map(|path| expand_path(&path, dir)),
            recipients_files: match written.recipients_file {
                None => Vec::new(),
                Some(OneOrMore::One(path)) => vec![expand_path(&path, dir)],
                Some(OneOrMore::More(paths)) => paths.iter().map(|path| expand_path(path, dir)).collect(),
            },
        }))
    }
}

/// `[age]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AgeSection {
    identity: Option<String>,
    recipients_file: Option<OneOrMore>,
}

/// A path, or a list of them.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a path or a list of paths")]
enum OneOrMore {
    One(String),
    More(Vec<String>),
}

/// `[age]`, its paths resolved against the config's folder and `~`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AgeConfig {
    /// `identity`: the identity file to decrypt with.
    pub identity: Option<PathBuf>,
    /// `recipients_file`: who `encrypt`, `edit`, `set` and `rekey` encrypt
    /// to: recipients files, or folders of them (e.g. one file a person).
    pub recipients_files: Vec<PathBuf>,
}

impl BackendConfig for AgeConfig {
    fn bootstrap_credentials(&self) -> Vec<String> {
        vec![KEY_VAR.into()]
    }

    fn provider(&self, run: &RunContext) -> Result<Arc<dyn Provider>, FetchError> {
        Ok(Arc::new(AgeProvider::new(self.identity_sources(&[]), run.prompt.clone(), Arc::clone(&run.expandable))))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl AgeConfig {
    /// Identity sources: `explicit` files first, then the environment and
    /// `[age] identity`.
    pub fn identity_sources(&self, explicit: &[PathBuf]) -> IdentitySources {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        IdentitySources::gather(explicit, self.identity.clone(), home.as_deref())
    }
}
