//! A team's encrypted file: `set`, `unset` and `get` keep every other line
//! byte for byte and python-dotenv reads the result; `edit` reopens a text
//! it refused; `rekey` adds and removes people and `rekey --check` needs no
//! key. The git drivers are in `team_git.rs`.

use std::collections::BTreeMap;

use crate::support::{contains, Workspace};

/// A file with comments, `export`, quotes, a multi-line value and a
/// duplicate, as a team's file looks after a few months.
const START: &str = "# shared dev secrets\nexport API_KEY=fake-team-api-key # rotate monthly\n\nDB_URL='postgresql://fake:fake-team-db@db/app'\nPEM=\"-----BEGIN FAKE-----\nfake-team-pem\n-----END FAKE-----\"\n  SPACED = fake-team-spaced\nAPI_KEY=fake-team-api-key-2\n";

/// A project whose recipients are the files of `recipients/` (one a
/// person) and whose identity is `alice.txt`.
fn team() -> Workspace {
    let ws = Workspace::new();
    for value in ["fake-team-api-key", "fake-team-db", "fake-team-pem", "fake-team-spaced", "fake-team-api-key-2"] {
        ws.secret(value);
    }
    let alice = ws.keygen("alice.txt");
    ws.write("recipients/alice.txt", format!("# Alice\n{}\n", alice.recipient));
    ws.write(
        "envcloak.toml",
        "default_profile = \"dev\"\n\n[age]\nidentity = \"alice.txt\"\nrecipients_file = \"recipients\"\n\n[profiles.dev]\nimport = [\"age://secrets.env.age\"]\n",
    );
    ws.write("start.env", START);
    ws.envcloak().args(["encrypt", "-R", "recipients", "-o", "secrets.env.age", "start.env"]).run().expect(0);
    std::fs::remove_file(ws.join("start.env")).unwrap();
    ws
}

/// `secrets.env.age` decrypted with `identity` alone (an empty config, so
/// not also with the project's `[age] identity`).
fn decrypted(ws: &Workspace, identity: &str) -> String {
    ws.write("none.toml", "");
    let out = ws.envcloak().args(["-c", "none.toml", "decrypt", "-i", identity, "secrets.env.age"]).run();
    out.expect(0);
    out.stdout()
}

/// python-dotenv's reading of the decrypted file.
fn python_dotenv(ws: &Workspace) -> BTreeMap<String, String> {
    ws.write("plain.env", decrypted(ws, "alice.txt"));
    let out = ws
        .command("python3")
        .args([
            "-c",
            "import json, sys\nfrom dotenv import dotenv_values\njson.dump(dotenv_values(sys.argv[1]), sys.stdout)",
            "plain.env",
        ])
        .run();
    out.expect(0);
    std::fs::remove_file(ws.join("plain.env")).unwrap();
    serde_json::from_slice(&out.stdout).expect("python-dotenv's JSON")
}

