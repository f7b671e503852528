//! The HTTP clients envcloak talks to Vault with, and the rules that keep a
//! credential on the server the user named:
//!
//! - a redirect is followed only within the same origin (scheme, host and
//!   port), at most [`MAX_REDIRECTS`] times; any other is answered as an
//!   error that names both addresses, so no token, login body or secret
//!   crosses to another server;
//! - a plain-`http` address (loopback only) never goes through a proxy; an
//!   `https` one honours `HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY`, as corporate
//!   networks expect (the proxy sees only the TLS stream);
//! - CA certificates given by `ca_cert`/`VAULT_CACERT`/`VAULT_CAPATH`
//!   replace the system's roots, as with the Vault CLI;
//! - a CI's OIDC token endpoint gets a client of its own with full
//!   verification and the system roots, whatever `skip_verify` says.

use std::path::Path;

use reqwest::redirect::{Attempt, Policy};

use super::http::REQUEST_TIMEOUT;
use super::settings::VaultSettings;
use crate::{FailureKind, FetchError};

/// Same-origin redirects followed per request.
pub const MAX_REDIRECTS: usize = 5;

/// The client for the Vault server at `base`.
pub fn vault_client(settings: &VaultSettings, base: &reqwest::Url) -> Result<reqwest::Client, FetchError> {
    let mut builder = reqwest::Client::builder()
        .redirect(Policy::custom(same_origin_only))
        .timeout(REQUEST_TIMEOUT)
        .tls_danger_accept_invalid_certs(settings.skip_verify);
    if base.scheme() == "http" {
        builder = builder.no_proxy();
    }
    if !settings.ca_certs.is_empty() {
        let mut roots = Vec::new();
        for path in &settings.ca_certs {
            roots.extend(ca_certificates(path)?);
        }
        builder = builder.tls_certs_only(roots);
    }
    if let Some((cert, key)) = &settings.client_cert {
        let read = |path: &Path| {
            std::fs::read(path)
                .map_err(|e| FetchError::new(FailureKind::Settings, format!("cannot read {}: {e}", path.display())))
        };
        let mut pem = zeroize::Zeroizing::new(read(cert)?);
        pem.extend_from_slice(&read(key)?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
            FetchError::new(FailureKind::Settings, format!("the client certificate or key is not usable PEM: {e}"))
        })?;
        builder = builder.identity(identity);
    }
    builder.build().map_err(|e| {
        FetchError::new(FailureKind::Settings, format!("cannot set up the Vault client: {e}"))
            .with_hint("check [vault] ca_cert / VAULT_CACERT and client_cert / client_key")
    })
}

/// The client for a CI's OIDC token endpoint: system roots, full
/// verification, no redirect to another origin.
pub fn oidc_client() -> Result<reqwest::Client, FetchError> {
    reqwest::Client::builder()
        .redirect(Policy::custom(same_origin_only))
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| FetchError::new(FailureKind::Internal, format!("cannot set up the OIDC token client: {e}")))
}

/// The redirect rule: follow within the first request's origin, stop (the
/// caller reports the redirect) otherwise.
fn same_origin_only(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    let same = attempt.previous().first().is_some_and(|first| first.origin() == attempt.url().origin());
    if same && attempt.previous().len() <= MAX_REDIRECTS {
        attempt.follow()
    } else {
        attempt.stop()
    }
}

/// The certificates of a PEM file.
fn ca_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, FetchError> {
    let pem = std::fs::read(path).map_err(|e| {
        FetchError::new(FailureKind::Settings, format!("cannot read the CA certificate {}: {e}", path.display()))
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        FetchError::new(FailureKind::Settings, format!("{} is not a PEM certificate bundle: {e}", path.display()))
            .with_hint(
                "point [vault] ca_cert / VAULT_CACERT at the PEM file of the CA that signed the server's certificate",
            )
    })?;
    if certs.is_empty() {
        return Err(FetchError::new(FailureKind::Settings, format!("{} holds no certificate", path.display())));
    }
    Ok(certs)
}
