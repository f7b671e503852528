//! Turns the config, the profile and `-e`/`-i` into a validated plan: every
//! reference parsed, every name checked, before anything is fetched.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use envcloak_providers::{Backend, SecretRef, Source};

use crate::config::{self, Config, Span};
use crate::error::CliError;
use crate::supervision::SupervisionKeys;
use crate::template::{self, Template};

/// What a mapping puts into the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One variable from one value.
    Variable {
        /// The variable name.
        name: String,
        /// A failure skips the variable instead of failing the run.
        optional: bool,
        /// The variable holds a path to a file with the value.
        as_file: bool,
    },
    /// Every key of the source, each name prefixed.
    Import {
        /// Prepended to every name.
        prefix: String,
    },
}

/// Where a mapping was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An `import` entry of a profile.
    ProfileImport(String),
    /// An `env` entry of a profile.
    ProfileEnv(String),
    /// `-i` on the command line.
    ImportFlag,
    /// `-e` on the command line.
    EnvFlag,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::ProfileImport(p) => write!(f, "profile {p}, import"),
            Origin::ProfileEnv(p) => write!(f, "profile {p}, env"),
            Origin::ImportFlag => f.write_str("-i"),
            Origin::EnvFlag => f.write_str("-e"),
        }
    }
}

/// One validated line of the plan.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The reference (age paths made absolute; shown as written); for a
    /// composed value, its first reference.
    pub reference: SecretRef,
    /// What it fills.
    pub target: Target,
    /// Where it was written.
    pub origin: Origin,
    /// A composed value's text and references (see [`crate::template`]).
    pub template: Option<Template<SecretRef>>,
}

impl Mapping {
    /// Every reference the mapping reads: its one, or each of a composed
    /// value's.
    pub fn references(&self) -> Vec<&SecretRef> {
        match &self.template {
            Some(template) => template.references().collect(),
            None => vec![&self.reference],
        }
    }

    /// As written, for messages and `check`: the reference, or the
    /// composed value's text (references and literal text, no value).
    pub fn shown(&self) -> String {
        match &self.template {
            Some(template) => template.text.clone(),
            None => self.reference.to_string(),
        }
    }
}

/// Everything a run resolves, in precedence order (a later mapping wins).
#[derive(Debug)]
pub struct Plan {
    /// The selected profile, if any.
    pub profile: Option<String>,
    /// The mappings, lowest precedence first.
    pub mappings: Vec<Mapping>,
    /// The profile's supervision keys (an extending profile's win).
    pub supervision: SupervisionKeys,
}

/// Whether `name` can be an environment variable: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Collects every problem, so one run reports them all.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn into_result(self) -> Result<(), CliError> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(CliError::new(self.0.into_iter().next().unwrap_or_default())),
            n => Err(CliError::new(format!("{n} problems in the secret mappings")).details(self.0)),
        }
    }
}

/// The command line's ad-hoc mappings, as written: `-e NAME=REF` and
/// `-i REF`, each in the order given.
#[derive(Debug, Clone, Copy)]
pub struct AdHoc<'a> {
    /// The `-e` pairs.
    pub env: &'a [String],
    /// The `-i` references.
    pub import: &'a [String],
}

