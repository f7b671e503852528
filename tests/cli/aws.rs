//! The `aws-sm://` backend against a real local AWS endpoint (`moto_server`):
//! each test starts its own server, which is killed when the test ends, and
//! writes its secrets through the real AWS API with boto3. Values are fake;
//! failure messages redact them.

use crate::support::moto::REGION;
use crate::support::{Cmd, Workspace};

mod auth;
mod batching;
mod chain;
mod failures;
mod harness;
mod rotation;
mod values;
mod versions;

/// The static credentials envcloak gets (moto takes any until IAM
/// checks are on).
const KEY_ID: &str = "fake-access-key-id";
const SECRET_KEY: &str = "fake-secret-access-key";

/// A project folder: `envcloak.toml` with `[aws]` made of `aws` lines and a
/// default profile `dev` made of `profile` lines.
pub(crate) fn project(aws: &str, profile: &str) -> Workspace {
    let ws = Workspace::new();
    write_config(&ws, aws, profile);
    ws
}

fn write_config(ws: &Workspace, aws: &str, profile: &str) {
    ws.write_trusted(
        "envcloak.toml",
        format!("default_profile = \"dev\"\n\n[aws]\n{aws}\n\n[profiles.dev]\n{profile}\n"),
    );
}

/// `[aws]` lines for `endpoint` in [`REGION`].
pub(crate) fn at(endpoint: &str) -> String {
    format!("endpoint_url = \"{endpoint}\"\nregion = \"{REGION}\"")
}

/// envcloak with fake static credentials (the secret key is redacted from
/// failure messages) and instance metadata off.
pub(crate) fn envcloak(ws: &Workspace) -> Cmd {
    ws.secret(SECRET_KEY);
    ws.envcloak()
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

/// envcloak with the access key of an IAM user of the server.
fn envcloak_as(ws: &Workspace, key: &(String, String)) -> Cmd {
    ws.secret(&key.1);
    ws.envcloak()
        .env("AWS_ACCESS_KEY_ID", &key.0)
        .env("AWS_SECRET_ACCESS_KEY", &key.1)
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

/// A JSON object of string pairs, as a SecretString.
fn json_object(pairs: &[(&str, &str)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned()))).collect();
    serde_json::Value::Object(map).to_string()
}

/// The lines of stderr that report a failed variable (`NAME (REF): …`).
fn failed_names(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("  ") && !l.trim_start().starts_with("hint:"))
        .filter_map(|l| l.trim_start().split_once(" (").map(|(name, _)| name.to_owned()))
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect()
}
