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

use super::Context;

/// A recipient to encrypt to.
pub type BoxedRecipient = Box<dyn age::Recipient + Send>;

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

/// Encrypts `plaintext` to `recipients`, armored or binary.
pub fn encrypt_bytes(plaintext: &[u8], recipients: &[BoxedRecipient], armor: bool) -> Result<Vec<u8>, CliError> {
    let failed = |e: &dyn std::fmt::Display| CliError::new(format!("encryption failed: {e}"));
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient))
        .map_err(|e| match e {
            // `recipients` refuses this first, with the places named.
            age::EncryptError::IncompatibleRecipients { .. } => mixed_recipients(None),
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
///
/// Post-quantum (`age1pq1…`) and classic recipients are not mixed in one
/// file, as Go age refuses too: a classic recipient's stanza would let a
/// future quantum computer recover the file key.
pub fn recipients(context: &Context, given: &[String], files: &[PathBuf]) -> Result<Vec<BoxedRecipient>, CliError> {
    let mut list = Vec::new();
    for text in given {
        list.push(parse_recipient(text, "-r")?);
    }
    let mut files = files.to_vec();
    if given.is_empty() && files.is_empty() {
        if let Some(path) = super::age_settings(context)?.recipients_file {
            files.push(path);
        }
    }
    for path in &files {
        list.extend(read_recipients_file(path)?);
    }
    if list.is_empty() {
        return Err(CliError::new("no recipients to encrypt to")
            .hint("pass -r age1… or -R FILE, or set [age] recipients_file in envcloak.toml"));
    }
    let post_quantum = list.iter().find(|r| r.post_quantum);
    let classic = list.iter().find(|r| !r.post_quantum);
    if let (Some(pq), Some(classic)) = (post_quantum, classic) {
        return Err(mixed_recipients(Some((pq.place.as_str(), classic.place.as_str()))));
    }
    Ok(list.into_iter().map(|r| r.recipient).collect())
}

/// A recipient and where it was given (`-r`, `FILE:LINE`).
struct Parsed {
    recipient: BoxedRecipient,
    place: String,
    post_quantum: bool,
}

fn mixed_recipients(places: Option<(&str, &str)>) -> CliError {
    let which = places.map_or(String::new(), |(pq, classic)| format!(" ({pq} is post-quantum, {classic} is not)"));
    CliError::new(format!(
        "refusing to encrypt to post-quantum (age1pq1…) and classic recipients together{which}: a classic recipient would leave the file open to a future quantum computer"
    ))
    .hint("give everyone a post-quantum identity (envcloak keygen --pq) and list only their age1pq1… recipients, or use only classic recipients")
}

fn read_recipients_file(path: &Path) -> Result<Vec<Parsed>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::new(format!("cannot read recipients file {}: {e}", path.display())))?;
    let mut list = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        list.push(parse_recipient(line, &format!("{}:{}", path.display(), number + 1))?);
    }
    Ok(list)
}

fn parse_recipient(text: &str, place: &str) -> Result<Parsed, CliError> {
    use envcloak_providers::age_file::pq;
    let unknown = || {
        CliError::new(format!("{place}: `{text}` is not a recipient"))
            .hint("a recipient is an age public key (age1… or post-quantum age1pq1…) or an SSH public key (ssh-ed25519 … / ssh-rsa …)")
    };
    let recipient = if pq::is_recipient(text) {
        text.parse::<pq::HybridRecipient>().map(|r| Box::new(r) as BoxedRecipient).map_err(|why| {
            CliError::new(format!("{place}: not a valid post-quantum recipient ({why})"))
                .hint("copy the whole age1pq1… line from the `# public key:` comment of the identity file")
        })?
    } else if text.starts_with("age1") {
        text.parse::<age::x25519::Recipient>().map(|r| Box::new(r) as BoxedRecipient).map_err(|_| unknown())?
    } else if text.starts_with("ssh-") {
        text.parse::<age::ssh::Recipient>().map(|r| Box::new(r) as BoxedRecipient).map_err(|_| unknown())?
    } else {
        return Err(unknown());
    };
    Ok(Parsed { recipient, place: place.to_owned(), post_quantum: pq::is_recipient(text) })
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
