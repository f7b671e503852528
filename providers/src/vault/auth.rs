//! Getting a token: the user's own (never renewed, never revoked), or a
//! login with AppRole, JWT or Kubernetes (renewed while it holds the leases
//! of dynamic secrets, revoked when the run is done, see
//! `VaultProvider::release`).

use std::path::Path;

use rustify::endpoint::Endpoint;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use vaultrs::api::auth::approle::requests::LoginWithApproleRequest;
use vaultrs::api::auth::kubernetes::requests::LoginWithKubernetesRequest;
use vaultrs::api::auth::oidc::requests::JWTLoginRequest;
use vaultrs::api::token::requests::{RenewTokenSelfRequest, RevokeTokenSelfRequest};
use zeroize::Zeroizing;

use super::http::{
    read_body, redirect_error, retryable_status, transport_attempt, with_retries, Attempt, HttpError, Transport,
    REQUEST_TIMEOUT,
};
use super::settings::{AuthMethod, Credential, JwtSource, VaultSettings};
use super::transport;
use crate::json_fields;
use crate::secret::exact_secret;
use crate::{FailureKind, FetchError};

/// A token and whether envcloak obtained it (and so must revoke it).
pub struct Session {
    /// The token for every request.
    pub token: SecretString,
    /// Obtained by a login: revoke when done.
    pub owned: bool,
    /// What the login granted (`None` for the user's own token).
    pub granted: Option<Granted>,
}

/// The lifetime a login or a renewal granted a token (`auth.lease_duration`
/// and `auth.renewable` of Vault's answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct Granted {
    /// Its TTL in seconds; 0 for a token that does not expire.
    #[serde(default)]
    pub lease_duration: u64,
    /// Whether it can be renewed.
    #[serde(default)]
    pub renewable: bool,
}

/// Gets the token the settings call for. A login is a POST of the request
/// vaultrs defines for the method, sent through envcloak's own transport
/// (bounded, retried, no redirect to another origin).
pub async fn login(settings: &VaultSettings, transport: &Transport, deadline: Instant) -> Result<Session, FetchError> {
    let method = settings.auth.name();
    let failed = |e: HttpError| login_error(method, e);
    let built = |e: &dyn std::fmt::Display| {
        FetchError::new(FailureKind::Internal, format!("cannot build the {method} login request: {e}"))
    };
    let (token, granted) = match &settings.auth {
        AuthMethod::Token => return user_token(settings),
        AuthMethod::AppRole { mount, role_id, secret_id } => {
            let role_id = read_credential(role_id, "role id")?;
            let secret_id = read_credential(secret_id, "secret id")?;
            let request = LoginWithApproleRequest::builder()
                .mount(mount)
                .role_id(role_id.expose_secret())
                .secret_id(secret_id.expose_secret())
                .build()
                .map_err(|e| built(&e))?;
            post_login(transport, &request, deadline).await.map_err(failed)?
        }
        AuthMethod::Jwt { mount, role, token } => {
            let jwt = match token {
                JwtSource::Given(credential) => read_credential(credential, "JWT")?,
                JwtSource::GitHubActions { audience } => github_id_token(audience.as_deref(), deadline).await?,
            };
            let mut request = JWTLoginRequest::builder();
            request.mount(mount).jwt(jwt.expose_secret());
            if let Some(role) = role {
                request.role(role);
            }
            let request = request.build().map_err(|e| built(&e))?;
            post_login(transport, &request, deadline).await.map_err(failed)?
        }
        AuthMethod::Kubernetes { mount, role, token_file } => {
            let jwt = read_credential(&Credential::File(token_file.clone()), "service-account token")?;
            let request = LoginWithKubernetesRequest::builder()
                .mount(mount)
                .role(role)
                .jwt(jwt.expose_secret())
                .build()
                .map_err(|e| built(&e))?;
            post_login(transport, &request, deadline).await.map_err(failed)?
        }
    };
    Ok(Session { token, owned: true, granted: Some(granted) })
}

/// Sends a login request; the `auth.client_token` of the answer, and the
/// lifetime it was granted.
async fn post_login(
    transport: &Transport,
    request: &impl Endpoint,
    deadline: Instant,
) -> Result<(SecretString, Granted), HttpError> {
    let body = Zeroizing::new(
        request.body().map_err(|e| unusable(format!("cannot encode the request: {e}")))?.unwrap_or_default(),
    );
    let answer = transport.post(None, &request.path(), &body, deadline).await?;
    login_answer(&answer).ok_or_else(|| unusable("the login answer has no auth.client_token".into()))
}

