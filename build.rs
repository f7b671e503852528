//! Marks the CLI tests whose external tools are missing, so `cargo test`
//! lists them as ignored (with the install hint) instead of passing them.
//!
//! Outside CI, for each tool in `tests/cli/support/tool.rs` that is not on
//! `PATH` (or whose python module `python3` cannot find), this sets the cfg
//! `missing_TOOL`, which the tests read through
//! `#[cfg_attr(missing_TOOL, ignore = "needs TOOL: …")]`. With `CI` true it
//! sets none, so on CI a missing tool fails its tests. It only looks files
//! up (and asks `python3` once where the modules are): it runs in well under
//! a second, and again only when `PATH`, `CI` or a looked-up file changes.

use std::path::{Path, PathBuf};

#[allow(dead_code)] // The tests' failure messages use the rest.
#[path = "tests/cli/support/tool.rs"]
mod tool;

use tool::{Survey, Tool};

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=tests/cli/support/tool.rs");
    println!("cargo::rerun-if-env-changed=CI");
    for tool in Tool::ALL {
        println!("cargo::rustc-check-cfg=cfg({})", tool.cfg());
    }
    println!("cargo::rustc-check-cfg=cfg(missing_core_dumps)");
    println!("cargo::rustc-check-cfg=cfg(missing_root)");
    // On CI nothing is looked up, so nothing else can change the result: a
    // build under another PATH (maturin's, under pyenv) compiles nothing again.
    if tool::is_true(std::env::var_os("CI").as_deref()) {
        return;
    }
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=ENVCLOAK_NPM_DIR");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let survey = Survey::take(&Tool::ALL, &path);
    // A tool installed or removed later changes one of these folders or
    // files. (A path that does not exist would re-run this every build.)
    let absolute = |p: &Path| p.is_absolute() && p.exists();
    let mut watched: Vec<PathBuf> = std::env::split_paths(&path).filter(|p| absolute(p)).collect();
    watched.extend(survey.found().map(Path::to_owned));
    watched.dedup();
    for path in watched {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    let missing: Vec<Tool> = Tool::ALL.into_iter().filter(|t| !survey.has(*t)).collect();
    if missing.iter().any(|t| !t.modules().is_empty()) {
        // Only then: cargo scans these folders recursively on every build.
        for folder in survey.python_path.iter().filter(|p| absolute(p)) {
            println!("cargo::rerun-if-changed={}", folder.display());
        }
    }
    if missing.iter().any(|t| !t.npm_packages().is_empty()) && tool::npm_dir().is_dir() {
        // Only then: the packages may be installed there later.
        println!("cargo::rerun-if-changed={}", tool::npm_dir().display());
    }
    for tool in missing {
        println!("cargo::rustc-cfg={}", tool.cfg());
    }
    // Some tests chown, mknod or read another process's memory.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap_or_default();
    if uids.split_whitespace().nth(1) != Some("0") {
        println!("cargo::rustc-cfg=missing_root");
    }
    // One test raises the soft core-dump limit, which a hard limit of 0 forbids.
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    if limits.lines().any(|l| l.starts_with("Max core file size") && l.split_whitespace().nth(5) == Some("0")) {
        println!("cargo::rustc-cfg=missing_core_dumps");
    }
}
