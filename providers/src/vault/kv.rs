//! Finding each path's mount, its engine and KV version (as the `vault`
//! CLI does, via `sys/internal/ui/mounts/PATH`), and reading secrets into
//! zeroizing values: KV v1 and v2, and a plain read of any other engine
//! (`database/creds/ROLE`), whose lease is kept with it.

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::json_fields::{self, Fields};
use crate::Document;

/// A mount: its path with the trailing `/`, its engine, and its KV version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// e.g. `secret/`.
    pub path: String,
    /// The engine type: `kv`, `database`, `aws`, …
    pub engine: String,
    /// 1 or 2 for KV; 0 for another engine.
    pub version: u8,
}

/// A lease that came with a read of a dynamic engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// What renews and revokes it (not a credential by itself).
    pub id: String,
    /// Its duration, in seconds.
    pub seconds: u64,
    /// Whether it can be renewed.
    pub renewable: bool,
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
        let kv = answer.data.kind == "kv" || answer.data.kind == "generic";
        let version = match answer.data.options.and_then(|o| o.version).as_deref() {
            _ if !kv => 0,
            Some("2") => 2,
            _ => 1,
        };
        let mut path = answer.data.path;
        if !path.ends_with('/') {
            path.push('/');
        }
        let engine = if kv { "kv".to_owned() } else { answer.data.kind };
        Some(Mount { path, engine, version })
    }

    /// Whether this is a KV mount (else a plain read of another engine).
    pub fn is_kv(&self) -> bool {
        self.version > 0
    }

    /// The most common layout, before a lookup says: a KV v2 mount named by
    /// the first segment of `location` (none if it has only one).
    pub fn guess(location: &str) -> Option<Mount> {
        let (first, rest) = location.split_once('/')?;
        (!first.is_empty() && !rest.is_empty()).then(|| Mount {
            path: format!("{first}/"),
            engine: "kv".into(),
            version: 2,
        })
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

    /// The API path of the metadata of `location` in a KV v2 mount.
    pub fn metadata_path(&self, location: &str) -> String {
        format!("{}metadata/{}", self.path, &location[self.path.len()..])
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

/// Parses the answer to a plain read of another engine: its `data` keys, and
/// its lease (`None` for an engine that gives none).
pub fn engine_document(mount: &Mount, body: &[u8]) -> Result<(Document, Option<Lease>), String> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        lease_id: String,
        #[serde(default)]
        lease_duration: u64,
        #[serde(default)]
        renewable: bool,
        data: Option<Fields>,
    }
    let answer: Answer = serde_json::from_slice(body).map_err(shape_error)?;
    let fields = answer.data.ok_or("the answer has no data")?;
    let lease = (!answer.lease_id.is_empty()).then_some(Lease {
        id: answer.lease_id,
        seconds: answer.lease_duration,
        renewable: answer.renewable,
    });
    let version = match &lease {
        Some(lease) => format!(
            "{} engine, lease {} s{}",
            mount.engine,
            lease.seconds,
            if lease.renewable { ", renewable" } else { "" }
        ),
        None => format!("{} engine", mount.engine),
    };
    let document = Document {
        whole: None,
        fields: Some(fields.usable),
        unusable: fields.unusable,
        version: Some(version),
        keys_error: None,
    };
    Ok((document, lease))
}

