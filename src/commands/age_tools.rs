//! `keygen`, `encrypt`, `decrypt`: age files, interoperable with `age` and
//! `rage` both ways.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use age::armor::{ArmoredWriter, Format};
use age::secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::cli::{DecryptArgs, EncryptArgs, KeygenArgs};
use crate::error::CliError;
use crate::exit::Outcome;
use crate::recipients::{self, RecipientSet};

use super::Context;

/// `envcloak keygen`: a new X25519 identity in the `age-keygen` format, or
/// with `--pq` a hybrid post-quantum one (as `age-keygen -pq` writes it).
pub fn keygen(args: &KeygenArgs) -> Result<Outcome, CliError> {
    let (public, secret) = if args.pq {
        let identity = envcloak_providers::age_file::pq::HybridIdentity::generate();
        (identity.to_public().to_string(), identity.to_secret_string())
    } else {
        let identity = age::x25519::Identity::generate();
        (identity.to_public().to_string(), identity.to_string())
    };
    let text = Zeroizing::new(format!(
        "# created: {}\n# public key: {public}\n{}\n",
        crate::utc::rfc3339(std::time::SystemTime::now(), false),
        secret.expose_secret()
    ));
    match &args.output {
        Some(path) => {
            let mut file =
                OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => {
                        CliError::new(format!("{} already exists; not overwriting an identity", path.display()))
                    }
                    _ => CliError::new(format!("cannot create {}: {e}", path.display())),
                })?;
            file.write_all(text.as_bytes())
                .map_err(|e| CliError::new(format!("cannot write {}: {e}", path.display())))?;
            eprintln!("Public key: {public}");
        }
        None => {
            if !std::io::stdout().is_terminal() {
                eprintln!("Public key: {public}");
            }
            std::io::stdout()
                .write_all(text.as_bytes())
                .map_err(|e| CliError::new(format!("cannot write the identity: {e}")))?;
        }
    }
    Ok(Outcome::Success)
}

/// `envcloak encrypt`.
pub fn encrypt(context: &Context, args: &EncryptArgs) -> Result<Outcome, CliError> {
    let recipients = recipients(context, &args.recipients, &args.recipients_files)?;
    if args.output.is_none() && !args.armor && std::io::stdout().is_terminal() {
        return Err(CliError::new("refusing to write binary age output to a terminal")
            .hint("use -a for ASCII armor, or -o FILE"));
    }
    let plaintext = Zeroizing::new(super::read_input(args.input.as_deref())?);
    refuse_empty(&plaintext, args)?;
    let ciphertext = encrypt_bytes(&plaintext, &recipients, args.armor)?;
    write_output(args.output.as_deref(), &ciphertext, 0o644)?;
    Ok(Outcome::Success)
}

/// Empty input is usually a failed command before the pipe (`envcloak
/// decrypt F | envcloak encrypt -o F.new`): refused unless asked for, and
/// never written over an existing file.
fn refuse_empty(plaintext: &[u8], args: &EncryptArgs) -> Result<(), CliError> {
    if !plaintext.is_empty() {
        return Ok(());
    }
    let from = args.input.as_deref().map_or("stdin".into(), |p| p.display().to_string());
    if let Some(out) = args.output.as_deref().filter(|out| out.exists()) {
        return Err(CliError::new(format!(
            "refusing to replace {} with an encryption of empty input ({from} was empty)",
            out.display()
        ))
        .hint("if the command before the pipe failed, fix it first; to empty the file, remove it and encrypt again with --allow-empty"));
    }
    if !args.allow_empty {
        return Err(CliError::new(format!("refusing to encrypt empty input ({from} was empty)")).hint(
            "if the command before the pipe failed, fix it first; pass --allow-empty to encrypt nothing on purpose",
        ));
    }
    Ok(())
}

/// Encrypts `plaintext` to `recipients` (with their record, see
/// [`crate::recipients`]), armored or binary.
pub fn encrypt_bytes(plaintext: &[u8], recipients: &RecipientSet, armor: bool) -> Result<Vec<u8>, CliError> {
    let failed = |e: &dyn std::fmt::Display| CliError::new(format!("encryption failed: {e}"));
    let encryptor = age::Encryptor::with_recipients(recipients.for_encryptor().into_iter()).map_err(|e| match e {
        // `RecipientSet::read` refuses this first, with the places named.
        age::EncryptError::IncompatibleRecipients { .. } => recipients::mixed(None),
        e => failed(&e),
    })?;
    let format = if armor { Format::AsciiArmor } else { Format::Binary };
    let mut output = Vec::with_capacity(plaintext.len() + 512);
    let armored = ArmoredWriter::wrap_output(&mut output, format).map_err(|e| failed(&e))?;
    let mut writer = encryptor.wrap_output(armored).map_err(|e| failed(&e))?;
    writer.write_all(plaintext).map_err(|e| failed(&e))?;
    writer.finish().and_then(|armored| armored.finish()).map_err(|e| failed(&e))?;
    Ok(output)
}

/// `envcloak decrypt`.
pub fn decrypt(context: &Context, args: &DecryptArgs) -> Result<Outcome, CliError> {
    let sources = super::age_settings(context)?.identity_sources(&args.identities);
    let prompt = super::prompt();
    let identities = sources.load(prompt.clone())?;
    let ciphertext = super::read_input(args.input.as_deref())?;
    let label = args.input.as_deref().map_or("stdin".into(), |p| p.display().to_string());
    let plaintext = envcloak_providers::age_file::decrypt(&ciphertext, &label, &identities, prompt.as_ref())?;
    write_output(args.output.as_deref(), &plaintext, 0o600)?;
    Ok(Outcome::Success)
}

/// Recipients from `-r` and `-R`, or else the config's `recipients_file`.
pub fn recipients(context: &Context, given: &[String], files: &[PathBuf]) -> Result<RecipientSet, CliError> {
    if given.is_empty() && files.is_empty() {
        return RecipientSet::read(&[], &super::age_settings(context)?.recipients_files);
    }
    RecipientSet::read(given, files)
}

/// Writes to `path` (replaced as a whole, with `mode`: plaintext never
/// keeps an old file's wider mode) or stdout.
pub fn write_output(path: Option<&Path>, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    let result = match path {
        Some(path) => crate::atomic_file::replace(path, bytes, mode),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        }
    };
    result.map_err(|e| {
        CliError::new(format!("cannot write {}: {e}", path.map_or("stdout".into(), |p| p.display().to_string())))
    })
}
