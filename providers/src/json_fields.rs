//! The keys of a JSON object secret (a Vault KV secret, an AWS SecretString):
//! strings as they are, numbers and booleans as their JSON text, and null,
//! nested objects and lists set aside as unusable, named by key only.

use std::fmt;

use secrecy::SecretString;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::secret::exact_secret;
use crate::SecretValue;

/// Where a JSON document is malformed, by position only: serde's own
/// messages can quote the offending text, which may be part of a secret.
pub(crate) fn position(error: &serde_json::Error) -> String {
    format!("line {}, column {}", error.line(), error.column())
}

/// The keys of a secret: values that can be injected, and keys that cannot
/// (nested objects and arrays).
#[derive(Default)]
pub(crate) struct Fields {
    /// Keys with a value that can be injected, in document order.
    pub usable: Vec<(String, SecretValue)>,
    /// Keys that cannot be injected, with the reason.
    pub unusable: Vec<(String, String)>,
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of keys")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<String>()? {
            // Borrowed from the input, so numbers keep the text they were
            // written as (a float would turn 12345678901234567890123 into
            // 1.2345678901234568e22) and nothing is copied on the way.
            let raw: &'de RawValue = map.next_value()?;
            let text = raw.get();
            match text.as_bytes().first() {
                Some(b'"') => {
                    let value = unescaped(text).map_err(de::Error::custom)?;
                    fields.usable.push((key, SecretValue::from(value)));
                }
                Some(b'{') => fields.unusable.push((key, unusable("a nested object"))),
                Some(b'[') => fields.unusable.push((key, unusable("a list"))),
                // Not the text `null`: a value that is not there.
                Some(b'n') => fields.unusable.push((key, unusable("null"))),
                // A number, true or false: its JSON text as written.
                _ => fields.usable.push((key, SecretValue::copy_of(text))),
            }
        }
        Ok(fields)
    }
}

fn unusable(kind: &str) -> String {
    format!("holds {kind}; only strings, numbers and booleans can be injected")
}

/// A JSON string literal (`"…"`), unescaped into a secret of exactly its
/// length: copied once from the input when it has no escapes, otherwise
/// from serde_json's scratch buffer (wiped when freed, like every block of
/// envcloak's heap). No intermediate `String` is made.
fn unescaped(literal: &str) -> Result<SecretString, serde_json::Error> {
    (&mut serde_json::Deserializer::from_str(literal)).deserialize_str(SecretStr)
}

/// Deserializes a JSON string field (a token) straight into a secret, as
/// [`unescaped`] does: `#[serde(deserialize_with = "json_fields::secret")]`.
#[cfg(feature = "vault")]
pub(crate) fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SecretString, D::Error> {
    deserializer.deserialize_str(SecretStr)
}

/// Makes a secret of a JSON string, whether borrowed from the input or
/// unescaped into a scratch buffer.
struct SecretStr;

impl Visitor<'_> for SecretStr {
    type Value = SecretString;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<SecretString, E> {
        Ok(exact_secret(value))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn string_values_are_unescaped_straight_into_secrets() {
        let fields: Fields =
            serde_json::from_str(r#"{"a":"fake \"q\"\n\u00e9 \u003c\u0026\u003e","b":"fake-plain","n":12.50}"#)
                .unwrap();
        let get = |i: usize| fields.usable[i].1.expose().to_owned();
        assert!(get(0) == "fake \"q\"\né <&>", "escapes are undone");
        assert!(get(1) == "fake-plain", "a string without escapes is kept");
        assert_eq!(get(2), "12.50");
        assert!(unescaped(r#""fake \ud800""#).is_err(), "a lone surrogate is refused");
        assert_eq!(unescaped(r#""fake""#).unwrap().expose_secret(), "fake");
    }
}