/// The stamp of a KV v2 secret from its metadata (`MOUNT/metadata/PATH`):
/// its current version, marked when that version is deleted or destroyed
/// (so undeleting it counts as a change too). The metadata holds no value.
pub fn current_version(body: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Answer {
        data: Data,
    }
    #[derive(Deserialize)]
    struct Data {
        current_version: u64,
        #[serde(default)]
        versions: std::collections::HashMap<String, Version>,
    }
    #[derive(Deserialize)]
    struct Version {
        #[serde(default)]
        deletion_time: String,
        #[serde(default)]
        destroyed: bool,
    }
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| format!("unexpected answer to a KV v2 metadata read ({})", json_fields::position(&e)))?;
    let current = answer.data.current_version;
    Ok(match answer.data.versions.get(&current.to_string()) {
        Some(version) if version.destroyed => format!("{current} destroyed"),
        Some(version) if !version.deletion_time.is_empty() => format!("{current} deleted"),
        _ => current.to_string(),
    })
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
        assert_eq!(v2, Mount { path: "secret/".into(), engine: "kv".into(), version: 2 });
        assert_eq!(v2.read_path("secret/flask/prod", None), "secret/data/flask/prod");
        assert_eq!(v2.read_path("secret/flask/prod", Some(3)), "secret/data/flask/prod?version=3");
        assert!(v2.contains("secret/x") && !v2.contains("secrets/x") && !v2.contains("secret/"));
        let v1 = Mount::from_answer(br#"{"data":{"path":"kv1/","type":"kv","options":null}}"#).unwrap();
        assert_eq!(v1.read_path("kv1/app", None), "kv1/app");
        let database = Mount::from_answer(br#"{"data":{"path":"database/","type":"database"}}"#).unwrap();
        assert!(!database.is_kv() && database.engine == "database");
        assert_eq!(database.read_path("database/creds/app", None), "database/creds/app");
    }

    #[test]
    fn metadata_gives_the_current_version_and_whether_it_was_deleted() {
        let v2 = Mount { path: "secret/".into(), engine: "kv".into(), version: 2 };
        assert_eq!(v2.metadata_path("secret/flask/prod"), "secret/metadata/flask/prod");
        let body = |deletion: &str, destroyed: bool| {
            format!(
                r#"{{"data":{{"current_version":3,"max_versions":0,"custom_metadata":{{"owner":"fake"}},"versions":{{"2":{{"created_time":"2026-01-01T00:00:00Z","deletion_time":"","destroyed":false}},"3":{{"created_time":"2026-01-02T00:00:00Z","deletion_time":"{deletion}","destroyed":{destroyed}}}}}}}}}"#
            )
        };
        assert_eq!(current_version(body("", false).as_bytes()).unwrap(), "3");
        assert_eq!(current_version(body("2026-01-03T00:00:00Z", false).as_bytes()).unwrap(), "3 deleted");
        assert_eq!(current_version(body("", true).as_bytes()).unwrap(), "3 destroyed");
        assert_eq!(current_version(br#"{"data":{"current_version":7}}"#).unwrap(), "7");
        let error = current_version(br#"{"data":{"data":{"k":"fake-value"}}}"#).unwrap_err();
        assert!(!error.contains("fake"), "error quotes the payload");
    }

    #[test]
    fn the_guess_is_a_kv_v2_mount_named_by_the_first_segment() {
        assert_eq!(
            Mount::guess("secret/flask/prod"),
            Some(Mount { path: "secret/".into(), engine: "kv".into(), version: 2 })
        );
        assert_eq!(Mount::guess("secret/x").unwrap().read_path("secret/x", None), "secret/data/x");
        assert_eq!(Mount::guess("secret"), None);
        assert_eq!(Mount::guess("secret/"), None);
        assert_eq!(Mount::guess("/x"), None);
    }

    #[test]
    fn values_become_text_and_nested_keys_are_named() {
        let mount = Mount { path: "secret/".into(), engine: "kv".into(), version: 2 };
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
    fn a_dynamic_read_gives_its_data_keys_and_its_lease() {
        let mount = Mount { path: "database/".into(), engine: "database".into(), version: 0 };
        let body = br#"{"lease_id":"database/creds/app/abc","lease_duration":60,"renewable":true,"data":{"username":"fake-user","password":"fake-password"}}"#;
        let (doc, lease) = engine_document(&mount, body).unwrap();
        assert!(doc.field("username").is_some_and(|v| v.expose() == "fake-user"));
        assert_eq!(lease, Some(Lease { id: "database/creds/app/abc".into(), seconds: 60, renewable: true }));
        assert_eq!(doc.version.as_deref(), Some("database engine, lease 60 s, renewable"));
        let (_, lease) = engine_document(&mount, br#"{"lease_id":"","data":{"k":"v"}}"#).unwrap();
        assert_eq!(lease, None);
    }

    #[test]
    fn malformed_answers_never_quote_the_payload() {
        let mount = Mount { path: "kv/".into(), engine: "kv".into(), version: 1 };
        let error = document(&mount, br#"{"data": ["fake-secret-in-a-list"]}"#).unwrap_err();
        assert!(!error.contains("fake"), "error quotes the payload");
        let deleted = Mount { path: "secret/".into(), engine: "kv".into(), version: 2 };
        let body = br#"{"data":{"data":null,"metadata":{"version":2,"deletion_time":"2026-01-01T00:00:00Z"}}}"#;
        let error = document(&deleted, body).unwrap_err();
        assert!(error.contains("deleted"), "{error}");
        assert_eq!(deleted_version(body), Some(2));
        assert_eq!(deleted_version(br#"{"errors":[]}"#), None);
    }
}
