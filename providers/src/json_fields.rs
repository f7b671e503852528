//! The keys of a JSON object secret (a Vault KV secret, an AWS SecretString):
//! strings as they are, numbers and booleans as their JSON text, and null,
//! nested objects and lists set aside as unusable, named by key only.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

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
                    let value: String = serde_json::from_str(text).map_err(de::Error::custom)?;
                    fields.usable.push((key, SecretValue::new(value)));
                }
                Some(b'{') => fields.unusable.push((key, unusable("a nested object"))),
                Some(b'[') => fields.unusable.push((key, unusable("a list"))),
                // Not the text `null`: a value that is not there.
                Some(b'n') => fields.unusable.push((key, unusable("null"))),
                // A number, true or false: its JSON text as written.
                _ => fields.usable.push((key, SecretValue::new(text.to_owned()))),
            }
        }
        Ok(fields)
    }
}

fn unusable(kind: &str) -> String {
    format!("holds {kind}; only strings, numbers and booleans can be injected")
}
