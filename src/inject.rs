//! The one place values leave envcloak: the child's environment (or secret
//! files), the program lookup, and exec.

use std::collections::HashMap;
use std::ffi::{CStr, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use zeroize::Zeroizing;

use crate::error::CliError;
use crate::exit::Outcome;
use crate::resolve::ResolvedVar;
use crate::secret_file::SecretFiles;

/// A NUL-terminated `NAME=value` or argument, wiped when dropped.
pub struct CEntry(Zeroizing<Vec<u8>>);

impl CEntry {
    /// Builds `parts` joined, with a terminating NUL, in one allocation.
    /// Parts must not contain NUL (names and values are checked before).
    fn new(parts: &[&[u8]]) -> Self {
        let len = parts.iter().map(|p| p.len()).sum::<usize>() + 1;
        let mut bytes = Zeroizing::new(Vec::with_capacity(len));
        for part in parts {
            bytes.extend_from_slice(part);
        }
        bytes.push(0);
        Self(bytes)
    }

    /// The bytes without the terminating NUL.
    fn bytes(&self) -> &[u8] {
        &self.0[..self.0.len() - 1]
    }

    /// The name part of a `NAME=value` entry.
    fn name(&self) -> &[u8] {
        self.bytes().split(|b| *b == b'=').next().unwrap_or(self.bytes())
    }
}

impl AsRef<CStr> for CEntry {
    fn as_ref(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.0).unwrap_or_default()
    }
}

/// Which of envcloak's own variables the command receives: all but the
/// withheld bootstrap credentials, or with `--clean-env` only the kept ones.
/// `${VAR}` expansion in age files reads the same ones (see
/// [`Passthrough::expandable`]).
#[derive(Clone, Default)]
pub struct Passthrough {
    /// Start from nothing but `keep`.
    pub clean: bool,
    /// Variables to pass through (and bootstrap credentials to keep).
    pub keep: Vec<String>,
    /// Bootstrap credentials: removed unless kept.
    pub withhold: Vec<String>,
}

impl Passthrough {
    /// Whether the command gets envcloak's variable `name`.
    pub fn passes(&self, name: &OsStr) -> bool {
        let kept = self.keep.iter().any(|k| OsStr::new(k) == name);
        let withheld = self.withhold.iter().any(|w| OsStr::new(w) == name);
        kept || (!self.clean && !withheld)
    }

    /// Whether `${name}` in an age file may read envcloak's variable: only
    /// one the command gets anyway, and no `ENVCLOAK_*` variable unless
    /// kept, so a file anyone can encrypt to the recipients cannot copy a
    /// withheld credential (a Vault token, the age key) into a value.
    pub fn expandable(&self, name: &str) -> bool {
        self.passes(OsStr::new(name)) && (!name.starts_with("ENVCLOAK_") || self.keep.iter().any(|k| k == name))
    }
}

/// How the child's environment is built.
pub struct EnvOptions<'a> {
    /// Which of envcloak's variables pass.
    pub passthrough: &'a Passthrough,
    /// Leave variables that are already set alone.
    pub no_override: bool,
    /// Secret files whose values can be replaced in place (`signal:NAME`).
    pub replaceable_files: bool,
}

/// The child's environment, and its secret files.
pub struct ChildEnv {
    /// `NAME=value` entries.
    pub entries: Vec<CEntry>,
    /// Files holding `as = "file"` values; must live until the child has them.
    pub files: SecretFiles,
}

/// Builds the child's environment from envcloak's own and the secrets
/// (whose pages are locked in memory first, so they are never swapped out).
pub fn build_env(vars: &[ResolvedVar], options: &EnvOptions<'_>) -> Result<ChildEnv, CliError> {
    for var in vars {
        crate::memory::lock(var.value.expose().as_bytes());
    }
    let mut entries: Vec<CEntry> = std::env::vars_os()
        .filter(|(name, _)| options.passthrough.passes(name))
        .filter(|(name, value)| !name.as_bytes().contains(&0) && !value.as_bytes().contains(&0))
        .map(|(name, value)| CEntry::new(&[name.as_bytes(), b"=", value.as_bytes()]))
        .collect();
    let mut files = if options.replaceable_files { SecretFiles::replaceable() } else { SecretFiles::default() };
    // Where each name is, so that many variables take linear time.
    let mut position: HashMap<Vec<u8>, usize> =
        entries.iter().enumerate().map(|(at, entry)| (entry.name().to_vec(), at)).collect();
    for var in vars {
        let existing = position.get(var.name.as_bytes()).copied();
        if options.no_override && existing.is_some() {
            crate::diag::note!("{} is already set; not overridden (--no-override)", var.name);
            continue;
        }
        let entry = if var.as_file {
            let path = files.add(&var.name, &var.value)?;
            CEntry::new(&[var.name.as_bytes(), b"=", path.as_bytes()])
        } else {
            CEntry::new(&[var.name.as_bytes(), b"=", var.value.expose().as_bytes()])
        };
        match existing {
            Some(at) => entries[at] = entry,
            None => {
                position.insert(var.name.as_bytes().to_vec(), entries.len());
                entries.push(entry);
            }
        }
    }
    Ok(ChildEnv { entries, files })
}

