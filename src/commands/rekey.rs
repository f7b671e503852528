//! `envcloak rekey`: re-encrypt age files to the current recipients, or
//! with `--check` tell, without any private key, which files are not
//! encrypted to exactly them (see [`crate::recipients`] for the record that
//! makes this possible).

use std::collections::BTreeSet;
use std::path::PathBuf;

use envcloak_providers::backend::expand_path;
use envcloak_providers::SecretRef;

use crate::cli::RekeyArgs;
use crate::error::CliError;
use crate::exit::Outcome;
use crate::recipients::{header_recipients, HeaderRecipients, RecipientSet};

use super::secrets_file::SecretsFile;
use super::Context;

/// `envcloak rekey [FILE…] [--check]`.
pub fn rekey(context: &Context, args: &RekeyArgs) -> Result<Outcome, CliError> {
    let recipients = super::age_tools::recipients(context, &args.keys.recipients, &args.keys.recipients_files)?;
    let files = if args.files.is_empty() { config_age_files(context)? } else { args.files.clone() };
    let mut out_of_date = 0;
    for path in &files {
        // As the user would type it: relative to the current folder when under it.
        let label = path.strip_prefix(&context.cwd).unwrap_or(path).display().to_string();
        let ciphertext = super::read_input(Some(path))?;
        let header = header_recipients(&ciphertext, &label)?;
        let Some(change) = Change::between(&header, &recipients, &context.cwd) else {
            println!("up to date  {label}");
            continue;
        };
        if args.check {
            out_of_date += 1;
            println!("out of date {label}: {}", change.describe());
            continue;
        }
        let file = SecretsFile::open(context, path, &args.keys.identities, false)?;
        file.save_unchecked(&file.plaintext, &recipients)?;
        println!("rekeyed     {label}: {}", change.describe());
        if change.lost_access() {
            crate::diag::warning!(
                "{label}: {}; they could read {}: rotate these values, as git history keeps the old file",
                change.who_lost_access(),
                variable_names(&file)
            );
        }
    }
    if out_of_date > 0 {
        eprintln!("envcloak: {out_of_date} of {} file(s) not encrypted to the current recipients", files.len());
        eprintln!("hint: run envcloak rekey (with a key that can decrypt them), and commit the files");
        return Ok(Outcome::Found);
    }
    Ok(Outcome::Success)
}

/// How a file's recipients differ from the current ones.
struct Change {
    /// The file's recorded fingerprints, if envcloak wrote it.
    recorded: Option<Vec<String>>,
    /// Where each added recipient is listed.
    added: Vec<String>,
    removed: Vec<String>,
    /// Recipient stanzas not in the record (another tool re-encrypted it).
    unrecorded_stanzas: bool,
}

impl Change {
    /// `None` when the file is encrypted to exactly `current`.
    fn between(header: &HeaderRecipients, current: &RecipientSet, cwd: &std::path::Path) -> Option<Change> {
        let now: BTreeSet<String> = current.fingerprints().into_iter().collect();
        let Some(recorded) = &header.recorded else {
            return Some(Change { recorded: None, added: Vec::new(), removed: Vec::new(), unrecorded_stanzas: true });
        };
        let before: BTreeSet<String> = recorded.iter().cloned().collect();
        let unrecorded_stanzas = header.stanzas != recorded.len();
        if before == now && !unrecorded_stanzas {
            return None;
        }
        Some(Change {
            recorded: Some(recorded.clone()),
            added: current
                .iter()
                .filter(|r| !before.contains(&r.fingerprint))
                .map(|r| r.place.strip_prefix(&format!("{}/", cwd.display())).unwrap_or(&r.place).to_owned())
                .collect(),
            removed: before.difference(&now).cloned().collect(),
            unrecorded_stanzas,
        })
    }

    fn describe(&self) -> String {
        if self.recorded.is_none() {
            return "its recipients are not recorded (it was not encrypted by envcloak)".into();
        }
        let mut parts = Vec::new();
        if !self.added.is_empty() {
            parts.push(format!("{} recipient(s) added ({})", self.added.len(), self.added.join(", ")));
        }
        if !self.removed.is_empty() {
            parts.push(format!("{} removed ({})", self.removed.len(), self.removed.join(", ")));
        }
        if self.unrecorded_stanzas {
            parts.push("its header has recipients its record does not list".into());
        }
        parts.join(", ")
    }

    /// Whether someone who could decrypt the file before cannot now (or it
    /// cannot be known).
    fn lost_access(&self) -> bool {
        !self.removed.is_empty() || self.unrecorded_stanzas
    }

    fn who_lost_access(&self) -> String {
        if self.removed.is_empty() {
            "its earlier recipients are not all known".into()
        } else {
            format!(
                "{} removed recipient(s) (fingerprints {}; git log -p on the recipients files shows whose)",
                self.removed.len(),
                self.removed.join(", ")
            )
        }
    }
}

/// The names a secrets file assigns, for the rotation warning.
fn variable_names(file: &SecretsFile) -> String {
    let names = file.text().ok().and_then(|text| crate::dotenv_edit::entries(text, "").ok());
    match names {
        Some(entries) if !entries.is_empty() => {
            let mut names: Vec<&str> = Vec::new();
            for entry in &entries {
                if !names.contains(&entry.name.as_str()) {
                    names.push(&entry.name);
                }
            }
            names.join(", ")
        }
        Some(_) => "nothing (the file assigns no variable)".into(),
        None => "the whole file".into(),
    }
}

/// Every age file a profile of the config imports or reads a variable from.
fn config_age_files(context: &Context) -> Result<Vec<PathBuf>, CliError> {
    let config = context.config()?.ok_or_else(|| {
        CliError::new("no envcloak.toml here to find the age files in").hint("name the files: envcloak rekey FILE…")
    })?;
    let mut files: Vec<PathBuf> = Vec::new();
    let references = config
        .profiles
        .iter()
        .flat_map(|p| p.imports.iter().map(|i| i.reference.as_str()).chain(p.env.iter().map(|e| e.reference.as_str())));
    for reference in references {
        let Ok(parsed) = SecretRef::parse(reference) else { continue };
        if parsed.source.backend.scheme() == "age" {
            let path = expand_path(&parsed.source.location, &config.dir);
            if !files.contains(&path) {
                files.push(path);
            }
        }
    }
    if files.is_empty() {
        return Err(CliError::new(format!("{} references no age file", config.path.display()))
            .hint("name the files: envcloak rekey FILE…"));
    }
    Ok(files)
}
