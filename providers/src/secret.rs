//! The one type that holds a secret value.

use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroize;

/// A secret value: zeroized when the last clone is dropped, redacted in `Debug`,
/// and without `Display`. Clones share one allocation, so a value used by two
/// variables exists once in memory.
#[derive(Clone)]
pub struct SecretValue(Arc<SecretString>);

impl SecretValue {
    /// Takes ownership of `value`: the secret gets a buffer of exactly its
    /// length, and the string's own buffer is wiped (a `String` with spare
    /// capacity would otherwise be reallocated and its old buffer freed as
    /// it is).
    pub fn new(mut value: String) -> Self {
        let secret = Self::copy_of(&value);
        value.zeroize();
        secret
    }

    /// A secret holding a copy of `value`, in a buffer of exactly its length.
    pub fn copy_of(value: &str) -> Self {
        Self(Arc::new(exact_secret(value)))
    }

    /// The value itself. Call this only where the value must leave envcloak
    /// (the child's environment, a secret file, `export`) or be compared.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Length of the value in bytes (safe to log).
    pub fn len(&self) -> usize {
        self.expose().len()
    }

    /// Whether the value is the empty string (safe to log).
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

/// A `SecretString` holding a copy of `text` in a buffer of exactly its
/// length, so nothing is reallocated on the way (as `SecretString::from`
/// does with a `String` that has spare capacity).
pub(crate) fn exact_secret(text: &str) -> SecretString {
    SecretString::from(Box::<str>::from(text))
}

impl From<SecretString> for SecretValue {
    fn from(value: SecretString) -> Self {
        Self(Arc::new(value))
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let value = SecretValue::new("fake-canary-value".to_owned());
        let shown = format!("{value:?}");
        assert!(!shown.contains("canary"), "Debug output exposes the value");
        assert_eq!(value.len(), 17);
    }
}
