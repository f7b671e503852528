//! KV secrets: finding each path's mount and KV version (as the `vault` CLI
//! does, via `sys/internal/ui/mounts/PATH`), and reading secrets into
//! zeroizing values.

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::json_fields::{self, Fields};
use crate::Document;

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

    /// The most common layout, before a lookup says: a KV v2 mount named by
    /// the first segment of `location` (none if it has only one).
    pub fn guess(location: &str) -> Option<Mount> {
        let (first, rest) = location.split_once('/')?;
        (!first.is_empty() && !rest.is_empty()).then(|| Mount { path: format!("{first}/"), version: 2 })
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

/// A malformed answer, described by position only.
fn shape_error(error: serde_json::Error) -> String {
    format!("unexpected answer from Vault ({})", json_fields::position(&error))
}

/// Parses a KV read answer into a document: v1 `{"data": {…}}`, v2
/// `{"data": {"data": {…}, "metadata": {"version": N}}}`.
pub fn document(mount: &Mount, body: &[u8]) -> Result<Document, String> {
    let (fields, version): (Fields, Option<String>) = if mount.version == 2 {
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
        let fields = answer.data.data.ok_or("this version has no data (deleted or destroyed)")?;
        (fields, version.map(|v| format!("kv v2, version {v}")))
    } else {
        #[derive(Deserialize)]
        struct V1 {
            data: Fields,
        }
        (serde_json::from_slice::<V1>(body).map_err(shape_error)?.data, Some("kv v1".into()))
    };
    Ok(Document { whole: None, fields: Some(fields.usable), unusable: fields.unusable, version, keys_error: None })
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
    fn the_guess_is_a_kv_v2_mount_named_by_the_first_segment() {
        assert_eq!(Mount::guess("secret/flask/prod"), Some(Mount { path: "secret/".into(), version: 2 }));
        assert_eq!(Mount::guess("secret/x").unwrap().read_path("secret/x", None), "secret/data/x");
        assert_eq!(Mount::guess("secret"), None);
        assert_eq!(Mount::guess("secret/"), None);
        assert_eq!(Mount::guess("/x"), None);
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
        assert_eq!(get("z"), None, "a JSON null is not the text `null`");
        let unusable: Vec<&str> = doc.unusable.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(unusable, ["z", "o", "l"]);
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
