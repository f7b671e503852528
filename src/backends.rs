//! Builds each backend's provider from the config file and the usual
//! variables, and names the bootstrap credentials the child must not get.

use std::path::PathBuf;
use std::sync::Arc;

use envcloak_providers::age_file::{AgeProvider, IdentitySources, PassphrasePrompt, KEY_VAR};
#[cfg(feature = "aws")]
use envcloak_providers::aws::{AwsProvider, AwsSettings};
#[cfg(feature = "vault")]
use envcloak_providers::vault::VaultProvider;
#[cfg(not(all(feature = "vault", feature = "aws")))]
use envcloak_providers::FailureKind;
use envcloak_providers::{Backend, FetchError, Provider};

use crate::config::{AwsConfig, Config, VaultConfig};
use crate::inject::Passthrough;
use crate::trust::Reasons;
use crate::tty::TerminalPrompt;

#[cfg(feature = "vault")]
mod vault;

/// The backend settings of a run.
#[derive(Default)]
pub struct Backends {
    /// The config's `[age] identity`.
    pub age_identity: Option<PathBuf>,
    /// The config's `[vault]`.
    pub vault: VaultConfig,
    /// The config's `[aws]`.
    pub aws: AwsConfig,
    /// Which of envcloak's variables the command gets (and so `${VAR}` in
    /// an age file may read).
    pub passthrough: Passthrough,
}

impl Backends {
    /// The settings of `config` (defaults without one).
    pub fn from_config(config: Option<&Config>) -> Self {
        match config {
            Some(config) => Self {
                age_identity: config.age_identity.clone(),
                vault: config.vault.clone(),
                aws: config.aws.clone(),
                passthrough: Passthrough::default(),
            },
            None => Self::default(),
        }
    }

    /// The provider of `backend`; `deadline` bounds network backends.
    pub fn provider(&self, backend: Backend, deadline: tokio::time::Instant) -> Result<Arc<dyn Provider>, FetchError> {
        match backend {
            Backend::Age => {
                let passthrough = self.passthrough.clone();
                Ok(Arc::new(AgeProvider::new(
                    identity_sources(&[], self.age_identity.clone()),
                    prompt(),
                    Arc::new(move |name: &str| passthrough.expandable(name)),
                )))
            }
            Backend::Vault => vault_provider(&self.vault, deadline),
            Backend::AwsSm => aws_provider(&self.aws, deadline),
        }
    }

    /// Where each network backend in `used` connects, and which setting
    /// named the address (the environment wins over the file, as with the
    /// Vault CLI and the AWS SDK).
    pub fn destinations(&self, used: &[Backend]) -> Vec<Destination> {
        let mut destinations = Vec::new();
        if used.contains(&Backend::Vault) {
            if let Some((address, from)) = vault_address(&self.vault) {
                destinations.push(Destination { backend: Backend::Vault, address, from });
            }
        }
        if used.contains(&Backend::AwsSm) {
            let (address, from) = aws_endpoint(&self.aws)
                .unwrap_or_else(|| ("the AWS endpoint of the region".into(), "the AWS SDK's default"));
            destinations.push(Destination { backend: Backend::AwsSm, address, from });
        }
        destinations
    }

    /// What the config file decides about where credentials go, for the
    /// backends in `used`: each is a reason it must be trusted first.
    pub fn trust_reasons(&self, used: &[Backend]) -> Reasons {
        let mut reasons: Reasons = self
            .destinations(used)
            .into_iter()
            .filter(|d| d.from.starts_with('['))
            .map(|d| format!("{} at {} ({})", title(d.backend), d.address, d.from))
            .collect();
        if used.contains(&Backend::Vault) {
            if self.vault.skip_verify == Some(true) {
                reasons.push("Vault with TLS verification off ([vault] skip_verify)".into());
            }
            for (field, path) in [("ca_cert", &self.vault.ca_cert), ("ca_path", &self.vault.ca_path)] {
                if let Some(path) = path {
                    reasons.push(format!("Vault trusting the CA certificates in {} ([vault] {field})", path.display()));
                }
            }
        }
        reasons
    }

