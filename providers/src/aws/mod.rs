//! The `aws-sm://` backend: AWS Secrets Manager, with the SDK's default
//! credential and region chains.
//!
//! One run builds one client. Two or more unpinned secrets are read with
//! `BatchGetSecretValue`, [`BATCH_SIZE`] ids per call, the calls concurrent; a
//! caller not allowed to batch falls back to `GetSecretValue` per secret.
//! Version-pinned references, a lone secret, and runs with batching off use
//! `GetSecretValue`. At most [`MAX_IN_FLIGHT`] calls run at once.
//!
//! A stamp (for `run --watch`) is the id of the version holding the
//! requested stage, from one `DescribeSecret` per secret, which returns no
//! value; a reference pinned to a version id needs no call at all.

mod bounded;
mod errors;
mod module;
mod value;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::config::interceptors::InterceptorContext;
use aws_sdk_secretsmanager::config::retry::{ClassifyRetry, RetryAction};
use aws_sdk_secretsmanager::types::SecretValueEntry;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::{Backend, BoxFuture, Document, FailureKind, FetchError, Fetched, Provider, Source, Stamp, Stamps};
use errors::{Failure, Kind, Target};
pub use module::{AwsConfig, AwsModule, MODULE};
use value::SecretPayload;

/// Secret ids per `BatchGetSecretValue` call (the API's limit).
pub const BATCH_SIZE: usize = 20;
/// Calls in flight at once.
pub const MAX_IN_FLIGHT: usize = 16;
/// Tries per call, the first included (the SDK's standard retry mode).
const MAX_ATTEMPTS: u32 = 3;
/// No connection attempt waits longer than this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// No single try waits longer than this.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much earlier than the run's deadline the SDK gives up.
const SDK_MARGIN: Duration = Duration::from_millis(200);

/// `[aws]` with its fallbacks applied; unset fields are left to the SDK's
/// own chain (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`, profiles…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// The region.
    pub region: Option<String>,
    /// The shared-config profile.
    pub profile: Option<String>,
    /// A custom endpoint, e.g. a local test server.
    pub endpoint_url: Option<String>,
    /// Whether to read several secrets per call with `BatchGetSecretValue`.
    pub batch: bool,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self { region: None, profile: None, endpoint_url: None, batch: true }
    }
}

/// The AWS Secrets Manager provider.
pub struct AwsProvider {
    settings: AwsSettings,
    deadline: Instant,
}

impl AwsProvider {
    /// A provider for `settings` that gives up at `deadline` (the run's
    /// `--timeout`).
    pub fn new(settings: AwsSettings, deadline: Instant) -> Self {
        Self { settings, deadline }
    }
}

impl Provider for AwsProvider {
    fn backend(&self) -> Backend {
        Backend::new(&MODULE)
    }

    fn fetch<'a>(&'a self, sources: &'a [Source]) -> BoxFuture<'a, Result<Fetched, FetchError>> {
        Box::pin(fetch_all(&self.settings, sources, self.deadline))
    }

    /// The version id holding each secret's stage (`?version-stage=`, else
    /// `AWSCURRENT`), by `DescribeSecret`; a `?version-id=` is constant.
    fn stamps<'a>(&'a self, sources: &'a [Source]) -> BoxFuture<'a, Result<Stamps, FetchError>> {
        Box::pin(stamps_all(&self.settings, sources, self.deadline))
    }
}

/// The stage a reference reads when it names none.
const CURRENT_STAGE: &str = "AWSCURRENT";

async fn stamps_all(settings: &AwsSettings, sources: &[Source], deadline: Instant) -> Result<Stamps, FetchError> {
    let mut stamps = Stamps::new();
    let mut described = Vec::new();
    for source in sources {
        match source.selected("version-id") {
            Some(id) => {
                stamps.insert(source.clone(), Ok(Stamp::Version(id.to_owned())));
            }
            None => described.push(source.clone()),
        }
    }
    if described.is_empty() {
        return Ok(stamps);
    }
    let client = Arc::new(client(settings, deadline).await?);
    let mut tasks = JoinSet::new();
    for source in described {
        let client = Arc::clone(&client);
        tasks.spawn(async move { describe_one(&client, source).await });
    }
    while let Some(done) = tasks.join_next().await {
        let stamped =
            done.map_err(|e| FetchError::new(FailureKind::Internal, format!("an AWS call stopped: {e}")))??;
        stamps.extend(stamped);
    }
    Ok(stamps)
}

