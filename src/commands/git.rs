//! Encrypted dotenv files in git: `git-setup` registers a diff driver
//! (`git-textconv`: each name with a keyed fingerprint of its value, never
//! the value) and a merge driver (`git-merge`: a three-way merge per
//! variable, in memory, re-encrypted to the current recipients).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cli::{GitMergeArgs, GitSetupArgs, GitTextconvArgs};
use crate::dotenv_edit;
use crate::error::CliError;
use crate::exit::Outcome;
use crate::recipients::header_recipients;

use super::secrets_file::{decrypt, SecretsFile};
use super::Context;

/// The line `git-setup` adds to `.gitattributes`.
const ATTRIBUTES: &str = "*.env.age diff=envcloak merge=envcloak";

/// `envcloak git-setup`: the `.gitattributes` line and the repository's
/// git config for both drivers.
pub fn setup(args: &GitSetupArgs) -> Result<Outcome, CliError> {
    let top = git(&["rev-parse", "--show-toplevel"], None)?;
    let top = PathBuf::from(top.trim_end());
    let attributes = top.join(".gitattributes");
    let existing = std::fs::read_to_string(&attributes).unwrap_or_default();
    if existing.lines().any(|l| l.trim() == ATTRIBUTES) {
        eprintln!("envcloak: {} already has `{ATTRIBUTES}`", attributes.display());
    } else {
        let mut text = existing;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(ATTRIBUTES);
        text.push('\n');
        std::fs::write(&attributes, text)
            .map_err(|e| CliError::new(format!("cannot write {}: {e}", attributes.display())))?;
        eprintln!("envcloak: added `{ATTRIBUTES}` to {} (commit it)", attributes.display());
    }
    let program = &args.program;
    for (key, value) in [
        ("diff.envcloak.textconv", format!("{program} git-textconv")),
        ("merge.envcloak.name", "envcloak: a merge per variable of age-encrypted dotenv files".into()),
        ("merge.envcloak.driver", format!("{program} git-merge %O %A %B %P")),
    ] {
        git(&["config", "--local", key, &value], Some(&top))?;
        eprintln!("envcloak: git config {key} = {value}");
    }
    Ok(Outcome::Success)
}

/// `envcloak git-textconv FILE`: what `git diff` and `git log -p` show for
/// an encrypted file. Never fails (a diff must still show), never a value.
pub fn textconv(context: &Context, args: &GitTextconvArgs) -> Result<Outcome, CliError> {
    let label = args.file.display().to_string();
    let ciphertext = super::read_input(Some(&args.file))?;
    let mut out = String::new();
    match header_recipients(&ciphertext, &label).ok().and_then(|h| h.recorded) {
        Some(recorded) => out.push_str(&format!("# recipients: {}\n", recorded.join(" "))),
        None => out.push_str("# recipients: not recorded (not encrypted by envcloak)\n"),
    }
    match decrypt(context, &ciphertext, &label, &[]) {
        Ok((plaintext, key)) => match std::str::from_utf8(&plaintext).ok().map(|t| dotenv_edit::entries(t, &label)) {
            Some(Ok(entries)) => {
                out.push_str("# values are shown as fingerprints keyed by your identity\n");
                for entry in &entries {
                    let fingerprint = fingerprint(&key, &entry.name, entry.value.expose_secret());
                    out.push_str(&format!("{} {fingerprint}\n", entry.name));
                }
            }
            _ => out.push_str("# not a valid dotenv document (merge conflict markers?); names not shown\n"),
        },
        Err(error) => {
            out.push_str(&format!("# cannot decrypt with your identities: {}\n", first_line(&error)));
            // So that a change still shows as one.
            let digest: String = Sha256::digest(&ciphertext)[..8].iter().map(|b| format!("{b:02x}")).collect();
            out.push_str(&format!("# ciphertext sha256: {digest}…\n"));
        }
    }
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .map_err(|e| CliError::new(format!("cannot write to stdout: {e}")))?;
    Ok(Outcome::Success)
}

