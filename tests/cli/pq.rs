//! Hybrid post-quantum recipients (`age1pq1…`, `AGE-SECRET-KEY-PQ-1…`):
//! `keygen --pq`, `encrypt`, `decrypt`, `edit` and `run`, interoperable both
//! ways with typage (npm `age-encryption` 0.3.1 under node, installed by
//! .ci/run into tests/pq/node_modules; see tests/pq/typage.mjs).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{chmod, need, npm_dir, parse_env0, Identity, Tool, Workspace, CLI_DIR};

const PLAINTEXT: &str = "API_KEY=fake-pq-value\nMULTI=\"a\\nb\"\n";

fn typage_script() -> String {
    format!("{CLI_DIR}/../pq/typage.mjs")
}

/// `node tests/pq/typage.mjs ARGS…` in the workspace, with `stdin`.
fn typage(ws: &Workspace, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    need(Tool::Typage);
    let out = ws.command("node").arg(typage_script()).args(args).stdin(stdin).env("ENVCLOAK_NPM_DIR", npm_dir()).run();
    out.expect(0);
    out.stdout
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The environment the child of `cmd run ARGS… --` saw (written to a file,
/// as supervised mode masks the values in its output).
fn child_env(ws: &Workspace, cmd: crate::support::Cmd, args: &[&str]) -> BTreeMap<String, String> {
    let file = ws.join("child.env0");
    let _ = std::fs::remove_file(&file);
    cmd.arg("run").args(args).args(["--", "sh", "-c", "exec env -0 > child.env0"]).run().expect(0);
    parse_env0(&ws.read("child.env0"))
}

/// `envcloak keygen --pq -o rel`.
fn keygen_pq(ws: &Workspace, rel: &str) -> Identity {
    ws.envcloak().args(["keygen", "--pq", "-o", rel]).run().expect(0);
    Identity::load(&ws.join(rel))
}

#[test]
fn pq_keygen_writes_a_private_file_with_the_public_key_comment() {
    let ws = Workspace::new();
    let out = ws.envcloak().args(["keygen", "--pq", "-o", "pq.txt"]).run();
    out.expect(0);
    assert!(mode(&ws.join("pq.txt")) == 0o600, "identity file mode {:o}", mode(&ws.join("pq.txt")));
    let text = String::from_utf8(ws.read("pq.txt")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() == 3 && lines[0].starts_with("# created: "), "layout of the identity file");
    let recipient = lines[1].strip_prefix("# public key: ").expect("public key comment");
    assert!(recipient.starts_with("age1pq1") && recipient.len() > 1900, "a post-quantum recipient");
    assert!(lines[2].starts_with("AGE-SECRET-KEY-PQ-1"), "a post-quantum identity line");
    assert!(out.stderr() == format!("Public key: {recipient}\n"), "public key on stderr");
    // Not overwritten.
    ws.envcloak().args(["keygen", "--pq", "-o", "pq.txt"]).run().expect(125).stderr_has(&["already exists"]);
    assert!(ws.read("pq.txt") == text.as_bytes(), "the identity was changed");
    // To stdout when no file is named.
    let out = ws.envcloak().args(["keygen", "--pq"]).run();
    out.expect(0);
    assert!(out.stdout().lines().any(|l| l.starts_with("AGE-SECRET-KEY-PQ-1")), "identity on stdout");
}

#[test]
fn pq_envcloak_round_trip_and_a_wrong_identity() {
    let ws = Workspace::new();
    let id = keygen_pq(&ws, "key.txt");
    let other = keygen_pq(&ws, "other.txt");
    ws.write("plain.env", PLAINTEXT);
    for armor in [false, true] {
        let mut cmd = ws.envcloak().args(["encrypt", "-r", &id.recipient, "-o", "f.age"]);
        if armor {
            cmd = cmd.arg("-a");
        }
        cmd.arg("plain.env").run().expect(0);
        let file = ws.read("f.age");
        let text = String::from_utf8_lossy(&file).into_owned();
        assert!(armor || text.contains("\n-> mlkem768x25519 "), "an mlkem768x25519 stanza");
        let out = ws.envcloak().args(["decrypt", "-i", "key.txt", "f.age"]).run();
        out.expect(0);
        assert!(out.stdout == PLAINTEXT.as_bytes(), "decrypt gave a different plaintext (armor: {armor})");
        ws.envcloak()
            .args(["decrypt", "-i", &other.path.display().to_string(), "f.age"])
            .run()
            .expect(125)
            .stderr_has(&["no identity matched"]);
    }
    // An X25519 identity cannot open it either.
    ws.keygen("classic.txt");
    ws.envcloak()
        .args(["decrypt", "-i", "classic.txt", "f.age"])
        .run()
        .expect(125)
        .stderr_has(&["no identity matched"]);
}

#[test]
fn pq_mixed_with_classic_recipients_is_refused() {
    let ws = Workspace::new();
    let pq = keygen_pq(&ws, "pq.txt");
    let classic = ws.keygen("classic.txt");
    ws.write("plain.env", PLAINTEXT);
    ws.envcloak()
        .args(["encrypt", "-r", &pq.recipient, "-r", &classic.recipient, "-o", "mixed.age", "plain.env"])
        .run()
        .expect(125)
        .stderr_has(&["post-quantum", "classic", "keygen --pq"]);
    assert!(!ws.join("mixed.age").exists(), "an output file was written");
    // In a recipients file, the lines are named.
    ws.write("recipients.txt", format!("# team\n{}\n{}\n", pq.recipient, classic.recipient));
    ws.envcloak()
        .args(["encrypt", "-R", "recipients.txt", "-o", "mixed.age", "plain.env"])
        .run()
        .expect(125)
        .stderr_has(&["recipients.txt:2 is post-quantum", "recipients.txt:3 is not"]);
    assert!(!ws.join("mixed.age").exists(), "an output file was written");
    // A damaged age1pq1 key is named as such, without the key.
    let last = if pq.recipient.ends_with('q') { 'p' } else { 'q' };
    let damaged = format!("{}{last}", &pq.recipient[..pq.recipient.len() - 1]);
    ws.envcloak()
        .args(["encrypt", "-r", &damaged, "plain.env"])
        .run()
        .expect(125)
        .stderr_has(&["-r: not a valid post-quantum recipient"]);
}

#[test]
fn pq_edit_and_run_with_a_mixed_identity_file() {
    let ws = Workspace::new();
    let pq = keygen_pq(&ws, "pq.txt");
    let classic = ws.keygen("classic.txt");
    // One identity file with both kinds of key.
    let both = format!(
        "{}{}",
        String::from_utf8(ws.read("classic.txt")).unwrap(),
        String::from_utf8(ws.read("pq.txt")).unwrap()
    );
    ws.write("key.txt", both);
    chmod(&ws.join("key.txt"), 0o600);
    ws.write("recipients.txt", format!("{}\n", pq.recipient));
    ws.envcloak().args(["encrypt", "-R", "recipients.txt", "-o", "secrets.env.age"]).stdin(PLAINTEXT).run().expect(0);
    ws.envcloak()
        .args(["encrypt", "-r", &classic.recipient, "-o", "classic.env.age"])
        .stdin("CLASSIC=fake-classic\n")
        .run()
        .expect(0);
    ws.write(
        "envcloak.toml",
        "default_profile = \"dev\"\n[age]\nidentity = \"key.txt\"\nrecipients_file = \"recipients.txt\"\n[profiles.dev]\nimport = [\"age://secrets.env.age\", \"age://classic.env.age\"]\n",
    );
    let editor = ws.script("editor.sh", "#!/bin/sh\nprintf '%s\\n' \"$EDITOR_LINE\" >> \"$1\"\n");
    ws.envcloak()
        .env("EDITOR", &editor)
        .env("EDITOR_LINE", "NEW=fake-new-pq")
        .args(["edit", "secrets.env.age"])
        .run()
        .expect(0)
        .stderr_has(&["re-encrypted to 1 recipient"]);
    assert!(
        String::from_utf8_lossy(&ws.read("secrets.env.age")).contains("\n-> mlkem768x25519 "),
        "edit kept the post-quantum recipient"
    );
    for (mode, flags) in crate::support::MODES {
        let env = child_env(&ws, ws.envcloak(), flags);
        for (name, value) in [("API_KEY", "fake-pq-value"), ("NEW", "fake-new-pq"), ("CLASSIC", "fake-classic")] {
            assert!(env.get(name).map(String::as_str) == Some(value), "{mode}: run sees a different {name}");
        }
    }
}

#[test]
fn pq_identity_from_envcloak_age_key() {
    let ws = Workspace::new();
    let out = ws.envcloak().args(["keygen", "--pq"]).run();
    out.expect(0);
    let text = out.stdout();
    let key = text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-PQ-1")).expect("identity line").to_owned();
    ws.secret(&key);
    let recipient = text.lines().find_map(|l| l.strip_prefix("# public key: ")).expect("public key comment").to_owned();
    ws.envcloak().args(["encrypt", "-r", &recipient, "-o", "secrets.env.age"]).stdin(PLAINTEXT).run().expect(0);
    let out = ws
        .envcloak()
        .env("ENVCLOAK_AGE_KEY", &key)
        .args(["run", "-i", "age://secrets.env.age", "--", "env", "-0"])
        .run();
    out.expect(0).no_leak(&[&key]);
    let env = parse_env0(&out.stdout);
    assert!(env.get("API_KEY").map(String::as_str) == Some("fake-pq-value"), "ENVCLOAK_AGE_KEY: API_KEY");
}

#[test]
#[cfg_attr(
    missing_typage,
    ignore = "needs node and typage: npm install --no-save --prefix tests/pq cctv-age@0.2.0 age-encryption@0.3.1"
)]
fn pq_envcloak_encrypts_typage_decrypts() {
    let ws = Workspace::new();
    let id = keygen_pq(&ws, "key.txt");
    // typage derives the same recipient from envcloak's identity.
    let derived = typage(&ws, &["to-recipient", "key.txt"], b"");
    assert!(String::from_utf8(derived).unwrap().trim() == id.recipient, "typage derives another recipient");
    let second = keygen_pq(&ws, "second.txt");
    ws.write("recipients.txt", format!("{}\n{}\n", id.recipient, second.recipient));
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    for (name, plaintext) in [("dotenv", PLAINTEXT.as_bytes()), ("bytes", &bytes[..])] {
        let out = ws.envcloak().args(["encrypt", "-R", "recipients.txt"]).stdin(plaintext).run();
        out.expect(0);
        for key in ["key.txt", "second.txt"] {
            assert!(
                typage(&ws, &["decrypt", key], &out.stdout) == plaintext,
                "typage decrypted a different {name} plaintext with {key}"
            );
        }
    }
}