/// The stamp of one secret by `DescribeSecret`; `None` (left to the caller,
/// who reads the value) when the caller may read the secret but not
/// describe it: a policy often grants `secretsmanager:GetSecretValue` alone.
async fn describe_one(
    client: &Client,
    source: Source,
) -> Result<Option<(Source, Result<Stamp, FetchError>)>, FetchError> {
    let _permit = client.limit.acquire().await;
    let stage = source.selected("version-stage").unwrap_or(CURRENT_STAGE);
    let stamp = match client.sdk.describe_secret().secret_id(&source.location).send().await {
        Ok(answer) => {
            stage_version(answer.version_ids_to_stages.as_ref(), stage, answer.deleted_date.is_some())
                .map(Stamp::Version)
                .ok_or_else(|| {
                    FetchError::new(FailureKind::NotFound, format!("no version of this secret has the stage {stage}"))
                        .with_hint(format!(
                            "check ?version-stage= against the secret's stages: aws secretsmanager describe-secret --secret-id {}",
                            source.location
                        ))
                })
        }
        Err(e) => match errors::classify(e, Kind::of_describe, Some(&source.location), &client.target) {
            Failure::Secret(Kind::AccessDenied, _) => return Ok(None),
            Failure::Secret(_, e) => Err(e),
            Failure::Backend(e) => return Err(e),
        },
    };
    Ok(Some((source, stamp)))
}

/// The id of the version that holds `stage`, marked when the secret is
/// scheduled for deletion (a fetch then fails, and a restore is a change).
fn stage_version(versions: Option<&HashMap<String, Vec<String>>>, stage: &str, deleted: bool) -> Option<String> {
    let id = versions?.iter().find(|(_, stages)| stages.iter().any(|s| s == stage)).map(|(id, _)| id)?;
    Some(if deleted { format!("{id} (scheduled for deletion)") } else { id.clone() })
}

/// Shared by the concurrent calls of one run.
struct Client {
    sdk: aws_sdk_secretsmanager::Client,
    target: Target,
    limit: Semaphore,
}

/// One secret's outcome; `Err` stops the whole backend.
type Outcome = Result<Vec<(Source, Result<Document, FetchError>)>, FetchError>;

async fn fetch_all(settings: &AwsSettings, sources: &[Source], deadline: Instant) -> Result<Fetched, FetchError> {
    let client = Arc::new(client(settings, deadline).await?);
    let unpinned: Vec<Source> = sources.iter().filter(|s| s.selector.is_none()).cloned().collect();
    let batched = if settings.batch && unpinned.len() >= 2 { unpinned } else { Vec::new() };
    let mut tasks: JoinSet<Outcome> = JoinSet::new();
    for chunk in batched.chunks(BATCH_SIZE) {
        let (client, chunk) = (Arc::clone(&client), chunk.to_vec());
        tasks.spawn(async move { batch_get(&client, chunk).await });
    }
    for source in sources.iter().filter(|s| !batched.contains(s)) {
        let (client, source) = (Arc::clone(&client), source.clone());
        tasks.spawn(async move { get_one(&client, source).await.map(|found| vec![found]) });
    }
    let mut fetched = Fetched::new();
    while let Some(done) = tasks.join_next().await {
        let found = done.map_err(|e| FetchError::new(FailureKind::Internal, format!("an AWS call stopped: {e}")))??;
        fetched.extend(found);
    }
    Ok(fetched)
}

/// The SDK client: default chains, plus `[aws]`, timeouts inside the
/// deadline, standard retries.
async fn client(settings: &AwsSettings, deadline: Instant) -> Result<Client, FetchError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(FetchError::new(
            FailureKind::Timeout,
            "the --timeout ran out before AWS Secrets Manager could be asked",
        ));
    }
    // The SDK gives up a little before the run's deadline, so that its
    // message (which names the endpoint) is the one reported.
    let operation = remaining.saturating_sub(SDK_MARGIN).max(remaining / 2);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(operation))
        .operation_attempt_timeout(ATTEMPT_TIMEOUT.min(operation))
        .operation_timeout(operation)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = &settings.endpoint_url {
        loader = loader.endpoint_url(endpoint);
        if endpoint.trim_start().get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://")) {
            loader = loader.http_client(direct_http_client());
        }
    }
    let config = tokio::time::timeout_at(deadline, loader.load()).await.map_err(|_| {
        FetchError::new(FailureKind::Timeout, "the AWS configuration did not load within --timeout")
            .with_hint("check the profile in ~/.aws/config, or set [aws] region")
    })?;
    // The profile the SDK used, for messages: `[aws] profile`, else AWS_PROFILE.
    let profile = settings.profile.clone().or_else(|| std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()));
    let mut target = Target { region: String::new(), endpoint: config.endpoint_url().map(str::to_owned), profile };
    target.region = config.region().map(|r| r.as_ref().to_owned()).ok_or_else(|| {
        FetchError::new(
            FailureKind::Settings,
            format!(
                "no AWS region is set (not in [aws] region, AWS_REGION, or {} of ~/.aws/config)",
                target.profile_name()
            ),
        )
        .with_hint(
            "set [aws] region in envcloak.toml or AWS_REGION, or add a region to the profile (is its name right?)",
        )
    })?;
    let sdk_config = aws_sdk_secretsmanager::config::Builder::from(&config)
        .retry_classifier(TooManyRequests)
        .interceptor(bounded::BoundedAnswers)
        .build();
    let sdk = aws_sdk_secretsmanager::Client::from_conf(sdk_config);
    Ok(Client { sdk, target, limit: Semaphore::new(MAX_IN_FLIGHT) })
}

