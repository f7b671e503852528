//! `envcloak edit FILE.age`: decrypt to a private temporary file, open the
//! editor, validate, re-encrypt, and remove the plaintext.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::cli::EditArgs;
use crate::error::CliError;
use crate::exit;

use super::Context;

/// Edits an age-encrypted dotenv file in `$VISUAL`/`$EDITOR`.
pub fn edit(context: &Context, args: &EditArgs) -> Result<u8, CliError> {
    let recipients = super::age_tools::recipients(context, &args.recipients, &args.recipients_files)?;
    let armor = is_armored(&args.file);
    let original: Zeroizing<Vec<u8>> = if args.file.exists() {
        let config = context.config()?;
        let sources = super::identity_sources(&args.identities, config.and_then(|c| c.age_identity));
        let prompt = super::prompt();
        let identities = sources.load(prompt.clone())?;
        let ciphertext = super::read_input(Some(&args.file))?;
        envcloak_providers::age_file::decrypt(
            &ciphertext,
            &args.file.display().to_string(),
            &identities,
            prompt.as_ref(),
        )?
    } else {
        Zeroizing::new(Vec::new())
    };

    let scratch = Scratch::create()?;
    let plain_path = scratch.file(&args.file);
    write_private(&plain_path, &original)?;
    run_editor(&plain_path)?;
    let edited = Zeroizing::new(
        std::fs::read(&plain_path).map_err(|e| CliError::new(format!("cannot read the edited text: {e}")))?,
    );
    drop(scratch);

    if *edited == *original && args.file.exists() {
        eprintln!("envcloak: no changes; {} left as it was", args.file.display());
        return Ok(exit::SUCCESS);
    }
    validate(&edited)?;
    let ciphertext = super::age_tools::encrypt_bytes(&edited, &recipients, armor)?;
    replace_atomically(&args.file, &ciphertext)?;
    eprintln!("envcloak: {} re-encrypted to {} recipient(s)", args.file.display(), recipients.len());
    Ok(exit::SUCCESS)
}

/// Keeps the armor of an existing file; new files ending in `.asc` are armored.
fn is_armored(path: &Path) -> bool {
    match std::fs::read(path) {
        Ok(bytes) => bytes.trim_ascii_start().starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"),
        Err(_) => path.extension().is_some_and(|e| e == "asc"),
    }
}

fn validate(text: &[u8]) -> Result<(), CliError> {
    let text = std::str::from_utf8(text)
        .map_err(|_| CliError::new("the edited text is not UTF-8; the file was not changed"))?;
    let entries = envcloak_providers::dotenv::parse(text, &|_| None).map_err(|e| {
        CliError::new(format!("the edited text is not a valid dotenv document ({e}); the file was not changed"))
            .hint("run envcloak edit again to fix it")
    })?;
    if let Some(entry) = entries.iter().find(|e| !crate::plan::is_valid_name(&e.name)) {
        return Err(CliError::new(format!(
            "line {}: `{}` is not a valid variable name; the file was not changed",
            entry.line, entry.name
        )));
    }
    Ok(())
}

fn run_editor(path: &Path) -> Result<(), CliError> {
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .or_else(|| std::env::var("EDITOR").ok().filter(|e| !e.trim().is_empty()))
        .unwrap_or_else(|| "vi".into());
    // Through the shell, so EDITOR="code --wait" works.
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .map_err(|e| CliError::new(format!("cannot start the editor `{editor}`: {e}")))?;
    if !status.success() {
        return Err(CliError::new(format!("the editor `{editor}` failed ({status}); the file was not changed")));
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| CliError::new(format!("cannot write the temporary plaintext: {e}")))
}

fn replace_atomically(target: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let temporary = target.with_extension("age.envcloak-tmp");
    let written = std::fs::write(&temporary, bytes).and_then(|()| std::fs::rename(&temporary, target));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        CliError::new(format!("cannot write {}: {e}", target.display()))
    })
}

/// A private 0700 folder on tmpfs where there is one (`/dev/shm`), removed
/// with its contents overwritten when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn create() -> Result<Self, CliError> {
        let base = [PathBuf::from("/dev/shm"), std::env::temp_dir()]
            .into_iter()
            .find(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        for attempt in 0..16 {
            let path = base.join(format!("envcloak-edit-{}-{attempt}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Self(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(CliError::new(format!("cannot create a private folder in {}: {e}", base.display())))
                }
            }
        }
        Err(CliError::new("cannot create a private folder for editing"))
    }

    /// The plaintext's path, keeping the name the user knows minus `.age`.
    fn file(&self, encrypted: &Path) -> PathBuf {
        let name = encrypted.file_stem().map_or("secrets.env".into(), |s| s.to_string_lossy().into_owned());
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.0) {
            for entry in entries.flatten() {
                if let Ok(len) = entry.metadata().map(|m| m.len()) {
                    let _ = std::fs::OpenOptions::new()
                        .write(true)
                        .open(entry.path())
                        .and_then(|mut f| f.write_all(&vec![0; len as usize]));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
