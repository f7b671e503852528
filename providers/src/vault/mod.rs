//! The `vault://` backend: KV v1 and v2 secrets from HashiCorp Vault or
//! OpenBao.
//!
//! One run makes at most one login, one mount lookup per distinct mount
//! (concurrently), and one read per distinct path (concurrently, at most
//! [`MAX_IN_FLIGHT`] at a time, overlapping the lookups) over one connection
//! pool; a token obtained by logging in is revoked when the reads are done.

mod auth;
mod http;
mod kv;
mod settings;

use std::collections::HashMap;
use std::sync::Arc;

use secrecy::SecretString;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

pub use settings::{AuthMethod, Credential, JwtSource, VaultSettings};

use crate::{Backend, BoxFuture, Document, FetchError, Fetched, Provider, Source, SourceQuery};
use http::HttpError;
use kv::Mount;

/// Reads in flight at once.
pub const MAX_IN_FLIGHT: usize = 64;

/// The Vault/OpenBao provider.
pub struct VaultProvider {
    settings: VaultSettings,
    deadline: Instant,
}

impl VaultProvider {
    /// A provider for `settings` that gives up at `deadline` (the run's
    /// `--timeout`).
    pub fn new(settings: VaultSettings, deadline: Instant) -> Self {
        Self { settings, deadline }
    }
}

impl Provider for VaultProvider {
    fn backend(&self) -> Backend {
        Backend::Vault
    }

    fn fetch<'a>(&'a self, sources: &'a [Source]) -> BoxFuture<'a, Result<Fetched, FetchError>> {
        Box::pin(fetch_all(&self.settings, sources, self.deadline))
    }
}

/// Shared by the concurrent requests of one run.
struct Context {
    http: reqwest::Client,
    base: reqwest::Url,
    namespace: Option<String>,
    token: SecretString,
    deadline: Instant,
}

impl Context {
    async fn get(&self, path: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, HttpError> {
        http::get(&self.http, &self.base, self.namespace.as_deref(), &self.token, path, self.deadline).await
    }
}

async fn fetch_all(settings: &VaultSettings, sources: &[Source], deadline: Instant) -> Result<Fetched, FetchError> {
    let base = settings.checked_address()?;
    let mut client = client(settings, &base)?;
    let session = auth::login(settings, &client, deadline).await?;
    let context = Arc::new(Context {
        http: client.http.http.clone(),
        base,
        namespace: settings.namespace.clone(),
        token: session.token.clone(),
        deadline,
    });
    let outcome = read_all(&context, sources).await;
    if session.owned {
        if let Err(e) = auth::revoke(&mut client, &session).await {
            // The token expires with its TTL; the secrets were read.
            eprintln!("envcloak: warning: could not revoke the Vault token envcloak logged in with ({e})");
        }
    }
    outcome
}

/// The vaultrs client: TLS roots, client certificate, namespace, timeout.
fn client(settings: &VaultSettings, base: &reqwest::Url) -> Result<VaultClient, FetchError> {
    let mut builder = VaultClientSettingsBuilder::default();
    builder
        .address(base.as_str())
        .token("")
        .verify(!settings.skip_verify)
        .timeout(Some(http::REQUEST_TIMEOUT))
        .ca_certs(settings.ca_certs.iter().map(|p| p.display().to_string()).collect());
    if let Some(namespace) = &settings.namespace {
        builder.set_namespace(namespace.clone());
    }
    if let Some((cert, key)) = &settings.client_cert {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| FetchError::new(format!("cannot read {}: {e}", path.display())))
        };
        let mut pem = zeroize::Zeroizing::new(read(cert)?);
        pem.extend_from_slice(&read(key)?);
        let identity = reqwest::Identity::from_pem(&pem)
            .map_err(|e| FetchError::new(format!("the client certificate or key is not usable PEM: {e}")))?;
        builder.identity(Some(identity));
    }
    let vault_settings = builder.build().map_err(|e| FetchError::new(format!("invalid Vault settings: {e}")))?;
    VaultClient::new(vault_settings).map_err(|e| {
        FetchError::new(format!("cannot set up the Vault client: {e}"))
            .with_hint("check [vault] ca_cert / VAULT_CACERT")
    })
}

