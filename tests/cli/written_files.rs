//! Files envcloak writes (the metrics file, the audit log) cannot be turned
//! against the user: a device is written in place, never replaced (as root
//! a rename would turn `/dev/null` into a regular file); a FIFO nobody reads
//! is an error, not a wait; a symlink is not followed; an existing audit log
//! readable by others is narrowed to 0600.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

use crate::support::{self, Workspace};

fn mkfifo(ws: &Workspace, rel: &str) -> std::path::PathBuf {
    let path = ws.join(rel);
    ws.command("mkfifo").arg(&path).run().expect(0);
    path
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn the_metrics_file_never_waits_for_a_fifo() {
    let (ws, _identity) = Workspace::project("API_KEY=fake-metrics-value\n");
    let fifo = mkfifo(&ws, "metrics.fifo");
    let out = ws
        .envcloak()
        .args(["run", "--metrics-file"])
        .arg(&fifo)
        .args(["--", "true"])
        .timeout(Duration::from_secs(10))
        .run();
    out.expect(0).stderr_has(&["metrics"]);
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_root, ignore = "needs root: mknod")]
fn the_metrics_file_never_replaces_a_device() {
    require!(Age);
    support::need_root("mknod");
    let (ws, _identity) = Workspace::project("API_KEY=fake-metrics-value\n");
    // A device node of the test's own (the same device as /dev/null).
    let null = ws.join("null");
    ws.command("mknod").arg(&null).args(["c", "1", "3"]).run().expect(0);
    ws.envcloak().args(["run", "--metrics-file"]).arg(&null).args(["--", "true"]).run().expect(0);
    assert!(std::fs::symlink_metadata(&null).unwrap().file_type().is_char_device(), "the device was replaced");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn the_audit_log_follows_no_symlink_narrows_its_mode_and_waits_for_no_fifo() {
    let (ws, _identity) = Workspace::project("API_KEY=fake-audit-value\n");
    ws.write("elsewhere.log", "");
    std::os::unix::fs::symlink(ws.join("elsewhere.log"), ws.join("audit.link")).unwrap();
    let out = ws.envcloak().args(["run", "--audit-log", "audit.link", "--", "sh", "-c", "touch started"]).run();
    out.expect(125).stderr_has(&["cannot open the audit log"]);
    assert!(!ws.join("started").exists(), "a run that cannot be audited started");
    assert!(ws.read("elsewhere.log").is_empty(), "the symlink was followed");

    ws.write("audit.jsonl", "");
    support::chmod(&ws.join("audit.jsonl"), 0o666);
    ws.envcloak().args(["run", "--audit-log", "audit.jsonl", "--", "true"]).run().expect(0);
    let mode = std::fs::metadata(ws.join("audit.jsonl")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the audit log kept mode {mode:o}");

    let fifo = mkfifo(&ws, "audit.fifo");
    let out = ws
        .envcloak()
        .args(["run", "--audit-log"])
        .arg(&fifo)
        .args(["--", "true"])
        .timeout(Duration::from_secs(10))
        .run();
    out.expect(125).stderr_has(&["cannot open the audit log"]);
}
