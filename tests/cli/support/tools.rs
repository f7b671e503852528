//! Checks for external tools at run time: [`need`] fails a test whose tool
//! is missing, with the install hint. Outside CI such a test is already
//! ignored at build time (see `tool.rs`), so this fails only on CI, or when
//! a tool went away after the build.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::tool::{is_true, Survey};
pub use super::tool::{npm_dir, Tool};

/// Whether `CI` is set to a true value.
pub fn in_ci() -> bool {
    is_true(std::env::var_os("CI").as_deref())
}

/// Whether the tests run as root (`/proc/self` belongs to the effective user).
pub fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// Panics with `why` unless the tests run as root; such a test carries
/// `#[cfg_attr(missing_root, ignore = "needs root: …")]`.
pub fn need_root(why: &str) {
    assert!(running_as_root(), "needs root: {why} (outside CI, a build as another user ignores this test)");
}

/// Panics with `tool`'s install hint unless it is installed.
pub fn need(tool: Tool) {
    static SURVEY: OnceLock<Survey> = OnceLock::new();
    let survey = SURVEY.get_or_init(|| Survey::take(&Tool::ALL, &std::env::var_os("PATH").unwrap_or_default()));
    assert!(survey.has(tool), "{} (outside CI, a build without it ignores this test)", tool.hint());
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

/// The real python3 executable that can import python-dotenv (the PATH
/// entry may be a wrapper); panics with the install hint without one.
pub fn py() -> &'static Path {
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
        .unwrap_or_else(|| panic!("{}", Tool::PythonDotenv.hint()))
}