/// 32 bits of HMAC-SHA256(key, name NUL value), in hex: enough to see that
/// a value changed, and without the key no way to test a guess.
fn fingerprint(key: &[u8; 32], name: &str, value: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(name.as_bytes());
    mac.update(&[0]);
    mac.update(value.as_bytes());
    mac.finalize().into_bytes()[..4].iter().map(|b| format!("{b:02x}")).collect()
}

fn first_line(error: &CliError) -> String {
    error.to_string().lines().next().unwrap_or("").trim_start_matches("envcloak: error: ").to_owned()
}

/// `envcloak git-merge BASE OURS THEIRS PATH`: merges per variable into
/// OURS (git's `%A`), re-encrypted to the current recipients. A variable
/// both sides changed differently becomes a conflict block inside the
/// encrypted text (exit 1), resolved with `envcloak edit PATH`.
pub fn merge(context: &Context, args: &GitMergeArgs) -> Result<Outcome, CliError> {
    let shown = args.path.as_deref().map_or_else(|| args.ours.display().to_string(), |p| p.display().to_string());
    let open = |path: &Path, side: &str| -> Result<Zeroizing<String>, CliError> {
        let bytes = super::read_input(Some(path))?;
        if bytes.is_empty() {
            return Ok(Zeroizing::new(String::new()));
        }
        let (plaintext, _) = decrypt(context, &bytes, &format!("{shown} ({side})"), &[])?;
        let text = std::str::from_utf8(&plaintext)
            .map_err(|_| CliError::new(format!("{shown} ({side}) does not hold UTF-8 text")))?;
        Ok(Zeroizing::new(text.to_owned()))
    };
    let base = open(&args.base, "base")?;
    let ours = open(&args.ours, "ours")?;
    let theirs = open(&args.theirs, "theirs")?;
    let recipients = super::age_tools::recipients(context, &[], &[])?;
    let merged = three_way(&base, &ours, &theirs, &shown)?;
    SecretsFile::replacing(&args.ours).save_unchecked(merged.text.as_bytes(), &recipients)?;
    if merged.conflicts.is_empty() {
        return Ok(Outcome::Success);
    }
    eprintln!(
        "envcloak: {shown}: {} changed differently on both sides: {}; resolve with envcloak edit {shown}",
        if merged.conflicts.len() == 1 { "a variable was" } else { "variables were" },
        merged.conflicts.join(", ")
    );
    Ok(Outcome::Found)
}

/// The result of a merge: the text, and the variables in conflict.
pub struct Merged {
    /// Ours with theirs' changes applied, and a conflict block for each
    /// variable both changed differently.
    pub text: Zeroizing<String>,
    /// The variables in conflict.
    pub conflicts: Vec<String>,
}

/// The per-variable three-way merge: a side that left a variable as it was
/// in `base` takes the other side's version (changed, added or removed).
pub fn three_way(base: &str, ours: &str, theirs: &str, label: &str) -> Result<Merged, CliError> {
    let values = |text: &str, side: &str| -> Result<HashMap<String, Zeroizing<String>>, CliError> {
        let entries = dotenv_edit::entries(text, &format!("{label} ({side})"))?;
        Ok(entries.into_iter().map(|e| (e.name, Zeroizing::new(e.value.expose_secret().to_owned()))).collect())
    };
    let (b, o, t) = (values(base, "base")?, values(ours, "ours")?, values(theirs, "theirs")?);
    let mut names: Vec<String> = Vec::new();
    for entry in dotenv_edit::entries(ours, label)?.into_iter().chain(dotenv_edit::entries(theirs, label)?) {
        if !names.contains(&entry.name) {
            names.push(entry.name);
        }
    }
    names.extend(b.keys().filter(|n| !o.contains_key(*n) && !t.contains_key(*n)).cloned());
    let mut text = Zeroizing::new(ours.to_owned());
    let mut conflicts = Vec::new();
    for name in names {
        let (base_v, ours_v, theirs_v) = (b.get(&name), o.get(&name), t.get(&name));
        if ours_v == theirs_v || theirs_v == base_v {
            continue; // ours is the result
        }
        if ours_v == base_v {
            text = match theirs_v {
                Some(value) => dotenv_edit::set(&text, &name, value, label)?,
                None => dotenv_edit::unset(&text, std::slice::from_ref(&name), label)?.0,
            };
            continue;
        }
        text = conflict_block(&text, theirs, &name, label)?;
        conflicts.push(name);
    }
    Ok(Merged { text, conflicts })
}

