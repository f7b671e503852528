//! Requests to Vault with bounded retries: connection errors, 412, 429 and
//! 5xx are retried with exponential backoff and jitter (honouring
//! `Retry-After`), never past the run's deadline; 4xx answers, TLS
//! failures, redirects to another origin and answers over [`MAX_BODY`] are
//! final.

use std::future::Future;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use zeroize::Zeroizing;

/// Attempts per request, the first included.
const MAX_ATTEMPTS: u32 = 5;
/// The first backoff; doubled after each retry, with jitter.
const BASE_BACKOFF: Duration = Duration::from_millis(100);
/// No single request waits longer than this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed request, described without any secret.
#[derive(Debug, Clone)]
pub struct HttpError {
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    /// Vault's own error text, or the transport's reason.
    pub message: String,
    /// The response body, for answers that carry data with an error status
    /// (KV v2 reports a deleted version as 404 with metadata).
    pub body: Option<std::sync::Arc<Zeroizing<Vec<u8>>>>,
    /// The server's certificate was refused (untrusted, or for another name).
    pub tls: bool,
    /// The server answered with a redirect that was not followed.
    pub redirect: bool,
}

/// One try's outcome when it failed.
pub struct Attempt {
    /// What went wrong.
    pub error: HttpError,
    /// Whether another try may succeed.
    pub retry: bool,
    /// The server's `Retry-After`, if any.
    pub after: Option<Duration>,
}

/// Runs `attempt` until it succeeds, fails for good, or the deadline or the
/// attempt budget is reached.
pub async fn with_retries<T, F, Fut>(deadline: Instant, mut attempt: F) -> Result<T, HttpError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Attempt>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(failed) if !failed.retry || tries >= MAX_ATTEMPTS => return Err(failed.error),
            Err(failed) => {
                let wait = failed.after.unwrap_or_else(|| backoff(tries));
                if Instant::now() + wait >= deadline {
                    return Err(failed.error);
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// `BASE_BACKOFF * 2^(tries-1)`, plus up to 50 % random jitter.
fn backoff(tries: u32) -> Duration {
    let base = BASE_BACKOFF * 2u32.pow(tries.saturating_sub(1).min(6));
    base + base.mul_f64(jitter() / 2.0)
}

/// A number in `[0, 1)` that differs between calls and processes, to spread
/// retries and renewals (not for anything secret).
pub fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mut x = u64::from(nanos) ^ u64::from(std::process::id()) << 32 | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    f64::from(u32::try_from(x % 1000).unwrap_or(0)) / 1000.0
}

/// Whether a status is worth another try.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 412 | 429 | 500..=599)
}

/// The largest answer read from Vault: anything bigger is refused before it
/// is held in memory.
pub const MAX_BODY: usize = 16 << 20;

/// Where and how requests go: the client (see [`super::transport`]), the
/// server's address and the namespace header.
pub struct Transport {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// The server's address, checked by `VaultSettings::checked_address`.
    pub base: reqwest::Url,
    /// `X-Vault-Namespace`, if any.
    pub namespace: Option<String>,
}

impl Transport {
    /// A GET of `path` (below `/v1/`) with the token; the body of a 2xx
    /// answer.
    pub async fn get(
        &self,
        token: &SecretString,
        path: &str,
        deadline: Instant,
    ) -> Result<Zeroizing<Vec<u8>>, HttpError> {
        self.send(reqwest::Method::GET, Some(token), path, None, deadline).await
    }

    /// A POST of `body` to `path` (below `/v1/`), with the token if given;
    /// the body of a 2xx answer.
    pub async fn post(
        &self,
        token: Option<&SecretString>,
        path: &str,
        body: &[u8],
        deadline: Instant,
    ) -> Result<Zeroizing<Vec<u8>>, HttpError> {
        self.send(reqwest::Method::POST, token, path, Some(body), deadline).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        token: Option<&SecretString>,
        path: &str,
        body: Option<&[u8]>,
        deadline: Instant,
    ) -> Result<Zeroizing<Vec<u8>>, HttpError> {
        let path = path.trim().trim_start_matches('/');
        let url = format!("{}/v1/{path}", self.base.as_str().trim_end_matches('/'));
        with_retries(deadline, || async {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header("X-Vault-Request", "true")
                .timeout(REQUEST_TIMEOUT.min(deadline.saturating_duration_since(Instant::now())));
            if let Some(token) = token {
                request = request.header("X-Vault-Token", token.expose_secret());
            }
            if let Some(namespace) = &self.namespace {
                request = request.header("X-Vault-Namespace", namespace);
            }
            if let Some(body) = body {
                request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_vec());
            }
            let response = request.send().await.map_err(transport_attempt)?;
            let status = response.status().as_u16();
            if response.status().is_redirection() {
                return Err(Attempt { retry: false, after: None, error: redirect_error(&url, &response) });
            }
            let after = retry_after(&response);
            let body = read_body(response).await?;
            if (200..300).contains(&status) {
                return Ok(body);
            }
            Err(Attempt {
                retry: retryable_status(status),
                after,
                error: HttpError {
                    status: Some(status),
                    message: vault_errors(&body),
                    body: Some(std::sync::Arc::new(body)),
                    tls: false,
                    redirect: false,
                },
            })
        })
        .await
    }
}

