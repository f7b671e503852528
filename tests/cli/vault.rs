//! The `vault://` backend against a real OpenBao dev server (`bao server
//! -dev`): each test starts its own server, which is killed when the test
//! ends. Values are fake; failure messages redact them.

use std::collections::BTreeMap;

use crate::support::bao::BaoServer;
use crate::support::{Cmd, Out, Workspace};

mod auth;
mod dynamic;
mod failures;
mod harness;
mod kv;
mod transport;
mod watch;

/// The child's whole environment, as JSON, into argv[1].
pub(crate) const DUMP_ENV_PY: &str = "\
import json, os, sys
with open(sys.argv[1], 'w', encoding='utf-8') as f:
    json.dump(dict(os.environ), f)
";

/// Values with quotes, `$`, newlines, unicode, `=`, backslashes, padding.
pub(crate) const TRICKY: &[(&str, &str)] = &[
    ("QUOTES", "fake it's \"double\" and 'single'"),
    ("DOLLAR", "fake cost: $5, $HOME, $$, ${NOT_SET}, $(echo no), `echo no`"),
    ("NEWLINES", "fake line one\nline two\r\n\nline four\n"),
    ("UNICODE", "fake héllo ✓ 😀 ünïcödé"),
    ("EQUALS", "fake=a=b==c"),
    ("BACKSLASH", "fake C:\\path\\to \\n not a newline \\\\server"),
    ("SPACES", "  fake padded\t"),
    ("HASH", "fake # not a comment"),
    ("PEM", "-----BEGIN FAKE KEY-----\nMIIBfake+/=\n-----END FAKE KEY-----\n"),
];

/// A project folder: `envcloak.toml` with `[vault]` (`address` unless
/// empty, then `vault_extra` lines) and a default profile `dev` made of
/// `profile` lines.
pub(crate) fn project(address: &str, vault_extra: &str, profile: &str) -> Workspace {
    let ws = Workspace::new();
    write_config(&ws, address, vault_extra, profile);
    ws
}

fn write_config(ws: &Workspace, address: &str, vault_extra: &str, profile: &str) {
    let address = if address.is_empty() { String::new() } else { format!("address = \"{address}\"\n") };
    ws.write_trusted(
        "envcloak.toml",
        format!("default_profile = \"dev\"\n\n[vault]\n{address}{vault_extra}\n\n[profiles.dev]\n{profile}\n"),
    );
}

/// envcloak with `VAULT_TOKEN` set to the server's root token (redacted
/// from failure messages).
fn envcloak(ws: &Workspace, bao: &BaoServer) -> Cmd {
    ws.secret(bao.root_token());
    ws.envcloak().env("VAULT_TOKEN", bao.root_token())
}

/// `envcloak [cmd] run ARGS -- python3 dump`: must exit 0; the child's
/// whole environment.
pub(crate) fn child_env(ws: &Workspace, cmd: Cmd, args: &[&str]) -> BTreeMap<String, String> {
    let _ = std::fs::remove_file(ws.join("child-env.json"));
    let out = cmd.arg("run").args(args).args(["--", "python3", "-c", DUMP_ENV_PY, "child-env.json"]).run();
    out.expect(0);
    serde_json::from_slice(&ws.read("child-env.json")).expect("the child's environment as JSON")
}

/// `envcloak [cmd] run ARGS -- sh -c 'touch started'`: must exit 125 without
/// starting the command.
pub(crate) fn fails_closed(ws: &Workspace, cmd: Cmd, args: &[&str]) -> Out {
    let _ = std::fs::remove_file(ws.join("started"));
    let out = cmd.arg("run").args(args).args(["--", "sh", "-c", "touch started"]).run();
    out.expect(125);
    assert!(!ws.join("started").exists(), "the command was started\n{}", out.diag());
    out
}

/// `name` has `expected` (or is absent for `None`) in `env`; never shows a value.
pub(crate) fn assert_var(env: &BTreeMap<String, String>, name: &str, expected: Option<&str>, case: &str) {
    let got = env.get(name).map(String::as_str);
    let shape = |v: Option<&str>| v.map_or("absent".to_owned(), |v| format!("{} bytes", v.len()));
    assert!(got == expected, "{case}: {name} is {} in the child, expected {}", shape(got), shape(expected));
}

/// The row of `check`'s table for `name`.
pub(crate) fn check_row<'a>(table: &'a str, name: &str) -> Option<&'a str> {
    table.lines().find(|l| l.split_whitespace().next() == Some(name))
}
