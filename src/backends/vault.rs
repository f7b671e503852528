//! `[vault]` and the variables the `vault` CLI reads, as provider settings.

use std::path::{Path, PathBuf};

use envcloak_providers::vault::{AuthMethod, Credential, JwtSource, VaultSettings};
use envcloak_providers::{FailureKind, FetchError};

use crate::config::{VaultAuthConfig, VaultConfig};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `[vault]`, each field falling back to the variable the `vault` CLI reads;
/// the address is the other way round (`VAULT_ADDR`/`BAO_ADDR` first).
pub fn settings(config: &VaultConfig) -> Result<VaultSettings, FetchError> {
    let (address, _) = super::vault_address(config).ok_or_else(|| {
        FetchError::new(FailureKind::Settings, "no Vault address")
            .with_hint("set VAULT_ADDR / BAO_ADDR, or [vault] address in envcloak.toml")
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
            FailureKind::Settings,
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
    let entries = std::fs::read_dir(folder).map_err(|e| {
        FetchError::new(FailureKind::Settings, format!("cannot read the CA folder {}: {e}", folder.display()))
    })?;
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
