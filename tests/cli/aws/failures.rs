//! Failing closed: a missing secret, a secret scheduled for deletion, an
//! endpoint that is down or stalls, no credentials, no region: exit 125,
//! nothing started, the message names the variable, the reference and AWS's
//! code or what to set. And with `-vvv` no value or credential is printed.

use std::time::{Duration, Instant};

use super::{at, envcloak, failed_names, json_object, project, SECRET_KEY};
use crate::support::moto::{op, MotoServer, REGION};
use crate::support::net::free_port;
use crate::support::proxy::{FaultProxy, Mode};
use crate::vault::{check_row, fails_closed};

#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn a_missing_or_deleted_secret_fails_closed_naming_the_variable_the_reference_and_the_aws_code() {
    let moto = MotoServer::start();
    moto.setup(&[
        op::create("app", &json_object(&[("API_KEY", "fake-app-key")])),
        op::create("other", "fake-other-value"),
        op::create("doomed", &json_object(&[("K", "fake-doomed-value")])),
        op::delete("doomed"),
    ]);
    let ws = project(&at(&moto.endpoint()), "");
    let values = ["fake-app-key", "fake-other-value", "fake-doomed-value"];
    for value in values {
        ws.secret(value);
    }

    // In a batch (BatchGetSecretValue's per-secret errors) and alone
    // (GetSecretValue's error).
    let good = ["-e", "GOOD=aws-sm://app#API_KEY", "-e", "OTHER=aws-sm://other"];
    for (case, extra) in [("batched", &good[..]), ("alone", &[])] {
        let mut args = vec!["-e", "DB_URL=aws-sm://nope/missing#url"];
        args.extend(extra);
        let out = fails_closed(&ws, envcloak(&ws), &args);
        out.stderr_has(&["DB_URL", "aws-sm://nope/missing#url", "ResourceNotFoundException", REGION]).no_leak(&values);
        assert_eq!(failed_names(&out.stderr()), ["DB_URL"], "{case}: only the missing secret failed\n{}", out.diag());

        let mut args = vec!["-e", "GONE=aws-sm://doomed#K"];
        args.extend(extra);
        let out = fails_closed(&ws, envcloak(&ws), &args);
        out.stderr_has(&["GONE", "aws-sm://doomed#K", "InvalidRequestException", "restore-secret"]).no_leak(&values);
        assert_eq!(failed_names(&out.stderr()), ["GONE"], "{case}: only the deleted secret failed\n{}", out.diag());
    }

    // Optional: a warning, and the command runs without it.
    let opt = project(
        &at(&moto.endpoint()),
        "[profiles.dev.env]\n\
         GOOD = \"aws-sm://app#API_KEY\"\n\
         MAYBE = { ref = \"aws-sm://nope/missing\", optional = true }\n",
    );
    let out = envcloak(&opt).args(["run", "--", "sh", "-c", "test -n \"$GOOD\" && test -z \"${MAYBE+set}\""]).run();
    out.expect(0).stderr_has(&["MAYBE", "ResourceNotFoundException"]).no_leak(&values);

    let out = envcloak(&ws)
        .args(["check", "-e", "DB_URL=aws-sm://nope/missing#url", "-e", "GOOD=aws-sm://app#API_KEY"])
        .run();
    out.expect(1).no_leak(&values);
    let table = out.stdout();
    let missing = check_row(&table, "DB_URL").is_some_and(|r| r.contains("ResourceNotFoundException"));
    assert!(missing, "check row of DB_URL names the code\n{}", out.diag());
    assert!(check_row(&table, "GOOD").is_some_and(|r| r.contains("ok")), "check row of GOOD\n{}", out.diag());
}

#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn an_endpoint_that_is_down_or_stalls_fails_closed_within_the_timeout() {
    let down = format!("http://127.0.0.1:{}", free_port());
    let ws =
        project(&at(&down), "[profiles.dev.env]\nAPI_KEY = \"aws-sm://app#API_KEY\"\nOTHER = \"aws-sm://other\"\n");
    let started = Instant::now();
    let out = fails_closed(&ws, envcloak(&ws), &["--timeout", "10s"]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "a refused connection took {took:?} of --timeout 10s\n{}", out.diag());
    out.stderr_has(&["API_KEY", "aws-sm://app#API_KEY", "OTHER", "AWS Secrets Manager", &down]);
    let stderr = out.stderr().to_lowercase();
    assert!(
        ["connect", "refused", "reach"].iter().any(|w| stderr.contains(w)),
        "the message says the endpoint cannot be reached\n{}",
        out.diag()
    );
    let out = envcloak(&ws).args(["check", "--timeout", "10s"]).run();
    out.expect(1);

    let moto = MotoServer::start();
    moto.create_secrets(&[("app", json_object(&[("API_KEY", "fake-app-key")])), ("other", "fake-other".into())]);
    let stall = FaultProxy::start(moto.port(), Mode::Stall);
    let ws = project(&at(&stall.addr()), "[profiles.dev.env]\nAPI_KEY = \"aws-sm://app#API_KEY\"\n");
    for extra in [&[][..], &["-e", "OTHER=aws-sm://other"]] {
        let mut args = vec!["--timeout", "2s"];
        args.extend(extra);
        let started = Instant::now();
        let out = fails_closed(&ws, envcloak(&ws), &args);
        let took = started.elapsed();
        assert!(took < Duration::from_millis(4500), "a stalled endpoint took {took:?} of --timeout 2s\n{}", out.diag());
        let stderr = out.stderr().to_lowercase();
        assert!(
            stderr.contains("api_key") && (stderr.contains("timeout") || stderr.contains("in time")),
            "the message says the AWS call timed out\n{}",
            out.diag()
        );
        assert!(stall.connections() > 0, "envcloak went through the stalling proxy");
    }
}