/// The argument vector, NUL-terminated.
pub fn argv(command: &[OsString]) -> Result<Vec<CEntry>, CliError> {
    command
        .iter()
        .map(|arg| {
            if arg.as_bytes().contains(&0) {
                Err(CliError::new("an argument of the command contains a NUL byte"))
            } else {
                Ok(CEntry::new(&[arg.as_bytes()]))
            }
        })
        .collect()
}

/// The argument vector `execvp` uses for a script without `#!` (one the
/// kernel refuses with `ENOEXEC`): `/bin/sh`, the script, its arguments.
pub fn shell_argv(script: &Path, argv: &[CEntry]) -> Vec<CEntry> {
    let mut shell = vec![CEntry::new(&[b"/bin/sh"]), CEntry::new(&[script.as_os_str().as_bytes()])];
    shell.extend(argv.iter().skip(1).map(|arg| CEntry::new(&[arg.bytes()])));
    shell
}

/// Finds `program` like `env(1)`: a name with `/` is used as is, otherwise
/// it is searched in envcloak's own `PATH`, never in one a secret set, so a
/// value cannot choose which program runs. Not found is exit 127, not
/// executable 126.
pub fn find_program(program: &OsStr) -> Result<PathBuf, CliError> {
    let shown = program.to_string_lossy();
    if program.as_bytes().contains(&b'/') {
        let path = PathBuf::from(program);
        return match check_executable(&path) {
            Ok(()) => Ok(path),
            Err(e) => Err(exec_error(&shown, e)),
        };
    }
    let own_path = std::env::var_os("PATH");
    let search = own_path.as_deref().unwrap_or(OsStr::new("/usr/bin:/bin"));
    let mut denied = None;
    for dir in std::env::split_paths(search) {
        let candidate = dir.join(program);
        match check_executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(Errno::EACCES) => denied = denied.or(Some(candidate)),
            Err(_) => {}
        }
    }
    Err(match denied {
        Some(path) => exec_error(&path.display().to_string(), Errno::EACCES),
        None => exec_error(&shown, Errno::ENOENT),
    })
}

fn check_executable(path: &Path) -> Result<(), Errno> {
    use nix::unistd::{access, AccessFlags};
    let metadata = std::fs::metadata(path).map_err(|e| e.raw_os_error().map_or(Errno::ENOENT, Errno::from_raw))?;
    if metadata.is_dir() {
        return Err(Errno::EACCES);
    }
    access(path, AccessFlags::X_OK)
}

/// The error (126 or 127) for a program that cannot be started.
pub fn exec_error(program: &str, errno: Errno) -> CliError {
    match errno {
        Errno::ENOENT | Errno::ENOTDIR => CliError::new(format!("command not found: {program}"))
            .hint("check the spelling and PATH (with --clean-env, keep PATH: --keep PATH)")
            .status(Outcome::CommandNotFound),
        Errno::EACCES | Errno::EPERM => CliError::new(format!("permission denied: {program} is not executable"))
            .hint(format!("run: chmod +x {program}"))
            .status(Outcome::CannotExecute),
        Errno::ENOEXEC => CliError::new(format!("{program} is not a program this system can run"))
            .hint("a script needs a #! line")
            .status(Outcome::CannotExecute),
        other => CliError::new(format!("cannot execute {program}: {}", other.desc())).status(Outcome::CannotExecute),
    }
}

/// Replaces envcloak with the program. Returns only on failure. Goes through
/// std's exec, which also gives the program the default SIGPIPE disposition
/// and an empty signal mask (Rust ignores SIGPIPE in its own processes). The
/// copies std makes vanish with envcloak's memory image at exec.
pub fn exec(program: &Path, argv: &[CEntry], env: &[CEntry]) -> CliError {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(program);
    if let Some((first, rest)) = argv.split_first() {
        command.arg0(OsStr::from_bytes(first.bytes())).args(rest.iter().map(|a| OsStr::from_bytes(a.bytes())));
    }
    command.env_clear();
    for entry in env {
        let (name, value) = entry.bytes().split_at(entry.name().len());
        command.env(OsStr::from_bytes(name), OsStr::from_bytes(&value[1..]));
    }
    let error = command.exec();
    exec_error(&program.display().to_string(), Errno::from_raw(error.raw_os_error().unwrap_or(Errno::ENOENT as i32)))
}
