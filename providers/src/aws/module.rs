//! The AWS Secrets Manager backend as the registry sees it:
//! `aws-sm://SECRET_ID` references with `?version-stage=` or `?version-id=`,
//! and the `[aws]` section; what it leaves unset, the AWS SDK's own chains
//! decide.

use std::any::Any;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::{AwsProvider, AwsSettings};
use crate::backend::{
    env_value, read_section, BackendConfig, BackendModule, Destination, RunContext, Section, SectionError,
};
use crate::{FetchError, Provider, RefError};

/// The AWS Secrets Manager backend.
pub struct AwsModule;

/// The registry's entry for the AWS Secrets Manager backend.
pub static MODULE: AwsModule = AwsModule;

impl BackendModule for AwsModule {
    fn scheme(&self) -> &'static str {
        "aws-sm"
    }

    fn title(&self) -> &'static str {
        "AWS Secrets Manager"
    }

    fn has_whole_values(&self) -> bool {
        true
    }

    fn check_location(&self, location: &str) -> Result<(), RefError> {
        if location.is_empty() {
            return Err(RefError::MissingLocation("secret name or ARN"));
        }
        Ok(())
    }

    fn query_rule(&self) -> &'static str {
        "aws-sm:// references take ?version-stage=STAGE or ?version-id=ID, not both"
    }

    fn check_selector(&self, name: &str, value: &str) -> Result<(), RefError> {
        match name {
            "version-stage" | "version-id" if value.is_empty() => {
                Err(RefError::BadQuery(format!("`{name}` needs a value, e.g. {name}=AWSPREVIOUS")))
            }
            "version-stage" | "version-id" => Ok(()),
            _ => Err(RefError::BadQuery(format!("unknown query parameter `{name}`: {}", self.query_rule()))),
        }
    }

    fn section(&self) -> &'static str {
        "aws"
    }

    fn configure(&self, section: Option<&Section<'_>>, _dir: &Path) -> Result<Box<dyn BackendConfig>, SectionError> {
        Ok(Box::new(read_section::<AwsConfig>(self.section(), section)?))
    }
}

/// `[aws]` as written; unset fields fall back to the AWS SDK's own chain.
#[derive(Deserialize, Debug, Default, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// `region` (else `AWS_REGION`, then the profile's region).
    pub region: Option<String>,
    /// `profile` (else `AWS_PROFILE`, then `default`).
    pub profile: Option<String>,
    /// `endpoint_url` (`AWS_ENDPOINT_URL_SECRETS_MANAGER`, then
    /// `AWS_ENDPOINT_URL`, win over it).
    pub endpoint_url: Option<String>,
    /// `batch`: read two or more secrets with BatchGetSecretValue (default true).
    pub batch: Option<bool>,
}

impl AwsConfig {
    /// A custom endpoint and what named it; `None` for AWS's own.
    fn endpoint(&self) -> Option<(String, &'static str)> {
        env_value("AWS_ENDPOINT_URL_SECRETS_MANAGER")
            .map(|a| (a, "AWS_ENDPOINT_URL_SECRETS_MANAGER"))
            .or_else(|| env_value("AWS_ENDPOINT_URL").map(|a| (a, "AWS_ENDPOINT_URL")))
            .or_else(|| self.endpoint_url.clone().map(|a| (a, "[aws] endpoint_url")))
    }
}

impl BackendConfig for AwsConfig {
    fn destination(&self) -> Option<Destination> {
        let (address, from) =
            self.endpoint().unwrap_or_else(|| ("the AWS endpoint of the region".into(), "the AWS SDK's default"));
        Some(Destination { address, from })
    }

    fn trust_reasons(&self) -> Vec<String> {
        self.destination()
            .filter(Destination::from_file)
            .map(|d| format!("AWS Secrets Manager at {} ({})", d.address, d.from))
            .into_iter()
            .collect()
    }

    fn bootstrap_credentials(&self) -> Vec<String> {
        Vec::new()
    }

    fn provider(&self, run: &RunContext) -> Result<Arc<dyn Provider>, FetchError> {
        let settings = AwsSettings {
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint().map(|(address, _)| address),
            batch: self.batch.unwrap_or(true),
        };
        Ok(Arc::new(AwsProvider::new(settings, run.deadline)))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
