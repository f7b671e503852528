//! Where the region, the credentials and the endpoint come from: `[aws]`
//! first, then the AWS SDK's own chain (`AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_PROFILE`, `~/.aws/config` and `~/.aws/credentials`). moto keeps
//! secrets per region, so reading one proves which region was asked.

use super::{at, envcloak, project, write_config, KEY_ID, SECRET_KEY};
use crate::support::moto::{MotoServer, REGION};
use crate::support::net::free_port;
use crate::vault::{assert_var, child_env, fails_closed};

const PROFILE: &str = "[profiles.dev.env]\nAPI_KEY = \"aws-sm://app\"\n";
const VALUE: &str = "fake-chain-value";

#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
fn endpoint_from_the_variables_first_region_and_credentials_from_the_config_then_the_sdk_chain() {
    let moto = MotoServer::start();
    moto.create_secret("app", VALUE);
    let down = format!("http://127.0.0.1:{}", free_port());
    let endpoint = moto.endpoint();
    let ws = project("", PROFILE);
    ws.secret(VALUE);

    // The variables alone.
    let env = child_env(&ws, envcloak(&ws).env("AWS_ENDPOINT_URL", &endpoint).env("AWS_REGION", REGION), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "AWS_ENDPOINT_URL and AWS_REGION");
    let env = child_env(&ws, envcloak(&ws).env("AWS_ENDPOINT_URL", &endpoint).env("AWS_DEFAULT_REGION", REGION), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "AWS_DEFAULT_REGION");

    // Another region has no such secret, and the hint names the region.
    let out = fails_closed(&ws, envcloak(&ws).env("AWS_ENDPOINT_URL", &endpoint).env("AWS_REGION", "us-east-2"), &[]);
    out.stderr_has(&["API_KEY", "ResourceNotFoundException", "us-east-2"]);

    // AWS_ENDPOINT_URL wins over [aws] endpoint_url (the environment names
    // where credentials go); [aws] region wins over AWS_REGION.
    write_config(&ws, &at(&down), PROFILE);
    let env = child_env(&ws, envcloak(&ws).env("AWS_ENDPOINT_URL", &endpoint).env("AWS_REGION", "us-east-2"), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "AWS_ENDPOINT_URL over [aws] endpoint_url, [aws] region over AWS_REGION");
    write_config(&ws, &at(&endpoint), PROFILE);

    // A profile in ~/.aws/config and ~/.aws/credentials (HOME is the
    // workspace): the default one, AWS_PROFILE, and [aws] profile.
    ws.write(
        ".aws/config",
        format!(
            "[default]\nregion = {REGION}\n\n[profile team]\nregion = {REGION}\n\n\
             [profile elsewhere]\nregion = us-east-2\n"
        ),
    );
    ws.write(
        ".aws/credentials",
        format!(
            "[default]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET_KEY}\n\n\
             [team]\naws_access_key_id = {KEY_ID}-team\naws_secret_access_key = {SECRET_KEY}\n\n\
             [elsewhere]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET_KEY}\n"
        ),
    );
    let files_only = || ws.envcloak().env("AWS_EC2_METADATA_DISABLED", "true");
    write_config(&ws, &format!("endpoint_url = \"{endpoint}\""), PROFILE);
    let env = child_env(&ws, files_only(), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "the default profile's region and keys");
    let env = child_env(&ws, files_only().env("AWS_PROFILE", "team"), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "AWS_PROFILE=team");
    let out = fails_closed(&ws, files_only().env("AWS_PROFILE", "elsewhere"), &[]);
    out.stderr_has(&["ResourceNotFoundException", "us-east-2"]);
    write_config(&ws, &format!("endpoint_url = \"{endpoint}\"\nprofile = \"team\""), PROFILE);
    let env = child_env(&ws, files_only().env("AWS_PROFILE", "elsewhere"), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "[aws] profile over AWS_PROFILE");
}

/// A misspelt profile, from `[aws] profile` or `AWS_PROFILE`, is named in
/// the message, with or without a region elsewhere; the hint does not
/// claim the default profile was tried when another one was named.
#[test]
fn a_profile_that_does_not_exist_is_named_in_the_message() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let ws = project("", PROFILE);
    ws.write(".aws/config", format!("[default]\nregion = {REGION}\n\n[profile team]\nregion = {REGION}\n"));
    ws.write(
        ".aws/credentials",
        format!("[team]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET_KEY}\n"),
    );
    let cases = [
        (
            "[aws] profile, no region",
            format!("endpoint_url = \"{endpoint}\"\nprofile = \"no-such-profile\""),
            None,
            None,
        ),
        ("[aws] profile and region", at(&endpoint) + "\nprofile = \"no-such-profile\"", None, None),
        ("AWS_PROFILE, no region", format!("endpoint_url = \"{endpoint}\""), Some("no-such-profile"), None),
        ("AWS_PROFILE and AWS_REGION", format!("endpoint_url = \"{endpoint}\""), Some("no-such-profile"), Some(REGION)),
    ];
    let mut wrong = Vec::new();
    for (case, aws, profile_var, region_var) in cases {
        write_config(&ws, &aws, PROFILE);
        let mut cmd = ws.envcloak().env("AWS_EC2_METADATA_DISABLED", "true");
        if let Some(profile) = profile_var {
            cmd = cmd.env("AWS_PROFILE", profile);
        }
        if let Some(region) = region_var {
            cmd = cmd.env("AWS_REGION", region);
        }
        let out = fails_closed(&ws, cmd, &[]);
        out.stderr_has(&["API_KEY", "aws-sm://app"]);
        let stderr = out.stderr();
        if !stderr.contains("no-such-profile") {
            wrong.push(format!("{case}: the profile is not named\n{}", out.diag()));
        } else if stderr.contains("the default profile") {
            wrong.push(format!("{case}: the hint says the default profile was tried\n{}", out.diag()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