/// Where each location's mount was found, or why it was not: shared by the
/// reads once the lookups are done.
type Mounts = HashMap<String, Result<Mount, FetchError>>;

/// Looks up the mounts and reads every source, overlapping the two: a read
/// that starts before the lookups are done guesses the most common layout
/// (a KV v2 mount named by the first path segment) and is used only if the
/// lookup confirms the guess; otherwise it is read again. Against a remote
/// server this saves the lookup's round trip; a wrong guess costs at most
/// [`MAX_IN_FLIGHT`] extra requests.
async fn read_all(context: &Arc<Context>, sources: &[Source]) -> Result<Fetched, FetchError> {
    let (found_tx, found_rx) = watch::channel::<Option<Result<Arc<Mounts>, FetchError>>>(None);
    let lookup = {
        let (context, sources) = (Arc::clone(context), sources.to_vec());
        tokio::spawn(async move {
            let found = find_mounts(&context, &sources).await.map(Arc::new);
            let _ = found_tx.send(Some(found.clone()));
            found.map(drop)
        })
    };
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    for source in sources {
        let (context, limit, source, mut found_rx) =
            (Arc::clone(context), Arc::clone(&limit), source.clone(), found_rx.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let looked_up = found_rx.borrow().is_some();
            let early = match Mount::guess(&source.location) {
                Some(guess) if !looked_up => Some((context.get(&read_path(&guess, &source)).await, guess)),
                _ => None,
            };
            let mounts = match found_rx.wait_for(Option::is_some).await.as_deref() {
                Ok(Some(Ok(mounts))) => Arc::clone(mounts),
                _ => return None,
            };
            let document = match mounts.get(&source.location)? {
                Err(e) => Err(e.clone()),
                Ok(mount) => match early {
                    Some((answer, guess)) if guess == *mount => document(answer, mount, &source),
                    _ => read_one(&context, mount, &source).await,
                },
            };
            Some((source, document))
        });
    }
    let mut fetched = Fetched::new();
    while let Some(done) = tasks.join_next().await {
        if let Some((source, document)) = done.map_err(|e| FetchError::new(format!("a Vault read stopped: {e}")))? {
            fetched.insert(source, document);
        }
    }
    lookup.await.map_err(|e| FetchError::new(format!("a Vault lookup stopped: {e}")))??;
    Ok(fetched)
}

