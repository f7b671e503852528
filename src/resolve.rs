//! Resolution: every backend fetched concurrently under one deadline, then
//! the plan applied in precedence order. Every failure is collected, so one
//! run reports all of them; the caller fails closed if any is required.
//! Whatever ends the fetching (all answers, the deadline, a signal), each
//! provider then releases what it obtained for itself (a Vault login token),
//! except one that holds leases of dynamic credentials the command will use:
//! that one is handed back in [`Resolution::held`], to be released when the
//! command has ended (see [`crate::leases`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use envcloak_providers::{Backend, Document, FailureKind, FetchError, Provider, SecretRef, SecretValue, Source};

use crate::plan::{is_valid_name, Mapping, Plan, Target};
use crate::progress::Progress;
use crate::template::Template;

/// One variable that will be injected.
pub struct ResolvedVar {
    /// The variable name.
    pub name: String,
    /// Its value.
    pub value: SecretValue,
    /// The mapping that set it last (the one that won).
    pub mapping: usize,
    /// Put into a file, the variable holding the path.
    pub as_file: bool,
    /// The backend's version of the source, if it has one.
    pub version: Option<String>,
    /// For a composed value, the value of each reference in it (masked and
    /// searched for on their own too).
    pub parts: Vec<SecretValue>,
}

/// A mapping (or one key of an import) that could not be resolved.
pub struct Failure {
    /// The variable name, or `import` for a whole import.
    pub name: String,
    /// The mapping it belongs to.
    pub mapping: usize,
    /// Why.
    pub error: FetchError,
    /// An optional variable: reported, but the run goes on without it.
    pub optional: bool,
}

/// The outcome of resolving a plan.
pub struct Resolution {
    /// The variables, in the order their names first appeared.
    pub vars: Vec<ResolvedVar>,
    /// Every failure, required and optional.
    pub failures: Vec<Failure>,
    /// Time spent per backend.
    pub timings: Vec<(Backend, Duration)>,
    /// Providers holding leases, to release once the command has ended.
    pub held: Vec<Arc<dyn Provider>>,
}

impl Resolution {
    /// Whether a required secret failed (the child must not start).
    pub fn has_required_failure(&self) -> bool {
        self.failures.iter().any(|f| !f.optional)
    }
}

/// Makes the provider of a backend, or says why there is none.
pub type ProviderFactory<'a> = dyn Fn(Backend) -> Result<Arc<dyn Provider>, FetchError> + 'a;

/// Resolution stopped by a signal (its number) before it was done.
pub struct Interrupted(pub i32);

/// Fetches every source of `plan` with the providers from `make_provider`,
/// all backends at once, giving up at `deadline`, or when `interrupt`
/// completes (with a signal's number).
pub async fn resolve(
    plan: &Plan,
    deadline: tokio::time::Instant,
    make_provider: &ProviderFactory<'_>,
    interrupt: impl std::future::Future<Output = i32>,
) -> Result<Resolution, Interrupted> {
    let mut groups: BTreeMap<Backend, Vec<Source>> = BTreeMap::new();
    for reference in plan.mappings.iter().flat_map(Mapping::references) {
        let sources = groups.entry(reference.source.backend).or_default();
        if !sources.contains(&reference.source) {
            sources.push(reference.source.clone());
        }
    }
    let mut tasks = Vec::new();
    let mut providers = Vec::new();
    let mut documents: HashMap<Source, Result<Document, FetchError>> = HashMap::new();
    let mut timings = Vec::new();
    let progress = Progress::start(groups.keys().copied());
    for (backend, sources) in groups {
        match make_provider(backend) {
            Ok(provider) => {
                providers.push(Arc::clone(&provider));
                let pending = progress.pending();
                let fetch = fetch_one(provider, sources.clone(), deadline);
                let task = tokio::spawn(async move {
                    let done = fetch.await;
                    pending.done(backend);
                    done
                });
                tasks.push((backend, sources, task));
            }
            Err(e) => {
                progress.pending().done(backend);
                documents.extend(sources.into_iter().map(|s| (s, Err(e.clone()))));
            }
        }
    }
    let collect = async {
        for (backend, sources, task) in tasks {
            let (outcome, took) = match task.await {
                Ok(done) => done,
                Err(e) => (
                    Err(FetchError::new(FailureKind::Internal, format!("the {backend} backend stopped: {e}"))),
                    Duration::ZERO,
                ),
            };
            crate::diag::note!("{backend}: {} source(s) in {:.1} ms", sources.len(), took.as_secs_f64() * 1e3);
            timings.push((backend, took));
            match outcome {
                Ok(fetched) => documents.extend(fetched),
                Err(e) => documents.extend(sources.into_iter().map(|s| (s, Err(e.clone())))),
            }
        }
    };
    let interrupted = tokio::select! {
        () = collect => None,
        signal = interrupt => Some(signal),
    };
    progress.finish();
    let mut held = Vec::new();
    for provider in providers {
        if interrupted.is_none() && provider.holds_leases() {
            held.push(provider);
        } else {
            provider.release().await;
        }
    }
    if let Some(signal) = interrupted {
        return Err(Interrupted(signal));
    }
    let mut resolution = apply(plan, &documents);
    resolution.timings = timings;
    resolution.held = held;
    Ok(resolution)
}

