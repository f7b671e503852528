//! Bad input: each case ends with exit 125, a clear message on stderr, no
//! secret value anywhere in the output, and the command never started.

use crate::support::{self, chmod, Out, Workspace};

pub const CANARY: &str = "fake-bad-input-canary-7431";

/// The dotenv every project here starts from.
pub fn secrets() -> String {
    format!("API_KEY={CANARY}\nOTHER=fake-other-value\n")
}

/// `envcloak run ARGS -- sh -c 'touch started.marker'` must fail with 125,
/// say every one of `needles`, show no value, and not start the child.
pub fn refused(ws: &Workspace, args: &[&str], needles: &[&str]) -> Out {
    let out = ws.envcloak().arg("run").args(args).args(["--", "sh", "-c", "touch started.marker"]).run();
    out.expect(125).stderr_has(needles).no_leak(&[CANARY, "fake-other-value"]);
    assert!(!ws.join("started.marker").exists(), "the child was started\n{}", out.diag());
    out
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn malformed_toml_names_file_line_and_column() {
    require!(Age);
    let (ws, _) = Workspace::project(&secrets());
    ws.write(
        "envcloak.toml",
        "default_profile = \"dev\"\n\n[profiles.dev]\nimport = [\"age://secrets.env.age\"\nbad = 1\n",
    );
    let out = refused(&ws, &[], &["envcloak.toml:"]);
    let stderr = out.stderr();
    let at = stderr.split("envcloak.toml:").nth(1).unwrap_or("");
    let mut parts = at.splitn(3, ':');
    let line: usize = parts.next().and_then(|l| l.parse().ok()).unwrap_or(0);
    let column: usize = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    assert!((4..=5).contains(&line) && column >= 1, "expected envcloak.toml:LINE:COL at line 4 or 5\n{}", out.diag());

    // A semantic error points at its place too.
    ws.write(
        "envcloak.toml",
        "default_profile = \"dev\"\n[profiles.dev]\nimport = [\"age://secrets.env.age\"]\nimprot = []\n",
    );
    refused(&ws, &[], &["envcloak.toml:4:1", "improt"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn unknown_profile_lists_the_existing_ones() {
    require!(Age);
    let (ws, _) = Workspace::project(&secrets());
    ws.write(
        "envcloak.toml",
        format!("{}\n[profiles.ci]\nimport = [\"age://secrets.env.age\"]\n", support::PROJECT_TOML),
    );
    refused(&ws, &["-p", "staging"], &["staging", "dev", "ci"]);
    ws.write("envcloak.toml", support::PROJECT_TOML.replace("default_profile = \"dev\"", "default_profile = \"prod\""));
    refused(&ws, &[], &["prod", "dev"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn unknown_scheme_lists_the_supported_ones() {
    require!(Age);
    let (ws, _) = Workspace::project(&secrets());
    refused(&ws, &["-e", "X=gcp://project/secret#key"], &["gcp", "age://", "vault://", "aws-sm://"]);
    refused(&ws, &["-i", "secrets.env.age"], &["age://", "vault://", "aws-sm://"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn missing_age_file() {
    require!(Age);
    let (ws, _) = Workspace::project(&secrets());
    refused(&ws, &["-i", "age://nowhere.env.age"], &["nowhere.env.age", "does not exist"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn file_that_is_not_age() {
    require!(Age);
    let (ws, _) = Workspace::project(&secrets());
    ws.write("plain.env.age", secrets());
    refused(&ws, &["-i", "age://plain.env.age"], &["plain.env.age", "not an age"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn no_identity_matches_says_recipients_and_sources() {
    require!(Age);
    let (ws, _) = Workspace::project(&secrets());
    let other1 = ws.age_keygen("other1.txt");
    let other2 = ws.age_keygen("other2.txt");
    ws.age_encrypt("theirs.env.age", secrets(), &[&other1.recipient, &other2.recipient], false);
    refused(
        &ws,
        &["-i", "age://theirs.env.age"],
        &["theirs.env.age", "no identity matched", "2 recipients", "key.txt"],
    );
    // With the identity in the variable, the message names the variable.
    let key = std::fs::read_to_string(ws.join("key.txt")).unwrap();
    let out = ws
        .envcloak()
        .env("ENVCLOAK_AGE_KEY", &key)
        .args(["run", "-i", "age://theirs.env.age", "--", "sh", "-c", "touch started.marker"])
        .run();
    out.expect(125).stderr_has(&["ENVCLOAK_AGE_KEY"]).no_leak(&[CANARY, key.lines().last().unwrap()]);
    assert!(!ws.join("started.marker").exists());
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn truncated_ciphertext() {
    require!(Age);
    let (ws, _) = Workspace::project(&secrets());
    let whole = ws.read("secrets.env.age");
    for cut in [1, 17, whole.len() / 2] {
        ws.write("truncated.env.age", &whole[..whole.len() - cut]);
        refused(&ws, &["-i", "age://truncated.env.age"], &["truncated.env.age"]);
    }
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn tampered_ciphertext() {
    require!(Age);
    let (ws, _) = Workspace::project(&secrets());
    let whole = ws.read("secrets.env.age");
    for from_end in [1, 10, 30] {
        let mut bytes = whole.clone();
        let at = bytes.len() - from_end;
        bytes[at] ^= 0x01;
        ws.write("tampered.env.age", &bytes);
        refused(&ws, &["-i", "age://tampered.env.age"], &["tampered.env.age"]);
    }
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn unparsable_dotenv_line_gives_line_number_not_text() {
    require!(Age);
    let (ws, id) = Workspace::project(&secrets());
    let bad = format!("GOOD=fake-good-value\n# comment\nBAD LINE {CANARY}\n");
    ws.age_encrypt("bad.env.age", &bad, &[&id.recipient], false);
    refused(&ws, &["-i", "age://bad.env.age"], &["bad.env.age", "line 3"]);
}

/// A multi-line value someone forgot to quote: the continuation line has no
/// `=`. Its text (key material) must not appear in the error.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn unquoted_multiline_value_does_not_echo_the_line() {
    require!(Age);
    let (ws, id) = Workspace::project(&secrets());
    let bad = format!("TLS_KEY=-----BEGIN FAKE KEY-----\n{CANARY}\n-----END FAKE KEY-----\n");
    ws.age_encrypt("pem.env.age", &bad, &[&id.recipient], false);
    refused(&ws, &["-i", "age://pem.env.age"], &["pem.env.age", "line 2"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn invalid_variable_name_from_import() {
    require!(Age);
    let (ws, id) = Workspace::project(&secrets());
    ws.age_encrypt("names.env.age", format!("a-b={CANARY}\n"), &[&id.recipient], false);
    // A name from a file is never echoed: it may be a line of a secret.
    refused(&ws, &["-i", "age://names.env.age"], &["line 1", "not a NAME=value line"]);
    refused(&ws, &["-e", "a-b=age://secrets.env.age#API_KEY"], &["a-b", "not a valid variable name"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn nul_byte_in_a_value() {
    require!(Age);
    let (ws, id) = Workspace::project(&secrets());
    let mut plaintext = b"OK=fake-ok-value\nK=a".to_vec();
    plaintext.push(0);
    plaintext.extend_from_slice(format!("b{CANARY}\n").as_bytes());
    ws.age_encrypt("nul.env.age", &plaintext, &[&id.recipient], false);
    let out = refused(&ws, &["-i", "age://nul.env.age"], &["nul.env.age"]);
    let stderr = out.stderr();
    assert!(stderr.contains("NUL") || stderr.contains("line 2"), "say NUL or the line\n{}", out.diag());
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn identity_file_readable_by_others_is_refused() {
    require!(Age);
    let (ws, _) = Workspace::project(&secrets());
    chmod(&ws.join("key.txt"), 0o644);
    let out = refused(&ws, &[], &["key.txt", "chmod 600"]);
    let key = std::fs::read_to_string(ws.join("key.txt")).unwrap();
    out.no_leak(&[key.lines().last().unwrap()]);
    chmod(&ws.join("key.txt"), 0o640);
    refused(&ws, &[], &["chmod 600"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn vault_without_an_address_and_aws_without_a_region_are_refused() {
    require!(Age);
    let (ws, _) = Workspace::project(&secrets());
    refused(&ws, &["-e", "DB=vault://secret/flask/prod#db"], &["no Vault address", "VAULT_ADDR", "DB"]);
    refused(&ws, &["-e", "DB=aws-sm://prod/flask/db#url"], &["aws-sm://prod/flask/db#url", "no AWS region", "DB"]);
    refused(&ws, &["-i", "vault://secret/flask/prod"], &["no Vault address"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn env_flag_without_equals() {
    require!(Age);
    let (ws, _) = Workspace::project(&secrets());
    refused(&ws, &["-e", "API_KEY"], &["API_KEY", "NAME=REF"]);
}