/// Builds the plan for `profile_flag` (or the config's default profile) plus
/// the command line's `-e`/`-i`.
pub fn build(
    config: Option<&Config>,
    profile_flag: Option<&str>,
    args: AdHoc<'_>,
    cwd: &Path,
) -> Result<Plan, CliError> {
    let ad_hoc = !args.env.is_empty() || !args.import.is_empty();
    let profile = select_profile(config, profile_flag, ad_hoc)?;
    let mut plan = Plan { profile: profile.clone(), mappings: Vec::new(), supervision: SupervisionKeys::default() };
    let mut problems = Problems::default();
    if let (Some(config), Some(name)) = (config, &profile) {
        for profile in chain(config, name)? {
            plan.supervision = plan.supervision.overridden_by(profile.supervision);
            for entry in &profile.imports {
                let target = Target::Import { prefix: entry.prefix.clone() };
                let origin = Origin::ProfileImport(profile.name.clone());
                let at = |m: &str| config.error(&entry.at, m).message;
                plan.push(&entry.reference, target, origin, &config.dir, &mut problems, at);
            }
            for entry in &profile.env {
                if !is_valid_name(&entry.name) {
                    problems.0.push(invalid_name(config, &entry.name_at, &entry.name));
                    continue;
                }
                let target =
                    Target::Variable { name: entry.name.clone(), optional: entry.optional, as_file: entry.as_file };
                let origin = Origin::ProfileEnv(profile.name.clone());
                let at = |m: &str| config.error(&entry.at, m).message;
                plan.push(&entry.reference, target, origin, &config.dir, &mut problems, at);
            }
        }
    }
    for reference in args.import {
        let at = |m: &str| format!("-i {reference}: {m}");
        plan.push(reference, Target::Import { prefix: String::new() }, Origin::ImportFlag, cwd, &mut problems, at);
    }
    for pair in args.env {
        let Some((name, reference)) = pair.split_once('=') else {
            problems.0.push(format!("-e {pair}: expected NAME=REF, e.g. -e API_KEY=age://secrets.env.age#API_KEY"));
            continue;
        };
        if !is_valid_name(name) {
            problems.0.push(format!(
                "-e {pair}: `{name}` is not a valid variable name (letters, digits and _, not starting with a digit)"
            ));
            continue;
        }
        let target = Target::Variable { name: name.to_owned(), optional: false, as_file: false };
        let at = |m: &str| format!("-e {pair}: {m}");
        plan.push(reference, target, Origin::EnvFlag, cwd, &mut problems, at);
    }
    problems.into_result()?;
    Ok(plan)
}

impl Plan {
    /// The distinct sources the mappings read, by backend, in order.
    pub fn sources(&self) -> BTreeMap<Backend, Vec<Source>> {
        let mut groups: BTreeMap<Backend, Vec<Source>> = BTreeMap::new();
        for reference in self.mappings.iter().flat_map(Mapping::references) {
            let sources = groups.entry(reference.source.backend).or_default();
            if !sources.contains(&reference.source) {
                sources.push(reference.source.clone());
            }
        }
        groups
    }

    /// The backends the mappings use, each once.
    pub fn backends(&self) -> Vec<Backend> {
        let mut used: Vec<Backend> =
            self.mappings.iter().flat_map(Mapping::references).map(|r| r.source.backend).collect();
        used.sort();
        used.dedup();
        used
    }

    /// Parses and checks one mapping (a reference, or for a variable a
    /// composed value); a problem is described by `at`.
    fn push(
        &mut self,
        raw: &str,
        target: Target,
        origin: Origin,
        base: &Path,
        problems: &mut Problems,
        at: impl Fn(&str) -> String,
    ) {
        let checked = if matches!(target, Target::Variable { .. }) && template::is_composed(raw) {
            checked_template(raw, &target, base, problems, &at).and_then(|template| {
                let first = template.references().next().cloned();
                first.map(|first| (first, Some(template)))
            })
        } else {
            checked_reference(raw, &target, base, problems, &at).map(|reference| (reference, None))
        };
        if let Some((reference, template)) = checked {
            self.mappings.push(Mapping { reference, target, origin, template });
        }
    }
}

/// Parses a composed value and checks each of its references as a
/// variable's; `None` after recording the problem.
fn checked_template(
    raw: &str,
    target: &Target,
    base: &Path,
    problems: &mut Problems,
    at: &impl Fn(&str) -> String,
) -> Option<Template<SecretRef>> {
    let parsed = match template::parse(raw) {
        Ok(parsed) => parsed,
        Err((why, offset)) => {
            problems.0.push(at(&format!("`{raw}`: {why} (at byte {offset})")));
            return None;
        }
    };
    // A value with `{{` that parses holds at least one reference.
    parsed.map(|reference| checked_reference(&reference, target, base, problems, at).ok_or(())).ok()
}

