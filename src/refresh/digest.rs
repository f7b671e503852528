//! Keyed digests of values, so a refresh can tell what changed without
//! keeping or showing a value: HMAC-SHA256 under a key drawn from the
//! kernel when the run starts and never written anywhere.

use std::collections::BTreeMap;

use envcloak_providers::Document;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::resolve::ResolvedVar;

/// The key of one run's digests.
pub struct DigestKey(Zeroizing<[u8; 32]>);

impl DigestKey {
    /// A new random key.
    pub fn random() -> std::io::Result<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        crate::random::fill(&mut key[..])?;
        Ok(Self(key))
    }

    /// The digest of `parts`, each length-prefixed so that no two lists of
    /// parts share one; as hex.
    fn of(&self, parts: &[&[u8]]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0[..]).expect("HMAC takes any key length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The digest of a fetched document: its whole value, its keys and
    /// values in order, and its version.
    pub fn of_document(&self, document: &Document) -> String {
        let mut parts: Vec<&[u8]> = Vec::new();
        if let Some(whole) = &document.whole {
            parts.extend([b"whole".as_slice(), whole.expose().as_bytes()]);
        }
        for (name, value) in document.fields.iter().flatten() {
            parts.extend([name.as_bytes(), value.expose().as_bytes()]);
        }
        if let Some(version) = &document.version {
            parts.extend([b"version".as_slice(), version.as_bytes()]);
        }
        self.of(&parts)
    }

    /// Each variable's digest (of its value, and whether it is a file), by name.
    pub fn of_env(&self, vars: &[ResolvedVar]) -> EnvDigests {
        let digests = vars
            .iter()
            .map(|var| {
                let kind: &[u8] = if var.as_file { b"file" } else { b"env" };
                (var.name.clone(), self.of(&[kind, var.value.expose().as_bytes()]))
            })
            .collect();
        EnvDigests(digests)
    }
}

/// The digests of an environment's secret variables.
#[derive(Default, PartialEq, Eq)]
pub struct EnvDigests(BTreeMap<String, String>);

impl EnvDigests {
    /// Whether the environment has variable `name`.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The names of the variables that are new, gone, or differ, sorted.
    pub fn changed(&self, newer: &EnvDigests) -> Vec<String> {
        let mut names: Vec<String> = newer
            .0
            .iter()
            .filter(|(name, digest)| self.0.get(*name) != Some(digest))
            .map(|(name, _)| name.clone())
            .chain(self.0.keys().filter(|name| !newer.0.contains_key(*name)).cloned())
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envcloak_providers::SecretValue;

    fn var(name: &str, value: &str) -> ResolvedVar {
        ResolvedVar {
            name: name.into(),
            value: SecretValue::new(value.into()),
            mapping: 0,
            as_file: false,
            version: None,
            parts: Vec::new(),
        }
    }

    #[test]
    fn changed_names_new_gone_and_different_variables() {
        let key = DigestKey::random().unwrap();
        let before = key.of_env(&[var("A", "fake-1"), var("B", "fake-2"), var("C", "fake-3")]);
        let after = key.of_env(&[var("A", "fake-1"), var("B", "fake-2b"), var("D", "fake-4")]);
        assert_eq!(before.changed(&after), ["B", "C", "D"]);
        assert!(before.changed(&key.of_env(&[var("C", "fake-3"), var("A", "fake-1"), var("B", "fake-2")])).is_empty());
    }

    #[test]
    fn digests_depend_on_the_key_and_do_not_run_parts_together() {
        let (one, two) = (DigestKey::random().unwrap(), DigestKey::random().unwrap());
        assert_ne!(one.of(&[b"value"]), two.of(&[b"value"]));
        assert_ne!(one.of(&[b"ab", b"c"]), one.of(&[b"a", b"bc"]));
    }
}
