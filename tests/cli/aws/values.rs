//! What a secret's value becomes: `#KEY` and `import` of a JSON SecretString,
//! the whole SecretString, plain text, SecretBinary text, lookups by name
//! with slashes and by ARN; byte for byte, in exec and supervised mode. And
//! what cannot be injected fails naming the key, never the value.

use serde_json::json;

use super::{at, envcloak, project};
use crate::support::moto::{op, MotoServer};
use crate::support::MODES;
use crate::vault::{assert_var, child_env, fails_closed, TRICKY};

/// A plain (non-JSON) secret with the characters that break naive quoting.
const PLAIN: &str = "fake plain: it's \"quoted\", $HOME, `x`, a=b\\c\nsecond line ✓ 😀\n";

#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn json_plain_and_whole_secrets_reach_the_child_byte_for_byte() {
    let moto = MotoServer::start();
    let mut object: serde_json::Map<String, serde_json::Value> =
        TRICKY.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    object.extend([
        ("PORT".to_owned(), json!(5432)),
        ("DEBUG".to_owned(), json!(true)),
        ("OFF".to_owned(), json!(false)),
        ("RATIO".to_owned(), json!(2.5)),
        ("NEG".to_owned(), json!(-7)),
    ]);
    let whole = serde_json::Value::Object(object).to_string();
    let arns = moto.create_secrets(&[("flask/prod", whole.as_str()), ("flask/plain", PLAIN)]);
    let ws = project(
        &at(&moto.endpoint()),
        "import = [\"aws-sm://flask/prod\"]\n\
         [profiles.dev.env]\n\
         ONE = \"aws-sm://flask/prod#QUOTES\"\n\
         PORT_TOO = \"aws-sm://flask/prod#PORT\"\n\
         WHOLE = \"aws-sm://flask/prod\"\n\
         PLAIN = \"aws-sm://flask/plain\"\n",
    );
    for (_, value) in TRICKY {
        ws.secret(value);
    }
    ws.secret(PLAIN);

    for (mode, flags) in MODES {
        let env = child_env(&ws, envcloak(&ws), flags);
        for (name, value) in TRICKY {
            assert_var(&env, name, Some(value), &format!("{mode}: import of a JSON SecretString"));
        }
        for (name, text) in [("PORT", "5432"), ("DEBUG", "true"), ("OFF", "false"), ("RATIO", "2.5"), ("NEG", "-7")] {
            assert_var(&env, name, Some(text), &format!("{mode}: a JSON scalar as its JSON text"));
        }
        assert_var(&env, "ONE", Some(TRICKY[0].1), &format!("{mode}: #KEY"));
        assert_var(&env, "PORT_TOO", Some("5432"), &format!("{mode}: #KEY of a number"));
        assert_var(&env, "WHOLE", Some(&whole), &format!("{mode}: the whole SecretString without #KEY"));
        assert_var(&env, "PLAIN", Some(PLAIN), &format!("{mode}: a plain secret"));
        // The README: the credentials stay in the child's environment.
        assert_var(&env, "AWS_ACCESS_KEY_ID", Some(super::KEY_ID), &format!("{mode}: credentials are kept"));
    }

    // Supervised mode masks AWS values in the child's output.
    let out = envcloak(&ws).args(["run", "--mask", "--", "sh", "-c", "printf '%s|%s' \"$ONE\" \"$UNICODE\""]).run();
    out.expect(0);
    assert!(out.stdout() == "*****|*****", "--mask hides AWS values\n{}", out.diag());

    // By full ARN, from the command line, with the endpoint and region from
    // AWS_ENDPOINT_URL and AWS_REGION.
    let bare = project("", "");
    let cmd = envcloak(&bare).env("AWS_ENDPOINT_URL", moto.endpoint()).env("AWS_REGION", super::REGION);
    let by_arn = [
        "-e".to_owned(),
        format!("BY_ARN=aws-sm://{}#EQUALS", arns[0]),
        "-e".to_owned(),
        format!("PLAIN_BY_ARN=aws-sm://{}", arns[1]),
        "-i".to_owned(),
        format!("aws-sm://{}", arns[0]),
    ];
    let by_arn: Vec<&str> = by_arn.iter().map(String::as_str).collect();
    let env = child_env(&bare, cmd, &by_arn);
    assert_var(&env, "BY_ARN", Some("fake=a=b==c"), "#KEY of a secret named by ARN");
    assert_var(&env, "PLAIN_BY_ARN", Some(PLAIN), "a plain secret named by ARN");
    assert_var(&env, "BACKSLASH", Some(TRICKY[5].1), "import of a secret named by ARN");
}