#[test]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn set_unset_and_get_keep_every_other_line_and_python_dotenv_agrees() {
    require!(PythonDotenv);
    let ws = team();
    let multi = ws.secret("fake \"team\" value\nwith 'two' lines and a \\ and # not a comment");
    ws.envcloak()
        .args(["set", "secrets.env.age", "NEW_VALUE"])
        .stdin(format!("{multi}\n"))
        .run()
        .expect(0)
        .no_leak(&[multi.as_str()]);
    assert!(decrypted(&ws, "alice.txt").starts_with(START), "set changed a line it should have kept");
    let values = python_dotenv(&ws);
    assert!(values.get("NEW_VALUE") == Some(&multi), "python-dotenv reads another value for NEW_VALUE");

    // Changing a variable replaces its last assignment, in place.
    let changed = ws.secret("fake-team-changed");
    ws.envcloak().args(["set", "secrets.env.age", "DB_URL"]).stdin(&changed).run().expect(0);
    let text = decrypted(&ws, "alice.txt");
    let expected = START.replace("DB_URL='postgresql://fake:fake-team-db@db/app'", &format!("DB_URL={changed}"));
    assert!(text.starts_with(&expected), "only the DB_URL line may change:\n{}", ws.redact(text.as_bytes()));
    let out = ws.envcloak().args(["get", "secrets.env.age", "DB_URL"]).run();
    out.expect(0);
    assert!(out.stdout == format!("{changed}\n").as_bytes(), "get prints the value and a newline");
    let out = ws.envcloak().args(["get", "secrets.env.age", "API_KEY"]).run();
    assert!(out.stdout == b"fake-team-api-key-2\n", "get gives the last assignment, as run does");

    // unset removes every assignment with its line and keeps the rest.
    ws.envcloak().args(["unset", "secrets.env.age", "API_KEY", "PEM"]).run().expect(0);
    let values = python_dotenv(&ws);
    let names: Vec<&str> = values.keys().map(String::as_str).collect();
    assert_eq!(names, ["DB_URL", "NEW_VALUE", "SPACED"]);
    assert!(
        decrypted(&ws, "alice.txt").starts_with("# shared dev secrets\n\nDB_URL="),
        "comments and blank lines stay"
    );

    // The result runs, and a missing name is an error that lists the names.
    let out = ws.envcloak().args(["run", "--", "sh", "-c", "test \"$SPACED\" = fake-team-spaced"]).run();
    out.expect(0);
    ws.envcloak()
        .args(["get", "secrets.env.age", "API_KEY"])
        .run()
        .expect(125)
        .stderr_has(&["API_KEY is not in", "DB_URL, SPACED, NEW_VALUE"]);
}

#[test]
fn a_value_on_the_command_line_is_refused_without_being_repeated() {
    let ws = team();
    let before = ws.read("secrets.env.age");
    let value = ws.secret("fake-team-argv-value");
    let out = ws.envcloak().args(["set", "secrets.env.age", "TOKEN", &value]).run();
    out.expect(125).stderr_has(&["shows in `ps`", "stdin"]).no_leak(&[value.as_str()]);
    assert!(ws.read("secrets.env.age") == before, "the file changed");
    // Neither a bad name nor a value python-dotenv would expand is written.
    ws.envcloak()
        .args(["set", "secrets.env.age", "1BAD"])
        .stdin("x")
        .run()
        .expect(125)
        .stderr_has(&["not a valid variable name"]);
    let expanding = ws.secret("fake-${API_KEY}-x");
    ws.envcloak()
        .args(["set", "secrets.env.age", "T"])
        .stdin(&expanding)
        .run()
        .expect(125)
        .stderr_has(&["python-dotenv"])
        .no_leak(&[expanding.as_str()]);
    assert!(ws.read("secrets.env.age") == before, "the file changed");
}

#[test]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn on_a_terminal_set_asks_without_echo_and_edit_reopens_a_refused_text() {
    require!(PythonDotenv);
    let ws = team();
    let typed = ws.secret("fake-team-typed-value");
    let bin = crate::support::BIN;
    let (report, screen) = ws.on_pty_replying(&[typed.as_str()], 30, &[bin, "set", "secrets.env.age", "TYPED"]);
    assert_eq!(report["exit"], 0, "set on a terminal: {report}\n{}", ws.redact(&screen));
    assert!(!contains(&screen, typed.as_bytes()), "the typed value was echoed");
    assert!(contains(&screen, b"Value for TYPED"), "no prompt:\n{}", ws.redact(&screen));
    assert!(python_dotenv(&ws).get("TYPED") == Some(&typed), "the typed value was not stored");

    // The editor first writes an invalid line, then (given the banner) a fixed text.
    ws.script(
        "editor.sh",
        "#!/bin/sh\nif [ -e opened-once ]; then cp \"$1\" second-view.txt; printf 'FIXED=fake-team-fixed\\n' > \"$1\"; \
         else touch opened-once; printf 'not a valid line\\n' > \"$1\"; fi\n",
    );
    let editor = ws.join("editor.sh");
    let command = format!("EDITOR={} exec {bin} edit secrets.env.age", editor.display());
    let (report, screen) = ws.on_pty_replying(&["y"], 30, &["sh", "-c", &command]);
    assert_eq!(report["exit"], 0, "edit: {report}\n{}", ws.redact(&screen));
    assert!(contains(&screen, b"Edit again? [Y/n]"), "no question:\n{}", ws.redact(&screen));
    let second = String::from_utf8(ws.read("second-view.txt")).unwrap();
    assert!(second.starts_with("# envcloak: this text was not saved:"), "no banner:\n{second}");
    assert!(second.ends_with("not a valid line\n"), "what was typed is kept:\n{second}");
    assert_eq!(decrypted(&ws, "alice.txt"), "FIXED=fake-team-fixed\n");
}

