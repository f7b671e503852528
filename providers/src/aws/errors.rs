//! AWS errors, classified by their modeled type and error code (never by
//! message text) into a problem with one secret or with the whole backend,
//! each with a hint of the fix.

use std::error::Error;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::batch_get_secret_value::BatchGetSecretValueError;
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

use super::bounded::TooBig;
use crate::{FailureKind, FetchError};

/// What an error was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ResourceNotFoundException.
    NotFound,
    /// AccessDeniedException: the IAM policy does not allow the call.
    AccessDenied,
    /// DecryptionFailure: KMS would not decrypt the secret.
    Decryption,
    /// InvalidRequestException, e.g. a secret scheduled for deletion.
    InvalidRequest,
    /// InvalidParameterException, e.g. an unknown version stage.
    InvalidParameter,
    /// Throttling that outlasted the SDK's retries.
    Throttled,
    /// The credentials were refused (unknown key, bad signature, expired).
    Credentials,
    /// Anything else AWS answered with.
    Other,
}

impl Kind {
    /// The failure kind envcloak reports for it.
    pub fn failure(self) -> FailureKind {
        match self {
            Kind::NotFound | Kind::InvalidRequest => FailureKind::NotFound,
            Kind::AccessDenied | Kind::Decryption => FailureKind::Denied,
            Kind::InvalidParameter => FailureKind::Settings,
            Kind::Credentials => FailureKind::Credentials,
            Kind::Throttled | Kind::Other => FailureKind::Unreachable,
        }
    }

    /// The kind of an AWS error code (the `__type` of a JSON error, or an
    /// `ErrorCode` of `BatchGetSecretValue`'s per-secret `Errors`).
    pub fn of_code(code: &str) -> Kind {
        match code {
            "ResourceNotFoundException" => Kind::NotFound,
            "AccessDeniedException" | "AccessDenied" => Kind::AccessDenied,
            "DecryptionFailure" => Kind::Decryption,
            "InvalidRequestException" => Kind::InvalidRequest,
            "InvalidParameterException" => Kind::InvalidParameter,
            "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded" => {
                Kind::Throttled
            }
            "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "InvalidSignatureException"
            | "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "ExpiredTokenException"
            | "ExpiredToken" => Kind::Credentials,
            _ => Kind::Other,
        }
    }

    /// The kind of an error answer that carries no AWS error code.
    pub fn of_status(status: u16) -> Kind {
        match status {
            401 | 403 => Kind::AccessDenied,
            429 => Kind::Throttled,
            _ => Kind::Other,
        }
    }

    /// The kind of a `GetSecretValue` error.
    pub fn of_get(error: &GetSecretValueError) -> Kind {
        match error {
            GetSecretValueError::ResourceNotFoundException(_) => Kind::NotFound,
            GetSecretValueError::DecryptionFailure(_) => Kind::Decryption,
            GetSecretValueError::InvalidRequestException(_) => Kind::InvalidRequest,
            GetSecretValueError::InvalidParameterException(_) => Kind::InvalidParameter,
            other => Kind::of_code(other.code().unwrap_or_default()),
        }
    }

    /// The kind of a `DescribeSecret` error.
    pub fn of_describe(error: &DescribeSecretError) -> Kind {
        match error {
            DescribeSecretError::ResourceNotFoundException(_) => Kind::NotFound,
            DescribeSecretError::InvalidParameterException(_) => Kind::InvalidParameter,
            other => Kind::of_code(other.code().unwrap_or_default()),
        }
    }

    /// The kind of a `BatchGetSecretValue` error.
    pub fn of_batch(error: &BatchGetSecretValueError) -> Kind {
        match error {
            BatchGetSecretValueError::ResourceNotFoundException(_) => Kind::NotFound,
            BatchGetSecretValueError::DecryptionFailure(_) => Kind::Decryption,
            BatchGetSecretValueError::InvalidRequestException(_) => Kind::InvalidRequest,
            BatchGetSecretValueError::InvalidParameterException(_) => Kind::InvalidParameter,
            other => Kind::of_code(other.code().unwrap_or_default()),
        }
    }
}

