//! The harness itself: the server answers and goes away when dropped, setup
//! failures show AWS's code and never a value, the proxy counts requests by
//! operation, and it reshapes moto's refusals (and nothing else).

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use serde_json::json;

use crate::support::moto::aws_errors;
use crate::support::moto::{calls, MotoServer, REGION};
use crate::support::net::http;
use crate::support::proxy::{FaultProxy, Mode};

/// A request signed with a key moto does not know (the signature is junk;
/// moto looks the key up first).
fn unknown_key_request(port: u16, target: &str) -> crate::support::net::Reply {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIAFAKEFAKEFAKEFAKE/20260101/{REGION}/secretsmanager/aws4_request, \
         SignedHeaders=host, Signature=0000"
    );
    http(port, "POST", "/", &[("X-Amz-Target", target), ("Authorization", &auth)], Some(&json!({"SecretId": "x"})))
        .expect("a request through the proxy")
}

#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn the_moto_harness_sets_up_counts_and_reshapes_only_iam_refusals() {
    let moto = MotoServer::start();
    let port = moto.port();
    let arn = moto.create_secret("harness/app", "fake-harness-value");
    assert!(arn.starts_with(&format!("arn:aws:secretsmanager:{REGION}:")) && arn.contains(":secret:harness/app-"));

    // A failed setup names the operation and AWS's code, not the value.
    let failed = std::panic::catch_unwind(AssertUnwindSafe(|| moto.create_secret("harness/app", "fake-second-value")));
    let message = failed.expect_err("creating a secret twice fails");
    let message = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("create harness/app: ResourceExistsException"), "setup failure: {message:?}");
    assert!(!message.contains("fake-second-value"), "a setup failure shows no value");

    // Counting by X-Amz-Target.
    let proxy = FaultProxy::relay(port);
    for target in
        ["secretsmanager.GetSecretValue", "secretsmanager.BatchGetSecretValue", "secretsmanager.GetSecretValue"]
    {
        let reply = http(proxy.port(), "POST", "/", &[("X-Amz-Target", target)], Some(&json!({"SecretId": "x"})))
            .expect("a request through the proxy");
        assert!(reply.status >= 200, "an answer through the proxy");
    }
    assert_eq!((calls(&proxy, "GetSecretValue"), calls(&proxy, "BatchGetSecretValue")), (2, 1), "calls by operation");

    // With IAM checks on, moto refuses in XML; the reshaping proxy turns
    // that into AWS's JSON error, and passes other answers unchanged.
    moto.enable_iam_auth();
    let raw = unknown_key_request(port, "secretsmanager.GetSecretValue");
    assert_eq!(raw.status, 403, "moto's refusal: {}", raw.body);
    assert!(raw.body.contains("<Code>InvalidClientTokenId</Code>"), "moto's refusal: {}", raw.body);
    let shim = FaultProxy::start(port, Mode::Rewrite(aws_errors));
    let reshaped = unknown_key_request(shim.port(), "secretsmanager.GetSecretValue");
    assert_eq!(reshaped.status, 400, "AWS's status: {}", reshaped.body);
    assert_eq!(reshaped.json()["__type"], "UnrecognizedClientException", "AWS's code: {}", reshaped.body);
    assert_eq!(shim.hits(), 1);
    let page = http(shim.port(), "GET", "/moto-api/", &[], None).expect("moto's own page");
    assert_eq!((page.status, shim.hits()), (200, 1), "other answers pass unchanged");

    // Dropped, the server stops listening.
    drop(moto);
    std::thread::sleep(Duration::from_millis(100));
    assert!(http(port, "GET", "/moto-api/", &[], None).is_err(), "the server is gone after drop");
}
