//! `envcloak set`, `unset` and `get`: one variable of an age-encrypted
//! dotenv file at a time, every other line kept byte for byte.

use std::io::{IsTerminal, Read, Write};

use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::cli::{GetArgs, SetArgs, UnsetArgs};
use crate::dotenv_edit;
use crate::error::CliError;
use crate::exit::Outcome;

use super::secrets_file::SecretsFile;
use super::Context;

/// `envcloak set FILE NAME`: the value comes from stdin, or from a prompt
/// without echo on a terminal; never from the command line.
pub fn set(context: &Context, args: &SetArgs) -> Result<Outcome, CliError> {
    if args.value_on_command_line.is_some() {
        return Err(CliError::new(
            "a value on the command line shows in `ps` and in shell history; it was not used",
        )
        .hint(format!("pipe it on stdin (… | envcloak set FILE {0}), or run envcloak set FILE {0} on a terminal to type it without echo", args.name)));
    }
    check_name(&args.name)?;
    let recipients = super::age_tools::recipients(context, &args.keys.recipients, &args.keys.recipients_files)?;
    let file = SecretsFile::open(context, &args.file, &args.keys.identities, true)?;
    let label = file.path.display().to_string();
    let value = read_value(&args.name)?;
    let text = file.text()?;
    let had = dotenv_edit::entries(text, &label)?.iter().any(|e| e.name == args.name);
    let updated = dotenv_edit::set(text, &args.name, &value, &label)?;
    file.save(updated.as_bytes(), &recipients)?;
    let verb = if had { "changed" } else { "added" };
    eprintln!("envcloak: {} {verb} in {label}, encrypted to {} recipient(s)", args.name, recipients.len());
    Ok(Outcome::Success)
}

/// `envcloak unset FILE NAME…`.
pub fn unset(context: &Context, args: &UnsetArgs) -> Result<Outcome, CliError> {
    let recipients = super::age_tools::recipients(context, &args.keys.recipients, &args.keys.recipients_files)?;
    let file = SecretsFile::open(context, &args.file, &args.keys.identities, false)?;
    let label = file.path.display().to_string();
    let (updated, removed) = dotenv_edit::unset(file.text()?, &args.names, &label)?;
    for name in args.names.iter().filter(|n| !removed.contains(n)) {
        crate::diag::warning!("{name} is not in {label}");
    }
    if removed.is_empty() {
        return Ok(Outcome::Success);
    }
    file.save(updated.as_bytes(), &recipients)?;
    eprintln!("envcloak: removed {} from {label}, encrypted to {} recipient(s)", removed.join(", "), recipients.len());
    Ok(Outcome::Success)
}

/// `envcloak get FILE NAME`: the value as `run` would inject it, then a
/// newline.
pub fn get(context: &Context, args: &GetArgs) -> Result<Outcome, CliError> {
    let file = SecretsFile::open(context, &args.file, &args.identities, false)?;
    let label = file.path.display().to_string();
    let entries = dotenv_edit::entries(file.text()?, &label)?;
    let Some(entry) = entries.iter().rev().find(|e| e.name == args.name) else {
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        return Err(CliError::new(format!("{} is not in {label}", args.name)).hint(format!(
            "the file has: {}",
            if names.is_empty() { "no variables".into() } else { names.join(", ") }
        )));
    };
    let mut out = std::io::stdout().lock();
    out.write_all(entry.value.expose_secret().as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| CliError::new(format!("cannot write to stdout: {e}")))?;
    Ok(Outcome::Success)
}

fn check_name(name: &str) -> Result<(), CliError> {
    if crate::plan::is_valid_name(name) {
        return Ok(());
    }
    Err(CliError::new(format!("`{name}` is not a valid variable name"))
        .hint("a name is letters, digits and _, and does not start with a digit"))
}

/// The value: typed on the terminal without echo when stdin is one, else
/// all of stdin minus one trailing newline.
fn read_value(name: &str) -> Result<Zeroizing<String>, CliError> {
    if std::io::stdin().is_terminal() {
        use envcloak_providers::age_file::PassphrasePrompt;
        let prompt = crate::tty::TerminalPrompt::if_available()
            .ok_or_else(|| CliError::new("no terminal to type the value on"))?;
        let typed = prompt
            .passphrase(&format!("Value for {name} (not shown)"))
            .ok_or_else(|| CliError::new("the value could not be read from the terminal"))?;
        return Ok(Zeroizing::new(typed.expose_secret().to_owned()));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(4096));
    std::io::stdin().read_to_end(&mut bytes).map_err(|e| CliError::new(format!("cannot read stdin: {e}")))?;
    let mut text = Zeroizing::new(
        String::from_utf8(std::mem::take(&mut *bytes))
            .map_err(|_| CliError::new(format!("the value for {name} on stdin is not UTF-8 text")))?,
    );
    let kept = text.strip_suffix("\r\n").or_else(|| text.strip_suffix('\n')).map(str::len);
    if let Some(len) = kept {
        text.truncate(len);
    }
    if text.contains('\0') {
        return Err(CliError::new(format!("the value for {name} holds a NUL byte, which no environment variable can")));
    }
    Ok(text)
}
