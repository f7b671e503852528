//! How to reach and log in to Vault/OpenBao, as given by the CLI (config
//! file first, then the usual variables).

use std::path::PathBuf;

use crate::{FailureKind, FetchError};

/// Where a credential (role id, secret id, JWT) is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An environment variable with this name.
    Env(String),
    /// A file (a trailing newline is ignored).
    File(PathBuf),
}

impl Credential {
    /// The variable it is read from, if it is one.
    pub fn variable(&self) -> Option<&str> {
        match self {
            Credential::Env(name) => Some(name),
            Credential::File(_) => None,
        }
    }
}

/// Where a JWT for `method = "jwt"` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtSource {
    /// A token already in a variable or file (GitLab `id_tokens`, a CI secret).
    Given(Credential),
    /// Requested from GitHub Actions (`ACTIONS_ID_TOKEN_REQUEST_URL` and
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`) for this audience.
    GitHubActions {
        /// The `aud` claim to ask for.
        audience: Option<String>,
    },
}

/// How envcloak gets a Vault token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// A token the user has: `VAULT_TOKEN`, `BAO_TOKEN`, then `~/.vault-token`.
    /// Never revoked by envcloak.
    Token,
    /// AppRole login.
    AppRole {
        /// The auth mount path, e.g. `approle`.
        mount: String,
        /// The role id.
        role_id: Credential,
        /// The secret id.
        secret_id: Credential,
    },
    /// JWT/OIDC login (CI identity tokens).
    Jwt {
        /// The auth mount path, e.g. `jwt`.
        mount: String,
        /// The role to log in as.
        role: Option<String>,
        /// Where the JWT comes from.
        token: JwtSource,
    },
    /// Kubernetes service-account login.
    Kubernetes {
        /// The auth mount path, e.g. `kubernetes`.
        mount: String,
        /// The role to log in as.
        role: String,
        /// The service-account token file.
        token_file: PathBuf,
    },
}

impl AuthMethod {
    /// The method's name, as written in the config.
    pub fn name(&self) -> &'static str {
        match self {
            AuthMethod::Token => "token",
            AuthMethod::AppRole { .. } => "approle",
            AuthMethod::Jwt { .. } => "jwt",
            AuthMethod::Kubernetes { .. } => "kubernetes",
        }
    }
}

/// Everything the Vault backend needs.
#[derive(Debug, Clone)]
pub struct VaultSettings {
    /// The server's address, e.g. `https://vault.internal:8200`.
    pub address: String,
    /// `X-Vault-Namespace`, for Vault Enterprise and OpenBao namespaces.
    pub namespace: Option<String>,
    /// PEM files of CA certificates to trust (in addition to none: only these
    /// are trusted when given).
    pub ca_certs: Vec<PathBuf>,
    /// A client certificate and key (PEM) for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Skip TLS verification (the CLI warns on every run).
    pub skip_verify: bool,
    /// How to get a token.
    pub auth: AuthMethod,
    /// The home folder, for `~/.vault-token`.
    pub home: Option<PathBuf>,
}

impl VaultSettings {
    /// Checks the address: a URL with a host; `http://` only to a loopback
    /// host, since a token and secrets would otherwise cross the network in
    /// the clear.
    pub fn checked_address(&self) -> Result<reqwest::Url, FetchError> {
        let url = reqwest::Url::parse(&self.address).map_err(|e| {
            FetchError::new(FailureKind::Settings, format!("the Vault address `{}` is not a URL ({e})", self.address))
                .with_hint("set [vault] address, VAULT_ADDR or BAO_ADDR to e.g. https://vault.example.com:8200")
        })?;
        match (url.scheme(), url.host()) {
            (_, None) => {
                Err(FetchError::new(FailureKind::Settings, format!("the Vault address `{}` has no host", self.address)))
            }
            ("https", _) => Ok(url),
            ("http", Some(host)) if is_loopback(&host) => Ok(url),
            ("http", Some(_)) => Err(FetchError::new(
                FailureKind::Settings,
                format!(
                    "refusing the Vault address `{}`: http:// sends the token and the secrets unencrypted",
                    self.address
                ),
            )
            .with_hint("use https:// (http:// is accepted only for a loopback address such as 127.0.0.1)")),
            (scheme, _) => Err(FetchError::new(
                FailureKind::Settings,
                format!("the Vault address `{}` has scheme `{scheme}`", self.address),
            )
            .with_hint("use https://")),
        }
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

#[cfg(test)]
impl VaultSettings {
    /// Settings for unit tests: `address`, token login, nothing else.
    pub(crate) fn for_tests(address: &str) -> VaultSettings {
        VaultSettings {
            address: address.into(),
            namespace: None,
            ca_certs: Vec::new(),
            client_cert: None,
            skip_verify: false,
            auth: AuthMethod::Token,
            home: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(address: &str) -> VaultSettings {
        VaultSettings::for_tests(address)
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in
            ["https://vault.example.com:8200", "http://127.0.0.1:8200", "http://[::1]:8200", "http://localhost:8200"]
        {
            assert!(settings(ok).checked_address().is_ok(), "{ok}");
        }
        for bad in ["http://vault.example.com:8200", "http://10.0.0.5:8200", "ftp://x", "not a url", "https://"] {
            assert!(settings(bad).checked_address().is_err(), "{bad}");
        }
    }
}
