//! Secret references: `SCHEME://LOCATION[?NAME=VALUE][#KEY]`, e.g.
//! `age://PATH[#KEY]`, `vault://MOUNT/PATH[?version=N][#KEY]`,
//! `aws-sm://SECRET_ID[?version-stage=S|version-id=V][#KEY]`. The scheme
//! picks the backend from the registry; the backend checks the location and
//! the query.

use std::fmt;

use crate::backend::Backend;
use crate::registry::{self, Entry};

/// The version selector of a source, from the reference's query: one
/// `?NAME=VALUE`, as the backend's rules allow (`?version=3`,
/// `?version-stage=AWSPREVIOUS`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Selector {
    /// The parameter.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// One fetchable document: a reference without its `#KEY`. Providers fetch
/// each distinct source once, however many variables use it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source {
    /// Which backend holds it.
    pub backend: Backend,
    /// The file path, the Vault `MOUNT/PATH`, or the AWS secret id.
    pub location: String,
    /// Which version; `None` for the current one.
    pub selector: Option<Selector>,
}

impl Source {
    /// The selector's value if it is `name`.
    pub fn selected(&self, name: &str) -> Option<&str> {
        self.selector.as_ref().filter(|s| s.name == name).map(|s| s.value.as_str())
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.backend.scheme(), self.location)?;
        match &self.selector {
            Some(Selector { name, value }) => write!(f, "?{name}={value}"),
            None => Ok(()),
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
    #[error("not a secret reference (expected SCHEME://…, where SCHEME is one of {supported})", supported = registry::schemes())]
    NoScheme,
    /// A scheme that no backend has.
    #[error("unknown reference scheme `{0}://` (supported: {supported})", supported = registry::schemes())]
    UnknownScheme(String),
    /// A backend this build leaves out.
    #[error("this envcloak was built without {scheme}:// support: install a build with the `{feature}` cargo feature (on by default)")]
    NotBuilt {
        /// The scheme.
        scheme: String,
        /// The cargo feature that adds it.
        feature: &'static str,
    },
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

impl SecretRef {
    /// Parses a reference. The location is kept as written; callers that know
    /// a base folder (age paths) adjust it with [`SecretRef::with_location`].
    pub fn parse(raw: &str) -> Result<Self, RefError> {
        let (scheme, rest) =
            raw.split_once("://").filter(|(scheme, _)| !scheme.is_empty()).ok_or(RefError::NoScheme)?;
        let backend = match registry::find(scheme) {
            Some(Entry::Built(module)) => Backend::new(*module),
            Some(Entry::LeftOut { scheme, feature }) => {
                return Err(RefError::NotBuilt { scheme: (*scheme).into(), feature })
            }
            None => return Err(RefError::UnknownScheme(scheme.into())),
        };
        let (before_key, key) = match rest.split_once('#') {
            Some((_, "")) => return Err(RefError::EmptyKey),
            Some((before, key)) => (before, Some(key.to_owned())),
            None => (rest, None),
        };
        let (location, query) = match before_key.split_once('?') {
            Some((location, query)) => (location, Some(query)),
            None => (before_key, None),
        };
        let selector = parse_query(backend, query)?;
        backend.module().check_location(location)?;
        Ok(Self { raw: raw.to_owned(), source: Source { backend, location: location.to_owned(), selector }, key })
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

/// At most one `NAME=VALUE`, which the backend checks.
fn parse_query(backend: Backend, query: Option<&str>) -> Result<Option<Selector>, RefError> {
    let mut pairs = query.unwrap_or("").split('&').filter(|p| !p.is_empty());
    let (first, second) = (pairs.next(), pairs.next());
    let Some(pair) = first else { return Ok(None) };
    if second.is_some() {
        return Err(RefError::BadQuery(backend.module().query_rule().into()));
    }
    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
    backend.module().check_selector(name, value)?;
    Ok(Some(Selector { name: name.into(), value: value.into() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        let r = SecretRef::parse("age://secrets/dev.env.age#DB_URL").unwrap();
        assert_eq!(r.source.backend.scheme(), "age");
        assert_eq!(r.source.location, "secrets/dev.env.age");
        assert_eq!(r.key.as_deref(), Some("DB_URL"));

        let r = SecretRef::parse("vault://secret/flask/prod?version=3#sentry_dsn").unwrap();
        assert_eq!(r.source.backend.scheme(), "vault");
        assert_eq!(r.source.location, "secret/flask/prod");
        assert_eq!(r.source.selected("version"), Some("3"));
        assert_eq!(r.key.as_deref(), Some("sentry_dsn"));

        let arn = "aws-sm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf?version-stage=AWSPREVIOUS#url";
        let r = SecretRef::parse(arn).unwrap();
        assert_eq!(r.source.backend.scheme(), "aws-sm");
        assert_eq!(r.source.location, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf");
        assert_eq!(r.source.selected("version-stage"), Some("AWSPREVIOUS"));
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