/// `text` with the assignments of `name` replaced by a conflict block:
/// ours' lines, then theirs' (from `theirs`), as git marks a conflict.
fn conflict_block(text: &str, theirs: &str, name: &str, label: &str) -> Result<Zeroizing<String>, CliError> {
    let lines_of = |doc: &str| -> Result<Zeroizing<String>, CliError> {
        let mut out = Zeroizing::new(String::new());
        for entry in dotenv_edit::entries(doc, label)?.iter().filter(|e| e.name == name) {
            out.push_str(&doc[entry.span.clone()]);
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        Ok(out)
    };
    let ours_lines = lines_of(text)?;
    let theirs_lines = lines_of(theirs)?;
    let (without, _) = dotenv_edit::unset(text, &[name.to_owned()], label)?;
    let at = dotenv_edit::entries(text, label)?
        .iter()
        .find(|e| e.name == name)
        .map_or(without.len(), |e| text[..e.span.start].rfind('\n').map_or(0, |i| i + 1));
    let mut out = Zeroizing::new(String::with_capacity(text.len() + theirs_lines.len() + 64));
    out.push_str(&without[..at.min(without.len())]);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("<<<<<<< ours\n");
    out.push_str(&ours_lines);
    out.push_str("=======\n");
    out.push_str(&theirs_lines);
    out.push_str(">>>>>>> theirs\n");
    out.push_str(&without[at.min(without.len())..]);
    Ok(out)
}

/// Runs `git ARGS…` (in `dir`), its stdout.
fn git(args: &[&str], dir: Option<&Path>) -> Result<String, CliError> {
    let mut command = Command::new("git");
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let out = command.output().map_err(|e| CliError::new(format!("cannot run git: {e}")).hint("install git"))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(CliError::new(format!("git {} failed: {why}", args.join(" ")))
            .hint("run envcloak git-setup inside the git repository"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::three_way;

    fn merge(base: &str, ours: &str, theirs: &str) -> (String, Vec<String>) {
        let merged = three_way(base, ours, theirs, "t.env").unwrap();
        (merged.text.to_string(), merged.conflicts)
    }

    #[test]
    fn different_variables_merge_and_ours_lines_stay_as_written() {
        let base = "# c\nA=1\nB=2\n";
        let ours = "# c\nA='1' # kept\nB=2\nC=3\n";
        let theirs = "# c\nA=1\nB=20\nD=4\n";
        assert_eq!(merge(base, ours, theirs), ("# c\nA='1' # kept\nB=20\nC=3\nD=4\n".into(), vec![]));
        assert_eq!(merge(base, "# c\nB=2\n", theirs), ("# c\nB=20\nD=4\n".into(), vec![]));
        assert_eq!(merge(base, ours, "# c\nA=1\n"), ("# c\nA='1' # kept\nC=3\n".into(), vec![]));
        assert_eq!(merge("", "A=1\n", "A=1\n"), ("A=1\n".into(), vec![]));
    }

    #[test]
    fn one_variable_changed_differently_is_a_conflict_block() {
        let (text, conflicts) = merge("A=1\nB=2\n", "A=1\nB=ours\n", "A=1\nB=theirs\n");
        assert_eq!(text, "A=1\n<<<<<<< ours\nB=ours\n=======\nB=theirs\n>>>>>>> theirs\n");
        assert_eq!(conflicts, ["B"]);
        let (text, _) = merge("A=1\nB=2\n", "A=1\n", "A=1\nB=theirs\n");
        assert_eq!(text, "A=1\n<<<<<<< ours\n=======\nB=theirs\n>>>>>>> theirs\n");
        assert!(envcloak_providers::dotenv::parse(&text, &|_| None).is_err(), "markers must not parse");
    }
}
