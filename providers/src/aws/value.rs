//! Turns a secret's value (SecretString or SecretBinary) into a document: the
//! whole value, and its top-level keys when it is a JSON object.

use aws_sdk_secretsmanager::primitives::Blob;
use zeroize::Zeroize;

use crate::json_fields::{self, Fields};
use crate::{Document, FailureKind, FetchError, SecretValue};

/// What AWS returned for one secret version, taken out of the SDK's answer.
pub struct SecretPayload {
    /// `SecretString`.
    pub string: Option<String>,
    /// `SecretBinary`.
    pub binary: Option<Blob>,
    /// `VersionId`.
    pub version_id: Option<String>,
    /// `VersionStages`.
    pub stages: Vec<String>,
}

/// The document of one secret. The SDK's strings are moved, not copied, into
/// zeroizing values; a rejected binary is wiped before it is dropped.
pub fn document(payload: SecretPayload) -> Result<Document, FetchError> {
    let text = match (payload.string, payload.binary) {
        (Some(text), _) => text,
        (None, Some(blob)) => binary_text(blob.into_inner())?,
        (None, None) => {
            return Err(FetchError::new(
                FailureKind::Malformed,
                "the secret version has neither SecretString nor SecretBinary",
            ))
        }
    };
    let (fields, keys_error) = keys(&text);
    let version = payload.version_id.map(|id| {
        if payload.stages.is_empty() {
            format!("version {id}")
        } else {
            format!("version {id}, {}", payload.stages.join(", "))
        }
    });
    let (fields, unusable) = match fields {
        Some(fields) => (Some(fields.usable), fields.unusable),
        None => (None, Vec::new()),
    };
    Ok(Document { whole: Some(SecretValue::new(text)), fields, unusable, version, keys_error })
}

/// A SecretBinary as text: it must be UTF-8 without NUL bytes.
fn binary_text(bytes: Vec<u8>) -> Result<String, FetchError> {
    let hint = "store the value as SecretString, or base64-encode the binary before storing it";
    if bytes.contains(&0) {
        let mut bytes = bytes;
        bytes.zeroize();
        return Err(FetchError::new(
            FailureKind::Malformed,
            "the SecretBinary holds NUL bytes, which an environment variable cannot carry",
        )
        .with_hint(hint));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        e.into_bytes().zeroize();
        FetchError::new(
            FailureKind::Malformed,
            format!("the SecretBinary is not UTF-8 text (invalid byte at offset {at})"),
        )
        .with_hint(hint)
    })
}

/// The top-level keys of a JSON object value, or why there are none.
fn keys(text: &str) -> (Option<Fields>, Option<String>) {
    if !text.trim_start().starts_with('{') {
        return (None, Some("its value is not a JSON object".into()));
    }
    match serde_json::from_str::<Fields>(text) {
        Ok(fields) => (Some(fields), None),
        Err(e) => (None, Some(format!("its value is not valid JSON ({})", json_fields::position(&e)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(string: Option<&str>, binary: Option<&[u8]>) -> SecretPayload {
        SecretPayload {
            string: string.map(str::to_owned),
            binary: binary.map(Blob::new),
            version_id: Some("v-1".into()),
            stages: vec!["AWSCURRENT".into()],
        }
    }

    #[test]
    fn a_json_object_gives_its_keys_and_the_whole_string() {
        let text = r#"{"url":"fake-postgres://u:p@h/db","port":5432,"on":true,"nested":{"k":"fake"}}"#;
        let doc = document(payload(Some(text), None)).unwrap();
        assert!(doc.whole.as_ref().map(SecretValue::expose) == Some(text), "whole differs");
        assert!(doc.field("url").map(SecretValue::expose) == Some("fake-postgres://u:p@h/db"), "url differs");
        assert_eq!(doc.field("port").map(SecretValue::expose), Some("5432"));
        assert_eq!(doc.field("on").map(SecretValue::expose), Some("true"));
        assert_eq!(doc.unusable.len(), 1);
        assert_eq!(doc.unusable[0].0, "nested");
        assert_eq!(doc.version.as_deref(), Some("version v-1, AWSCURRENT"));
        assert!(doc.keys_error.is_none());
    }

    #[test]
    fn plain_text_and_broken_json_have_no_keys_and_say_why_without_the_text() {
        let doc = document(payload(Some("fake-plain-token"), None)).unwrap();
        assert!(doc.fields.is_none());
        assert_eq!(doc.keys_error.as_deref(), Some("its value is not a JSON object"));
        let doc = document(payload(Some("{\"a\": \"fake-secret-part\" \"b\"}"), None)).unwrap();
        let why = doc.keys_error.unwrap();
        assert!(why.starts_with("its value is not valid JSON (line 1, column"), "{why}");
        assert!(!why.contains("fake-secret-part") && !why.contains('b'));
    }

    #[test]
    fn a_binary_must_be_utf8_text_without_nul() {
        let doc = document(payload(None, Some(b"fake-binary-text"))).unwrap();
        assert!(doc.whole.as_ref().map(SecretValue::expose) == Some("fake-binary-text"), "whole differs");
        let e = document(payload(None, Some(b"fake\0bin"))).unwrap_err();
        assert!(e.reason.contains("NUL"), "{}", e.reason);
        let e = document(payload(None, Some(&[0x66, 0xff, 0x66]))).unwrap_err();
        assert!(e.reason.contains("not UTF-8") && e.reason.contains("offset 1"), "{}", e.reason);
        assert!(document(payload(None, None)).is_err());
    }
}
