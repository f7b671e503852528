//! The keys of a JSON object secret (a Vault KV secret, an AWS SecretString):
//! strings as they are, numbers, booleans and null as their JSON text, and
//! nested objects and lists set aside as unusable, named by key only.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

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
    /// The version the source reported, filled in by the backend.
    pub version: Option<String>,
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
            match map.next_value::<Field>()? {
                Field::Value(value) => fields.usable.push((key, value)),
                Field::Nested(kind) => fields
                    .unusable
                    .push((key, format!("holds {kind}; only strings, numbers and booleans can be injected"))),
            }
        }
        Ok(fields)
    }
}

/// One value: text for strings, JSON text for numbers, booleans and null.
enum Field {
    Value(SecretValue),
    Nested(&'static str),
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number, boolean or null")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(Field::Value(SecretValue::new(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Field, E> {
        Ok(Field::Value(SecretValue::new(v)))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Field, E> {
        Ok(Field::Value(SecretValue::new(v.to_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Field, E> {
        Ok(Field::Value(SecretValue::new(v.to_string())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field, E> {
        Ok(Field::Value(SecretValue::new(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Field, E> {
        let text = serde_json::Number::from_f64(v).map_or_else(|| "null".to_owned(), |n| n.to_string());
        Ok(Field::Value(SecretValue::new(text)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Field, E> {
        Ok(Field::Value(SecretValue::new("null".into())))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field::Nested("a nested object"))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Field::Nested("a list"))
    }
}