#[test]
#[cfg_attr(
    missing_typage,
    ignore = "needs node and typage: npm install --no-save --prefix tests/pq cctv-age@0.2.0 age-encryption@0.3.1"
)]
fn pq_typage_encrypts_envcloak_decrypts_and_runs() {
    let ws = Workspace::new();
    // A key pair made by typage…
    let generated = String::from_utf8(typage(&ws, &["keygen-pq"], b"")).unwrap();
    let (identity, recipient) = generated.trim().split_once('\n').expect("identity and recipient");
    assert!(identity.starts_with("AGE-SECRET-KEY-PQ-1") && recipient.starts_with("age1pq1"), "typage's keys");
    ws.write("typage-key.txt", format!("# public key: {recipient}\n{identity}\n"));
    chmod(&ws.join("typage-key.txt"), 0o600);
    // …and one made by envcloak.
    let ours = keygen_pq(&ws, "key.txt");
    let file = typage(&ws, &["encrypt", recipient, &ours.recipient], PLAINTEXT.as_bytes());
    assert!(String::from_utf8_lossy(&file).contains("\n-> mlkem768x25519 "), "typage wrote mlkem768x25519 stanzas");
    ws.write("secrets.env.age", &file);
    for key in ["typage-key.txt", "key.txt"] {
        let out = ws.envcloak().args(["decrypt", "-i", key, "secrets.env.age"]).run();
        out.expect(0);
        assert!(out.stdout == PLAINTEXT.as_bytes(), "envcloak decrypt with {key} gave a different plaintext");
        for (mode, flags) in crate::support::MODES {
            let mut args = vec!["-i", "age://secrets.env.age"];
            args.extend_from_slice(flags);
            let env = child_env(&ws, ws.envcloak().env("ENVCLOAK_AGE_KEY_FILE", key), &args);
            assert!(env.get("API_KEY").map(String::as_str) == Some("fake-pq-value"), "{mode} run with {key}: API_KEY");
            assert!(env.get("MULTI").map(String::as_str) == Some("a\nb"), "{mode} run with {key}: MULTI");
        }
    }
    // envcloak's recipient computed from typage's identity is typage's.
    ws.envcloak().args(["encrypt", "-r", recipient, "-o", "back.age"]).stdin(PLAINTEXT).run().expect(0);
    assert!(
        typage(&ws, &["decrypt", "typage-key.txt"], &ws.read("back.age")) == PLAINTEXT.as_bytes(),
        "round trip back"
    );
}

#[test]
fn pq_damaged_identity_line_is_named_not_shown() {
    let ws = Workspace::new();
    let id = keygen_pq(&ws, "key.txt");
    ws.envcloak().args(["encrypt", "-r", &id.recipient, "-o", "f.age"]).stdin(PLAINTEXT).run().expect(0);
    let text = String::from_utf8(ws.read("key.txt")).unwrap();
    let key = text.lines().last().unwrap();
    // One character changed: the Bech32 checksum no longer matches.
    let last = if key.ends_with('Q') { 'P' } else { 'Q' };
    let damaged = format!("{}{last}", &key[..key.len() - 1]);
    ws.secret(&damaged);
    ws.secret(key);
    ws.write("bad.txt", format!("# a comment\n\n{damaged}\n"));
    chmod(&ws.join("bad.txt"), 0o600);
    ws.envcloak()
        .args(["decrypt", "-i", "bad.txt", "f.age"])
        .run()
        .expect(125)
        .stderr_has(&["line 3 is not an identity", "not valid Bech32"])
        .no_leak(&[&damaged, &key[20..]]);
}
