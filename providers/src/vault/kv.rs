//! KV secrets: finding each path's mount and KV version (as the `vault` CLI
//! does, via `sys/internal/ui/mounts/PATH`), and reading secrets into
//! zeroizing values.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::{Document, SecretValue};

/// A KV mount: its path with the trailing `/`, and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// e.g. `secret/`.
    pub path: String,
    /// 1 or 2.
    pub version: u8,
}

impl Mount {
    /// Parses the answer of `sys/internal/ui/mounts/PATH`.
    pub fn from_answer(body: &[u8]) -> Option<Mount> {
        #[derive(Deserialize)]
        struct Answer {
            data: Data,
        }
        #[derive(Deserialize)]
        struct Data {
            path: String,
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            options: Option<Options>,
        }
        #[derive(Deserialize)]
        struct Options {
            #[serde(default)]
            version: Option<String>,
        }
        let answer: Answer = serde_json::from_slice(body).ok()?;
        if answer.data.kind != "kv" && answer.data.kind != "generic" {
            return None;
        }
        let version = match answer.data.options.and_then(|o| o.version).as_deref() {
            Some("2") => 2,
            _ => 1,
        };
        let mut path = answer.data.path;
        if !path.ends_with('/') {
            path.push('/');
        }
        Some(Mount { path, version })
    }

    /// Whether `location` (MOUNT/PATH) lies in this mount.
    pub fn contains(&self, location: &str) -> bool {
        location.starts_with(&self.path) && location.len() > self.path.len()
    }

    /// The API path to read `location`, at `version` for KV v2.
    pub fn read_path(&self, location: &str, version: Option<u64>) -> String {
        let rest = &location[self.path.len()..];
        match (self.version, version) {
            (2, Some(v)) => format!("{}data/{rest}?version={v}", self.path),
            (2, None) => format!("{}data/{rest}", self.path),
            _ => location.to_owned(),
        }
    }
}

/// Parses a KV read answer into a document: v1 `{"data": {…}}`, v2
/// `{"data": {"data": {…}, "metadata": {"version": N}}}`.
pub fn document(mount: &Mount, body: &[u8]) -> Result<Document, String> {
    let fields: Fields = if mount.version == 2 {
        #[derive(Deserialize)]
        struct V2 {
            data: V2Data,
        }
        #[derive(Deserialize)]
        struct V2Data {
            data: Option<Fields>,
            metadata: Option<Metadata>,
        }
        #[derive(Deserialize)]
        struct Metadata {
            version: Option<u64>,
        }
        let answer: V2 = serde_json::from_slice(body).map_err(shape_error)?;
        let version = answer.data.metadata.and_then(|m| m.version);
        let mut fields = answer.data.data.ok_or("this version has no data (deleted or destroyed)")?;
        fields.version = version.map(|v| format!("kv v2, version {v}"));
        fields
    } else {
        #[derive(Deserialize)]
        struct V1 {
            data: Fields,
        }
        let mut fields = serde_json::from_slice::<V1>(body).map_err(shape_error)?.data;
        fields.version = Some("kv v1".into());
        fields
    };
    Ok(Document { whole: None, fields: Some(fields.usable), unusable: fields.unusable, version: fields.version })
}

/// For a KV v2 answer without data (the version was deleted or destroyed;
/// Vault answers 404 with metadata), the version it reports.
pub fn deleted_version(body: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct V2 {
        data: V2Data,
    }
    #[derive(Deserialize)]
    struct V2Data {
        data: Option<IgnoredAny>,
        metadata: Metadata,
    }
    #[derive(Deserialize)]
    struct Metadata {
        version: u64,
    }
    let answer: V2 = serde_json::from_slice(body).ok()?;
    answer.data.data.is_none().then_some(answer.data.metadata.version)
}

/// Describes a malformed answer by position only: serde's own messages can
/// quote the offending value.
fn shape_error(error: serde_json::Error) -> String {
    format!("unexpected answer from Vault (line {}, column {})", error.line(), error.column())
}

/// The keys of a secret: values that can be injected, and keys that cannot
/// (nested objects and arrays).
#[derive(Default)]
struct Fields {
    usable: Vec<(String, SecretValue)>,
    unusable: Vec<(String, String)>,
    version: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_and_paths() {
        let v2 = Mount::from_answer(br#"{"data":{"path":"secret/","type":"kv","options":{"version":"2"}}}"#).unwrap();
        assert_eq!(v2, Mount { path: "secret/".into(), version: 2 });
        assert_eq!(v2.read_path("secret/flask/prod", None), "secret/data/flask/prod");
        assert_eq!(v2.read_path("secret/flask/prod", Some(3)), "secret/data/flask/prod?version=3");
        assert!(v2.contains("secret/x") && !v2.contains("secrets/x") && !v2.contains("secret/"));
        let v1 = Mount::from_answer(br#"{"data":{"path":"kv1/","type":"kv","options":null}}"#).unwrap();
        assert_eq!(v1.read_path("kv1/app", None), "kv1/app");
        assert!(Mount::from_answer(br#"{"data":{"path":"pki/","type":"pki"}}"#).is_none());
    }

    #[test]
    fn values_become_text_and_nested_keys_are_named() {
        let mount = Mount { path: "secret/".into(), version: 2 };
        let body = br#"{"data":{"data":{"s":"fake \"q\" $x","n":3,"f":1.5,"b":true,"z":null,"o":{"k":"fake-nested"},"l":[1]},"metadata":{"version":7}}}"#;
        let doc = document(&mount, body).unwrap();
        let get = |k: &str| doc.field(k).map(|v| v.expose().to_owned());
        assert!(get("s").as_deref() == Some("fake \"q\" $x"), "string differs");
        assert_eq!(get("n").as_deref(), Some("3"));
        assert_eq!(get("f").as_deref(), Some("1.5"));
        assert_eq!(get("b").as_deref(), Some("true"));
        assert_eq!(get("z").as_deref(), Some("null"));
        let unusable: Vec<&str> = doc.unusable.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(unusable, ["o", "l"]);
        assert!(!doc.unusable.iter().any(|(_, why)| why.contains("fake")), "reasons never hold values");
        assert_eq!(doc.version.as_deref(), Some("kv v2, version 7"));
    }

    #[test]
    fn malformed_answers_never_quote_the_payload() {
        let mount = Mount { path: "kv/".into(), version: 1 };
        let error = document(&mount, br#"{"data": ["fake-secret-in-a-list"]}"#).unwrap_err();
        assert!(!error.contains("fake"), "error quotes the payload");
        let deleted = Mount { path: "secret/".into(), version: 2 };
        let body = br#"{"data":{"data":null,"metadata":{"version":2,"deletion_time":"2026-01-01T00:00:00Z"}}}"#;
        let error = document(&deleted, body).unwrap_err();
        assert!(error.contains("deleted"), "{error}");
        assert_eq!(deleted_version(body), Some(2));
        assert_eq!(deleted_version(br#"{"errors":[]}"#), None);
    }
}
