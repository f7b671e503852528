//! `run --watch`: a change of what the profile reads restarts the command
//! once with the new secrets; a refresh that fails keeps the command and
//! its secrets and recovers; `TERM` during a restart ends everything; the
//! audit log and the metrics say what happened, never a value. Age files
//! here; Vault KV and AWS rotation in `vault/watch.rs` and `aws.rs`.

use std::time::{Duration, Instant};

use crate::signals::running as alive;
use crate::support::{Identity, Workspace};

pub(crate) const ONE: &str = "API_KEY=fake-watch-one\n";
const TWO: &str = "API_KEY=fake-watch-two\n";

/// Appends which value it got to `starts` and its pid to `pids`; on TERM
/// appends to `stops` and exits 0 (or, given `ignore`, goes on).
pub(crate) const CHILD: &str = r#"
case "$API_KEY" in
    fake-watch-one) echo one >> starts ;;
    fake-watch-two) echo two >> starts ;;
    *) echo other >> starts ;;
esac
echo $$ >> pids
if [ "$1" = ignore ]; then trap 'echo term >> stops' TERM; else trap 'echo term >> stops; exit 0' TERM; fi
while :; do sleep 0.1; done
"#;

fn project() -> (Workspace, Identity) {
    let (ws, identity) = Workspace::project(ONE);
    ws.secret("fake-watch-one");
    ws.secret("fake-watch-two");
    ws.write("child.sh", CHILD);
    (ws, identity)
}

