//! Answers from the AWS endpoint are read up to [`MAX_BODY`] bytes: a
//! larger one (announced, or streamed without a length) is an error naming
//! the endpoint, not an allocation.

use aws_sdk_secretsmanager::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_secretsmanager::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::body::SdkBody;

/// The largest answer read, as for Vault.
pub const MAX_BODY: usize = 16 << 20;

/// The interceptor that caps every answer's body.
#[derive(Debug)]
pub struct BoundedAnswers;

/// An answer over [`MAX_BODY`] (the SDK reports it as the call's error).
#[derive(Debug)]
pub struct TooBig;

impl std::fmt::Display for TooBig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an answer larger than {} MiB, the most envcloak reads", MAX_BODY >> 20)
    }
}

impl std::error::Error for TooBig {}

impl Intercept for BoundedAnswers {
    fn name(&self) -> &'static str {
        "BoundedAnswers"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let body = context.response_mut().body_mut();
        if body.content_length().is_some_and(|length| length > MAX_BODY as u64) {
            return Err(Box::new(TooBig));
        }
        let streamed = std::mem::replace(body, SdkBody::taken());
        *body = SdkBody::from_body_1_x(http_body_util::Limited::new(streamed, MAX_BODY));
        Ok(())
    }
}
