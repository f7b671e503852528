//! `envcloak edit FILE.age`: decrypt to a private temporary file, open the
//! editor, validate, re-encrypt, and remove the plaintext.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::cli::EditArgs;
use crate::error::CliError;
use crate::exit::Outcome;
use crate::private_dir::PrivateDir;

use super::Context;

/// Edits an age-encrypted dotenv file in `$VISUAL`/`$EDITOR`.
pub fn edit(context: &Context, args: &EditArgs) -> Result<Outcome, CliError> {
    let recipients = super::age_tools::recipients(context, &args.recipients, &args.recipients_files)?;
    let armor = is_armored(&args.file);
    let existed = args.file.exists();
    let original: Zeroizing<Vec<u8>> = if existed {
        let sources = super::age_settings(context)?.identity_sources(&args.identities);
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

    let scratch = PrivateDir::create("edit")?;
    // Keep the name the user knows, minus `.age`, so editors pick a syntax.
    let name = args.file.file_stem().map_or("secrets.env".into(), |s| s.to_string_lossy().into_owned());
    let plain_path = scratch.write(&name, &original)?;
    let withheld = context.backends()?.bootstrap_credentials();
    let interrupted = EditorSignals::install()?;
    let edited_ok = run_editor(&plain_path, &withheld);
    if let Some(signal) = interrupted.ended_by() {
        drop(scratch);
        return Err(CliError::new(format!(
            "interrupted by {signal}; the plaintext was removed and the file was not changed"
        ))
        .status(Outcome::Signal(signal as i32)));
    }
    edited_ok?;
    let edited = Zeroizing::new(
        std::fs::read(&plain_path).map_err(|e| CliError::new(format!("cannot read the edited text: {e}")))?,
    );
    drop(scratch);

    if *edited == *original && existed {
        eprintln!("envcloak: no changes; {} left as it was", args.file.display());
        return Ok(Outcome::Success);
    }
    validate(&edited)?;
    let ciphertext = super::age_tools::encrypt_bytes(&edited, &recipients, armor)?;
    // The file keeps its mode; a new one is 0644 (it is ciphertext).
    let mode = std::fs::metadata(&args.file).map_or(0o644, |m| m.permissions().mode() & 0o777);
    super::age_tools::write_output(Some(&args.file), &ciphertext, mode)?;
    let verb = if existed { "re-encrypted" } else { "encrypted" };
    eprintln!("envcloak: {} {verb} to {} recipient(s)", args.file.display(), recipients.len());
    Ok(Outcome::Success)
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

/// Runs the editor on `path`, without the `withheld` credentials in its
/// environment, and with a known editor's history, undo, swap and backup
/// files off (as `pass` does), so no line of the plaintext lands in `~/.viminfo`
/// or `~/.vim/undo/`.
fn run_editor(path: &Path, withheld: &[String]) -> Result<(), CliError> {
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .or_else(|| std::env::var("EDITOR").ok().filter(|e| !e.trim().is_empty()))
        .unwrap_or_else(|| "vi".into());
    let private = private_flags(&editor);
    // Through the shell, so EDITOR="code --wait" works.
    let mut command = std::process::Command::new("/bin/sh");
    command.arg("-c").arg(format!("exec {editor}{private} \"$1\"")).arg("sh").arg(path);
    for name in withheld {
        command.env_remove(name);
    }
    let status = command.status().map_err(|e| CliError::new(format!("cannot start the editor `{editor}`: {e}")))?;
    if !status.success() {
        return Err(CliError::new(format!("the editor `{editor}` failed ({status}); the file was not changed")));
    }
    Ok(())
}

/// Flags that keep a known editor from writing the text elsewhere: vim and
/// neovim get no viminfo/shada, swap, undo or backup files; nano reads no
/// rc file (which could turn its history log on). Others get none.
fn private_flags(editor: &str) -> &'static str {
    let program = editor.split_whitespace().next().unwrap_or("");
    let found = if program.contains('/') {
        Some(std::path::PathBuf::from(program))
    } else {
        std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(program)).find(|p| p.is_file()))
    };
    let real = found.and_then(|p| p.canonicalize().ok());
    let name = real.as_deref().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.starts_with("vim") || name.starts_with("nvim") {
        " -n -i NONE -c 'set noundofile nobackup nowritebackup noswapfile'"
    } else if name.starts_with("nano") {
        " --ignorercfiles"
    } else {
        ""
    }
}

/// While the editor runs, envcloak must outlive it to remove the plaintext:
/// the terminal's SIGINT and SIGQUIT are left to the editor (as git does),
/// and a SIGHUP or SIGTERM is remembered so the edit is abandoned and the
/// plaintext removed once the editor is gone.
struct EditorSignals {
    hangup: std::sync::Arc<std::sync::atomic::AtomicBool>,
    terminate: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl EditorSignals {
    fn install() -> Result<Self, CliError> {
        use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
        let failed = |e: std::io::Error| CliError::new(format!("cannot install signal handlers: {e}"));
        let ignored = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let signals = Self { hangup: Default::default(), terminate: Default::default() };
        for (signal, flag) in
            [(SIGINT, &ignored), (SIGQUIT, &ignored), (SIGHUP, &signals.hangup), (SIGTERM, &signals.terminate)]
        {
            signal_hook::flag::register(signal, std::sync::Arc::clone(flag)).map_err(failed)?;
        }
        Ok(signals)
    }

    fn ended_by(&self) -> Option<nix::sys::signal::Signal> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.hangup.load(SeqCst) {
            Some(nix::sys::signal::Signal::SIGHUP)
        } else if self.terminate.load(SeqCst) {
            Some(nix::sys::signal::Signal::SIGTERM)
        } else {
            None
        }
    }
}
