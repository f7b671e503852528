//! Checks for external tools: a missing tool skips the test with
//! "skipped: …" on stderr, or fails it when `CI` is true.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Whether `CI` is set to a true value.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"))
}

/// Whether the tests run as root (`/proc/self` belongs to the effective user).
pub fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// A missing tool: a failure on CI, else "skipped: …" on stderr.
pub fn missing(reason: &str) -> bool {
    if in_ci() {
        panic!("required tool missing on CI: {reason}");
    }
    eprintln!("skipped: {reason}");
    false
}

/// Whether `program args…` runs and succeeds (output discarded).
pub fn probe(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn have_age() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| probe("age", &["--version"]) && probe("age-keygen", &["--version"]))
        || missing("the age CLI is not installed (Debian package `age`)")
}

pub fn have_vim() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| probe("vim", &["--version"])) || missing("vim is not installed (Debian package `vim`)")
}

pub fn have_ssh_keygen() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| probe("sh", &["-c", "command -v ssh-keygen"]))
        || missing("ssh-keygen is not installed (Debian package `openssh-client`)")
}

/// The real python3 executable that can import python-dotenv.
pub fn python() -> Option<&'static Path> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let out = Command::new("python3")
                .args(["-c", "import sys, dotenv; print(sys.executable)"])
                .stderr(Stdio::null())
                .output()
                .ok()?;
            let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
            (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
        })
        .as_deref()
}

pub fn have_python_dotenv() -> bool {
    python().is_some() || missing("python3 with python-dotenv is not installed (pip install python-dotenv)")
}

pub fn have_flask() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    let ok = *OK.get_or_init(|| python().is_some_and(|p| probe(&p.to_string_lossy(), &["-c", "import flask"])));
    ok || missing("python3 with flask and python-dotenv is not installed (pip install flask python-dotenv)")
}

/// The python3 found by [`have_python_dotenv`] (call that first).
pub fn py() -> &'static Path {
    python().expect("python3 with python-dotenv (check have_python_dotenv first)")
}

pub fn have_git() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| probe("git", &["--version"])) || missing("git is not installed (Debian package `git`)")
}
