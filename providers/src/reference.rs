//! Secret references: `age://PATH[#KEY]`, `vault://MOUNT/PATH[?version=N][#KEY]`,
//! `aws-sm://SECRET_ID[?version-stage=S|version-id=V][#KEY]`.

use std::fmt;

/// The backends a reference can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// An age-encrypted dotenv document.
    Age,
    /// A HashiCorp Vault or OpenBao KV secret.
    Vault,
    /// An AWS Secrets Manager secret.
    AwsSm,
}

impl Backend {
    /// Every backend, in the order they are listed to users.
    pub const ALL: [Backend; 3] = [Backend::Age, Backend::Vault, Backend::AwsSm];

    /// The URL scheme of the backend's references.
    pub fn scheme(self) -> &'static str {
        match self {
            Backend::Age => "age",
            Backend::Vault => "vault",
            Backend::AwsSm => "aws-sm",
        }
    }

    /// A short name for messages, logs and the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Age => "age",
            Backend::Vault => "vault",
            Backend::AwsSm => "aws-sm",
        }
    }

    fn from_scheme(scheme: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.scheme() == scheme)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The version selector of a source, from the reference's query.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceQuery {
    /// The current version.
    Latest,
    /// `vault://…?version=N`
    VaultVersion(u64),
    /// `aws-sm://…?version-stage=S`
    AwsVersionStage(String),
    /// `aws-sm://…?version-id=V`
    AwsVersionId(String),
}

/// One fetchable document: a reference without its `#KEY`. Providers fetch
/// each distinct source once, however many variables use it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source {
    /// Which backend holds it.
    pub backend: Backend,
    /// The file path, the Vault `MOUNT/PATH`, or the AWS secret id.
    pub location: String,
    /// Which version.
    pub query: SourceQuery,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.backend.scheme(), self.location)?;
        match &self.query {
            SourceQuery::Latest => Ok(()),
            SourceQuery::VaultVersion(v) => write!(f, "?version={v}"),
            SourceQuery::AwsVersionStage(s) => write!(f, "?version-stage={s}"),
            SourceQuery::AwsVersionId(v) => write!(f, "?version-id={v}"),
        }
    }
}

/// A parsed reference: a source and, with `#KEY`, one key of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretRef {
    raw: String,
    /// The document the reference points into.
    pub source: Source,
    /// The key after `#`, if any.
    pub key: Option<String>,
}

/// Why a reference could not be parsed. References are never secret, so the
/// messages may quote them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// No `scheme://`.
    #[error("not a secret reference (expected SCHEME://…, where SCHEME is one of {supported})", supported = supported_schemes())]
    NoScheme,
    /// A scheme that no backend has.
    #[error("unknown reference scheme `{0}://` (supported: {supported})", supported = supported_schemes())]
    UnknownScheme(String),
    /// Nothing between `://` and `?`/`#`.
    #[error("the reference names no {0}")]
    MissingLocation(&'static str),
    /// `#` with nothing after it.
    #[error("`#` must be followed by a key name")]
    EmptyKey,
    /// A query parameter the backend does not know, or a bad value.
    #[error("{0}")]
    BadQuery(String),
}

fn supported_schemes() -> String {
    Backend::ALL.iter().map(|b| format!("{}://", b.scheme())).collect::<Vec<_>>().join(", ")
}

impl SecretRef {
    /// Parses a reference. The location is kept as written; callers that know
    /// a base folder (age paths) adjust it with [`SecretRef::with_location`].
    pub fn parse(raw: &str) -> Result<Self, RefError> {
        let (scheme, rest) =
            raw.split_once("://").filter(|(scheme, _)| !scheme.is_empty()).ok_or(RefError::NoScheme)?;
        let backend = Backend::from_scheme(scheme).ok_or_else(|| RefError::UnknownScheme(scheme.into()))?;
        let (before_key, key) = match rest.split_once('#') {
            Some((_, "")) => return Err(RefError::EmptyKey),
            Some((before, key)) => (before, Some(key.to_owned())),
            None => (rest, None),
        };
        let (location, query) = match before_key.split_once('?') {
            Some((location, query)) => (location, Some(query)),
            None => (before_key, None),
        };
        let query = parse_query(backend, query)?;
        validate_location(backend, location)?;
        Ok(Self { raw: raw.to_owned(), source: Source { backend, location: location.to_owned(), query }, key })
    }

