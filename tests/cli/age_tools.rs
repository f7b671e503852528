//! `keygen`, `encrypt`, `decrypt` and `edit`: interoperable with the `age`
//! CLI both ways, and `edit` leaves no plaintext behind.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::support::{files_containing, Workspace};

const PLAINTEXT: &str = "API_KEY=fake-age-tools-value\nMULTI=\"a\\nb\"\n";

fn age_decrypt(ws: &Workspace, key: &str, file: &str) -> Vec<u8> {
    let out = ws.command("age").args(["-d", "-i", key, file]).run();
    out.expect(0);
    out.stdout
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn envcloak_encrypt_then_age_decrypt() {
    require!(Age);
    let ws = Workspace::new();
    let id = ws.age_keygen("key.txt");
    ws.write("plain.env", PLAINTEXT);
    ws.envcloak().args(["encrypt", "-r", &id.recipient, "-o", "bin.age", "plain.env"]).run().expect(0);
    assert!(ws.read("bin.age").starts_with(b"age-encryption.org/v1\n"), "binary age format");
    assert!(
        age_decrypt(&ws, "key.txt", "bin.age") == PLAINTEXT.as_bytes(),
        "age -d gave a different plaintext (binary)"
    );

    let out = ws.envcloak().args(["encrypt", "-a", "-r", &id.recipient]).stdin(PLAINTEXT).run();
    out.expect(0);
    assert!(out.stdout.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"), "armored output");
    ws.write("armored.age", &out.stdout);
    assert!(
        age_decrypt(&ws, "key.txt", "armored.age") == PLAINTEXT.as_bytes(),
        "age -d gave a different plaintext (armored)"
    );

    // Arbitrary bytes survive too.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let out = ws.envcloak().args(["encrypt", "-r", &id.recipient]).stdin(&bytes).run();
    out.expect(0);
    ws.write("bytes.age", &out.stdout);
    assert!(age_decrypt(&ws, "key.txt", "bytes.age") == bytes, "binary content differs after a round trip");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn age_encrypt_then_envcloak_decrypt() {
    require!(Age);
    let ws = Workspace::new();
    let id = ws.keygen("key.txt");
    for armor in [false, true] {
        ws.age_encrypt("in.age", PLAINTEXT, &[&id.recipient], armor);
        let out = ws.envcloak().args(["decrypt", "-i", "key.txt", "in.age"]).run();
        out.expect(0);
        assert!(out.stdout == PLAINTEXT.as_bytes(), "envcloak decrypt gave a different plaintext (armor: {armor})");
        let out = ws.envcloak().args(["decrypt", "-i", "key.txt", "-o", "out.env"]).stdin(ws.read("in.age")).run();
        out.expect(0);
        assert!(ws.read("out.env") == PLAINTEXT.as_bytes(), "decrypt -o wrote a different plaintext");
        assert!(mode(&ws.join("out.env")) == 0o600, "decrypted file has mode {:o}", mode(&ws.join("out.env")));
        std::fs::remove_file(ws.join("out.env")).unwrap();
    }
    // A wrong identity fails with 125.
    let other = ws.age_keygen("other.txt");
    ws.age_encrypt("theirs.age", PLAINTEXT, &[&other.recipient], false);
    ws.envcloak()
        .args(["decrypt", "-i", "key.txt", "theirs.age"])
        .run()
        .expect(125)
        .stderr_has(&["no identity matched"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn recipients_file_flag_and_config() {
    require!(Age);
    let ws = Workspace::new();
    let one = ws.age_keygen("one.txt");
    let two = ws.keygen("two.txt");
    ws.write("recipients.txt", format!("# team\n{}\n\n  # laptop\n{}\n", one.recipient, two.recipient));
    ws.write("plain.env", PLAINTEXT);
    ws.envcloak().args(["encrypt", "-R", "recipients.txt", "-o", "flag.age", "plain.env"]).run().expect(0);
    for key in ["one.txt", "two.txt"] {
        assert!(age_decrypt(&ws, key, "flag.age") == PLAINTEXT.as_bytes(), "-R: {key} cannot decrypt");
    }
    // No recipients at all: a clear error.
    ws.envcloak().args(["encrypt", "-o", "none.age", "plain.env"]).run().expect(125).stderr_has(&["recipients"]);
    assert!(!ws.join("none.age").exists(), "an output file was created without recipients");
    // The config's recipients_file, relative to the config's folder.
    std::fs::create_dir(ws.join("sub")).unwrap();
    ws.write("envcloak.toml", "[age]\nrecipients_file = \"recipients.txt\"\n");
    ws.envcloak().current_dir(ws.join("sub")).args(["encrypt", "-o", "config.age", "../plain.env"]).run().expect(0);
    for key in ["one.txt", "two.txt"] {
        assert!(
            age_decrypt(&ws, key, "sub/config.age") == PLAINTEXT.as_bytes(),
            "recipients_file: {key} cannot decrypt"
        );
    }
    // -r replaces the configured recipients.
    ws.envcloak().args(["encrypt", "-r", &one.recipient, "-o", "only-one.age", "plain.env"]).run().expect(0);
    ws.command("age").args(["-d", "-i", "two.txt", "only-one.age"]).run().expect(1);
    // A bad line is named by file and line.
    ws.write("bad-recipients.txt", format!("{}\nnot-a-recipient\n", one.recipient));
    ws.envcloak()
        .args(["encrypt", "-R", "bad-recipients.txt", "plain.env"])
        .run()
        .expect(125)
        .stderr_has(&["bad-recipients.txt:2"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn keygen_file_is_private_not_overwritten_and_works_with_age() {
    require!(Age);
    let ws = Workspace::new();
    let out = ws.envcloak().args(["keygen", "-o", "key.txt"]).run();
    out.expect(0);
    assert!(out.stdout.is_empty(), "keygen -o prints nothing on stdout");
    let public = out.stderr().lines().find_map(|l| l.strip_prefix("Public key: ")).map(str::to_owned);
    let public = public.unwrap_or_else(|| panic!("no `Public key: age1…` line on stderr\n{}", out.diag()));
    assert!(public.starts_with("age1"), "public key {public}");
    assert!(mode(&ws.join("key.txt")) == 0o600, "identity file mode {:o}", mode(&ws.join("key.txt")));
    let derived = ws.command("age-keygen").args(["-y", "key.txt"]).run();
    derived.expect(0);
    assert!(derived.stdout() == format!("{public}\n"), "age-keygen -y derives a different public key");
    ws.age_encrypt("x.age", PLAINTEXT, &[&public], false);
    assert!(age_decrypt(&ws, "key.txt", "x.age") == PLAINTEXT.as_bytes(), "age cannot use the identity");

    let before = ws.read("key.txt");
    let again = ws.envcloak().args(["keygen", "-o", "key.txt"]).run();
    again.expect(125).stderr_has(&["key.txt", "exists"]);
    assert!(ws.read("key.txt") == before, "keygen overwrote an identity");

    // To stdout (a pipe): the identity on stdout, the public key on stderr.
    let out = ws.envcloak().arg("keygen").run();
    out.expect(0);
    assert!(out.stdout().lines().any(|l| l.starts_with("AGE-SECRET-KEY-1")), "identity on stdout");
    assert!(out.stderr().contains("Public key: age1"), "public key on stderr");
}

/// An editor script that appends `$EDITOR_LINE` (so the script itself
/// holds no value) and records the path it was given.
fn editor(ws: &Workspace) -> String {
    let script = format!(
        "#!/bin/sh\nprintf '%s' \"$1\" > \"{}\"\nprintf '%s\\n' \"$EDITOR_LINE\" >> \"$1\"\n",
        ws.join("edited-path").display()
    );
    ws.script("editor.sh", &script).display().to_string()
}

fn assert_no_plaintext_left(ws: &Workspace, canary: &str, since: SystemTime) {
    let edited = String::from_utf8(ws.read("edited-path")).unwrap();
    assert!(!Path::new(&edited).exists(), "the plaintext {edited} is still there");
    if let Some(folder) = Path::new(&edited).parent() {
        assert!(!folder.exists(), "the private folder {} is still there", folder.display());
    }
    let tmp = ws.join("tmp");
    let leftovers: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().map(|e| e.path()).collect();
    assert!(leftovers.is_empty(), "left in TMPDIR: {leftovers:?}");
    let found = files_containing(
        &[(Path::new("/dev/shm"), false), (&tmp, false), (Path::new("/tmp"), true)],
        canary.as_bytes(),
        since - Duration::from_secs(2),
    );
    assert!(found.is_empty(), "plaintext left in {found:?}");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn edit_reencrypts_the_edited_text() {
    require!(Age);
    let canary =
        format!("fake-edit-canary-{}", SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos());
    let (ws, id) = Workspace::project(&format!("OLD={canary}\n"));
    ws.secret(&canary);
    std::fs::create_dir(ws.join("tmp")).unwrap();
    ws.write("recipients.txt", format!("{}\n", id.recipient));
    ws.write(
        "envcloak.toml",
        "default_profile = \"dev\"\n[age]\nidentity = \"key.txt\"\nrecipients_file = \"recipients.txt\"\n[profiles.dev]\nimport = [\"age://secrets.env.age\"]\n",
    );
    let since = SystemTime::now();
    let editor = editor(&ws);
    let out = ws
        .envcloak()
        .env("EDITOR", &editor)
        .env("EDITOR_LINE", "NEW=fake-new-value")
        .env("TMPDIR", ws.join("tmp"))
        .args(["edit", "secrets.env.age"])
        .run();
    out.expect(0).no_leak(&[&canary]);
    let plain = age_decrypt(&ws, "key.txt", "secrets.env.age");
    assert!(
        plain == format!("OLD={canary}\nNEW=fake-new-value\n").as_bytes(),
        "the re-encrypted file holds different text"
    );
    let env = ws.envcloak().args(["run", "--", "env", "-0"]).run();
    env.expect(0);
    assert!(
        crate::support::parse_env0(&env.stdout).get("NEW").map(String::as_str) == Some("fake-new-value"),
        "run sees a different NEW"
    );
    assert_no_plaintext_left(&ws, &canary, since);

    // An armored file stays armored; VISUAL wins over EDITOR.
    ws.age_encrypt("armored.env.age", format!("OLD={canary}\n"), &[&id.recipient], true);
    let out = ws
        .envcloak()
        .env("VISUAL", &editor)
        .env("EDITOR_LINE", "NEW=fake-new-value")
        .env("EDITOR", "false")
        .env("TMPDIR", ws.join("tmp"))
        .args(["edit", "-r", &id.recipient, "armored.env.age"])
        .run();
    out.expect(0);
    assert!(ws.read("armored.env.age").starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"), "armor was dropped");
    assert!(
        age_decrypt(&ws, "key.txt", "armored.env.age").ends_with(b"NEW=fake-new-value\n"),
        "armored edit lost the change"
    );
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn edit_with_an_invalid_result_leaves_the_file_unchanged() {
    require!(Age);
    let canary =
        format!("fake-edit-bad-{}", SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos());
    let (ws, id) = Workspace::project(&format!("OLD={canary}\n"));
    ws.secret(&canary);
    std::fs::create_dir(ws.join("tmp")).unwrap();
    let before = ws.read("secrets.env.age");
    let since = SystemTime::now();
    for (case, line) in [("unparsable line", "THIS LINE {canary} IS BAD"), ("invalid name", "bad-name=fake-x")] {
        let line = line.replace("{canary}", &canary);
        let editor = editor(&ws);
        let out = ws
            .envcloak()
            .env("EDITOR", &editor)
            .env("EDITOR_LINE", &line)
            .env("TMPDIR", ws.join("tmp"))
            .args(["edit", "-r", &id.recipient, "secrets.env.age"])
            .run();
        out.expect(125).no_leak(&[&canary]);
        assert!(ws.read("secrets.env.age") == before, "{case}: the file was changed");
        assert_no_plaintext_left(&ws, &canary, since);
    }
    // A failing editor changes nothing either.
    let out = ws
        .envcloak()
        .env("EDITOR", "false")
        .env("TMPDIR", ws.join("tmp"))
        .args(["edit", "-r", &id.recipient, "secrets.env.age"])
        .run();
    out.expect(125);
    assert!(ws.read("secrets.env.age") == before, "failing editor: the file was changed");
}

/// Ctrl-C in a terminal goes to the whole foreground process group: the
/// editor (which, like vim, ignores it) and envcloak. envcloak must not die
/// of it and leave the plaintext behind; a hangup must not leave it either.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn edit_survives_signals_to_the_terminal_group() {
    require!(Age);
    let canary =
        format!("fake-edit-signal-{}", SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos());
    let (ws, id) = Workspace::project(&format!("OLD={canary}\n"));
    ws.secret(&canary);
    std::fs::create_dir(ws.join("tmp")).unwrap();
    // The editor ignores the signal, sends it to its process group (as the
    // terminal would), then saves a change.
    let script = format!(
        "#!/bin/sh\ntrap '' INT HUP\nprintf '%s' \"$1\" > \"{}\"\nkill -$EDITOR_SIGNAL 0\nsleep 0.2\nprintf 'NEW=fake-after-signal\\n' >> \"$1\"\n",
        ws.join("edited-path").display()
    );
    let editor = ws.script("signal-editor.sh", &script);
    let mut problems = Vec::new();
    for signal in ["INT", "HUP"] {
        let out = ws
            .envcloak()
            .env("EDITOR", &editor)
            .env("EDITOR_SIGNAL", signal)
            .env("TMPDIR", ws.join("tmp"))
            .args(["edit", "-r", &id.recipient, "secrets.env.age"])
            .run();
        std::thread::sleep(Duration::from_millis(300)); // let an orphaned editor finish
        let edited = String::from_utf8(ws.read("edited-path")).unwrap();
        let folder = Path::new(&edited).parent().unwrap().to_owned();
        if folder.exists() {
            problems.push(format!(
                "SIG{signal}: envcloak ended with {} and left the plaintext in {}",
                out.code(),
                folder.display()
            ));
            if folder.file_name().is_some_and(|n| n.to_string_lossy().starts_with("envcloak-edit-")) {
                let _ = std::fs::remove_dir_all(&folder); // do not leave the (fake) plaintext around
            }
        }
        let saved = age_decrypt(&ws, "key.txt", "secrets.env.age").ends_with(b"NEW=fake-after-signal\n");
        if signal == "INT" && (out.code() != 0 || !saved) {
            problems.push(format!(
                "SIGINT (Ctrl-C): envcloak ended with {} and the edit was {}",
                out.code(),
                if saved { "saved" } else { "lost" }
            ));
        }
    }
    assert!(problems.is_empty(), "signals to the terminal's process group during edit:\n  {}", problems.join("\n  "));
}

/// Stock vim writes deleted lines to `~/.viminfo`; envcloak runs vim with no
/// viminfo, swap, undo or backup files. The editor does not get the
/// withheld credentials either.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_vim, ignore = "needs vim: apt-get install vim")]
fn edit_keeps_vim_history_off_and_credentials_out_of_the_editor() {
    require!(Age, Vim);
    let (ws, id) = Workspace::project("KEEP=fake-kept-line\nDROP=fake-deleted-line-value\n");
    ws.secret("fake-deleted-line-value");
    ws.write("recipients.txt", format!("{}\n", id.recipient));
    let key = std::fs::read_to_string(ws.join("key.txt")).unwrap();
    let key_line = key.lines().find(|l| l.starts_with("AGE-SECRET-KEY-")).unwrap().to_owned();
    ws.secret(&key_line);
    let out = ws
        .envcloak()
        .env("EDITOR", "vim -c 'g/DROP/d' -c wq")
        .env("ENVCLOAK_AGE_KEY", &key_line)
        .args(["edit", "-R", "recipients.txt", "secrets.env.age"])
        .stdin("")
        .run();
    out.expect(0);
    let plain = age_decrypt(&ws, "key.txt", "secrets.env.age");
    assert_eq!(plain, b"KEEP=fake-kept-line\n", "vim's edit was not saved");
    let found = files_containing(&[(ws.path(), true)], b"fake-deleted-line-value", SystemTime::UNIX_EPOCH);
    assert!(found.is_empty(), "the deleted line was written to {found:?}");

    // The editor's environment holds no withheld credential.
    let script = format!("#!/bin/sh\nenv > \"{}\"\n", ws.join("editor-env").display());
    let dump = ws.script("dump-env.sh", &script).display().to_string();
    ws.envcloak()
        .env("EDITOR", &dump)
        .env("ENVCLOAK_AGE_KEY", &key_line)
        .env("VAULT_TOKEN", "fake-editor-vault-token")
        .args(["edit", "-R", "recipients.txt", "secrets.env.age"])
        .run()
        .expect(0);
    let env = String::from_utf8(ws.read("editor-env")).unwrap();
    assert!(
        !env.contains("AGE-SECRET-KEY-") && !env.contains("fake-editor-vault-token"),
        "the editor got a credential"
    );
}
