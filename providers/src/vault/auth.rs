//! Getting a token: the user's own (never revoked), or a login with AppRole,
//! JWT or Kubernetes (revoked when resolution is done).

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use vaultrs::client::{Client as _, VaultClient};
use vaultrs::error::ClientError;
use zeroize::Zeroizing;

use super::http::{retryable_status, with_retries, Attempt, HttpError};
use super::settings::{AuthMethod, Credential, JwtSource, VaultSettings};
use crate::FetchError;

/// A token and whether envcloak obtained it (and so must revoke it).
pub struct Session {
    /// The token for every request.
    pub token: SecretString,
    /// Obtained by a login: revoke when done.
    pub owned: bool,
}

/// Gets the token the settings call for.
pub async fn login(settings: &VaultSettings, client: &VaultClient, deadline: Instant) -> Result<Session, FetchError> {
    let method = settings.auth.name();
    let failed = |e: HttpError| login_error(method, e);
    let info = match &settings.auth {
        AuthMethod::Token => return user_token(settings),
        AuthMethod::AppRole { mount, role_id, secret_id } => {
            let role_id = read_credential(role_id, "role id")?;
            let secret_id = read_credential(secret_id, "secret id")?;
            with_retries(deadline, || async {
                vaultrs::auth::approle::login(client, mount, role_id.expose_secret(), secret_id.expose_secret())
                    .await
                    .map_err(client_attempt)
            })
            .await
            .map_err(failed)?
        }
        AuthMethod::Jwt { mount, role, token } => {
            let jwt = match token {
                JwtSource::Given(credential) => read_credential(credential, "JWT")?,
                JwtSource::GitHubActions { audience } => github_id_token(client, audience.as_deref(), deadline).await?,
            };
            with_retries(deadline, || async {
                vaultrs::auth::oidc::login(client, mount, jwt.expose_secret(), role.clone())
                    .await
                    .map_err(client_attempt)
            })
            .await
            .map_err(failed)?
        }
        AuthMethod::Kubernetes { mount, role, token_file } => {
            let jwt = read_credential(&Credential::File(token_file.clone()), "service-account token")?;
            with_retries(deadline, || async {
                vaultrs::auth::kubernetes::login(client, mount, role, jwt.expose_secret()).await.map_err(client_attempt)
            })
            .await
            .map_err(failed)?
        }
    };
    let token = SecretString::from(info.client_token);
    Ok(Session { token, owned: true })
}

/// Revokes a token envcloak obtained; a failure is reported, not fatal.
pub async fn revoke(client: &mut VaultClient, session: &Session) -> Result<(), String> {
    client.set_token(session.token.expose_secret());
    let outcome = vaultrs::token::revoke_self(client).await;
    client.set_token("");
    outcome.map_err(|e| describe(&client_attempt(e).error))
}

/// `VAULT_TOKEN`, then `BAO_TOKEN`, then `~/.vault-token`.
fn user_token(settings: &VaultSettings) -> Result<Session, FetchError> {
    for var in ["VAULT_TOKEN", "BAO_TOKEN"] {
        if let Some(token) = std::env::var(var).ok().filter(|t| !t.trim().is_empty()) {
            return Ok(Session { token: SecretString::from(token.trim().to_owned()), owned: false });
        }
    }
    if let Some(home) = &settings.home {
        let path = home.join(".vault-token");
        if path.is_file() {
            let token = read_credential(&Credential::File(path), "token")?;
            return Ok(Session { token, owned: false });
        }
    }
    Err(FetchError::new("no Vault token: VAULT_TOKEN, BAO_TOKEN and ~/.vault-token are all unset")
        .with_hint("log in (vault login / bao login), set VAULT_TOKEN, or configure [vault] auth = { method = \"approle\" | \"jwt\" | \"kubernetes\", … }"))
}