#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn keys_that_cannot_be_injected_fail_naming_the_key_never_the_value() {
    let moto = MotoServer::start();
    let malformed = "{\"user\": \"fake-malformed-user\" \"password\": \"fake-malformed-pass\"}";
    moto.create_secrets(&[
        ("nested", r#"{"FLAT": "fake-flat", "DB": {"password": "fake-nested-password"}, "LIST": ["fake-in-a-list"]}"#),
        ("plain", "fake-plain-token"),
        ("malformed", malformed),
        ("array", r#"["fake-array-item"]"#),
    ]);
    let ws = project(&at(&moto.endpoint()), "");
    let values = [
        "fake-flat",
        "fake-nested-password",
        "fake-in-a-list",
        "fake-plain-token",
        "fake-malformed",
        "fake-array-item",
    ];
    for value in values {
        ws.secret(value);
    }

    // A nested object or list: asked for or imported, an error naming the key.
    for (args, key) in [
        (&["-e", "WHOLE_DB=aws-sm://nested#DB"][..], "DB"),
        (&["-e", "LISTED=aws-sm://nested#LIST"], "LIST"),
        (&["-i", "aws-sm://nested", "-e", "X=aws-sm://plain"], "DB"),
        (&["-i", "aws-sm://nested", "-e", "X=aws-sm://plain"], "LIST"),
    ] {
        let out = fails_closed(&ws, envcloak(&ws), args);
        out.stderr_has(&[&format!("`{key}`"), "aws-sm://nested"]).no_leak(&values);
        assert!(out.stderr().contains("nested object") || out.stderr().contains("list"), "why\n{}", out.diag());
    }
    let env = child_env(&ws, envcloak(&ws), &["-e", "FLAT=aws-sm://nested#FLAT"]);
    assert_var(&env, "FLAT", Some("fake-flat"), "a flat key beside nested ones");

    // #KEY on a plain secret, and import of it: it has no keys.
    for args in [&["-e", "TOKEN=aws-sm://plain#token"][..], &["-i", "aws-sm://plain", "-e", "N=aws-sm://nested#FLAT"]] {
        let out = fails_closed(&ws, envcloak(&ws), args);
        out.stderr_has(&["aws-sm://plain", "has no keys", "not a JSON object"]).no_leak(&values);
    }
    let out = fails_closed(&ws, envcloak(&ws), &["-e", "TOKEN=aws-sm://plain#token"]);
    out.stderr_has(&["TOKEN", "aws-sm://plain#token", "drop #token"]);
    let out = fails_closed(&ws, envcloak(&ws), &["-e", "ITEM=aws-sm://array#0"]);
    out.stderr_has(&["ITEM", "not a JSON object"]).no_leak(&values);

    // Malformed JSON: by line and column, never the payload; the whole
    // value is still delivered as it is.
    for args in [["-e", "USER=aws-sm://malformed#user"], ["-i", "aws-sm://malformed"]] {
        let out = fails_closed(&ws, envcloak(&ws), &args);
        out.stderr_has(&["aws-sm://malformed", "not valid JSON", "line 1, column"]).no_leak(&values);
        out.no_leak(&["password", "\"user\""]);
    }
    let env = child_env(&ws, envcloak(&ws), &["-e", "RAW=aws-sm://malformed"]);
    assert_var(&env, "RAW", Some(malformed), "a malformed JSON SecretString without #KEY, as it is");

    // A key that is not there: named, with the number of keys.
    let out = fails_closed(&ws, envcloak(&ws), &["-e", "F=aws-sm://nested#flat"]);
    out.stderr_has(&["F", "`flat`", "not found", "FLAT"]).no_leak(&values);
}

#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn a_secret_binary_must_be_utf8_text_without_nul() {
    let moto = MotoServer::start();
    let text = "fake binary ✓ text\nwith a second line, \"quotes\" and $HOME\n";
    moto.setup(&[
        op::create_binary("bin/text", text.as_bytes()),
        op::create_binary("bin/json", br#"{"k": "fake-binary-json-value", "n": 7}"#),
        op::create_binary("bin/latin1", b"fake-caf\xe9-latin1"),
        op::create_binary("bin/nul", b"fake-before\0fake-after"),
        op::create("plain", "fake-plain-beside-binaries"),
    ]);
    let ws = project(&at(&moto.endpoint()), "");
    for value in [text, "fake-binary-json-value", "fake-caf", "fake-before", "fake-after"] {
        ws.secret(value);
    }

    // Read in a batch (two or more secrets) and alone (GetSecretValue).
    for (mode, flags) in MODES {
        let mut args = flags.to_vec();
        args.extend(["-e", "TEXT=aws-sm://bin/text", "-e", "K=aws-sm://bin/json#k", "-i", "aws-sm://bin/json"]);
        let env = child_env(&ws, envcloak(&ws), &args);
        assert_var(&env, "TEXT", Some(text), &format!("{mode}: a UTF-8 SecretBinary, batched"));
        assert_var(&env, "K", Some("fake-binary-json-value"), &format!("{mode}: #KEY of a JSON SecretBinary"));
        assert_var(&env, "n", Some("7"), &format!("{mode}: import of a JSON SecretBinary"));
    }
    let env = child_env(&ws, envcloak(&ws), &["-e", "TEXT=aws-sm://bin/text"]);
    assert_var(&env, "TEXT", Some(text), "a UTF-8 SecretBinary, alone");

    let leaks = ["fake-caf", "-latin1", "fake-before", "fake-after", "fake-plain-beside-binaries"];
    for extra in [&["-e", "P=aws-sm://plain"][..], &[]] {
        let mut args = vec!["-e", "LATIN1=aws-sm://bin/latin1"];
        args.extend(extra);
        let out = fails_closed(&ws, envcloak(&ws), &args);
        out.stderr_has(&["LATIN1", "aws-sm://bin/latin1", "SecretBinary", "not UTF-8", "offset 8"]).no_leak(&leaks);
        let mut args = vec!["-e", "NUL=aws-sm://bin/nul"];
        args.extend(extra);
        let out = fails_closed(&ws, envcloak(&ws), &args);
        out.stderr_has(&["NUL", "aws-sm://bin/nul", "SecretBinary", "NUL"]).no_leak(&leaks);
    }
}

/// The README: "Numbers and booleans become their JSON text". A number is
/// passed on as written, not through a 64-bit float (which changes big
/// integers and rewrites `1e3` and `1.50`).
#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn json_numbers_arrive_as_the_text_they_were_written_as() {
    let moto = MotoServer::start();
    moto.create_secret(
        "numbers",
        r#"{"BIG": 12345678901234567890123, "ID": 9007199254740993, "E": 1e3, "PRICE": 1.50}"#,
    );
    let ws = project(&at(&moto.endpoint()), "");
    let env = child_env(&ws, envcloak(&ws), &["-i", "aws-sm://numbers", "-e", "PICKED=aws-sm://numbers#BIG"]);
    let wanted = [
        ("BIG", "12345678901234567890123"),
        ("PICKED", "12345678901234567890123"),
        ("ID", "9007199254740993"),
        ("E", "1e3"),
        ("PRICE", "1.50"),
    ];
    let wrong: Vec<String> = wanted
        .iter()
        .filter(|(name, text)| env.get(*name).map(String::as_str) != Some(*text))
        .map(|(name, text)| match env.get(*name) {
            Some(got) => format!("{name}: {} bytes in the child, not the {} bytes written", got.len(), text.len()),
            None => format!("{name}: absent in the child"),
        })
        .collect();
    assert!(wrong.is_empty(), "numbers changed on the way:\n{}", wrong.join("\n"));
}