/// A redirect the client did not follow (to another origin, or too many):
/// named with both addresses, never followed with the token.
pub fn redirect_error(from: &str, response: &reqwest::Response) -> HttpError {
    let location = response.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok());
    let to = location.unwrap_or("(no Location)");
    let to = response.url().join(to).map_or_else(|_| to.to_owned(), |url| url.to_string());
    let from = reqwest::Url::parse(from).map_or_else(|_| from.to_owned(), |url| origin(&url));
    HttpError {
        status: Some(response.status().as_u16()),
        message: format!(
            "a redirect from {from} to {to}: envcloak follows no redirect to another scheme, host or port"
        ),
        body: None,
        tls: false,
        redirect: true,
    }
}

/// `scheme://host:port` of a URL.
pub fn origin(url: &reqwest::Url) -> String {
    url.origin().ascii_serialization()
}

/// Reads the body into a zeroizing buffer, refusing more than [`MAX_BODY`]
/// bytes; an answer cut short is retried (every request here is safe to
/// repeat).
pub async fn read_body(mut response: reqwest::Response) -> Result<Zeroizing<Vec<u8>>, Attempt> {
    let too_big = || Attempt {
        retry: false,
        after: None,
        error: HttpError {
            status: None,
            message: format!("the answer is larger than {} MiB, the most envcloak reads", MAX_BODY >> 20),
            body: None,
            tls: false,
            redirect: false,
        },
    };
    let announced = response.content_length().unwrap_or(0);
    if announced > MAX_BODY as u64 {
        return Err(too_big());
    }
    let capacity = usize::try_from(announced).unwrap_or(MAX_BODY).clamp(4096, MAX_BODY);
    let mut body = Zeroizing::new(Vec::with_capacity(capacity));
    while let Some(chunk) = response.chunk().await.map_err(cut_short)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_big());
        }
        if body.len() + chunk.len() > body.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(((body.len() + chunk.len()) * 2).min(MAX_BODY)));
            bigger.extend_from_slice(&body);
            body = bigger;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(|secs| Duration::from_secs(secs.min(30)))
}

/// Vault's `{"errors": [...]}` text (never values: error bodies hold none).
fn vault_errors(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    match serde_json::from_slice::<Errors>(body) {
        // Vault's multi-error text spans lines ("1 error occurred:\n\t* …").
        Ok(parsed) if !parsed.errors.is_empty() => {
            parsed.errors.join("; ").split_whitespace().collect::<Vec<_>>().join(" ")
        }
        _ => String::new(),
    }
}

/// A transport failure: connection problems, timeouts and answers cut short
/// are retried (every request here is safe to repeat), TLS failures are not.
pub fn transport_attempt(error: reqwest::Error) -> Attempt {
    let tls = is_tls_failure(&error);
    Attempt {
        retry: !tls && (error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()),
        after: None,
        error: HttpError { status: None, message: describe_transport(&error, tls), body: None, tls, redirect: false },
    }
}

/// An answer cut short (reset or closed before its end): the request is a
/// read, safe to repeat, so it is retried.
fn cut_short(error: reqwest::Error) -> Attempt {
    let mut attempt = transport_attempt(error);
    attempt.retry = true;
    attempt
}

/// Whether a rustls error (a certificate or handshake failure) is in the
/// error's source chain. It travels inside I/O errors, possibly nested, and
/// an I/O error's `source()` skips the error it wraps, so each I/O error is
/// unwrapped by hand.
fn is_tls_failure(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        let mut layer = current;
        loop {
            if layer.is::<rustls::Error>() {
                return true;
            }
            match layer.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
                Some(inner) => layer = inner,
                None => break,
            }
        }
        source = current.source();
    }
    false
}

fn describe_transport(error: &reqwest::Error, tls: bool) -> String {
    let mut text = if tls {
        "TLS failure".to_owned()
    } else if error.is_timeout() {
        "no answer in time".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(current) = source {
        text.push_str(": ");
        text.push_str(&current.to_string());
        source = current.source();
    }
    text
}
