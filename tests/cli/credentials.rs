//! Where credentials may travel. A Vault token, an AppRole secret id or a
//! signed AWS request goes only to the origin the config names: a redirect
//! to another scheme, host or port is an error, never followed. Plain-HTTP
//! traffic to a loopback server never goes through a proxy. A configured CA
//! replaces the system store instead of adding to it, and `skip_verify`
//! covers the Vault server only, not GitHub's OIDC token endpoint. A token
//! envcloak logged in with is revoked even when the run's deadline passes
//! or a SIGTERM stops it during resolution.
//!
//! Every server is one the test starts, on loopback (127.0.0.2 stands for
//! "another host"). Every envcloak command gets `ENVCLOAK_TRUST=1`: trust
//! the config this run uses (it names a server address). Values and
//! credentials are fake and redacted from failure messages.

use crate::support::{Cmd, Out, Workspace};

mod bounded;
mod proxies;
mod redirects;
mod revocation;
mod tls_trust;

/// One Vault reference, `API_KEY` from `secret/app`.
const PROFILE: &str = "[profiles.dev.env]\nAPI_KEY = \"vault://secret/app#API_KEY\"\n";
/// One AWS reference, `API_KEY` from the secret `app`.
const AWS_PROFILE: &str = "[profiles.dev.env]\nAPI_KEY = \"aws-sm://app#API_KEY\"\n";
/// `[vault]` AppRole login with the ids in `VAULT_ROLE_ID` and `VAULT_SECRET_ID`.
const APPROLE: &str =
    "auth = { method = \"approle\", role_id_env = \"VAULT_ROLE_ID\", secret_id_env = \"VAULT_SECRET_ID\" }";
/// Exactly what reading `vault://secret/app` needs on KV v2.
const READ_APP: &str = "path \"secret/data/app\" { capabilities = [\"read\"] }\n";

/// `cmd` trusting the config it uses.
fn trusted(cmd: Cmd) -> Cmd {
    cmd.env("ENVCLOAK_TRUST", "1")
}

/// Runs `cmd run ARGS -- sh -c 'touch started'` and lists what is wrong
/// with it as a refusal (exit 125, the command not started). Unlike
/// [`fails_closed`](crate::vault::fails_closed) it does not panic, so a test
/// of many cases reports all of them.
fn refusal(ws: &Workspace, cmd: Cmd, args: &[&str]) -> (Out, Vec<String>) {
    let _ = std::fs::remove_file(ws.join("started"));
    let out = cmd.arg("run").args(args).args(["--", "sh", "-c", "touch started"]).run();
    let mut problems = Vec::new();
    if out.code() != 125 {
        problems.push(format!("exit {}, expected 125", out.code()));
    }
    if ws.join("started").exists() {
        problems.push("the command was started".to_owned());
    }
    (out, problems)
}

/// `host:port` of `scheme://host:port[/…]`.
fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// `case: problems` and the (redacted) output, if there are problems.
fn failure(case: &str, problems: &[String], out: &Out) -> Option<String> {
    (!problems.is_empty()).then(|| format!("{case}: {}\n{}", problems.join("; "), out.diag()))
}

/// Fails if `case` has problems.
fn assert_case(case: &str, problems: &[String], out: &Out) {
    report(&failure(case, problems, out).into_iter().collect::<Vec<_>>());
}

/// Fails with every failed case.
fn report(failures: &[String]) {
    assert!(failures.is_empty(), "{} case(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}
