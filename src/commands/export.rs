//! `envcloak export`: the resolved secrets for tools that cannot be wrapped.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use crate::cli::{ExportArgs, ExportFormat};
use crate::error::CliError;
use crate::exit::Outcome;
use crate::resolve::ResolvedVar;

use super::Context;

/// Prints the secrets in the chosen format (to stdout, and for `github` to
/// the file named by `$GITHUB_ENV`).
pub fn export(context: &Context, args: &ExportArgs) -> Result<Outcome, CliError> {
    let super::ResolvedRun { plan, resolution, leases, .. } = context.resolve(&args.mappings)?;
    if resolution.has_required_failure() {
        return Err(super::failures_error(&plan, &resolution, "nothing exported"));
    }
    // The exported credentials are for another program: their leases are
    // not revoked when envcloak exits (each expires with its TTL).
    if let Some(leases) = leases {
        leases.abandon();
    }
    super::warn_skipped(&plan, &resolution);
    let files: Vec<&str> = resolution.vars.iter().filter(|v| v.as_file).map(|v| v.name.as_str()).collect();
    if !files.is_empty() {
        // export cannot hand over a file: say so where a path is expected.
        crate::diag::warning!(
            "{} {} as = \"file\": export prints the value itself, not a path to a file (`envcloak run` passes a file)",
            files.join(", "),
            if files.len() == 1 { "is" } else { "are" }
        );
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = match args.format {
        ExportFormat::Dotenv => write_each(&mut out, &resolution.vars, "", '"', dotenv_double_quoted),
        ExportFormat::Shell => write_each(&mut out, &resolution.vars, "export ", '\'', shell_single_quoted),
        ExportFormat::Json => write_json(&mut out, &resolution.vars),
        ExportFormat::Github => return github(&mut out, &resolution.vars),
    };
    written.map_err(|e| CliError::new(format!("cannot write the export: {e}")))?;
    Ok(Outcome::Success)
}

/// python-dotenv decodes `\\ \" \r \n` (among others) in a double-quoted
/// value and still expands `${…}` in it, with no escape for `$`. A literal
/// `${` is written as `${=:-$}{`: the variable `=` can never be set, so it
/// expands to its default `$`, and expansion results are not expanded again.
/// CR and LF are escaped, so each entry is one line and a CR survives the
/// newline translation python-dotenv applies when it reads a file. A value
/// ending in `\` gets `${=:-}` (which expands to nothing) after it:
/// python-dotenv's reader takes a `\"` just before the closing quote for an
/// escaped quote and would run on into the next line, losing both entries.
fn dotenv_double_quoted(value: &str, out: &mut String) {
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '$' if rest[1..].starts_with('{') => out.push_str("${=:-$}"),
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    if value.ends_with('\\') {
        out.push_str("${=:-}");
    }
}

/// POSIX shells take everything literally inside `'…'`; a `'` is closed,
/// escaped and reopened.
fn shell_single_quoted(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            c => out.push(c),
        }
    }
}

/// Writes `PREFIX NAME=<quote>escaped value<quote>` lines, building each
/// line in one zeroizing buffer big enough never to reallocate.
fn write_each(
    out: &mut dyn Write,
    vars: &[ResolvedVar],
    prefix: &str,
    quote: char,
    escape: fn(&str, &mut String),
) -> std::io::Result<()> {
    for var in vars {
        let value = var.value.expose();
        let mut line =
            zeroize::Zeroizing::new(String::with_capacity(prefix.len() + var.name.len() + 7 * value.len() + 10));
        line.push_str(prefix);
        line.push_str(&var.name);
        line.push('=');
        line.push(quote);
        escape(value, &mut line);
        line.push(quote);
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()
}

fn write_json(out: &mut dyn Write, vars: &[ResolvedVar]) -> std::io::Result<()> {
    out.write_all(b"{")?;
    for (i, var) in vars.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(b"\n  ")?;
        serde_json::to_writer(&mut *out, &var.name)?;
        out.write_all(b": ")?;
        serde_json::to_writer(&mut *out, var.value.expose())?;
    }
    out.write_all(b"\n}\n")?;
    out.flush()
}

/// GitHub Actions: `::add-mask::` for every line and encoded form of every
/// value (see [`crate::mask::masked_forms`]) on stdout,
/// then `NAME<<DELIMITER` entries appended to `$GITHUB_ENV`.
fn github(out: &mut dyn Write, vars: &[ResolvedVar]) -> Result<Outcome, CliError> {
    let Some(env_file) = std::env::var_os("GITHUB_ENV") else {
        return Err(CliError::new("GITHUB_ENV is not set").hint("--format github runs inside a GitHub Actions step"));
    };
    let failed =
        |e: std::io::Error| CliError::new(format!("cannot write to GITHUB_ENV ({}): {e}", env_file.to_string_lossy()));
    for var in vars {
        // Each line, and the encoded forms, so the runner masks those too;
        // not a value under 4 bytes (`::add-mask::1` would mask every `1`
        // in the rest of the job's log), as in envcloak's own masking.
        let forms = crate::mask::masked_forms(var.value.expose(), crate::mask::MIN_MASKED_LEN);
        for line in forms.iter().filter(|f| !f.contains(['\n', '\r']) && !f.trim().is_empty()) {
            // The runner decodes %25, %0D and %0A in workflow commands.
            let escaped = zeroize::Zeroizing::new(line.replace('%', "%25"));
            let text = zeroize::Zeroizing::new(format!("::add-mask::{}\n", escaped.as_str()));
            out.write_all(text.as_bytes()).map_err(|e| CliError::new(format!("cannot write to stdout: {e}")))?;
        }
    }
    out.flush().map_err(|e| CliError::new(format!("cannot write to stdout: {e}")))?;
    // Created private if missing; a symlink is not followed.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&env_file)
        .map_err(failed)?;
    for var in vars {
        let delimiter = loop {
            let candidate = format!("ghadelimiter_{}", random_hex()?);
            if !var.value.expose().contains(&candidate) {
                break candidate;
            }
        };
        let entry =
            zeroize::Zeroizing::new(format!("{}<<{delimiter}\n{}\n{delimiter}\n", var.name, var.value.expose()));
        file.write_all(entry.as_bytes()).map_err(failed)?;
    }
    Ok(Outcome::Success)
}

fn random_hex() -> Result<String, CliError> {
    crate::random::hex(16).map_err(|e| CliError::new(format!("cannot read random bytes: {e}")))
}
