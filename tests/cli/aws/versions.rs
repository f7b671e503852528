//! Versions after a rotation: `?version-stage=AWSPREVIOUS` reads the old
//! value, `AWSCURRENT` (or nothing) the new one, `?version-id=ID` the pinned
//! one; `check` shows each secret's version id and stages.

use super::{at, envcloak, json_object, project};
use crate::support::moto::{op, MotoServer};
use crate::support::MODES;
use crate::vault::{assert_var, check_row, child_env, fails_closed};

#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn version_stages_and_ids_pick_a_value_of_a_rotated_secret_and_check_shows_the_version() {
    let moto = MotoServer::start();
    let done = moto.setup(&[
        op::create("api", &json_object(&[("key", "fake-old-key"), ("only_old", "fake-only-in-the-old-version")])),
        op::put("api", &json_object(&[("key", "fake-new-key")])),
        op::versions("api"),
        op::create("other", "fake-other-value"),
    ]);
    let (new_id, old_id) = (op::version(&done[1]), op::version(&done[0]));
    assert_eq!(op::with_stage(&done[2], "AWSPREVIOUS"), old_id, "the rotation made the first version AWSPREVIOUS");
    assert_eq!(op::with_stage(&done[2], "AWSCURRENT"), new_id, "the rotation made a new AWSCURRENT");
    let ws = project(
        &at(&moto.endpoint()),
        &format!(
            "[profiles.dev.env]\n\
             OLD = \"aws-sm://api?version-stage=AWSPREVIOUS#key\"\n\
             CUR = \"aws-sm://api?version-stage=AWSCURRENT#key\"\n\
             NEW = \"aws-sm://api#key\"\n\
             PINNED = \"aws-sm://api?version-id={old_id}#key\"\n\
             OTHER = \"aws-sm://other\"\n"
        ),
    );
    let values = ["fake-old-key", "fake-new-key", "fake-only-in-the-old-version", "fake-other-value"];
    for value in values {
        ws.secret(value);
    }

    for (mode, flags) in MODES {
        let env = child_env(&ws, envcloak(&ws), flags);
        assert_var(&env, "OLD", Some("fake-old-key"), &format!("{mode}: ?version-stage=AWSPREVIOUS"));
        assert_var(&env, "CUR", Some("fake-new-key"), &format!("{mode}: ?version-stage=AWSCURRENT"));
        assert_var(&env, "NEW", Some("fake-new-key"), &format!("{mode}: no version"));
        assert_var(&env, "PINNED", Some("fake-old-key"), &format!("{mode}: ?version-id of the old version"));
        assert_var(&env, "OTHER", Some("fake-other-value"), &format!("{mode}: a second secret"));
    }
    let env = child_env(&ws, envcloak(&ws), &["-i", "aws-sm://api?version-stage=AWSPREVIOUS"]);
    assert_var(&env, "only_old", Some("fake-only-in-the-old-version"), "import of AWSPREVIOUS");
    assert_var(&env, "key", Some("fake-old-key"), "import of AWSPREVIOUS");
    let env = child_env(&ws, envcloak(&ws), &["-i", &format!("aws-sm://api?version-id={new_id}")]);
    assert_var(&env, "only_old", None, "import of the new version by id");
    assert_var(&env, "key", Some("fake-new-key"), "import of the new version by id");

    let out = envcloak(&ws).arg("check").run();
    out.expect(0).no_leak(&values);
    let table = out.stdout();
    for (name, wanted) in [
        ("OLD", [old_id.as_str(), "AWSPREVIOUS"]),
        ("CUR", [new_id.as_str(), "AWSCURRENT"]),
        ("NEW", [new_id.as_str(), "AWSCURRENT"]),
        ("PINNED", [old_id.as_str(), "AWSPREVIOUS"]),
    ] {
        let row = check_row(&table, name).unwrap_or_else(|| panic!("no check row for {name}\n{}", out.diag()));
        assert!(row.contains("ok"), "check row of {name} is not ok\n{}", out.diag());
        for text in wanted {
            assert!(row.contains(text), "check row of {name} lacks `{text}`\n{}", out.diag());
        }
    }
    let out = envcloak(&ws).args(["check", "--format", "json"]).run();
    out.expect(0).no_leak(&values);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("check --format json is JSON");
    let row = doc["secrets"].as_array().and_then(|rows| rows.iter().find(|r| r["name"] == "OLD")).cloned();
    let row = row.unwrap_or_else(|| panic!("OLD missing from check --format json\n{}", out.diag()));
    let version = row["version"].as_str().unwrap_or_default();
    assert!(
        version.contains(&old_id) && version.contains("AWSPREVIOUS"),
        "check --format json: the version of OLD: {row}"
    );

    // A stage or version id the secret does not have: AWS's code, named.
    let bare = project(&at(&moto.endpoint()), "");
    for reference in
        ["aws-sm://api?version-stage=NO_SUCH_STAGE#key", "aws-sm://api?version-id=fake-no-such-version#key"]
    {
        let out = fails_closed(&bare, envcloak(&bare), &["-e", &format!("GONE={reference}")]);
        out.stderr_has(&["GONE", reference, "ResourceNotFoundException"]).no_leak(&values);
    }
}
