//! The Vault backend as the registry sees it: `vault://MOUNT/PATH` references
//! with `?version=N`, and the `[vault]` section.

use std::path::Path;

use super::config::VaultSection;
use crate::backend::{read_section, BackendConfig, BackendModule, Section, SectionError};
use crate::RefError;

/// The Vault/OpenBao backend.
pub struct VaultModule;

/// The registry's entry for the Vault backend.
pub static MODULE: VaultModule = VaultModule;

impl BackendModule for VaultModule {
    fn scheme(&self) -> &'static str {
        "vault"
    }

    fn title(&self) -> &'static str {
        "Vault"
    }

    fn check_location(&self, location: &str) -> Result<(), RefError> {
        let mut parts = location.trim_matches('/').splitn(2, '/');
        let mount = parts.next().unwrap_or("");
        let path = parts.next().unwrap_or("");
        if mount.is_empty() || path.is_empty() || location.contains("//") {
            return Err(RefError::MissingLocation(
                "secret path: write vault://MOUNT/PATH, e.g. vault://secret/flask/prod",
            ));
        }
        Ok(())
    }

    fn query_rule(&self) -> &'static str {
        "vault:// references take only ?version=N"
    }

    fn check_selector(&self, name: &str, value: &str) -> Result<(), RefError> {
        match (name, value.parse::<u64>()) {
            ("version", Ok(v)) if v > 0 => Ok(()),
            ("version", _) => {
                Err(RefError::BadQuery(format!("version must be a positive whole number, not `{value}`")))
            }
            _ => Err(RefError::BadQuery(format!("unknown query parameter `{name}`: {}", self.query_rule()))),
        }
    }

    fn section(&self) -> &'static str {
        "vault"
    }

    fn configure(&self, section: Option<&Section<'_>>, dir: &Path) -> Result<Box<dyn BackendConfig>, SectionError> {
        let written: VaultSection = read_section(self.section(), section)?;
        Ok(Box::new(written.resolve(dir)))
    }
}