    /// Variables that carry credentials for envcloak itself; the child does
    /// not get them unless `--keep` names them.
    pub fn bootstrap_credentials(&self) -> Vec<String> {
        let mut names: Vec<String> = [KEY_VAR, "VAULT_TOKEN", "BAO_TOKEN"].map(String::from).into();
        if let Some(auth) = &self.vault.auth {
            match auth.method.as_str() {
                "approle" => {
                    names.push(auth.role_id_env.clone().unwrap_or_else(|| "VAULT_ROLE_ID".into()));
                    names.push(auth.secret_id_env.clone().unwrap_or_else(|| "VAULT_SECRET_ID".into()));
                }
                "jwt" => names.extend(auth.token_env.clone()),
                _ => {}
            }
        }
        names
    }
}

/// Where a network backend connects: the address and the setting that
/// named it (a variable, or `[section] field` of the config file).
pub struct Destination {
    /// The backend.
    pub backend: Backend,
    /// The address.
    pub address: String,
    /// `VAULT_ADDR`, `[vault] address`, …
    pub from: &'static str,
}

/// The Vault address: `VAULT_ADDR`, then `BAO_ADDR`, then `[vault] address`.
pub fn vault_address(config: &VaultConfig) -> Option<(String, &'static str)> {
    env_value("VAULT_ADDR")
        .map(|a| (a, "VAULT_ADDR"))
        .or_else(|| env_value("BAO_ADDR").map(|a| (a, "BAO_ADDR")))
        .or_else(|| config.address.clone().map(|a| (a, "[vault] address")))
}

/// A custom AWS endpoint: `AWS_ENDPOINT_URL_SECRETS_MANAGER`, then
/// `AWS_ENDPOINT_URL`, then `[aws] endpoint_url`; `None` for AWS's own.
pub fn aws_endpoint(config: &AwsConfig) -> Option<(String, &'static str)> {
    env_value("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .map(|a| (a, "AWS_ENDPOINT_URL_SECRETS_MANAGER"))
        .or_else(|| env_value("AWS_ENDPOINT_URL").map(|a| (a, "AWS_ENDPOINT_URL")))
        .or_else(|| config.endpoint_url.clone().map(|a| (a, "[aws] endpoint_url")))
}

/// A backend's name in prose.
fn title(backend: Backend) -> &'static str {
    match backend {
        Backend::Age => "age",
        Backend::Vault => "Vault",
        Backend::AwsSm => "AWS Secrets Manager",
    }
}

/// A variable's value, unless unset or blank.
fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Identity sources: `explicit` files first, then the environment and config.
pub fn identity_sources(explicit: &[PathBuf], config_identity: Option<PathBuf>) -> IdentitySources {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    IdentitySources::gather(explicit, config_identity, home.as_deref())
}

/// The terminal prompt, where there is a terminal.
pub fn prompt() -> Option<Arc<dyn PassphrasePrompt>> {
    TerminalPrompt::if_available().map(|p| Arc::new(p) as Arc<dyn PassphrasePrompt>)
}

/// Why a backend left out of this build cannot be used.
#[cfg(not(all(feature = "vault", feature = "aws")))]
fn not_built(backend: Backend, feature: &str) -> FetchError {
    FetchError::new(FailureKind::Settings, format!("this envcloak was built without {backend}:// support"))
        .with_hint(format!("install a build with the `{feature}` cargo feature (on by default)"))
}

#[cfg(feature = "vault")]
fn vault_provider(config: &VaultConfig, deadline: tokio::time::Instant) -> Result<Arc<dyn Provider>, FetchError> {
    Ok(Arc::new(VaultProvider::new(vault::settings(config)?, deadline)))
}

#[cfg(not(feature = "vault"))]
fn vault_provider(_: &VaultConfig, _: tokio::time::Instant) -> Result<Arc<dyn Provider>, FetchError> {
    Err(not_built(Backend::Vault, "vault"))
}

/// `[aws]`; what it leaves unset, the AWS SDK's own chain decides.
#[cfg(feature = "aws")]
#[allow(clippy::unnecessary_wraps, reason = "the same signature as the build without the aws feature")]
fn aws_provider(config: &AwsConfig, deadline: tokio::time::Instant) -> Result<Arc<dyn Provider>, FetchError> {
    let settings = AwsSettings {
        region: config.region.clone(),
        profile: config.profile.clone(),
        endpoint_url: aws_endpoint(config).map(|(address, _)| address),
        batch: config.batch.unwrap_or(true),
    };
    Ok(Arc::new(AwsProvider::new(settings, deadline)))
}

#[cfg(not(feature = "aws"))]
fn aws_provider(_: &AwsConfig, _: tokio::time::Instant) -> Result<Arc<dyn Provider>, FetchError> {
    Err(not_built(Backend::AwsSm, "aws"))
}