    /// The reference as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The same reference with the source's location replaced (e.g. an age
    /// path made absolute); the text shown to users stays as written.
    pub fn with_location(mut self, location: String) -> Self {
        self.source.location = location;
        self
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn validate_location(backend: Backend, location: &str) -> Result<(), RefError> {
    match backend {
        Backend::Age if location.is_empty() => Err(RefError::MissingLocation("file path")),
        Backend::Vault => {
            let mut parts = location.trim_matches('/').splitn(2, '/');
            let mount = parts.next().unwrap_or("");
            let path = parts.next().unwrap_or("");
            if mount.is_empty() || path.is_empty() || location.contains("//") {
                Err(RefError::MissingLocation("secret path: write vault://MOUNT/PATH, e.g. vault://secret/flask/prod"))
            } else {
                Ok(())
            }
        }
        Backend::AwsSm if location.is_empty() => Err(RefError::MissingLocation("secret name or ARN")),
        _ => Ok(()),
    }
}

fn parse_query(backend: Backend, query: Option<&str>) -> Result<SourceQuery, RefError> {
    let Some(query) = query else {
        return Ok(SourceQuery::Latest);
    };
    let mut pairs = query.split('&').filter(|p| !p.is_empty());
    let (first, second) = (pairs.next(), pairs.next());
    let Some(pair) = first else {
        return Ok(SourceQuery::Latest);
    };
    let allowed = match backend {
        Backend::Age => "age:// references take no query parameters",
        Backend::Vault => "vault:// references take only ?version=N",
        Backend::AwsSm => "aws-sm:// references take ?version-stage=STAGE or ?version-id=ID, not both",
    };
    if second.is_some() {
        return Err(RefError::BadQuery(allowed.into()));
    }
    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
    match (backend, name) {
        (Backend::Vault, "version") => match value.parse::<u64>() {
            Ok(v) if v > 0 => Ok(SourceQuery::VaultVersion(v)),
            _ => Err(RefError::BadQuery(format!("version must be a positive whole number, not `{value}`"))),
        },
        (Backend::AwsSm, "version-stage" | "version-id") if value.is_empty() => {
            Err(RefError::BadQuery(format!("`{name}` needs a value, e.g. {name}=AWSPREVIOUS")))
        }
        (Backend::AwsSm, "version-stage") => Ok(SourceQuery::AwsVersionStage(value.into())),
        (Backend::AwsSm, "version-id") => Ok(SourceQuery::AwsVersionId(value.into())),
        _ => Err(RefError::BadQuery(format!("unknown query parameter `{name}`: {allowed}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        let r = SecretRef::parse("age://secrets/dev.env.age#DB_URL").unwrap();
        assert_eq!(r.source.backend, Backend::Age);
        assert_eq!(r.source.location, "secrets/dev.env.age");
        assert_eq!(r.key.as_deref(), Some("DB_URL"));

        let r = SecretRef::parse("vault://secret/flask/prod?version=3#sentry_dsn").unwrap();
        assert_eq!(r.source.backend, Backend::Vault);
        assert_eq!(r.source.location, "secret/flask/prod");
        assert_eq!(r.source.query, SourceQuery::VaultVersion(3));
        assert_eq!(r.key.as_deref(), Some("sentry_dsn"));

        let arn = "aws-sm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf?version-stage=AWSPREVIOUS#url";
        let r = SecretRef::parse(arn).unwrap();
        assert_eq!(r.source.backend, Backend::AwsSm);
        assert_eq!(r.source.location, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf");
        assert_eq!(r.source.query, SourceQuery::AwsVersionStage("AWSPREVIOUS".into()));
        assert_eq!(r.as_str(), arn);
        assert_eq!(r.to_string(), arn);
    }

    #[test]
    fn source_display_omits_the_key() {
        let r = SecretRef::parse("aws-sm://prod/db?version-id=abc#url").unwrap();
        assert_eq!(r.source.to_string(), "aws-sm://prod/db?version-id=abc");
    }

    #[test]
    fn rejects_bad_references() {
        let cases = [
            ("secrets.env.age", RefError::NoScheme),
            ("gcp://x", RefError::UnknownScheme("gcp".into())),
            ("age://", RefError::MissingLocation("file path")),
            ("age://x.age#", RefError::EmptyKey),
            ("://x.age#K", RefError::NoScheme),
        ];
        for (raw, expected) in cases {
            assert_eq!(SecretRef::parse(raw).unwrap_err(), expected, "{raw}");
        }
        for raw in [
            "vault://secret",
            "vault://secret/",
            "vault://secret//x",
            "vault://secret/x?version=0",
            "vault://secret/x?version=abc",
            "vault://secret/x?ver=1",
            "age://x.age?version=1",
            "aws-sm://",
            "aws-sm://x?version-stage=A&version-id=B",
            "aws-sm://x?version-stage=",
        ] {
            assert!(SecretRef::parse(raw).is_err(), "{raw} should be refused");
        }
    }

    #[test]
    fn unknown_scheme_lists_the_supported_ones() {
        let msg = SecretRef::parse("gcp://x").unwrap_err().to_string();
        assert!(msg.contains("age://, vault://, aws-sm://"), "{msg}");
    }
}