pub(crate) fn lines(ws: &Workspace, rel: &str) -> Vec<String> {
    std::fs::read_to_string(ws.join(rel)).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// Waits until `rel` has `count` lines; false after `limit`.
pub(crate) fn wait_for_lines(ws: &Workspace, rel: &str, count: usize, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if lines(ws, rel).len() >= count {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn an_edited_age_file_restarts_the_command_once_with_the_new_value() {
    require!(Age);
    let (ws, identity) = project();
    let mut running = ws.envcloak().args(["run", "--watch=1s", "--", "sh", "child.sh"]).spawn();
    assert!(running.wait_for_file(&ws.join("starts"), Duration::from_secs(15)), "the command never started");
    ws.age_encrypt("secrets.env.age", TWO, &[&identity.recipient], false);
    assert!(wait_for_lines(&ws, "starts", 2, Duration::from_secs(15)), "no restart: starts {:?}", lines(&ws, "starts"));
    // Interval + debounce have passed again: still exactly one restart.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(lines(&ws, "starts"), ["one", "two"]);
    assert_eq!(lines(&ws, "stops"), ["term"], "the first command was not stopped with TERM");
    let pids = lines(&ws, "pids");
    assert!(!alive(&pids[0]), "the first command is still running");
    running.signal(libc::SIGTERM);
    let out = running.wait();
    out.expect(0).no_leak(&["fake-watch-one", "fake-watch-two"]);
    assert_eq!(lines(&ws, "starts").len(), 2, "started again after TERM");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn term_during_a_restart_ends_the_run_without_starting_the_command_again() {
    require!(Age);
    let (ws, identity) = project();
    let args = ["run", "--watch=1s", "--stop-grace=3s", "--", "sh", "child.sh", "ignore"];
    let mut running = ws.envcloak().args(args).spawn();
    assert!(running.wait_for_file(&ws.join("starts"), Duration::from_secs(15)), "the command never started");
    ws.age_encrypt("secrets.env.age", TWO, &[&identity.recipient], false);
    // The restart's TERM reached the command, which ignores it: envcloak
    // waits for the grace period. TERM to envcloak now.
    assert!(wait_for_lines(&ws, "stops", 1, Duration::from_secs(15)), "the restart never began");
    running.signal(libc::SIGTERM);
    let out = running.wait();
    assert_eq!(out.code(), 128 + libc::SIGKILL, "{}", out.diag());
    out.stderr_has(&["did not stop within 3 s of SIGTERM; sending KILL"]);
    assert_eq!(lines(&ws, "starts"), ["one"], "the command was started again after TERM");
    assert!(lines(&ws, "pids").iter().all(|pid| !alive(pid)), "a command is still running");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn a_failed_refresh_keeps_the_command_and_its_secrets_and_recovers() {
    require!(Age);
    let (ws, identity) = project();
    let stranger = ws.keygen("stranger.txt");
    let mut running = ws.envcloak().args(["run", "--watch=1s", "--", "sh", "child.sh"]).spawn();
    assert!(running.wait_for_file(&ws.join("starts"), Duration::from_secs(15)), "the command never started");
    // A file the run's key cannot open: the refresh fails closed.
    ws.age_encrypt("secrets.env.age", TWO, &[&stranger.recipient], false);
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(lines(&ws, "starts"), ["one"], "the command was restarted by a failed refresh");
    assert!(lines(&ws, "stops").is_empty(), "the command was stopped by a failed refresh");
    // Fixed: the next try (after the backoff) restarts it with the new value.
    ws.age_encrypt("secrets.env.age", TWO, &[&identity.recipient], false);
    assert!(wait_for_lines(&ws, "starts", 2, Duration::from_secs(25)), "no recovery: {:?}", lines(&ws, "starts"));
    assert_eq!(lines(&ws, "starts"), ["one", "two"]);
    running.signal(libc::SIGTERM);
    let out = running.wait();
    out.expect(0)
        .stderr_has(&["could not refresh the secrets", "the command keeps its current ones"])
        .no_leak(&["fake-watch-one", "fake-watch-two"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn on_change_never_from_the_profile_keeps_the_command_and_says_what_changed() {
    require!(Age);
    let (ws, identity) = project();
    ws.write(
        "envcloak.toml",
        "default_profile = \"dev\"\n\n[age]\nidentity = \"key.txt\"\n\n[profiles.dev]\nimport = [\"age://secrets.env.age\"]\nwatch = \"1s\"\non_change = \"never\"\n",
    );
    let out = ws.envcloak().arg("check").run();
    out.expect(0);
    assert!(
        out.stdout().contains("\nwatch: every 1 s; on change: keep the running command's secrets\n"),
        "{}",
        out.diag()
    );
    let mut running = ws.envcloak().args(["run", "--", "sh", "child.sh"]).spawn();
    assert!(running.wait_for_file(&ws.join("starts"), Duration::from_secs(15)), "the command never started");
    ws.age_encrypt("secrets.env.age", TWO, &[&identity.recipient], false);
    std::thread::sleep(Duration::from_secs(6));
    running.signal(libc::SIGTERM);
    let out = running.wait();
    out.expect(0).stderr_has(&["API_KEY changed; the command keeps its secrets (on_change = never)"]);
    assert_eq!(lines(&ws, "starts"), ["one"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn the_audit_log_and_the_metrics_record_the_refresh_and_the_restart() {
    require!(Age);
    let (ws, identity) = project();
    let args = ["run", "--watch=1s", "--audit-log", "audit.jsonl", "--metrics-file", "metrics.prom", "--"];
    let mut running = ws.envcloak().args(args).args(["sh", "child.sh"]).spawn();
    assert!(running.wait_for_file(&ws.join("starts"), Duration::from_secs(15)), "the command never started");
    ws.age_encrypt("secrets.env.age", TWO, &[&identity.recipient], false);
    assert!(wait_for_lines(&ws, "starts", 2, Duration::from_secs(15)), "no restart");
    std::thread::sleep(Duration::from_millis(300));
    let metrics = String::from_utf8(ws.read("metrics.prom")).unwrap();
    assert!(metrics.contains("envcloak_restarts_total{profile=\"dev\"} 1"), "{metrics}");
    assert!(metrics.contains("envcloak_last_refresh_timestamp_seconds{profile=\"dev\"}"), "{metrics}");
    assert!(!metrics.contains("envcloak_exit_status{"), "a running command has no exit status yet: {metrics}");
    running.signal(libc::SIGTERM);
    running.wait().expect(0);
    let audit = String::from_utf8(ws.read("audit.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let events: Vec<&str> = records.iter().map(|r| r["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["envcloak.start", "envcloak.refresh", "envcloak.restart", "envcloak.run"], "{audit}");
    assert_eq!(records[1]["changed"], serde_json::json!(["API_KEY"]));
    assert_eq!(records[1]["action"], "restart");
    assert_eq!(records[1]["reason"], "watch");
    for value in ["fake-watch-one", "fake-watch-two"] {
        assert!(!audit.contains(value), "a value is in the audit log");
    }
    let metrics = String::from_utf8(ws.read("metrics.prom")).unwrap();
    assert!(metrics.contains("envcloak_exit_status{profile=\"dev\"} 0"), "{metrics}");
}

#[test]
fn watch_settings_are_checked_where_they_are_written() {
    for (line, needle) in [
        ("watch = \"500ms\"", "envcloak.toml:3:9: `watch`: `500ms` is too short to poll with: use 1s or more"),
        ("on_change = \"reload\"", "`on_change`: `reload` is not a policy"),
        ("stop_signal = \"KILL\"", "`stop_signal`: `KILL` is not a signal envcloak sends"),
        ("watch = 5", "`watch` must be a string"),
    ] {
        let ws = Workspace::new();
        ws.write("envcloak.toml", format!("[profiles.dev]\nimport = []\n{line}\n"));
        ws.envcloak().args(["-p", "dev", "run", "--", "true"]).run().expect(125).stderr_has(&[needle]);
    }
    let ws = Workspace::new();
    let out = ws.envcloak().args(["run", "--watch=0.2s", "--", "true"]).run();
    out.expect(125).stderr_has(&["too short to poll with"]);
}

/// Reads its secret file at start and again on HUP, appending which value
/// it found to `seen`.
const RELOADING_CHILD: &str = r#"
show() { case "$(cat "$TLS_KEY")" in fake-file-one) echo one ;; fake-file-two) echo two ;; *) echo other ;; esac >> seen; }
trap 'show' HUP
trap 'exit 0' TERM
echo $$ >> pids
show
while :; do sleep 0.1; done
"#;

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn signal_policy_replaces_a_secret_file_in_place_and_sends_the_signal_without_a_restart() {
    require!(Age);
    let (ws, identity) = Workspace::project("TLS_KEY=fake-file-one\n");
    ws.secret("fake-file-one");
    ws.secret("fake-file-two");
    ws.write("child.sh", RELOADING_CHILD);
    ws.write(
        "envcloak.toml",
        "default_profile = \"dev\"\n\n[age]\nidentity = \"key.txt\"\n\n[profiles.dev]\nwatch = \"1s\"\non_change = \"signal:HUP\"\n\n[profiles.dev.env]\nTLS_KEY = { ref = \"age://secrets.env.age#TLS_KEY\", as = \"file\" }\n",
    );
    let out = ws.envcloak().args(["check", "--format", "json"]).run();
    out.expect(0);
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        document["watch"],
        "watch: every 1 s; on change: replace the secret files and send SIGHUP (else restart: SIGTERM, then KILL after 30 s)"
    );
    let mut running = ws.envcloak().args(["run", "--", "sh", "child.sh"]).spawn();
    assert!(running.wait_for_file(&ws.join("seen"), Duration::from_secs(15)), "the command never started");
    ws.age_encrypt("secrets.env.age", "TLS_KEY=fake-file-two\n", &[&identity.recipient], false);
    assert!(wait_for_lines(&ws, "seen", 2, Duration::from_secs(15)), "no HUP: {:?}", lines(&ws, "seen"));
    assert_eq!(lines(&ws, "seen"), ["one", "two"], "the file did not hold the new value on HUP");
    assert_eq!(lines(&ws, "pids").len(), 1, "the command was restarted");
    running.signal(libc::SIGTERM);
    running.wait().expect(0).no_leak(&["fake-file-one", "fake-file-two"]);
}