/// Where the requests went, for messages.
#[derive(Debug, Clone)]
pub struct Target {
    /// The region asked.
    pub region: String,
    /// The endpoint, when it is not AWS's own.
    pub endpoint: Option<String>,
    /// The profile, when one was named.
    pub profile: Option<String>,
}

impl Target {
    /// The profile, as a message names it.
    pub fn profile_name(&self) -> String {
        self.profile.as_deref().map_or_else(|| "the default profile".to_owned(), |p| format!("profile `{p}`"))
    }

    fn describe(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("AWS Secrets Manager at {endpoint} (region {})", self.region),
            None => format!("AWS Secrets Manager in {}", self.region),
        }
    }
}

/// A classified failure: of one secret (reported for its variables) or of
/// the whole backend (reported once; nothing can be read).
#[derive(Debug)]
pub enum Failure {
    /// This secret cannot be read.
    Secret(Kind, FetchError),
    /// No secret can be read.
    Backend(FetchError),
}

/// Classifies a failed call about `secret_id` (`None` for a batch);
/// `kind_of` maps the operation's modeled errors.
pub fn classify<E>(error: SdkError<E>, kind_of: fn(&E) -> Kind, secret_id: Option<&str>, target: &Target) -> Failure
where
    E: ProvideErrorMetadata + Error + 'static,
{
    if let Some(credentials) = find_source::<CredentialsError>(&error) {
        return Failure::Backend(missing_credentials(credentials, target));
    }
    // Announced too big, or streamed past the cap.
    if find_source::<TooBig>(&error).is_some() || find_source::<http_body_util::LengthLimitError>(&error).is_some() {
        return Failure::Backend(FetchError::new(
            FailureKind::Malformed,
            format!("{} sent {}", target.describe(), TooBig),
        ));
    }
    match &error {
        SdkError::ServiceError(context) if (300..400).contains(&context.raw().status().as_u16()) => {
            let raw = context.raw();
            let location = raw.headers().get("location").unwrap_or("(no Location)");
            Failure::Backend(
                FetchError::new(FailureKind::Unreachable, format!(
                    "{} answered with a redirect (HTTP {}) to {location}: envcloak follows no redirect",
                    target.describe(),
                    raw.status().as_u16()
                ))
                .with_hint("requests go only to the endpoint you named: if the redirect's target is yours, set AWS_ENDPOINT_URL / [aws] endpoint_url to it"),
            )
        }
        SdkError::ServiceError(context) => {
            let service = context.err();
            match service.code() {
                Some(code) => answered(kind_of(service), code, service.message(), secret_id, target),
                None => {
                    let status = context.raw().status().as_u16();
                    let code = format!("HTTP {status}, no AWS error code");
                    answered(Kind::of_status(status), &code, service.message(), secret_id, target)
                }
            }
        }
        SdkError::TimeoutError(_) => Failure::Backend(
            FetchError::new(FailureKind::Timeout, format!("{} did not answer in time", target.describe()))
                .with_hint("check the network path to AWS, or raise --timeout"),
        ),
        SdkError::DispatchFailure(_) => Failure::Backend(
            FetchError::new(FailureKind::Unreachable, format!("cannot reach {}: {}", target.describe(), chain(&error)))
                .with_hint("check the network, the region and endpoint_url / AWS_ENDPOINT_URL"),
        ),
        // The raw answer could hold a secret: describe it without its text.
        SdkError::ResponseError(_) => Failure::Backend(FetchError::new(
            FailureKind::Malformed,
            format!("{} sent an answer envcloak cannot read", target.describe()),
        )),
        _ => Failure::Backend(FetchError::new(
            FailureKind::Unreachable,
            format!("cannot ask {}: {}", target.describe(), chain(&error)),
        )),
    }
}

