//! `[vault]`: the section as written (serde), and the provider settings it
//! makes together with the variables the `vault` CLI reads (the address the
//! other way round: `VAULT_ADDR`/`BAO_ADDR` win over the file).

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::settings::{AuthMethod, Credential, JwtSource, VaultSettings};
use super::VaultProvider;
use crate::backend::{env_value, expand_path, BackendConfig, Destination, RunContext};
use crate::{FailureKind, FetchError, Provider};

/// `[vault]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct VaultSection {
    address: Option<String>,
    namespace: Option<String>,
    ca_cert: Option<String>,
    ca_path: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
    skip_verify: Option<bool>,
    auth: Option<AuthSection>,
}

/// `[vault] auth = { method = "…", … }` as written.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "method", rename_all = "lowercase", deny_unknown_fields)]
enum AuthSection {
    Token,
    #[serde(rename = "approle")]
    AppRole {
        mount: Option<String>,
        role_id_env: Option<String>,
        secret_id_env: Option<String>,
        role_id_file: Option<String>,
        secret_id_file: Option<String>,
    },
    Jwt {
        mount: Option<String>,
        role: Option<String>,
        token_env: Option<String>,
        token_file: Option<String>,
        audience: Option<String>,
    },
    Kubernetes {
        mount: Option<String>,
        role: String,
        token_file: Option<String>,
    },
}

/// `[vault]`, its paths resolved against the config's folder and `~`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultConfig {
    /// `address` (`VAULT_ADDR`, then `BAO_ADDR`, win over it).
    pub address: Option<String>,
    /// `namespace` (else `VAULT_NAMESPACE`).
    pub namespace: Option<String>,
    /// `ca_cert` (else `VAULT_CACERT`).
    pub ca_cert: Option<PathBuf>,
    /// `ca_path`, a folder of PEM files (else `VAULT_CAPATH`).
    pub ca_path: Option<PathBuf>,
    /// `client_cert` (else `VAULT_CLIENT_CERT`).
    pub client_cert: Option<PathBuf>,
    /// `client_key` (else `VAULT_CLIENT_KEY`).
    pub client_key: Option<PathBuf>,
    /// `skip_verify` (else `VAULT_SKIP_VERIFY`).
    pub skip_verify: Option<bool>,
    /// How to get a token.
    pub auth: AuthMethod,
}

impl VaultSection {
    /// The settings this section gives, paths resolved against `dir`.
    pub(super) fn resolve(self, dir: &Path) -> VaultConfig {
        let path = |text: Option<String>| text.map(|t| expand_path(&t, dir));
        VaultConfig {
            address: self.address,
            namespace: self.namespace,
            ca_cert: path(self.ca_cert),
            ca_path: path(self.ca_path),
            client_cert: path(self.client_cert),
            client_key: path(self.client_key),
            skip_verify: self.skip_verify,
            auth: self.auth.map_or(AuthMethod::Token, |auth| auth.method(dir)),
        }
    }
}

impl AuthSection {
    fn method(self, dir: &Path) -> AuthMethod {
        let mount = |mount: Option<String>, default: &str| {
            mount.map_or_else(|| default.to_owned(), |m| m.trim_matches('/').to_owned())
        };
        let credential = |file: Option<String>, var: Option<String>, default: &str| match file {
            Some(path) => Credential::File(expand_path(&path, dir)),
            None => Credential::Env(var.unwrap_or_else(|| default.into())),
        };
        match self {
            AuthSection::Token => AuthMethod::Token,
            AuthSection::AppRole { mount: m, role_id_env, secret_id_env, role_id_file, secret_id_file } => {
                AuthMethod::AppRole {
                    mount: mount(m, "approle"),
                    role_id: credential(role_id_file, role_id_env, "VAULT_ROLE_ID"),
                    secret_id: credential(secret_id_file, secret_id_env, "VAULT_SECRET_ID"),
                }
            }
            AuthSection::Jwt { mount: m, role, token_env, token_file, audience } => AuthMethod::Jwt {
                mount: mount(m, "jwt"),
                role,
                token: match (token_file, token_env) {
                    (Some(path), _) => JwtSource::Given(Credential::File(expand_path(&path, dir))),
                    (None, Some(var)) => JwtSource::Given(Credential::Env(var)),
                    (None, None) => JwtSource::GitHubActions { audience },
                },
            },
            AuthSection::Kubernetes { mount: m, role, token_file } => AuthMethod::Kubernetes {
                mount: mount(m, "kubernetes"),
                role,
                token_file: token_file.map_or_else(
                    || PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token"),
                    |path| expand_path(&path, dir),
                ),
            },
        }
    }
}

