//! Leak canary: with the most diagnostics (`-vvv`), no command ever prints a
//! secret value on envcloak's own stdout or stderr; and a supervising
//! envcloak's memory and environment are closed to its own user.

use crate::support::{contains, Workspace};

const CANARY: &str = "fake-leak-canary-0xC0FFEE";
const CANARY2: &str = "fake-second-canary-multi\nline";

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn no_command_prints_a_value_even_with_vvv() {
    require!(Age);
    let (ws, id) =
        Workspace::project(&format!("API_KEY={CANARY}\nPEM=\"{}\"\nSHORT=ab\n", CANARY2.replace('\n', "\\n")));
    ws.secret(CANARY);
    ws.age_encrypt("bad.env.age", format!("GOOD=fake-good\nBAD {CANARY} here\n"), &[&id.recipient], false);
    ws.age_encrypt("names.env.age", format!("bad-name={CANARY}\n"), &[&id.recipient], false);
    ws.script("editor.sh", "#!/bin/sh\nexit 0\n");
    let secret_key = std::fs::read_to_string(ws.join("key.txt")).unwrap().lines().last().unwrap().to_owned();
    ws.secret(&secret_key);

    let cases: Vec<(&str, Vec<&str>, i32)> = vec![
        ("run, exec", vec!["run", "--", "true"], 0),
        ("run, supervised", vec!["run", "--mask", "--", "true"], 0),
        (
            "run, clean env with -e and -i",
            vec![
                "run",
                "--clean-env",
                "-e",
                "X=age://secrets.env.age#API_KEY",
                "-i",
                "age://secrets.env.age",
                "--",
                "true",
            ],
            0,
        ),
        ("run, --no-override", vec!["run", "-e", "X=age://secrets.env.age#API_KEY", "--no-override", "--", "true"], 0),
        ("check", vec!["check"], 0),
        ("check --format json", vec!["check", "--format", "json"], 0),
        ("check with a failure", vec!["check", "-e", "MISSING=age://secrets.env.age#NOPE"], 1),
        ("run with a missing key", vec!["run", "-e", "MISSING=age://secrets.env.age#NOPE", "--", "true"], 125),
        ("run with a bad dotenv line", vec!["run", "-i", "age://bad.env.age", "--", "true"], 125),
        ("run with a bad name", vec!["run", "-i", "age://names.env.age", "--", "true"], 125),
        ("run, command not found", vec!["run", "--", "envcloak-no-such-command"], 127),
        ("run, supervised, command not found", vec!["run", "--mask", "--", "envcloak-no-such-command"], 127),
        ("scan", vec!["scan"], 0),
        ("decrypt -o", vec!["decrypt", "-i", "key.txt", "-o", "plain.env", "secrets.env.age"], 0),
        ("scan finding the decrypted file", vec!["scan", "plain.env"], 1),
        ("encrypt -o", vec!["encrypt", "-r", &id.recipient, "-o", "again.env.age", "plain.env"], 0),
        ("encrypt -a to stdout", vec!["encrypt", "-a", "-r", &id.recipient, "plain.env"], 0),
        ("keygen -o", vec!["keygen", "-o", "new-key.txt"], 0),
        ("edit without changes", vec!["edit", "-r", &id.recipient, "secrets.env.age"], 0),
    ];
    for (case, args, code) in &cases {
        let out = ws.envcloak().env("EDITOR", ws.join("editor.sh")).arg("-vvv").args(args).run();
        assert!(out.code() == *code, "{case}: expected exit {code}\n{}", out.diag());
        out.no_leak(&[CANARY, CANARY2, "fake-second-canary-multi", &secret_key, "fake-good"]);
        if *case == "decrypt -o" {
            assert!(contains(&ws.read("plain.env"), CANARY.as_bytes()), "decrypt -o wrote the plaintext to the file");
        }
    }
    let new_key = std::fs::read_to_string(ws.join("new-key.txt")).unwrap();
    let new_secret = new_key.lines().last().unwrap();
    assert!(new_secret.starts_with("AGE-SECRET-KEY-1"), "keygen wrote an identity");
}

/// The new identity of `keygen -o` is not printed either.
#[test]
fn keygen_to_file_prints_only_the_public_key() {
    let ws = Workspace::new();
    let out = ws.envcloak().args(["-vvv", "keygen", "-o", "k.txt"]).run();
    out.expect(0);
    let key = std::fs::read_to_string(ws.join("k.txt")).unwrap();
    let secret = key.lines().last().unwrap();
    ws.secret(secret);
    out.no_leak(&[secret, "AGE-SECRET-KEY"]);
}

/// While it supervises, envcloak is not dumpable: the kernel hands its
/// /proc files to root, and a process of the same user (here, its own
/// child) can read neither its environment nor its memory. As root, the
/// test runs envcloak as `nobody` (setpriv), since root may read anything.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_setpriv, ignore = "needs setpriv: apt-get install util-linux")]
fn a_supervising_envcloak_is_not_dumpable_so_its_own_user_cannot_read_it() {
    require!(Age);
    let canary = "fake-dumpable-canary-5821";
    let (ws, _) = Workspace::project(&format!("API_KEY={canary}\n"));
    let probe = "stat -c %u /proc/$PPID/status > envcloak-owner; stat -c %u /proc/$$/status > child-owner; \
                 if cat /proc/$PPID/environ > /dev/null 2>&1; then echo readable; else echo refused; fi > environ; \
                 if cat /proc/$PPID/mem > /dev/null 2>&1; then echo readable; else echo refused; fi > mem";
    let as_root = current_uid() == 0;
    let mut command = if as_root {
        require!(Setpriv);
        // nobody must own the workspace (and so the identity file) to use it.
        let status = std::process::Command::new("chown").args(["-R", "65534:65534"]).arg(ws.path()).status();
        assert!(status.is_ok_and(|s| s.success()), "chown -R nobody the workspace");
        ws.command("setpriv").args(["--reuid=65534", "--regid=65534", "--clear-groups", crate::support::BIN])
    } else {
        ws.envcloak()
    };
    command = command.args(["run", "--mask", "--", "sh", "-c", probe]);
    let out = command.run();
    out.expect(0).no_leak(&[canary]);
    let read = |name: &str| String::from_utf8(ws.read(name)).unwrap().trim().to_owned();
    assert_ne!(read("child-owner"), "0", "the child should run as an ordinary user\n{}", out.diag());
    assert_eq!(read("envcloak-owner"), "0", "envcloak's /proc files belong to root: not dumpable\n{}", out.diag());
    assert_eq!(read("environ"), "refused", "the same user read envcloak's environment");
    assert_eq!(read("mem"), "refused", "the same user read envcloak's memory");
}

/// The real user id, from `id -u`.
fn current_uid() -> u32 {
    let out = std::process::Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a numeric uid")
}
