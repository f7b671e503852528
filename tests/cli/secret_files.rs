//! `as = "file"`: the variable holds a path the child reads the value from,
//! and no file with the value is left anywhere afterwards.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::support::{files_containing, Workspace, MODES, PROJECT_TOML};

/// Hex of the bytes, as `od -An -tx1 | tr -d ' \n'` prints them.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A project whose `TLS_KEY` is `as = "file"`; returns the value.
fn project() -> (Workspace, String) {
    let canary = format!(
        "fake-file-canary-{}-{}",
        std::process::id(),
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos()
    );
    let (ws, _) = Workspace::project(&format!(
        "TLS_KEY=\"-----BEGIN FAKE KEY-----\\n{canary}\\n-----END FAKE KEY-----\"\nPLAIN=fake-plain\n"
    ));
    ws.secret(&canary);
    ws.write(
        "envcloak.toml",
        format!(
            "{PROJECT_TOML}[profiles.dev.env]\nTLS_KEY = {{ ref = \"age://secrets.env.age#TLS_KEY\", as = \"file\" }}\n"
        ),
    );
    (ws, canary)
}

/// Prints the path and the hex of the file's content (hex, so masking and a
/// search for the canary do not see the value itself), then `tail`.
fn reader(tail: &str) -> String {
    format!("printf '%s\\n' \"$TLS_KEY\"; od -An -tx1 \"$TLS_KEY\" | tr -d ' \\n'; echo; {tail}")
}

fn assert_nothing_left(ws: &Workspace, canary: &str, since: SystemTime, case: &str) {
    let roots = [(Path::new("/tmp"), true), (Path::new("/dev/shm"), false), (ws.path(), false)];
    let tmpdir = std::env::temp_dir();
    let mut roots = roots.to_vec();
    if tmpdir != Path::new("/tmp") {
        roots.push((tmpdir.as_path(), true));
    }
    let found = files_containing(&roots, canary.as_bytes(), since - Duration::from_secs(2));
    assert!(found.is_empty(), "{case}: files with the secret value were left: {found:?}");
}

fn check_read(ws: &Workspace, canary: &str, mode: &str, flags: &[&str], tail: &str, code: i32) {
    let since = SystemTime::now();
    let out = ws.envcloak().arg("run").args(flags).args(["--", "sh", "-c", &reader(tail)]).run();
    out.expect(code).no_leak(&[canary]);
    let stdout = out.stdout();
    let mut lines = stdout.lines();
    let path = lines.next().unwrap_or("");
    assert!(path.starts_with('/') && !path.contains("fake"), "{mode}: TLS_KEY should hold a path\n{}", out.diag());
    let expected = format!("-----BEGIN FAKE KEY-----\n{canary}\n-----END FAKE KEY-----");
    assert!(
        lines.next() == Some(hex(expected.as_bytes()).as_str()),
        "{mode}: the child read a different value from the file\n{}",
        out.diag()
    );
    assert!(!Path::new(path).exists() || path.starts_with("/dev/fd/"), "{mode}: the secret file {path} still exists");
    assert_nothing_left(ws, canary, since, &format!("{mode}, child ending with {code}"));
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn as_file_child_reads_the_value_in_both_modes() {
    require!(Age);
    let (ws, canary) = project();
    for (mode, flags) in MODES {
        check_read(&ws, &canary, mode, flags, "exit 0", 0);
    }
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn as_file_nothing_left_after_child_is_sigkilled() {
    require!(Age);
    let (ws, canary) = project();
    for (mode, flags) in MODES {
        check_read(&ws, &canary, mode, flags, "kill -KILL $$", 137);
    }
}

/// The file is for reading only: the child cannot change what other
/// readers see, and the variable never holds the value itself.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn as_file_variable_is_not_the_value_and_file_is_private() {
    require!(Age);
    let (ws, canary) = project();
    let script = "printf '%s' \"$TLS_KEY\" > path.txt; stat -L -c %a \"$TLS_KEY\" > mode.txt; \
                  (printf x >> \"$TLS_KEY\") 2>/dev/null && echo writable > writable.txt; exit 0";
    for (mode, flags) in MODES {
        let out = ws.envcloak().arg("run").args(flags).args(["--", "sh", "-c", script]).run();
        out.expect(0).no_leak(&[&canary]);
        let path = String::from_utf8(ws.read("path.txt")).unwrap();
        // A memfd behind /dev/fd/N is reachable only through the process's
        // own fd table (mode bits do not matter there); a real file must be 0600.
        if !path.starts_with("/dev/fd/") {
            let mode_bits = String::from_utf8(ws.read("mode.txt")).unwrap();
            let bits = u32::from_str_radix(mode_bits.trim(), 8).unwrap_or(0o777);
            assert!(bits & 0o077 == 0, "{mode}: the secret file has mode {mode_bits}");
        }
        assert!(!ws.join("writable.txt").exists(), "{mode}: the child could append to the secret file");
        assert!(!path.contains(&canary), "{mode}: TLS_KEY holds the value");
    }
}

/// SIGTERM to a supervising envcloak reaches the child, and envcloak still
/// removes every secret file before it exits with the child's status.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn as_file_nothing_left_after_envcloak_is_sigterminated() {
    require!(Age);
    let (ws, canary) = project();
    let since = SystemTime::now();
    let mut running = ws
        .envcloak()
        .args(["run", "--mask", "--", "sh", "-c", "cat \"$TLS_KEY\" > /dev/null; touch started; sleep 30"])
        .spawn();
    assert!(running.wait_for_file(&ws.join("started"), Duration::from_secs(10)), "the child did not start");
    running.signal(libc::SIGTERM);
    let out = running.wait();
    out.expect(128 + libc::SIGTERM).no_leak(&[&canary]);
    assert_nothing_left(&ws, &canary, since, "SIGTERM to envcloak");
}