impl BackendConfig for VaultConfig {
    fn destination(&self) -> Option<Destination> {
        self.address().map(|(address, from)| Destination { address, from })
    }

    fn trust_reasons(&self) -> Vec<String> {
        let mut reasons: Vec<String> = self
            .destination()
            .filter(Destination::from_file)
            .map(|d| format!("Vault at {} ({})", d.address, d.from))
            .into_iter()
            .collect();
        if self.skip_verify == Some(true) {
            reasons.push("Vault with TLS verification off ([vault] skip_verify)".into());
        }
        for (field, path) in [("ca_cert", &self.ca_cert), ("ca_path", &self.ca_path)] {
            if let Some(path) = path {
                reasons.push(format!("Vault trusting the CA certificates in {} ([vault] {field})", path.display()));
            }
        }
        reasons
    }

    fn bootstrap_credentials(&self) -> Vec<String> {
        let mut names: Vec<String> = vec!["VAULT_TOKEN".into(), "BAO_TOKEN".into()];
        match &self.auth {
            AuthMethod::AppRole { role_id, secret_id, .. } => names.extend(
                [(role_id, "VAULT_ROLE_ID"), (secret_id, "VAULT_SECRET_ID")]
                    .map(|(credential, default)| credential.variable().unwrap_or(default).to_owned()),
            ),
            AuthMethod::Jwt { token: JwtSource::Given(token), .. } => names.extend(token.variable().map(str::to_owned)),
            _ => {}
        }
        names
    }

    fn provider(&self, run: &RunContext) -> Result<Arc<dyn Provider>, FetchError> {
        let settings = self.settings()?;
        if settings.skip_verify {
            (run.warn)("TLS verification for Vault is OFF (skip_verify / VAULT_SKIP_VERIFY): anyone on the path can read the secrets");
        }
        Ok(Arc::new(VaultProvider::new(settings, run.deadline, Arc::clone(&run.warn))))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl VaultConfig {
    /// The address: `VAULT_ADDR`, then `BAO_ADDR`, then `[vault] address`.
    fn address(&self) -> Option<(String, &'static str)> {
        env_value("VAULT_ADDR")
            .map(|a| (a, "VAULT_ADDR"))
            .or_else(|| env_value("BAO_ADDR").map(|a| (a, "BAO_ADDR")))
            .or_else(|| self.address.clone().map(|a| (a, "[vault] address")))
    }

    /// Each field, falling back to the variable the `vault` CLI reads.
    fn settings(&self) -> Result<VaultSettings, FetchError> {
        let settings_error = |reason: &str| FetchError::new(FailureKind::Settings, reason);
        let (address, _) = self.address().ok_or_else(|| {
            settings_error("no Vault address")
                .with_hint("set VAULT_ADDR / BAO_ADDR, or [vault] address in envcloak.toml")
        })?;
        let from_env = |value: &Option<PathBuf>, var: &str| value.clone().or_else(|| env_value(var).map(PathBuf::from));
        let mut ca_certs: Vec<PathBuf> = from_env(&self.ca_cert, "VAULT_CACERT").into_iter().collect();
        if let Some(folder) = from_env(&self.ca_path, "VAULT_CAPATH") {
            ca_certs.extend(pem_files(&folder)?);
        }
        let client_cert =
            match (from_env(&self.client_cert, "VAULT_CLIENT_CERT"), from_env(&self.client_key, "VAULT_CLIENT_KEY")) {
                (Some(cert), Some(key)) => Some((cert, key)),
                (None, None) => None,
                _ => return Err(settings_error(
                    "a Vault client certificate needs both client_cert and client_key (VAULT_CLIENT_CERT and VAULT_CLIENT_KEY)",
                )),
            };
        let skip_verify = self.skip_verify.unwrap_or_else(|| {
            env_value("VAULT_SKIP_VERIFY")
                .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "t" | "yes"))
        });
        Ok(VaultSettings {
            address,
            namespace: self.namespace.clone().or_else(|| env_value("VAULT_NAMESPACE")),
            ca_certs,
            client_cert,
            skip_verify,
            auth: self.auth.clone(),
            home: std::env::var_os("HOME").map(PathBuf::from),
        })
    }
}