/// Parses and checks one reference for `target`, with its location placed
/// (age paths made absolute); `None` after recording the problem.
fn checked_reference(
    raw: &str,
    target: &Target,
    base: &Path,
    problems: &mut Problems,
    at: &impl Fn(&str) -> String,
) -> Option<SecretRef> {
    let reference = match SecretRef::parse(raw) {
        Ok(reference) => reference,
        Err(e) => {
            problems.0.push(at(&format!("`{raw}`: {e}")));
            return None;
        }
    };
    let problem = match (target, &reference.key, reference.source.backend) {
        (Target::Import { prefix }, _, _) if !prefix.is_empty() && !is_valid_name(prefix) => {
            Some(format!("prefix `{prefix}` cannot start a variable name"))
        }
        (Target::Import { .. }, Some(key), _) => Some(format!(
            "`{raw}` names the single key `{key}`; import takes a whole source (drop #{key}, or map it in env)"
        )),
        (Target::Variable { name, .. }, None, backend) if !backend.module().has_whole_values() => Some(format!(
            "`{raw}` is a whole {} document, not one value: write {raw}#KEY for {name}, or import it",
            backend.scheme()
        )),
        _ => None,
    };
    if let Some(problem) = problem {
        problems.0.push(at(&problem));
        return None;
    }
    let place = reference.source.backend.module().place(&reference.source.location, base);
    Some(reference.with_location(place))
}

fn select_profile(config: Option<&Config>, flag: Option<&str>, ad_hoc: bool) -> Result<Option<String>, CliError> {
    let Some(config) = config else {
        return match (flag, ad_hoc) {
            (Some(name), _) => Err(CliError::new(format!(
                "profile `{name}` was asked for, but no {} was found in this folder or its parents",
                config::FILE_NAME
            ))
            .hint("run envcloak from the project folder, or pass --config PATH")),
            (None, true) => Ok(None),
            (None, false) => Err(CliError::new(format!(
                "nothing to resolve: no {} in this folder or its parents, and no -e/-i",
                config::FILE_NAME
            ))
            .hint("create envcloak.toml (see the README), or pass -e NAME=REF / -i REF")),
        };
    };
    let (name, at) = match (flag, &config.default_profile) {
        (Some(name), _) => (name.to_owned(), None),
        (None, Some((name, at))) => (name.clone(), Some(at)),
        (None, None) if ad_hoc => return Ok(None),
        (None, None) if config.profiles.is_empty() => return Ok(None),
        (None, None) if config.profiles.len() == 1 => (config.profiles[0].name.clone(), None),
        (None, None) => {
            return Err(CliError::new(format!(
                "no profile selected and {} has no default_profile",
                config.path.display()
            ))
            .hint(format!("pass -p NAME (profiles: {}) or set default_profile", config.profile_names())))
        }
    };
    if config.profile(&name).is_none() {
        let message = format!("unknown profile `{name}` (profiles: {})", config.profile_names());
        return Err(match at {
            Some(at) => config.error(at, &message),
            None => CliError::new(message),
        });
    }
    Ok(Some(name))
}

/// The profile and the ones it extends, base first.
fn chain<'c>(config: &'c Config, name: &str) -> Result<Vec<&'c config::Profile>, CliError> {
    let mut chain: Vec<&config::Profile> = Vec::new();
    let mut next = config.profile(name);
    while let Some(profile) = next {
        if chain.iter().any(|p| p.name == profile.name) {
            let names: Vec<&str> = chain.iter().map(|p| p.name.as_str()).collect();
            return Err(CliError::new(format!(
                "profiles extend each other in a loop: {} -> {}",
                names.join(" -> "),
                profile.name
            )));
        }
        chain.push(profile);
        next = match &profile.extends {
            None => None,
            Some((base, at)) => Some(config.profile(base).ok_or_else(|| {
                config.error(
                    at,
                    &format!(
                        "profile `{}` extends unknown profile `{base}` (profiles: {})",
                        profile.name,
                        config.profile_names()
                    ),
                )
            })?),
        };
    }
    chain.reverse();
    Ok(chain)
}

fn invalid_name(config: &Config, at: &Span, name: &str) -> String {
    config
        .error(at, &format!("`{name}` is not a valid variable name (letters, digits and _, not starting with a digit)"))
        .message
}

#[cfg(test)]
mod tests;
