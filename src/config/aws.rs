//! The `[aws]` section.

use toml::de::DeValue;
use toml::Spanned;

use super::Reader;
use crate::error::CliError;

/// `[aws]` as written; unset fields fall back to the AWS SDK's own chain.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// `region` (else AWS_REGION, then the profile's region).
    pub region: Option<String>,
    /// `profile` (else AWS_PROFILE, then `default`).
    pub profile: Option<String>,
    /// `endpoint_url` (else AWS_ENDPOINT_URL).
    pub endpoint_url: Option<String>,
    /// `batch`: read two or more secrets with BatchGetSecretValue (default true).
    pub batch: Option<bool>,
}

const KEYS: &[&str] = &["region", "profile", "endpoint_url", "batch"];

impl Reader<'_> {
    /// Reads `[aws]`.
    pub(super) fn aws(&self, value: &Spanned<DeValue<'_>>) -> Result<AwsConfig, CliError> {
        let mut aws = AwsConfig::default();
        for (key, field) in self.table(value, "[aws]")? {
            let name = key.get_ref().as_ref();
            match name {
                "region" => aws.region = Some(self.string(field, name)?),
                "profile" => aws.profile = Some(self.string(field, name)?),
                "endpoint_url" => aws.endpoint_url = Some(self.string(field, name)?),
                "batch" => aws.batch = Some(self.boolean(field, name)?),
                other => return Err(self.unknown(key, other, "[aws]", KEYS)),
            }
        }
        Ok(aws)
    }
}
