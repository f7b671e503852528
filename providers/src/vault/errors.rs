//! What a failed Vault request means for the user: the kind of failure,
//! the reason in Vault's own words, and a hint of the fix.

use super::auth;
use super::http::{self, HttpError};
use super::kv::Mount;
use crate::{FailureKind, FetchError};

/// The hint for a redirect that was not followed.
pub(super) const REDIRECT_HINT: &str =
    "envcloak sends the token only to the address you named: if the server the redirect \
     points at is yours, set VAULT_ADDR / [vault] address to it";

pub(super) fn unreachable(error: &HttpError, base: &reqwest::Url) -> FetchError {
    if error.redirect {
        return FetchError::new(FailureKind::Unreachable, format!("Vault answered with {}", auth::describe(error)))
            .with_hint(REDIRECT_HINT);
    }
    let hint = if error.tls {
        "the server's certificate was refused: trust the CA that signed it ([vault] ca_cert or VAULT_CACERT), \
         and use an address with a host name the certificate names"
    } else {
        "check VAULT_ADDR / [vault] address and that the server is up"
    };
    FetchError::new(
        FailureKind::Unreachable,
        format!("cannot reach Vault at {}: {}", http::origin(base), auth::describe(error)),
    )
    .with_hint(hint)
}

/// Why the mount of `location` could not be looked up. Vault answers 403
/// both for a token it refuses and for a path no secrets engine is mounted
/// at; `token_works` (the token's own lookup succeeded) tells them apart.
pub(super) fn mount_error(error: &HttpError, location: &str, token_works: bool) -> FetchError {
    let described = auth::describe(error);
    let first = location.split('/').next().unwrap_or(location);
    match error.status {
        Some(403) if token_works => FetchError::new(
            FailureKind::NotFound,
            format!("no secrets engine at `{first}/` that this token can see ({described} from the mount lookup)"),
        )
        .with_hint(format!(
            "check the mount name (vault secrets list / bao secrets list): vault://MOUNT/PATH starts with the mount; \
             if `{first}/` exists, the token's policy lacks `read` on it"
        )),
        Some(401 | 403) => token_error(&described),
        _ => FetchError::new(FailureKind::Unreachable, format!("cannot find the KV mount ({described})")),
    }
}

pub(super) fn read_error(error: &HttpError, mount: &Mount, location: &str) -> FetchError {
    let described = auth::describe(error);
    match error.status {
        Some(404) if mount.version == 2 && location[mount.path.len()..].starts_with("data/") => {
            FetchError::new(FailureKind::NotFound, format!("not found ({described})")).with_hint(format!(
                "write the path without `data/`: vault://{}{} (envcloak adds data/ for KV v2)",
                mount.path,
                &location[mount.path.len() + 5..]
            ))
        }
        Some(404) => FetchError::new(
            FailureKind::NotFound,
            format!("not found ({described}; on some setups this also means no permission)"),
        )
        .with_hint(if mount.is_kv() {
            "check the path with `vault kv get` / `bao kv get`"
        } else {
            "check the path with `vault read` / `bao read` (for a database engine: database/creds/ROLE)"
        }),
        Some(403) => {
            FetchError::new(FailureKind::Denied, format!("permission denied ({described})")).with_hint(format!(
                "the token's policy needs `read` on {}",
                if mount.version == 2 {
                    format!("{}data/{}", mount.path, &location[mount.path.len()..])
                } else {
                    location.to_owned()
                }
            ))
        }
        Some(401) => token_error(&described),
        _ => FetchError::new(FailureKind::Unreachable, format!("read failed ({described})")),
    }
}

fn token_error(described: &str) -> FetchError {
    FetchError::new(FailureKind::Credentials, format!("the Vault token was refused ({described})"))
        .with_hint("the token may have expired: log in again (vault login / bao login) or check VAULT_TOKEN")
}
