//! Requests, counted by operation at a proxy in front of the server: 50
//! secrets take ceil(50/20) = 3 `BatchGetSecretValue` calls and no
//! `GetSecretValue`; `batch = false` takes one `GetSecretValue` each; a
//! secret is read once however many variables use it; pinned versions and a
//! lone secret use `GetSecretValue`.

use std::collections::BTreeMap;

use super::{at, envcloak, json_object, project, write_config};
use crate::support::moto::{calls, MotoServer};
use crate::support::proxy::FaultProxy;
use crate::support::MODES;
use crate::vault::{assert_var, child_env};

const COUNT: usize = 50;

fn value(i: usize) -> String {
    format!("fake-batch-value-{i:02} with \"quotes\", $HOME and a\nnewline")
}

/// Every secret used three times: `#value`, `#n`, and (every fifth) an import.
fn profile() -> String {
    let mut imports = Vec::new();
    let mut env = String::from("[profiles.dev.env]\n");
    for i in 0..COUNT {
        env += &format!("A_{i:02} = \"aws-sm://batch/s{i:02}#value\"\nB_{i:02} = \"aws-sm://batch/s{i:02}#n\"\n");
        if i % 5 == 0 {
            imports.push(format!("{{ from = \"aws-sm://batch/s{i:02}\", prefix = \"I_{i:02}_\" }}"));
        }
    }
    format!("import = [{}]\n{env}", imports.join(", "))
}

fn assert_all_delivered(env: &BTreeMap<String, String>, case: &str) {
    for i in 0..COUNT {
        assert_var(env, &format!("A_{i:02}"), Some(&value(i)), case);
        assert_var(env, &format!("B_{i:02}"), Some(&i.to_string()), case);
        if i % 5 == 0 {
            assert_var(env, &format!("I_{i:02}_value"), Some(&value(i)), case);
        }
    }
}

#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn fifty_secrets_take_three_batch_calls_or_fifty_single_calls_and_each_is_read_once() {
    let moto = MotoServer::start();
    let secrets: Vec<(String, String)> = (0..COUNT)
        .map(|i| (format!("batch/s{i:02}"), format!("{{\"value\": {}, \"n\": {i}}}", serde_json::json!(value(i)))))
        .collect();
    moto.create_secrets(&secrets);
    let proxy = FaultProxy::relay(moto.port());
    let ws = project(&at(&proxy.addr()), &profile());
    for i in 0..COUNT {
        ws.secret(&value(i));
    }

    let (mut batches, mut singles) = (0, 0);
    for (mode, flags) in MODES {
        let env = child_env(&ws, envcloak(&ws), flags);
        assert_all_delivered(&env, &format!("{mode}: 50 secrets in batches"));
        let batched = calls(&proxy, "BatchGetSecretValue") - batches;
        let single = calls(&proxy, "GetSecretValue") - singles;
        assert_eq!(batched, COUNT.div_ceil(20), "{mode}: BatchGetSecretValue calls for {COUNT} secrets");
        assert_eq!(single, 0, "{mode}: GetSecretValue calls when every secret came in a batch");
        (batches, singles) = (batches + batched, singles + single);
    }

    // `batch = false`: one GetSecretValue per secret, still once each.
    write_config(&ws, &format!("{}\nbatch = false", at(&proxy.addr())), &profile());
    let env = child_env(&ws, envcloak(&ws), &[]);
    assert_all_delivered(&env, "batch = false");
    assert_eq!(calls(&proxy, "BatchGetSecretValue") - batches, 0, "batch = false: no BatchGetSecretValue");
    assert_eq!(calls(&proxy, "GetSecretValue") - singles, COUNT, "batch = false: one GetSecretValue per secret");
}

#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn pinned_versions_and_a_lone_secret_use_get_secret_value_and_ids_of_one_secret_all_arrive() {
    let moto = MotoServer::start();
    let arns = moto.create_secrets(&[
        ("app/one", json_object(&[("k", "fake-one")])),
        ("app/two", json_object(&[("k", "fake-two")])),
        ("app/three", json_object(&[("k", "fake-three")])),
    ]);
    let proxy = FaultProxy::relay(moto.port());
    let ws = project(&at(&proxy.addr()), "");
    let calls = || (calls(&proxy, "BatchGetSecretValue"), calls(&proxy, "GetSecretValue"));

    // A lone secret, used by three variables: one GetSecretValue.
    let before = calls();
    let env = child_env(
        &ws,
        envcloak(&ws),
        &["-e", "X=aws-sm://app/one#k", "-e", "Y=aws-sm://app/one#k", "-i", "aws-sm://app/one"],
    );
    assert_var(&env, "X", Some("fake-one"), "a lone secret");
    assert_var(&env, "k", Some("fake-one"), "a lone secret, imported");
    let after = calls();
    assert_eq!((after.0 - before.0, after.1 - before.1), (0, 1), "a lone secret: (batch, single) calls");

    // Two unpinned secrets in one batch call; a pinned one used twice: one
    // GetSecretValue.
    let before = calls();
    let env = child_env(
        &ws,
        envcloak(&ws),
        &[
            "-e",
            "ONE=aws-sm://app/one#k",
            "-e",
            "TWO=aws-sm://app/two#k",
            "-e",
            "P1=aws-sm://app/three?version-stage=AWSCURRENT#k",
            "-e",
            "P2=aws-sm://app/three?version-stage=AWSCURRENT#k",
        ],
    );
    for (name, value) in [("ONE", "fake-one"), ("TWO", "fake-two"), ("P1", "fake-three"), ("P2", "fake-three")] {
        assert_var(&env, name, Some(value), "batched and pinned");
    }
    let after = calls();
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1), "two unpinned and one pinned: (batch, single) calls");

    // One secret by name, by full ARN and by partial ARN (no random
    // suffix) in the same batch: each variable gets its value.
    let partial = arns[1].rsplit_once('-').map(|(stem, _)| stem.to_owned()).expect("an ARN ends in -SUFFIX");
    let args = [
        "-e".to_owned(),
        "BY_NAME=aws-sm://app/two#k".to_owned(),
        "-e".to_owned(),
        format!("BY_ARN=aws-sm://{}#k", arns[1]),
        "-e".to_owned(),
        format!("BY_PARTIAL_ARN=aws-sm://{partial}#k"),
        "-e".to_owned(),
        "ONE=aws-sm://app/one#k".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let before = calls();
    let env = child_env(&ws, envcloak(&ws), &args);
    for name in ["BY_NAME", "BY_ARN", "BY_PARTIAL_ARN"] {
        assert_var(&env, name, Some("fake-two"), "one secret named three ways in one batch");
    }
    assert_var(&env, "ONE", Some("fake-one"), "beside it");
    assert_eq!(calls().0 - before.0, 1, "one BatchGetSecretValue for four ids");
}
