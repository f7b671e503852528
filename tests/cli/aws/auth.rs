//! IAM: moto checks signatures and the IAM policies of its users for real
//! once its IAM checks are on. Through a proxy rewriting them with
//! [`aws_errors`](crate::support::moto::aws_errors) its refusals reach envcloak as AWS's JSON errors (see there why): unknown or
//! wrong keys fail closed naming the code, a caller denied
//! `BatchGetSecretValue` still gets every value one by one, and a caller
//! denied `GetSecretValue` fails only the variables that needed it.
//!
//! moto cannot deny one secret and allow another: it checks secretsmanager
//! actions against resource `*` only, so per-secret denials are tested as
//! "denied GetSecretValue, allowed BatchGetSecretValue", where only
//! version-pinned references (which need `GetSecretValue`) fail.

use serde_json::json;

use super::{at, envcloak, envcloak_as, failed_names, json_object, project};
use crate::support::moto::{aws_errors, calls, op, MotoServer};
use crate::support::proxy::{FaultProxy, Mode};
use crate::vault::{assert_var, child_env, fails_closed};

const VALUES: [&str; 3] = ["fake-iam-one", "fake-iam-two", "fake-iam-three"];

/// A server with three secrets and three users: `reader` (both reads),
/// `no-batch` (denied BatchGetSecretValue), `batch-only` (denied
/// GetSecretValue); IAM checks on.
fn server() -> (MotoServer, [(String, String); 3]) {
    let moto = MotoServer::start();
    let reads = ["secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"];
    let allow = json!({"Effect": "Allow", "Action": reads, "Resource": "*"});
    let deny = |action: &str| json!({"Effect": "Deny", "Action": format!("secretsmanager:{action}"), "Resource": "*"});
    let done = moto.setup(&[
        op::create("iam/one", &json_object(&[("k", VALUES[0])])),
        op::create("iam/two", &json_object(&[("k", VALUES[1])])),
        op::create("iam/three", &json_object(&[("k", VALUES[2])])),
        op::user("reader", json!([allow])),
        op::user("no-batch", json!([allow, deny("BatchGetSecretValue")])),
        op::user("batch-only", json!([allow, deny("GetSecretValue")])),
    ]);
    let users = [op::key(&done[3]), op::key(&done[4]), op::key(&done[5])];
    moto.enable_iam_auth();
    (moto, users)
}

const PROFILE: &str = "[profiles.dev.env]\n\
                       ONE = \"aws-sm://iam/one#k\"\n\
                       TWO = \"aws-sm://iam/two#k\"\n\
                       THREE = \"aws-sm://iam/three#k\"\n";

#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn iam_refusals_fail_closed_with_the_aws_code_and_a_denied_batch_falls_back_to_single_reads() {
    let (moto, [reader, no_batch, batch_only]) = server();
    let proxy = FaultProxy::start(moto.port(), Mode::Rewrite(aws_errors));
    let ws = project(&at(&proxy.addr()), PROFILE);
    for value in VALUES {
        ws.secret(value);
    }
    let calls = || (calls(&proxy, "BatchGetSecretValue"), calls(&proxy, "GetSecretValue"));

    let env = child_env(&ws, envcloak_as(&ws, &reader), &[]);
    for (name, value) in [("ONE", VALUES[0]), ("TWO", VALUES[1]), ("THREE", VALUES[2])] {
        assert_var(&env, name, Some(value), "an allowed user");
    }
    assert_eq!(proxy.hits(), 0, "an allowed user is refused nothing");

    // Keys moto does not know, and a known key with the wrong secret: the
    // whole backend fails, naming AWS's code, with a hint; no value.
    for (case, cmd, code) in [
        ("unknown key", envcloak(&ws), "UnrecognizedClientException"),
        (
            "wrong secret key",
            envcloak_as(&ws, &(reader.0.clone(), "fake-wrong-secret-access-key".to_owned())),
            "InvalidSignatureException",
        ),
    ] {
        let out = fails_closed(&ws, cmd, &[]);
        out.stderr_has(&["ONE", "TWO", "THREE", "aws-sm://iam/one#k", code, "refused the credentials"])
            .no_leak(&VALUES)
            .no_leak(&["fake-wrong-secret-access-key", &reader.1]);
        assert!(out.stderr().contains("hint:"), "{case}: a hint on what to do\n{}", out.diag());
    }

    // Denied BatchGetSecretValue: one refused batch call, then one
    // GetSecretValue per secret, and every value arrives.
    let (batches, singles, refused) = (calls().0, calls().1, proxy.hits());
    let env = child_env(&ws, envcloak_as(&ws, &no_batch), &[]);
    for (name, value) in [("ONE", VALUES[0]), ("TWO", VALUES[1]), ("THREE", VALUES[2])] {
        assert_var(&env, name, Some(value), "a user denied BatchGetSecretValue");
    }
    assert_eq!(calls().0 - batches, 1, "one BatchGetSecretValue, refused");
    assert_eq!(proxy.hits() - refused, 1, "the batch call was refused by moto's IAM");
    assert_eq!(calls().1 - singles, 3, "then one GetSecretValue per secret");

    // Denied GetSecretValue: batched secrets arrive; a pinned one fails
    // with AccessDeniedException and the policy hint, only its variable.
    let pinned = ["-e", "PINNED=aws-sm://iam/three?version-stage=AWSCURRENT#k"];
    let out = fails_closed(&ws, envcloak_as(&ws, &batch_only), &pinned);
    out.stderr_has(&["PINNED", "aws-sm://iam/three?version-stage=AWSCURRENT#k", "AccessDeniedException"])
        .stderr_has(&["secretsmanager:GetSecretValue"])
        .no_leak(&VALUES);
    assert_eq!(failed_names(&out.stderr()), ["PINNED"], "only the pinned read was denied\n{}", out.diag());
    let opt = project(
        &at(&proxy.addr()),
        &format!("{PROFILE}PINNED = {{ ref = \"aws-sm://iam/three?version-stage=AWSCURRENT#k\", optional = true }}\n"),
    );
    let env = child_env(&opt, envcloak_as(&opt, &batch_only), &[]);
    assert_var(&env, "ONE", Some(VALUES[0]), "batched beside a denied optional read");
    assert_var(&env, "PINNED", None, "the denied optional read");
}

/// moto's own refusals (HTTP 403 with an XML body, no `x-amzn-ErrorType`)
/// are what a JSON client gets from anything that is not Secrets Manager
/// itself answering: the run fails closed, and the message still says what
/// came back (the HTTP status) rather than only "unknown error".
#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn a_refusal_without_an_aws_error_code_fails_closed_naming_the_http_status() {
    let (moto, [_, _, batch_only]) = server();
    let ws = project(&at(&moto.endpoint()), PROFILE);
    for value in VALUES {
        ws.secret(value);
    }
    let out = fails_closed(&ws, envcloak(&ws), &[]);
    out.stderr_has(&["ONE", "aws-sm://iam/one#k"]).no_leak(&VALUES);
    let pinned = ["-e", "PINNED=aws-sm://iam/three?version-stage=AWSCURRENT#k"];
    let denied = fails_closed(&ws, envcloak_as(&ws, &batch_only), &pinned);
    denied.stderr_has(&["PINNED"]).no_leak(&VALUES);
    out.stderr_has(&["403"]);
    denied.stderr_has(&["403"]);
}
