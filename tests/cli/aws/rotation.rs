//! `run --watch` with AWS Secrets Manager: a rotation (`PutSecretValue`
//! moves `AWSCURRENT`) restarts the command once with the new value.

use std::time::Duration;

use super::{at, envcloak, project};
use crate::support::moto::MotoServer;
use crate::watch::{lines, wait_for_lines, CHILD};

#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn a_rotation_restarts_the_command_once_with_the_new_value() {
    let moto = MotoServer::start();
    moto.create_secret("app/api", "fake-watch-one");
    let ws = project(&at(&moto.endpoint()), "[profiles.dev.env]\nAPI_KEY = \"aws-sm://app/api\"\n");
    ws.write("child.sh", CHILD);
    let mut running = envcloak(&ws).args(["run", "--watch=1s", "--", "sh", "child.sh"]).spawn();
    assert!(running.wait_for_file(&ws.join("starts"), Duration::from_secs(20)), "the command never started");
    moto.put_secret_value("app/api", "fake-watch-two");
    assert!(wait_for_lines(&ws, "starts", 2, Duration::from_secs(15)), "no restart: {:?}", lines(&ws, "starts"));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(lines(&ws, "starts"), ["one", "two"], "not exactly one restart");
    running.signal(libc::SIGTERM);
    running.wait().expect(0).no_leak(&["fake-watch-one", "fake-watch-two"]);
}