/// The token and its lifetime from a login's answer.
fn login_answer(body: &[u8]) -> Option<(SecretString, Granted)> {
    #[derive(serde::Deserialize)]
    struct Answer {
        auth: Auth,
    }
    #[derive(serde::Deserialize)]
    struct Auth {
        #[serde(deserialize_with = "json_fields::secret")]
        client_token: SecretString,
        #[serde(default)]
        lease_duration: u64,
        #[serde(default)]
        renewable: bool,
    }
    let Auth { client_token, lease_duration, renewable } = serde_json::from_slice::<Answer>(body).ok()?.auth;
    Some((client_token, Granted { lease_duration, renewable }))
}

/// Renews a token envcloak logged in with (`auth/token/renew-self`), asking
/// for `seconds` more; what Vault granted (less than asked near the token's
/// maximum TTL).
pub async fn renew(
    transport: &Transport,
    token: &SecretString,
    seconds: u64,
    deadline: Instant,
) -> Result<Granted, String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        auth: Granted,
    }
    let request =
        RenewTokenSelfRequest::builder().increment(format!("{seconds}s")).build().map_err(|e| e.to_string())?;
    let body = request.body().map_err(|e| e.to_string())?.unwrap_or_default();
    let answer = transport.post(Some(token), &request.path(), &body, deadline).await.map_err(|e| describe(&e))?;
    serde_json::from_slice::<Answer>(&answer)
        .map(|answer| answer.auth)
        .map_err(|_| "an answer without auth.lease_duration".to_owned())
}

/// Revokes a token envcloak obtained, giving up at `deadline`; a failure is
/// reported, not fatal (the token still expires with its TTL).
pub async fn revoke(transport: &Transport, token: &SecretString, deadline: Instant) -> Result<(), String> {
    let path = RevokeTokenSelfRequest::builder().build().map_err(|e| e.to_string())?.path();
    transport.post(Some(token), &path, b"", deadline).await.map(drop).map_err(|e| describe(&e))
}

/// A failure that is not the server's answer or the transport's.
fn unusable(message: String) -> HttpError {
    HttpError { status: None, message, body: None, tls: false, redirect: false }
}

/// `VAULT_TOKEN`, then `BAO_TOKEN`, then `~/.vault-token`.
fn user_token(settings: &VaultSettings) -> Result<Session, FetchError> {
    for var in ["VAULT_TOKEN", "BAO_TOKEN"] {
        if let Some(token) = std::env::var(var).ok().map(Zeroizing::new).filter(|t| !t.trim().is_empty()) {
            return Ok(Session { token: exact_secret(token.trim()), owned: false, granted: None });
        }
    }
    if let Some(home) = &settings.home {
        let path = home.join(".vault-token");
        if path.is_file() {
            let token = read_credential(&Credential::File(path), "token")?;
            return Ok(Session { token, owned: false, granted: None });
        }
    }
    Err(FetchError::new(FailureKind::Credentials, "no Vault token: VAULT_TOKEN, BAO_TOKEN and ~/.vault-token are all unset")
        .with_hint("log in (vault login / bao login), set VAULT_TOKEN, or configure [vault] auth = { method = \"approle\" | \"jwt\" | \"kubernetes\", … }"))
}

/// Reads a credential from its variable or file, trimmed.
fn read_credential(credential: &Credential, what: &str) -> Result<SecretString, FetchError> {
    let text = match credential {
        Credential::Env(name) => Zeroizing::new(std::env::var(name).map_err(|_| {
            FetchError::new(FailureKind::Credentials, format!("the Vault {what} variable {name} is not set"))
                .with_hint(format!("set {name}, or name another variable or a file in [vault] auth"))
        })?),
        Credential::File(path) => read_file(path, what)?,
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(FetchError::new(
            FailureKind::Credentials,
            format!("the Vault {what} ({}) is empty", credential_name(credential)),
        ));
    }
    Ok(exact_secret(trimmed))
}

