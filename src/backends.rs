//! Builds each backend's provider from the config file and the usual
//! variables, and names the bootstrap credentials the child must not get.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use envcloak_providers::age_file::{AgeProvider, IdentitySources, PassphrasePrompt, KEY_VAR};
use envcloak_providers::vault::{AuthMethod, Credential, JwtSource, VaultProvider, VaultSettings};
use envcloak_providers::{Backend, FetchError, Provider};

use crate::config::{Config, VaultAuthConfig, VaultConfig};
use crate::tty::TerminalPrompt;

/// The backend settings of a run.
#[derive(Default)]
pub struct Backends {
    /// The config's `[age] identity`.
    pub age_identity: Option<PathBuf>,
    /// The config's `[vault]`.
    pub vault: VaultConfig,
}

impl Backends {
    /// The settings of `config` (defaults without one).
    pub fn from_config(config: Option<&Config>) -> Self {
        match config {
            Some(config) => Self { age_identity: config.age_identity.clone(), vault: config.vault.clone() },
            None => Self::default(),
        }
    }

    /// The provider of `backend`; `deadline` bounds network backends.
    pub fn provider(&self, backend: Backend, deadline: tokio::time::Instant) -> Result<Arc<dyn Provider>, FetchError> {
        match backend {
            Backend::Age => Ok(Arc::new(AgeProvider::new(identity_sources(&[], self.age_identity.clone()), prompt()))),
            Backend::Vault => Ok(Arc::new(VaultProvider::new(vault_settings(&self.vault)?, deadline))),
            Backend::AwsSm => {
                Err(FetchError::new("the aws-sm:// backend is not built yet in this version of envcloak")
                    .with_hint("use age:// or vault:// references for now"))
            }
        }
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

/// Identity sources: `explicit` files first, then the environment and config.
pub fn identity_sources(explicit: &[PathBuf], config_identity: Option<PathBuf>) -> IdentitySources {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    IdentitySources::gather(explicit, config_identity, home.as_deref())
}

/// The terminal prompt, where there is a terminal.
pub fn prompt() -> Option<Arc<dyn PassphrasePrompt>> {
    TerminalPrompt::if_available().map(|p| Arc::new(p) as Arc<dyn PassphrasePrompt>)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `[vault]`, each field falling back to the variable the `vault` CLI reads.
pub fn vault_settings(config: &VaultConfig) -> Result<VaultSettings, FetchError> {
    let address =
        config.address.clone().or_else(|| env("VAULT_ADDR")).or_else(|| env("BAO_ADDR")).ok_or_else(|| {
            FetchError::new("no Vault address")
                .with_hint("set [vault] address in envcloak.toml, or VAULT_ADDR / BAO_ADDR")
        })?;
    let mut ca_certs: Vec<PathBuf> =
        config.ca_cert.clone().or_else(|| env("VAULT_CACERT").map(PathBuf::from)).into_iter().collect();
    if let Some(folder) = config.ca_path.clone().or_else(|| env("VAULT_CAPATH").map(PathBuf::from)) {
        ca_certs.extend(pem_files(&folder)?);
    }
    let client_cert = match (
        config.client_cert.clone().or_else(|| env("VAULT_CLIENT_CERT").map(PathBuf::from)),
        config.client_key.clone().or_else(|| env("VAULT_CLIENT_KEY").map(PathBuf::from)),
    ) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err(FetchError::new(
            "a Vault client certificate needs both client_cert and client_key (VAULT_CLIENT_CERT and VAULT_CLIENT_KEY)",
        )),
    };
    let skip_verify = match config.skip_verify {
        Some(skip) => skip,
        None => env("VAULT_SKIP_VERIFY")
            .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "t" | "yes")),
    };
    if skip_verify {
        crate::diag::warning!("TLS verification for Vault is OFF (skip_verify / VAULT_SKIP_VERIFY): anyone on the path can read the secrets");
    }
    Ok(VaultSettings {
        address,
        namespace: config.namespace.clone().or_else(|| env("VAULT_NAMESPACE")),
        ca_certs,
        client_cert,
        skip_verify,
        auth: auth_method(config.auth.as_ref()),
        home: std::env::var_os("HOME").map(PathBuf::from),
    })
}

fn pem_files(folder: &Path) -> Result<Vec<PathBuf>, FetchError> {
    let entries = std::fs::read_dir(folder)
        .map_err(|e| FetchError::new(format!("cannot read the CA folder {}: {e}", folder.display())))?;
    Ok(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
}

fn auth_method(auth: Option<&VaultAuthConfig>) -> AuthMethod {
    let Some(auth) = auth else {
        return AuthMethod::Token;
    };
    let mount = auth.mount.clone().unwrap_or_else(|| auth.method.clone());
    let credential = |file: &Option<PathBuf>, var: &Option<String>, default: &str| match file {
        Some(path) => Credential::File(path.clone()),
        None => Credential::Env(var.clone().unwrap_or_else(|| default.into())),
    };
    match auth.method.as_str() {
        "approle" => AuthMethod::AppRole {
            mount,
            role_id: credential(&auth.role_id_file, &auth.role_id_env, "VAULT_ROLE_ID"),
            secret_id: credential(&auth.secret_id_file, &auth.secret_id_env, "VAULT_SECRET_ID"),
        },
        "jwt" => AuthMethod::Jwt {
            mount,
            role: auth.role.clone(),
            token: match (&auth.token_file, &auth.token_env) {
                (Some(path), _) => JwtSource::Given(Credential::File(path.clone())),
                (None, Some(var)) => JwtSource::Given(Credential::Env(var.clone())),
                (None, None) => JwtSource::GitHubActions { audience: auth.audience.clone() },
            },
        },
        "kubernetes" => AuthMethod::Kubernetes {
            mount,
            role: auth.role.clone().unwrap_or_default(),
            token_file: auth
                .token_file
                .clone()
                .unwrap_or_else(|| PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token")),
        },
        _ => AuthMethod::Token,
    }
}
