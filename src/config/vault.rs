//! The `[vault]` section.

use std::path::PathBuf;

use toml::de::DeValue;
use toml::Spanned;

use super::Reader;
use crate::error::CliError;

/// `[vault]` as written; unset fields fall back to the usual variables.
#[derive(Debug, Default, Clone)]
pub struct VaultConfig {
    /// `address` (else VAULT_ADDR, then BAO_ADDR).
    pub address: Option<String>,
    /// `namespace` (else VAULT_NAMESPACE).
    pub namespace: Option<String>,
    /// `ca_cert` (else VAULT_CACERT).
    pub ca_cert: Option<PathBuf>,
    /// `ca_path`, a folder of PEM files (else VAULT_CAPATH).
    pub ca_path: Option<PathBuf>,
    /// `client_cert` (else VAULT_CLIENT_CERT).
    pub client_cert: Option<PathBuf>,
    /// `client_key` (else VAULT_CLIENT_KEY).
    pub client_key: Option<PathBuf>,
    /// `skip_verify` (else VAULT_SKIP_VERIFY).
    pub skip_verify: Option<bool>,
    /// `auth = { method = …, … }`.
    pub auth: Option<VaultAuthConfig>,
}

/// `[vault] auth` as written.
#[derive(Debug, Default, Clone)]
pub struct VaultAuthConfig {
    /// token | approle | jwt | kubernetes.
    pub method: String,
    /// The auth mount path (default: the method's name).
    pub mount: Option<String>,
    /// jwt and kubernetes: the role.
    pub role: Option<String>,
    /// approle: variable holding the role id (default VAULT_ROLE_ID).
    pub role_id_env: Option<String>,
    /// approle: variable holding the secret id (default VAULT_SECRET_ID).
    pub secret_id_env: Option<String>,
    /// approle: file holding the role id.
    pub role_id_file: Option<PathBuf>,
    /// approle: file holding the secret id.
    pub secret_id_file: Option<PathBuf>,
    /// jwt: variable holding the JWT (e.g. GitLab's VAULT_ID_TOKEN).
    pub token_env: Option<String>,
    /// jwt/kubernetes: file holding the JWT.
    pub token_file: Option<PathBuf>,
    /// jwt in GitHub Actions: the audience to request.
    pub audience: Option<String>,
}

const METHODS: &[&str] = &["token", "approle", "jwt", "kubernetes"];

impl Reader<'_> {
    /// Reads `[vault]`.
    pub(super) fn vault(&self, value: &Spanned<DeValue<'_>>) -> Result<VaultConfig, CliError> {
        let mut vault = VaultConfig::default();
        for (key, field) in self.table(value, "[vault]")? {
            let name = key.get_ref().as_ref();
            match name {
                "address" => vault.address = Some(self.string(field, name)?),
                "namespace" => vault.namespace = Some(self.string(field, name)?),
                "ca_cert" => vault.ca_cert = Some(self.path(field, name)?),
                "ca_path" => vault.ca_path = Some(self.path(field, name)?),
                "client_cert" => vault.client_cert = Some(self.path(field, name)?),
                "client_key" => vault.client_key = Some(self.path(field, name)?),
                "skip_verify" => vault.skip_verify = Some(self.boolean(field, name)?),
                "auth" => vault.auth = Some(self.vault_auth(field)?),
                other => {
                    return Err(self.unknown(
                        key,
                        other,
                        "[vault]",
                        &[
                            "address",
                            "namespace",
                            "ca_cert",
                            "ca_path",
                            "client_cert",
                            "client_key",
                            "skip_verify",
                            "auth",
                        ],
                    ))
                }
            }
        }
        Ok(vault)
    }

    fn vault_auth(&self, value: &Spanned<DeValue<'_>>) -> Result<VaultAuthConfig, CliError> {
        let mut auth = VaultAuthConfig::default();
        for (key, field) in self.table(value, "[vault] auth")? {
            let name = key.get_ref().as_ref();
            match name {
                "method" => auth.method = self.string(field, name)?,
                "mount" => auth.mount = Some(self.string(field, name)?.trim_matches('/').to_owned()),
                "role" => auth.role = Some(self.string(field, name)?),
                "role_id_env" => auth.role_id_env = Some(self.string(field, name)?),
                "secret_id_env" => auth.secret_id_env = Some(self.string(field, name)?),
                "role_id_file" => auth.role_id_file = Some(self.path(field, name)?),
                "secret_id_file" => auth.secret_id_file = Some(self.path(field, name)?),
                "token_env" => auth.token_env = Some(self.string(field, name)?),
                "token_file" => auth.token_file = Some(self.path(field, name)?),
                "audience" => auth.audience = Some(self.string(field, name)?),
                other => {
                    return Err(self.unknown(
                        key,
                        other,
                        "[vault] auth",
                        &[
                            "method",
                            "mount",
                            "role",
                            "role_id_env",
                            "secret_id_env",
                            "role_id_file",
                            "secret_id_file",
                            "token_env",
                            "token_file",
                            "audience",
                        ],
                    ))
                }
            }
        }
        if !METHODS.contains(&auth.method.as_str()) {
            return Err(self.error(
                &value.span(),
                &format!("[vault] auth needs method = one of {} (got `{}`)", METHODS.join(", "), auth.method),
            ));
        }
        if matches!(auth.method.as_str(), "kubernetes") && auth.role.is_none() {
            return Err(self.error(&value.span(), "kubernetes auth needs `role`"));
        }
        Ok(auth)
    }
}