#[test]
fn rekey_adds_and_removes_people_and_check_needs_no_key() {
    let ws = team();
    let bob = ws.keygen("bob.txt");
    // Bob joins: the file is out of date, and the check needs no key.
    ws.write("recipients/bob.txt", format!("# Bob\n{}\n", bob.recipient));
    let keyless = || ws.envcloak().env("HOME", ws.join("recipients"));
    std::fs::rename(ws.join("alice.txt"), ws.join("alice.key")).unwrap();
    let out = keyless().args(["rekey", "--check"]).run();
    out.expect(1);
    assert!(out.stdout().contains("out of date") && out.stdout().contains("1 recipient(s) added"), "{}", out.diag());
    std::fs::rename(ws.join("alice.key"), ws.join("alice.txt")).unwrap();
    ws.write("none.toml", "");
    ws.envcloak().args(["-c", "none.toml", "decrypt", "-i", "bob.txt", "secrets.env.age"]).run().expect(125);
    ws.envcloak().args(["rekey"]).run().expect(0);
    assert!(decrypted(&ws, "bob.txt").starts_with("# shared dev secrets"), "bob cannot decrypt after the rekey");
    ws.envcloak().args(["rekey", "--check"]).run().expect(0);

    // Alice leaves: bob rekeys; she can no longer decrypt, and the values she
    // could read are named for rotation.
    std::fs::remove_file(ws.join("recipients/alice.txt")).unwrap();
    keyless().args(["rekey", "--check"]).run().expect(1);
    let out = ws.envcloak().args(["rekey", "-i", "bob.txt"]).run();
    out.expect(0).stderr_has(&["1 removed recipient(s)", "API_KEY, DB_URL, PEM, SPACED", "rotate"]);
    ws.envcloak().args(["-c", "none.toml", "decrypt", "-i", "alice.txt", "secrets.env.age"]).run().expect(125);
    keyless().args(["rekey", "--check"]).run().expect(0);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn rekey_check_names_a_file_another_tool_encrypted() {
    require!(Age);
    let ws = team();
    let alice = crate::support::Identity::load(&ws.join("alice.txt"));
    ws.write("plain.env", "A=1\n");
    ws.command("age").args(["-e", "-r", &alice.recipient, "-o", "other.env.age", "plain.env"]).run().expect(0);
    let out = ws.envcloak().args(["rekey", "--check", "other.env.age"]).run();
    out.expect(1);
    assert!(out.stdout().contains("not recorded"), "{}", out.diag());
    // envcloak's own files decrypt with the age CLI (the record is skipped).
    let out = ws.command("age").args(["-d", "-i", "alice.txt", "secrets.env.age"]).run();
    out.expect(0);
    assert!(out.stdout().starts_with("# shared dev secrets"), "age -d gave another text");
    ws.envcloak().args(["rekey", "other.env.age"]).run().expect(0);
    ws.envcloak().args(["rekey", "--check", "other.env.age"]).run().expect(0);
}