/// Reads a credential from its variable or file, trimmed.
fn read_credential(credential: &Credential, what: &str) -> Result<SecretString, FetchError> {
    let text = match credential {
        Credential::Env(name) => Zeroizing::new(std::env::var(name).map_err(|_| {
            FetchError::new(format!("the Vault {what} variable {name} is not set"))
                .with_hint(format!("set {name}, or name another variable or a file in [vault] auth"))
        })?),
        Credential::File(path) => read_file(path, what)?,
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(FetchError::new(format!("the Vault {what} ({}) is empty", credential_name(credential))));
    }
    Ok(SecretString::from(trimmed.to_owned()))
}

fn read_file(path: &Path, what: &str) -> Result<Zeroizing<String>, FetchError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| FetchError::new(format!("cannot read the Vault {what} from {}: {e}", path.display())))
}

fn credential_name(credential: &Credential) -> String {
    match credential {
        Credential::Env(name) => name.clone(),
        Credential::File(path) => path.display().to_string(),
    }
}

/// Asks GitHub Actions for an OIDC ID token (the job needs
/// `permissions: id-token: write`).
async fn github_id_token(
    client: &VaultClient,
    audience: Option<&str>,
    deadline: Instant,
) -> Result<SecretString, FetchError> {
    let (Ok(url), Ok(bearer)) =
        (std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL"), std::env::var("ACTIONS_ID_TOKEN_REQUEST_TOKEN"))
    else {
        return Err(FetchError::new("jwt auth has no token: token_env is not set and this is not a GitHub Actions job with an ID token")
            .with_hint("in GitHub Actions add `permissions: id-token: write`; elsewhere set [vault] auth token_env to the variable holding the JWT"));
    };
    let bearer = Zeroizing::new(bearer);
    let mut request =
        reqwest::Url::parse(&url).map_err(|_| FetchError::new("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL"))?;
    if let Some(audience) = audience {
        request.query_pairs_mut().append_pair("audience", audience);
    }
    #[derive(serde::Deserialize)]
    struct IdToken {
        value: String,
    }
    let http = &client.http.http;
    let token = with_retries(deadline, || async {
        let response = http
            .get(request.clone())
            .bearer_auth(bearer.as_str())
            .timeout(super::http::REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(super::http::transport_attempt)?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(Attempt {
                retry: retryable_status(status),
                after: None,
                error: HttpError {
                    status: Some(status),
                    message: "GitHub refused the ID token request".into(),
                    body: None,
                    tls: false,
                },
            });
        }
        response.json::<IdToken>().await.map_err(super::http::transport_attempt)
    })
    .await
    .map_err(|e| FetchError::new(format!("cannot get a GitHub Actions ID token: {}", describe(&e))))?;
    Ok(SecretString::from(token.value))
}

/// Maps vaultrs's error to a try's outcome: API errors by status,
/// transport errors retried.
fn client_attempt(error: ClientError) -> Attempt {
    match error {
        ClientError::APIError { code, errors } => Attempt {
            retry: retryable_status(code),
            after: None,
            error: HttpError { status: Some(code), message: errors.join("; "), body: None, tls: false },
        },
        other => Attempt {
            retry: matches!(other, ClientError::RestClientError { .. }),
            after: None,
            error: HttpError { status: None, message: other.to_string(), body: None, tls: false },
        },
    }
}

/// `HTTP 403: permission denied` or the transport's reason.
pub fn describe(error: &HttpError) -> String {
    match error.status {
        Some(status) if error.message.is_empty() => format!("HTTP {status}"),
        Some(status) => format!("HTTP {status}: {}", error.message),
        None => error.message.clone(),
    }
}

fn login_error(method: &str, error: HttpError) -> FetchError {
    let hint = match error.status {
        Some(400 | 403) => format!("check the {method} credentials and the role's bound claims or secret id; the role must exist at this auth mount"),
        None => "check that the Vault address is reachable (VAULT_ADDR / [vault] address)".into(),
        _ => format!("check the {method} auth mount path in [vault] auth"),
    };
    FetchError::new(format!("{method} login failed ({})", describe(&error))).with_hint(hint)
}