/// A failure that AWS answered with about `secret_id` (`None` for a batch),
/// by kind and code; `message` is AWS's own text, which names the secret at
/// most.
pub fn answered(kind: Kind, code: &str, message: Option<&str>, secret_id: Option<&str>, target: &Target) -> Failure {
    let id = secret_id.unwrap_or("ID");
    // AWS's own text, on one line (some endpoints wrap it).
    let message = message.map(|m| m.split_whitespace().collect::<Vec<_>>().join(" ")).unwrap_or_default();
    let detail = if message.is_empty() { code.to_owned() } else { format!("{code}: {message}") };
    let secret =
        |reason: String, hint: String| Failure::Secret(kind, FetchError::new(kind.failure(), reason).with_hint(hint));
    match kind {
        Kind::NotFound => secret(
            format!("not found ({detail})"),
            format!("check the name or ARN and the region ({}): aws secretsmanager describe-secret --secret-id {id}", target.region),
        ),
        Kind::AccessDenied => secret(
            format!("access denied ({detail})"),
            "the caller's IAM policy needs secretsmanager:GetSecretValue on this secret (and kms:Decrypt on its KMS key)".into(),
        ),
        Kind::Decryption => secret(
            format!("AWS could not decrypt the secret ({detail})"),
            "the caller needs kms:Decrypt on the secret's KMS key, and the key must be enabled".into(),
        ),
        Kind::InvalidRequest => secret(
            format!("the secret cannot be read now ({detail})"),
            format!("a secret scheduled for deletion can be restored: aws secretsmanager restore-secret --secret-id {id}"),
        ),
        Kind::InvalidParameter => secret(
            format!("AWS refused the request ({detail})"),
            "check ?version-stage= / ?version-id= and the secret id".into(),
        ),
        Kind::Throttled => secret(
            format!("throttled by AWS after retries ({detail})"),
            "too many requests at once: retry later, or spread out concurrent runs".into(),
        ),
        Kind::Credentials => Failure::Backend(
            FetchError::new(FailureKind::Credentials, format!("{} refused the credentials ({detail})", target.describe())).with_hint(
                "the credentials are wrong or expired: refresh them (aws sso login, aws configure) or check AWS_PROFILE",
            ),
        ),
        Kind::Other => {
            Failure::Secret(kind, FetchError::new(kind.failure(), format!("{} answered with an error ({detail})", target.describe())))
        }
    }
}

fn missing_credentials(error: &CredentialsError, target: &Target) -> FetchError {
    let profile = target.profile_name();
    FetchError::new(FailureKind::Credentials, format!("no usable AWS credentials: {}", chain(error))).with_hint(
        format!(
            "tried, in order: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, {profile} in ~/.aws/config and \
         ~/.aws/credentials (with SSO, assume-role and credential_process), web identity \
         (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE), the ECS container endpoint and EC2 instance \
         metadata; set one up (aws configure, aws sso login, or an OIDC role in CI)"
        ),
    )
}

/// An error and its sources, each level's own message once, joined by `: `
/// (the SDK's debug dump of answers and headers is left out).
fn chain(error: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        // One line: some sources list what they tried on lines of their own.
        let text = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// The first error of type `T` in `error`'s source chain.
fn find_source<'a, T: Error + 'static>(error: &'a (dyn Error + 'static)) -> Option<&'a T> {
    let mut current: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target { region: "eu-west-1".into(), endpoint: None, profile: None }
    }

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(Kind::of_code("ResourceNotFoundException"), Kind::NotFound);
        assert_eq!(Kind::of_code("AccessDeniedException"), Kind::AccessDenied);
        assert_eq!(Kind::of_code("ThrottlingException"), Kind::Throttled);
        assert_eq!(Kind::of_code("UnrecognizedClientException"), Kind::Credentials);
        assert_eq!(Kind::of_code("SomethingNew"), Kind::Other);
    }

    #[test]
    fn secret_failures_carry_code_and_hint_and_credential_failures_stop_the_backend() {
        match answered(Kind::AccessDenied, "AccessDeniedException", Some("not allowed"), Some("x"), &target()) {
            Failure::Secret(Kind::AccessDenied, e) => {
                assert_eq!(e.reason, "access denied (AccessDeniedException: not allowed)");
                assert!(e.hint.unwrap().contains("secretsmanager:GetSecretValue"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            answered(Kind::Credentials, "UnrecognizedClientException", None, None, &target()),
            Failure::Backend(_)
        ));
    }
}