/// The client for a plain-`http` endpoint (a local one): no proxy, since a
/// proxy would see the signed requests and the secrets in the clear. An
/// `https` endpoint keeps the SDK's client, which honours `HTTPS_PROXY`,
/// `ALL_PROXY` and `NO_PROXY`.
fn direct_http_client() -> aws_sdk_secretsmanager::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = aws_smithy_http_client::ConnectorBuilder::default();
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.build_http()
    })
}

/// An HTTP 429 without an AWS error code (a gateway or proxy in front of the
/// endpoint throttling): retried like AWS's own throttling errors, which the
/// SDK recognises only by their code.
#[derive(Debug)]
struct TooManyRequests;

impl ClassifyRetry for TooManyRequests {
    fn classify_retry(&self, context: &InterceptorContext) -> RetryAction {
        match context.response().map(|response| response.status().as_u16()) {
            Some(429) => RetryAction::throttling_error(),
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "HTTP 429 Too Many Requests"
    }
}

/// Reads one secret with `GetSecretValue`, at its pinned version if any.
async fn get_one(client: &Client, source: Source) -> Result<(Source, Result<Document, FetchError>), FetchError> {
    let _permit = client.limit.acquire().await;
    let mut request = client.sdk.get_secret_value().secret_id(&source.location);
    if let Some(stage) = source.selected("version-stage") {
        request = request.version_stage(stage);
    }
    if let Some(id) = source.selected("version-id") {
        request = request.version_id(id);
    }
    let document = match request.send().await {
        Ok(mut answer) => value::document(SecretPayload {
            string: answer.secret_string.take(),
            binary: answer.secret_binary.take(),
            version_id: answer.version_id.take(),
            stages: answer.version_stages.take().unwrap_or_default(),
        }),
        Err(e) => match errors::classify(e, Kind::of_get, Some(&source.location), &client.target) {
            Failure::Secret(_, e) => Err(e),
            Failure::Backend(e) => return Err(e),
        },
    };
    Ok((source, document))
}

/// Reads up to [`BATCH_SIZE`] unpinned secrets in one `BatchGetSecretValue`
/// call (following `NextToken`); secrets the answer does not cover, or all of
/// them if the caller may not batch, are read one by one.
async fn batch_get(client: &Arc<Client>, sources: Vec<Source>) -> Outcome {
    let mut wanted: HashMap<String, Source> = sources.into_iter().map(|s| (s.location.clone(), s)).collect();
    let mut found = Vec::new();
    let mut next_token = None;
    loop {
        let permit = client.limit.acquire().await;
        let answer = client
            .sdk
            .batch_get_secret_value()
            .set_secret_id_list(Some(wanted.keys().cloned().collect()))
            .set_next_token(next_token.take())
            .send()
            .await;
        drop(permit);
        let mut answer = match answer {
            Ok(answer) => answer,
            Err(e) => match errors::classify(e, Kind::of_batch, None, &client.target) {
                Failure::Secret(Kind::AccessDenied, _) => break,
                Failure::Secret(_, e) => {
                    found.extend(wanted.drain().map(|(_, source)| (source, Err(e.clone()))));
                    break;
                }
                Failure::Backend(e) => return Err(e),
            },
        };
        for entry in answer.secret_values.take().unwrap_or_default() {
            if let Some(source) = take_match(&mut wanted, &entry) {
                found.push((source, value::document(payload(entry))));
            }
        }
        for error in answer.errors.take().unwrap_or_default() {
            let Some(source) = error.secret_id.as_deref().and_then(|id| wanted.remove(id)) else { continue };
            let code = error.error_code.as_deref().unwrap_or("unknown error");
            match errors::answered(
                Kind::of_code(code),
                code,
                error.message.as_deref(),
                Some(&source.location),
                &client.target,
            ) {
                Failure::Secret(_, e) => found.push((source, Err(e))),
                Failure::Backend(e) => return Err(e),
            }
        }
        next_token = answer.next_token.take();
        if next_token.is_none() || wanted.is_empty() {
            break;
        }
    }
    let mut singles = JoinSet::new();
    for (_, source) in wanted {
        let client = Arc::clone(client);
        singles.spawn(async move { get_one(&client, source).await });
    }
    while let Some(done) = singles.join_next().await {
        found.push(done.map_err(|e| FetchError::new(FailureKind::Internal, format!("an AWS call stopped: {e}")))??);
    }
    Ok(found)
}

/// The wanted source an answer entry is for: requested by name or by ARN.
fn take_match(wanted: &mut HashMap<String, Source>, entry: &SecretValueEntry) -> Option<Source> {
    [entry.name.as_deref(), entry.arn.as_deref()].into_iter().flatten().find_map(|id| wanted.remove(id))
}

/// Moves the value out of a batch entry.
fn payload(mut entry: SecretValueEntry) -> SecretPayload {
    SecretPayload {
        string: entry.secret_string.take(),
        binary: entry.secret_binary.take(),
        version_id: entry.version_id.take(),
        stages: entry.version_stages.take().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
