//! Rules about the source itself that the compiler cannot state: in the
//! product, `unsafe` lives only in the memory module; in the tests, only in
//! the support modules (kill(2), setsid(2), socket options); each block says
//! why it is sound; and the providers crate forbids it outright.

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The one module of the product allowed to use `unsafe`.
const MEMORY_MODULE: &str = "src/memory.rs";
/// Where the tests may use `unsafe`: the shared harness, not each test.
const TEST_SUPPORT: &str = "tests/cli/support/";

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a source folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Each line outside comments and string literals that uses `unsafe`.
fn unsafe_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or("");
            ["unsafe {", "unsafe fn", "unsafe impl", "unsafe extern", "allow(unsafe_code)"]
                .iter()
                .any(|token| code.contains(token) && !code.contains(&format!("\"{token}")))
        })
        .map(|(index, line)| (index + 1, line))
        .collect()
}

#[test]
fn unsafe_code_is_only_in_the_memory_module_and_the_test_harness_and_every_block_says_why() {
    let mut files = Vec::new();
    for dir in ["src", "providers/src", "tests"] {
        rust_files(&Path::new(ROOT).join(dir), &mut files);
    }
    assert!(files.len() > 20, "the source folders were not found under {ROOT}");
    let mut outside = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(ROOT).unwrap().to_string_lossy().into_owned();
        if relative == "tests/cli/source_rules.rs" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let lines = unsafe_lines(&text);
        if relative != MEMORY_MODULE && !relative.starts_with(TEST_SUPPORT) {
            outside.extend(lines.iter().map(|(n, line)| format!("{relative}:{n}: {}", line.trim())));
            continue;
        }
        let all: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().filter(|(_, line)| line.contains("unsafe {")) {
            let above = &all[n.saturating_sub(6)..n - 1];
            assert!(
                above.iter().any(|l| l.trim_start().starts_with("// SAFETY:")),
                "{relative}:{n}: an unsafe block without a // SAFETY: comment above it: {}",
                line.trim()
            );
        }
    }
    assert!(outside.is_empty(), "unsafe code outside {MEMORY_MODULE} and {TEST_SUPPORT}:\n{}", outside.join("\n"));

    let providers = std::fs::read_to_string(Path::new(ROOT).join("providers/src/lib.rs")).unwrap();
    assert!(providers.contains("#![forbid(unsafe_code)]"), "the providers crate must forbid unsafe code");
    let manifest = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
    assert!(manifest.contains("unsafe_code = \"deny\""), "the workspace lints must deny unsafe code");
}

/// A test ignored for a missing tool gives that tool's install hint, word
/// for word, so the summary and the failure on CI say the same thing; any
/// other reason to ignore a test says what it needs.
#[test]
fn every_ignore_reason_for_a_missing_tool_is_that_tools_hint() {
    use crate::support::Tool;
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("tests/cli"), &mut files);
    let mut wrong = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read a test source");
        for (index, line) in text.lines().enumerate() {
            let Some(rest) = line.trim().strip_prefix("#[cfg_attr(missing_") else { continue };
            let Some((cfg, reason)) = rest.split_once(", ignore = \"") else { continue };
            let reason = reason.trim_end_matches("\")]");
            let expected = Tool::ALL.into_iter().find(|t| t.cfg() == format!("missing_{cfg}")).map(Tool::hint);
            if expected.is_some_and(|hint| hint != reason) || !reason.starts_with("needs ") {
                wrong.push(format!("{}:{}: {}", path.display(), index + 1, line.trim()));
            }
        }
    }
    assert!(wrong.is_empty(), "ignore reasons that are not the tool's hint:\n{}", wrong.join("\n"));
}