fn read_file(path: &Path, what: &str) -> Result<Zeroizing<String>, FetchError> {
    std::fs::read_to_string(path).map(Zeroizing::new).map_err(|e| {
        FetchError::new(FailureKind::Credentials, format!("cannot read the Vault {what} from {}: {e}", path.display()))
    })
}

fn credential_name(credential: &Credential) -> String {
    match credential {
        Credential::Env(name) => name.clone(),
        Credential::File(path) => path.display().to_string(),
    }
}

/// Asks GitHub Actions for an OIDC ID token (the job needs
/// `permissions: id-token: write`), with a client of its own: full TLS
/// verification whatever `skip_verify` says, no redirect to another origin.
async fn github_id_token(audience: Option<&str>, deadline: Instant) -> Result<SecretString, FetchError> {
    #[derive(serde::Deserialize)]
    struct IdToken {
        #[serde(deserialize_with = "json_fields::secret")]
        value: SecretString,
    }
    let (Ok(url), Ok(bearer)) =
        (std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL"), std::env::var("ACTIONS_ID_TOKEN_REQUEST_TOKEN"))
    else {
        return Err(FetchError::new(FailureKind::Credentials, "jwt auth has no token: token_env is not set and this is not a GitHub Actions job with an ID token")
            .with_hint("in GitHub Actions add `permissions: id-token: write`; elsewhere set [vault] auth token_env to the variable holding the JWT"));
    };
    let bearer = Zeroizing::new(bearer);
    let mut request = reqwest::Url::parse(&url)
        .map_err(|_| FetchError::new(FailureKind::Credentials, "ACTIONS_ID_TOKEN_REQUEST_URL is not a URL"))?;
    if let Some(audience) = audience {
        request.query_pairs_mut().append_pair("audience", audience);
    }
    let http = transport::oidc_client()?;
    let token = with_retries(deadline, || async {
        let response = http
            .get(request.clone())
            .bearer_auth(bearer.as_str())
            .timeout(REQUEST_TIMEOUT.min(deadline.saturating_duration_since(Instant::now())))
            .send()
            .await
            .map_err(transport_attempt)?;
        if response.status().is_redirection() {
            return Err(Attempt { retry: false, after: None, error: redirect_error(request.as_str(), &response) });
        }
        let status = response.status();
        let body = read_body(response).await?;
        if !status.is_success() {
            let mut error = unusable("GitHub refused the ID token request".into());
            error.status = Some(status.as_u16());
            return Err(Attempt { retry: retryable_status(status.as_u16()), after: None, error });
        }
        serde_json::from_slice::<IdToken>(&body).map(|id| id.value).map_err(|_| Attempt {
            retry: false,
            after: None,
            error: unusable("the answer to the ID token request has no `value`".into()),
        })
    })
    .await
    .map_err(|e| {
        FetchError::new(FailureKind::Credentials, format!("cannot get a GitHub Actions ID token: {}", describe(&e)))
    })?;
    Ok(token)
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
        _ if error.redirect => super::errors::REDIRECT_HINT.into(),
        Some(400 | 403) => format!("check the {method} credentials and the role's bound claims or secret id; the role must exist at this auth mount"),
        None => "check that the Vault address is reachable (VAULT_ADDR / [vault] address)".into(),
        _ => format!("check the {method} auth mount path in [vault] auth"),
    };
    let kind = match error.status {
        Some(400 | 401 | 403) if !error.redirect => FailureKind::Credentials,
        Some(_) if !error.redirect => FailureKind::Settings,
        _ => FailureKind::Unreachable,
    };
    FetchError::new(kind, format!("{method} login failed ({})", describe(&error))).with_hint(hint)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::{login_answer, Granted};

    #[test]
    fn a_login_answer_gives_the_token_and_its_lifetime() {
        let body = br#"{"auth":{"client_token":"fake-token","accessor":"a","policies":["default"],"lease_duration":4,"renewable":true}}"#;
        let (token, granted) = login_answer(body).expect("a login answer");
        assert!(token.expose_secret() == "fake-token", "the token differs");
        assert_eq!(granted, Granted { lease_duration: 4, renewable: true });
        let (_, granted) = login_answer(br#"{"auth":{"client_token":"fake-token"}}"#).expect("a bare answer");
        assert_eq!(granted, Granted { lease_duration: 0, renewable: false });
        assert!(login_answer(br#"{"auth":null}"#).is_none());
    }
}
