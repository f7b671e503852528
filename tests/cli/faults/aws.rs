//! The AWS Secrets Manager column of the fault matrix: a real `moto_server`
//! behind a [`FaultProxy`](crate::support::proxy::FaultProxy), two
//! secrets (`app`, `db`, read with one `GetSecretValue` each: `batch =
//! false`) and a local age secret. Most faults hit only the call for `db`,
//! so the other two values are resolved and the command must still not
//! start.

use super::{route, Case, Expect, Matrix, Route};
use crate::support::moto::{MotoServer, REGION};
use crate::support::net::{Answer, Request};
use crate::support::proxy::{Fault, Plan};
use crate::support::Workspace;

const LOCAL: &str = "fake-fault-local-value";
const API_KEY: &str = "fake-fault-aws-api-key";
const DB_PASS: &str = "fake-fault-aws-db-pass";
const KEY_ID: &str = "fake-access-key-id";
const SECRET_KEY: &str = "fake-secret-access-key";

const BOTH: &[&str] = &["API_KEY", "DB_PASS"];
const DB: &[&str] = &["DB_PASS"];

/// The `GetSecretValue` call for `db`.
fn db_get(request: &Request) -> bool {
    request.header("x-amz-target") == Some("secretsmanager.GetSecretValue") && request.body_has("\"db\"")
}

fn cases() -> Vec<Case> {
    let case = |name, route, timeout, expect, tries| Case { name, route, timeout, expect, tries, at_least: None };
    let fail = |vars, reasons| Expect::Fail { vars, reasons };
    let first = |n, answer: Answer| Route::Proxy(db_get, Plan::first(n, Fault::Answer(answer)));
    let always = |fault| Route::Proxy(db_get, Plan::always(fault));
    let throttled = || Answer::aws(400, "ThrottlingException", "Rate exceeded");
    let internal = || Answer::aws(500, "InternalServiceError", "internal failure");
    vec![
        case("refused: nothing listening", Route::Nowhere, 5, fail(BOTH, &["cannot reach AWS Secrets Manager"]), None),
        case("reset mid-body, every try", always(Fault::ResetMidBody), 6, fail(DB, &["reset", "cannot"]), None),
        case("reset mid-body, once", Route::Proxy(db_get, Plan::first(1, Fault::ResetMidBody)), 6, Expect::Ok, Some(2)),
        case("reset before answering, every try", always(Fault::Reset), 6, fail(DB, &["reset", "cannot"]), None),
        case("stalled answer", always(Fault::Stall), 2, fail(DB, &["did not answer"]), Some(1)),
        case("truncated body, every try", always(Fault::Truncate), 6, fail(DB, &["cannot", "read"]), None),
        case("truncated body, once", Route::Proxy(db_get, Plan::first(1, Fault::Truncate)), 6, Expect::Ok, Some(2)),
        case("ThrottlingException (400) twice", first(2, throttled()), 6, Expect::Ok, Some(3)),
        case(
            "ThrottlingException (400) always",
            always(Fault::Answer(throttled())),
            6,
            fail(DB, &["throttled by AWS after retries (ThrottlingException"]),
            Some(3),
        ),
        case(
            "429 ThrottlingException with Retry-After: 1, once",
            first(1, Answer::aws(429, "ThrottlingException", "Rate exceeded").header("Retry-After", "1")),
            6,
            Expect::Ok,
            Some(2),
        ),
        case("500 twice, then the server", first(2, internal()), 6, Expect::Ok, Some(3)),
        case("500 three times", first(3, internal()), 6, fail(DB, &["InternalServiceError"]), Some(3)),
        case(
            "403 AccessDeniedException",
            always(Fault::Answer(Answer::aws(403, "AccessDeniedException", "not authorized"))),
            6,
            fail(DB, &["access denied (AccessDeniedException"]),
            Some(1),
        ),
        case(
            "404 without an AWS error",
            always(Fault::Answer(Answer::json(404, "{}"))),
            6,
            fail(DB, &["HTTP 404"]),
            Some(1),
        ),
    ]
}

fn config(endpoint: &str) -> String {
    format!(
        "default_profile = \"dev\"\n\n[age]\nidentity = \"key.txt\"\n\n[aws]\nendpoint_url = \"{endpoint}\"\n\
         region = \"{REGION}\"\nbatch = false\n\n[profiles.dev]\nimport = [\"age://secrets.env.age\"]\n\n\
         [profiles.dev.env]\nAPI_KEY = \"aws-sm://app#API_KEY\"\nDB_PASS = \"aws-sm://db#PASS\"\n"
    )
}

/// HTTP 429 without an AWS error code (as a proxy or gateway in front of
/// the endpoint sends it) is throttling too: retried within the SDK's
/// budget, as the message ("throttled by AWS after retries") says.
fn bare_429() -> Vec<Case> {
    vec![Case {
        name: "429 without an AWS error code, with Retry-After: 1, once",
        route: Route::Proxy(db_get, Plan::first(1, Fault::Answer(Answer::json(429, "{}").header("Retry-After", "1")))),
        timeout: 6,
        expect: Expect::Ok,
        tries: Some(2),
        at_least: None,
    }]
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn aws_fault_matrix() {
    run("AWS Secrets Manager", cases());
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn a_429_without_an_error_code_is_retried() {
    run("AWS Secrets Manager, 429 without an error code", bare_429());
}

fn run(title: &str, cases: Vec<Case>) {
    require!(Age);
    let moto = MotoServer::start();
    moto.create_secrets(&[
        ("app", serde_json::json!({ "API_KEY": API_KEY }).to_string()),
        ("db", serde_json::json!({ "PASS": DB_PASS }).to_string()),
    ]);
    let (ws, _) = Workspace::project(&format!("LOCAL={LOCAL}\n"));
    for secret in [LOCAL, API_KEY, DB_PASS, SECRET_KEY] {
        ws.secret(secret);
    }
    let leaks = [LOCAL, API_KEY, DB_PASS, SECRET_KEY];
    let values = [("LOCAL", LOCAL), ("API_KEY", API_KEY), ("DB_PASS", DB_PASS)];

    let mut matrix = Matrix::default();
    for case in cases {
        let (proxy, endpoint) = route(&case, moto.port());
        ws.write_trusted("envcloak.toml", config(&endpoint));
        let cmd = ws
            .envcloak()
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_EC2_METADATA_DISABLED", "true");
        matrix.check(&ws, cmd, &case, "aws", &values, &leaks, || proxy.as_ref().map(|p| p.hits()));
    }
    matrix.finish(title);
}