async fn fetch_one(
    provider: Arc<dyn Provider>,
    sources: Vec<Source>,
    deadline: tokio::time::Instant,
) -> (Result<envcloak_providers::Fetched, FetchError>, Duration) {
    let started = Instant::now();
    let backend = provider.backend();
    let outcome = match tokio::time::timeout_at(deadline, provider.fetch(&sources)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(FetchError::new(
            FailureKind::Timeout,
            format!(
                "the {backend} backend did not answer within the timeout ({:.1} s)",
                started.elapsed().as_secs_f64()
            ),
        )
        .with_hint("raise --timeout, or check that the backend is reachable")),
    };
    (outcome, started.elapsed())
}

/// Applies the mappings in order to the fetched documents.
fn apply(plan: &Plan, documents: &HashMap<Source, Result<Document, FetchError>>) -> Resolution {
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

/// Variables that decide which code a program loads or runs (the dynamic
/// loader's, shells', interpreters'): a bulk import never sets them, so a
/// key added to a secret cannot make the command run other code; an
/// explicit `env` entry may.
const LOADER_NAMES: &[&str] = &[
    "PATH",
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "CDPATH",
    "PYTHONSTARTUP",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONWARNINGS",
    "PYTHONBREAKPOINT",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "_JAVA_OPTIONS",
    "GCONV_PATH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
];
/// Prefixes of such variables.
const LOADER_PREFIXES: &[&str] = &["LD_", "DYLD_", "BASH_FUNC_"];

/// Why an import may not set `name`, if it may not.
fn controls_loading(name: &str) -> Option<FetchError> {
    let matched = LOADER_NAMES.contains(&name) || LOADER_PREFIXES.iter().any(|p| name.starts_with(p));
    matched.then(|| {
        FetchError::new(
            FailureKind::Denied,
            format!("{name} decides which code the command loads; an import never sets it"),
        )
        .with_hint(format!(
            "if the command should get it, map it explicitly: {name} = \"REF#KEY\" in the profile's env"
        ))
    })
}

/// Linux's limit on one environment string, `NAME=value` and its NUL
/// (`MAX_ARG_STRLEN`, 32 pages).
pub const MAX_ENV_STRING: usize = 128 * 1024;

/// The longest value envcloak holds (an `as = "file"` one too): masking and
/// `scan` search for every form of every value, and their memory grows with
/// its length.
pub const MAX_VALUE: usize = 1 << 20;

/// Why a value is longer than envcloak holds, if it is.
fn too_big(name: &str, value: &SecretValue) -> Option<FetchError> {
    let length = value.expose().len();
    (length > MAX_VALUE).then(|| {
        FetchError::new(
            FailureKind::Malformed,
            format!("the value of {name} is {length} bytes; envcloak holds values up to 1 MiB"),
        )
        .with_hint("keep large files (bundles, archives) out of secrets; store a key that opens them instead")
    })
}

/// Why `NAME=value` is too long for the kernel, if it is: said here, naming
/// the variable, rather than as "Argument list too long" from the exec.
fn too_long(name: &str, value: &SecretValue) -> Option<FetchError> {
    let length = name.len() + 1 + value.expose().len() + 1;
    (length > MAX_ENV_STRING).then(|| {
        FetchError::new(
            FailureKind::Malformed,
            format!(
            "{name}={{value}} is {length} bytes; Linux takes at most {} KiB per environment string (MAX_ARG_STRLEN)",
            MAX_ENV_STRING / 1024
        ),
        )
        .with_hint(format!("pass it as a file instead: {name} = {{ ref = \"…\", as = \"file\" }}"))
    })
}

/// Why `name`/`value` cannot go into an environment, if they cannot.
fn invalid(name: &str, value: &SecretValue) -> Option<FetchError> {
    if !is_valid_name(name) {
        return Some(
            FetchError::new(FailureKind::Malformed, format!("`{name}` is not a valid variable name"))
                .with_hint("rename the key, or import it with a prefix that makes it valid"),
        );
    }
    if value.expose().contains('\0') {
        return Some(FetchError::new(
            FailureKind::Malformed,
            format!("the value of {name} contains a NUL byte, which an environment variable cannot hold"),
        ));
    }
    None
}