fn pem_files(folder: &Path) -> Result<Vec<PathBuf>, FetchError> {
    let entries = std::fs::read_dir(folder).map_err(|e| {
        FetchError::new(FailureKind::Settings, format!("cannot read the CA folder {}: {e}", folder.display()))
    })?;
    Ok(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{read_section, SectionError};

    fn configure(text: &str) -> Result<VaultConfig, SectionError> {
        let table = toml::de::DeTable::parse(text).unwrap();
        let section = table.get_ref().get("vault").cloned();
        read_section::<VaultSection>("vault", section.as_ref()).map(|s| s.resolve(Path::new("/project")))
    }

    fn message(text: &str) -> (String, std::ops::Range<usize>) {
        let e = configure(text).expect_err("the section should be refused");
        (e.message, e.span.unwrap_or_default())
    }

    #[test]
    fn the_section_is_typed_and_its_paths_resolved() {
        let config = configure(
            "[vault]\naddress = \"https://vault.example.com:8200\"\nca_cert = \"ca.pem\"\nauth = { method = \"approle\", role_id_env = \"MY_ROLE\", mount = \"/ci-approle/\" }\n",
        )
        .unwrap();
        assert_eq!(config.address.as_deref(), Some("https://vault.example.com:8200"));
        assert_eq!(config.ca_cert, Some(PathBuf::from("/project/ca.pem")));
        assert_eq!(
            config.auth,
            AuthMethod::AppRole {
                mount: "ci-approle".into(),
                role_id: Credential::Env("MY_ROLE".into()),
                secret_id: Credential::Env("VAULT_SECRET_ID".into()),
            }
        );
        assert_eq!(config.bootstrap_credentials(), ["VAULT_TOKEN", "BAO_TOKEN", "MY_ROLE", "VAULT_SECRET_ID"]);
    }

    #[test]
    fn mistakes_are_named_where_they_are() {
        let text = "[vault]\nadress = \"x\"\n";
        let (msg, at) = message(text);
        assert!(msg.contains("[vault]") && msg.contains("adress") && msg.contains("address"), "{msg}");
        assert_eq!(&text[at], "adress");
        let text = "[vault]\nauth = { method = \"ldap\" }\n";
        let (msg, at) = message(text);
        assert!(msg.contains("(got `ldap`)") && msg.contains("approle, jwt, kubernetes"), "{msg}");
        assert_eq!(&text[at], "\"ldap\"", "{msg}");
        let (msg, _) = message("[vault]\nauth = { method = \"kubernetes\" }\n");
        assert!(msg.contains("`auth` needs `role`"), "{msg}");
        let (msg, _) = message("[vault]\nskip_verify = \"yes\"\n");
        assert!(msg.contains("`skip_verify` must be true or false"), "{msg}");
    }
}