#[test]
fn no_credentials_or_no_region_fail_closed_saying_what_was_tried_and_what_to_set() {
    // Nothing listens here: the credentials are looked for before connecting.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let ws = project(&at(&endpoint), "[profiles.dev.env]\nAPI_KEY = \"aws-sm://app#API_KEY\"\n");
    let started = Instant::now();
    let out = fails_closed(&ws, ws.envcloak().env("AWS_EC2_METADATA_DISABLED", "true"), &["--timeout", "10s"]);
    assert!(started.elapsed() < Duration::from_secs(5), "no credentials is found out quickly\n{}", out.diag());
    out.stderr_has(&[
        "API_KEY",
        "aws-sm://app#API_KEY",
        "no usable AWS credentials",
        "AWS_ACCESS_KEY_ID",
        "~/.aws/credentials",
        "web identity",
        "instance metadata",
    ]);

    let ws =
        project(&format!("endpoint_url = \"{endpoint}\""), "[profiles.dev.env]\nAPI_KEY = \"aws-sm://app#API_KEY\"\n");
    let out = fails_closed(&ws, envcloak(&ws), &[]);
    out.stderr_has(&["API_KEY", "aws-sm://app#API_KEY", "no AWS region", "[aws] region", "AWS_REGION"]);
    let out = envcloak(&ws).arg("check").run();
    out.expect(1);
    assert!(out.stdout().contains("no AWS region"), "check says why\n{}", out.diag());
}

const CANARY: &str = "fake-aws-canary-0xC0FFEE";
const CANARY_PEM: &str = "-----BEGIN FAKE KEY-----\nfake-aws-pem-canary\n-----END FAKE KEY-----\n";
const NESTED: &str = "fake-aws-nested-canary";
const MALFORMED: &str = "fake-aws-malformed-canary";
const BINARY: &str = "fake-aws-binary-canary";

#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn no_run_or_check_prints_a_value_or_credential_even_with_vvv() {
    let moto = MotoServer::start();
    moto.setup(&[
        op::create("app", &json_object(&[("API_KEY", CANARY), ("PEM", CANARY_PEM)])),
        op::put("app", &json_object(&[("API_KEY", "fake-aws-canary-latest"), ("PEM", CANARY_PEM)])),
        op::create("plain", "fake-aws-plain-canary"),
        op::create("nested", &format!("{{\"DB\": {{\"password\": \"{NESTED}\"}}}}")),
        op::create("malformed", &format!("{{\"k\": \"{MALFORMED}\" \"x\"}}")),
        op::create_binary("binary", format!("{BINARY}\0nul").as_bytes()),
    ]);
    let ws = project(
        &at(&moto.endpoint()),
        "import = [\"aws-sm://app?version-stage=AWSPREVIOUS\"]\n\
         [profiles.dev.env]\nLATEST = \"aws-sm://app#API_KEY\"\nPLAIN = \"aws-sm://plain\"\n",
    );
    let leaks = [
        CANARY,
        CANARY_PEM,
        "fake-aws-pem-canary",
        "fake-aws-canary-latest",
        "fake-aws-plain-canary",
        NESTED,
        MALFORMED,
        BINARY,
        SECRET_KEY,
    ];
    for secret in leaks {
        ws.secret(secret);
    }
    let cases: Vec<(&str, Vec<&str>, i32)> = vec![
        ("run, exec", vec!["run", "--", "true"], 0),
        ("run, supervised", vec!["run", "--mask", "--", "true"], 0),
        ("check", vec!["check"], 0),
        ("check --format json", vec!["check", "--format", "json"], 0),
        ("run, -e of a plain secret", vec!["run", "-e", "X=aws-sm://plain", "--", "true"], 0),
        ("run, missing key", vec!["run", "-e", "X=aws-sm://app#NOPE", "--", "true"], 125),
        ("run, nested object", vec!["run", "-i", "aws-sm://nested", "--", "true"], 125),
        ("check, nested object", vec!["check", "-e", "N=aws-sm://nested#DB"], 1),
        ("run, malformed JSON", vec!["run", "-e", "M=aws-sm://malformed#k", "--", "true"], 125),
        ("run, binary with NUL", vec!["run", "-e", "B=aws-sm://binary", "--", "true"], 125),
        ("run, missing secret", vec!["run", "-e", "G=aws-sm://nope", "--", "true"], 125),
    ];
    for (case, args, code) in &cases {
        let out = envcloak(&ws).arg("-vvv").args(args).run();
        assert!(out.code() == *code, "{case}: expected exit {code}\n{}", out.diag());
        out.no_leak(&leaks);
        assert!(!out.stderr().is_empty(), "{case}: -vvv says something");
    }
}
