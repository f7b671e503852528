//! The plan applied to the fetched documents, in precedence order: each
//! mapping's value (one key, a whole value, every key of an import, or a
//! composed value), checked, and the failures collected.

use std::collections::HashMap;

use envcloak_providers::{Document, FailureKind, FetchError, SecretRef, SecretValue, Source};

use super::refusals::{controls_loading, invalid, too_big, too_long};
use super::{Failure, Resolution, ResolvedVar};
use crate::plan::{Mapping, Plan, Target};
use crate::template::Template;

/// Applies the mappings in order to the fetched documents.
pub(super) fn apply(plan: &Plan, documents: &HashMap<Source, Result<Document, FetchError>>) -> Resolution {
    let mut resolution = Resolution { vars: Vec::new(), failures: Vec::new(), timings: Vec::new(), held: Vec::new() };
    let mut position: HashMap<String, usize> = HashMap::new();
    for (index, mapping) in plan.mappings.iter().enumerate() {
        let (name, optional) = match &mapping.target {
            Target::Variable { name, optional, .. } => (name.clone(), *optional),
            Target::Import { .. } => ("import".to_owned(), false),
        };
        let fail = |error: FetchError| Failure { name: name.clone(), mapping: index, error, optional };
        let (values, parts, version) = match &mapping.template {
            Some(template) => match compose(template, documents) {
                Ok((value, parts, version)) => (vec![(name.clone(), value)], parts, version),
                Err(e) => {
                    resolution.failures.push(fail(e));
                    continue;
                }
            },
            None => {
                let picked = document(documents, &mapping.reference.source).and_then(|document| {
                    if let Target::Import { prefix } = &mapping.target {
                        for (key, why) in &document.unusable {
                            let error = FetchError::new(FailureKind::MissingKey, format!("key `{key}` {why}"));
                            resolution.failures.push(Failure {
                                name: format!("{prefix}{key}"),
                                mapping: index,
                                error,
                                optional,
                            });
                        }
                    }
                    Ok((pick(mapping, document)?, Vec::new(), document.version.clone()))
                });
                match picked {
                    Ok(picked) => picked,
                    Err(e) => {
                        resolution.failures.push(fail(e));
                        continue;
                    }
                }
            }
        };
        let as_file = matches!(mapping.target, Target::Variable { as_file: true, .. });
        let imported = matches!(mapping.target, Target::Import { .. });
        for (name, value) in values {
            let refused = invalid(&name, &value)
                .or_else(|| too_big(&name, &value))
                .or_else(|| imported.then(|| controls_loading(&name)).flatten())
                .or_else(|| (!as_file).then(|| too_long(&name, &value)).flatten());
            if let Some(e) = refused {
                resolution.failures.push(Failure { name, mapping: index, error: e, optional });
                continue;
            }
            crate::diag::trace!("{name} <- {} ({})", mapping.shown(), mapping.origin);
            let resolved = ResolvedVar {
                name: name.clone(),
                value,
                mapping: index,
                as_file,
                version: version.clone(),
                parts: parts.clone(),
            };
            match position.get(&name) {
                Some(&at) => resolution.vars[at] = resolved,
                None => {
                    position.insert(name, resolution.vars.len());
                    resolution.vars.push(resolved);
                }
            }
        }
    }
    resolution
}

/// The (name, value) pairs a mapping takes from its document.
fn pick(mapping: &Mapping, document: &Document) -> Result<Vec<(String, SecretValue)>, FetchError> {
    match &mapping.target {
        Target::Variable { name, .. } => Ok(vec![(name.clone(), pick_value(&mapping.reference, document)?)]),
        Target::Import { prefix } => match &document.fields {
            Some(fields) => Ok(fields.iter().map(|(key, value)| (format!("{prefix}{key}"), value.clone())).collect()),
            None => {
                Err(no_keys(&mapping.reference.source, document).with_hint("map it to one variable in env instead"))
            }
        },
    }
}

/// The one value `reference` names in `document`: its `#KEY`, or without
/// one the whole value.
fn pick_value(reference: &SecretRef, document: &Document) -> Result<SecretValue, FetchError> {
    let source = &reference.source;
    match &reference.key {
        Some(key) => match document.field(key) {
            Some(value) => Ok(value.clone()),
            None if document.fields.is_none() => Err(no_keys(source, document)
                .with_hint(format!("drop #{key} to inject the whole value, or store the secret as a JSON object"))),
            None => match document.unusable.iter().find(|(unusable, _)| unusable == key) {
                Some((_, why)) => Err(FetchError::new(FailureKind::MissingKey, format!("key `{key}` {why}"))),
                None => Err(missing_key(key, document)),
            },
        },
        None => match &document.whole {
            Some(value) => Ok(value.clone()),
            None => Err(FetchError::new(FailureKind::Malformed, format!("{source} has no single value"))
                .with_hint("add #KEY to pick one key, or import the source")),
        },
    }
}

/// The fetched document of `source`.
fn document<'d>(
    documents: &'d HashMap<Source, Result<Document, FetchError>>,
    source: &Source,
) -> Result<&'d Document, FetchError> {
    match documents.get(source) {
        Some(Ok(document)) => Ok(document),
        Some(Err(e)) => Err(e.clone()),
        None => Err(FetchError::new(FailureKind::Internal, "the backend returned nothing for this source")),
    }
}

/// A composed value: its text with each reference's value in place; the
/// values themselves; the versions of their sources.
fn compose(
    template: &Template<SecretRef>,
    documents: &HashMap<Source, Result<Document, FetchError>>,
) -> Result<(SecretValue, Vec<SecretValue>, Option<String>), FetchError> {
    let mut parts = Vec::new();
    let mut versions: Vec<String> = Vec::new();
    let value = template.render(|reference| {
        let found = document(documents, &reference.source)
            .and_then(|document| Ok((pick_value(reference, document)?, document)))
            .map_err(|e| FetchError { reason: format!("{reference}: {}", e.reason), ..e })?;
        let (value, document) = found;
        if let Some(version) = document.version.as_ref().filter(|v| !versions.contains(v)) {
            versions.push(version.clone());
        }
        let text = value.expose().to_owned();
        parts.push(value);
        Ok(text)
    })?;
    let version = (!versions.is_empty()).then(|| versions.join("; "));
    Ok((SecretValue::copy_of(&value), parts, version))
}

/// A source that is one value, not a set of keys, and why.
fn no_keys(source: &Source, document: &Document) -> FetchError {
    match &document.keys_error {
        Some(why) => FetchError::new(FailureKind::Malformed, format!("{source} has no keys: {why}")),
        None => FetchError::new(FailureKind::Malformed, format!("{source} is not a set of keys")),
    }
}

fn missing_key(key: &str, document: &Document) -> FetchError {
    let count = document.fields.as_ref().map_or(0, Vec::len);
    let error = FetchError::new(
        FailureKind::MissingKey,
        format!("key `{key}` not found (the source has {count} key{})", if count == 1 { "" } else { "s" }),
    );
    let close: Vec<&str> = document
        .fields
        .iter()
        .flatten()
        .map(|(name, _)| name.as_str())
        .filter(|name| name.eq_ignore_ascii_case(key))
        .collect();
    match close.first() {
        Some(name) => error.with_hint(format!("keys are case-sensitive: did you mean `{name}`?")),
        None => error,
    }
}