/// Looks up the mount of every location: one lookup per distinct first path
/// segment, then one more for paths in nested mounts the first round did not
/// cover. An unreachable server fails the whole backend.
async fn find_mounts(
    context: &Arc<Context>,
    sources: &[Source],
) -> Result<HashMap<String, Result<Mount, FetchError>>, FetchError> {
    let mut found: Vec<Mount> = Vec::new();
    let mut result: HashMap<String, Result<Mount, FetchError>> = HashMap::new();
    for round in 0..2 {
        let mut pending: Vec<&str> = Vec::new();
        for source in sources {
            let location = source.location.as_str();
            if result.contains_key(location) {
                continue;
            }
            if let Some(mount) = found.iter().filter(|m| m.contains(location)).max_by_key(|m| m.path.len()) {
                result.insert(location.to_owned(), Ok(mount.clone()));
                continue;
            }
            let first = location.split('/').next().unwrap_or("");
            if round == 1 || !pending.iter().any(|p| p.split('/').next() == Some(first)) {
                pending.push(location);
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for location in pending {
            let (context, location) = (Arc::clone(context), location.to_owned());
            tasks.spawn(async move {
                let answer = context.get(&format!("sys/internal/ui/mounts/{location}")).await;
                (location, answer)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (location, answer) = done.map_err(|e| FetchError::new(format!("a Vault lookup stopped: {e}")))?;
            match answer {
                Ok(body) => match Mount::from_answer(&body) {
                    Some(mount) => found.push(mount),
                    None => {
                        result.insert(location, Err(FetchError::new("this path is not in a KV secrets engine")));
                    }
                },
                Err(e) if e.status.is_none() => return Err(unreachable(&e)),
                Err(e) => {
                    result.insert(location, Err(mount_error(&e)));
                }
            }
        }
    }
    Ok(result)
}

/// The API path that reads `source` from `mount`.
fn read_path(mount: &Mount, source: &Source) -> String {
    let version = match source.query {
        SourceQuery::VaultVersion(v) => Some(v),
        _ => None,
    };
    mount.read_path(&source.location, version)
}

async fn read_one(context: &Context, mount: &Mount, source: &Source) -> Result<Document, FetchError> {
    if mount.version != 2 && matches!(source.query, SourceQuery::VaultVersion(_)) {
        return Err(FetchError::new(format!("?version= needs a KV v2 mount; {} is KV v1", mount.path)));
    }
    document(context.get(&read_path(mount, source)).await, mount, source)
}

/// Interprets the answer to a read of `source` from `mount`.
fn document(
    answer: Result<zeroize::Zeroizing<Vec<u8>>, HttpError>,
    mount: &Mount,
    source: &Source,
) -> Result<Document, FetchError> {
    match answer {
        Ok(body) => kv::document(mount, &body).map_err(FetchError::new),
        Err(e) if e.status == Some(404) && mount.version == 2 => {
            match e.body.as_deref().and_then(|body| kv::deleted_version(body)) {
                Some(deleted) => Err(FetchError::new(format!(
                    "version {deleted} of this secret was deleted or destroyed (HTTP 404)"
                ))
                .with_hint("undelete it (vault kv undelete), or ask for another version with ?version=N")),
                None => Err(read_error(&e, mount, &source.location)),
            }
        }
        Err(e) => Err(read_error(&e, mount, &source.location)),
    }
}

fn unreachable(error: &HttpError) -> FetchError {
    let hint = if error.tls {
        "the server's certificate was refused: trust the CA that signed it ([vault] ca_cert or VAULT_CACERT), \
         and use an address with a host name the certificate names"
    } else {
        "check VAULT_ADDR / [vault] address and that the server is up"
    };
    FetchError::new(format!("cannot reach Vault: {}", auth::describe(error))).with_hint(hint)
}

fn mount_error(error: &HttpError) -> FetchError {
    let described = auth::describe(error);
    match error.status {
        Some(403) => FetchError::new(format!("cannot find the KV mount ({described})"))
            .with_hint("the token may be invalid or expired (log in again), or its policy lacks `read` on this path"),
        Some(401) => token_error(&described),
        _ => FetchError::new(format!("cannot find the KV mount ({described})")),
    }
}

fn read_error(error: &HttpError, mount: &Mount, location: &str) -> FetchError {
    let described = auth::describe(error);
    match error.status {
        Some(404) if mount.version == 2 && location[mount.path.len()..].starts_with("data/") => {
            FetchError::new(format!("not found ({described})")).with_hint(format!(
                "write the path without `data/`: vault://{}{} (envcloak adds data/ for KV v2)",
                mount.path,
                &location[mount.path.len() + 5..]
            ))
        }
        Some(404) => FetchError::new(format!("not found ({described}; on some setups this also means no permission)"))
            .with_hint("check the path with `vault kv get` / `bao kv get`"),
        Some(403) => FetchError::new(format!("permission denied ({described})")).with_hint(format!(
            "the token's policy needs `read` on {}",
            if mount.version == 2 {
                format!("{}data/{}", mount.path, &location[mount.path.len()..])
            } else {
                location.to_owned()
            }
        )),
        Some(401) => token_error(&described),
        _ => FetchError::new(format!("read failed ({described})")),
    }
}

fn token_error(described: &str) -> FetchError {
    FetchError::new(format!("the Vault token was refused ({described})"))
        .with_hint("the token may have expired: log in again (vault login / bao login) or check VAULT_TOKEN")
}
