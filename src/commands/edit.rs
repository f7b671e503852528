//! `envcloak edit FILE.age`: decrypt to a private temporary file, open the
//! editor, validate, re-encrypt, and remove the plaintext.

use std::path::Path;

use zeroize::Zeroizing;

use crate::cli::EditArgs;
use crate::error::CliError;
use crate::exit::Outcome;
use crate::private_dir::PrivateDir;

use super::secrets_file::{validate, SecretsFile};
use super::Context;

/// Edits an age-encrypted dotenv file in `$VISUAL`/`$EDITOR`. When the
/// result is not valid and a terminal is there to ask on, the same private
/// copy is opened again with the error at its top (as `visudo` and
/// `crontab -e` do), so nothing typed is lost.
pub fn edit(context: &Context, args: &EditArgs) -> Result<Outcome, CliError> {
    let recipients = super::age_tools::recipients(context, &args.keys.recipients, &args.keys.recipients_files)?;
    let file = SecretsFile::open(context, &args.file, &args.keys.identities, true)?;
    let scratch = PrivateDir::create("edit")?;
    // Keep the name the user knows, minus `.age`, so editors pick a syntax.
    let name = args.file.file_stem().map_or("secrets.env".into(), |s| s.to_string_lossy().into_owned());
    let plain_path = scratch.write(&name, &file.plaintext)?;
    let withheld = context.backends()?.bootstrap_credentials();
    let interrupted = EditorSignals::install()?;
    let edited = loop {
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
        let edited = without_banner(edited);
        match validate(&edited) {
            Ok(()) => break edited,
            Err(error) if ask_to_edit_again(&error) => {
                let mut again = Zeroizing::new(banner(&error).into_bytes());
                again.extend_from_slice(&edited);
                scratch.overwrite(&name, &again)?;
            }
            Err(error) => return Err(error),
        }
    };
    drop(scratch);

    if *edited == *file.plaintext && file.existed {
        eprintln!("envcloak: no changes; {} left as it was", args.file.display());
        return Ok(Outcome::Success);
    }
    file.save(&edited, &recipients)?;
    let verb = if file.existed { "re-encrypted" } else { "encrypted" };
    eprintln!("envcloak: {} {verb} to {} recipient(s)", args.file.display(), recipients.len());
    Ok(Outcome::Success)
}

/// The first line of the comment block put above a text that was refused.
const BANNER_START: &str = "# envcloak: this text was not saved:";
/// Its last line.
const BANNER_END: &str = "# (envcloak removes these lines when you save)\n";

/// The comment block that tells why the text was refused.
fn banner(error: &CliError) -> String {
    let mut text = format!("{BANNER_START}\n");
    for line in error.to_string().lines() {
        text.push_str("#   ");
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(BANNER_END);
    text
}

/// `edited` without the [`banner`] at its top, if it is still there.
fn without_banner(edited: Zeroizing<Vec<u8>>) -> Zeroizing<Vec<u8>> {
    if !edited.starts_with(BANNER_START.as_bytes()) {
        return edited;
    }
    match edited.windows(BANNER_END.len()).position(|w| w == BANNER_END.as_bytes()) {
        Some(at) => Zeroizing::new(edited[at + BANNER_END.len()..].to_vec()),
        None => edited,
    }
}

/// Shows the error on the terminal and asks whether to edit again; `false`
/// without a terminal (the edit then ends with the error).
fn ask_to_edit_again(error: &CliError) -> bool {
    use std::io::{BufRead, Write};
    let Ok(mut tty) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty") else {
        return false;
    };
    if writeln!(tty, "{error}").and_then(|()| write!(tty, "Edit again? [Y/n] ")).and_then(|()| tty.flush()).is_err() {
        return false;
    }
    let mut answer = String::new();
    if std::io::BufReader::new(&tty).read_line(&mut answer).is_err() {
        return false;
    }
    !matches!(answer.trim().to_ascii_lowercase().as_str(), "n" | "no")
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
