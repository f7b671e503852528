//! The git drivers in a real repository: `git diff` and `git log -p` show
//! names and keyed fingerprints, never values; branches that add different
//! variables merge cleanly; both changing one variable conflict, with no
//! plaintext in the work tree or in `.git/`, and `edit` resolves it.

use crate::support::{contains, Workspace, BIN};

const VALUES: [&str; 4] = ["fake-git-one", "fake-git-two", "fake-git-ours", "fake-git-theirs"];

/// A repository with envcloak's drivers set up and one commit of
/// `secrets.env.age` (ONE, TWO).
fn repository() -> Workspace {
    let ws = Workspace::new();
    for value in VALUES {
        ws.secret(value);
    }
    let alice = ws.keygen("alice.txt");
    ws.write("recipients.txt", format!("{}\n", alice.recipient));
    ws.write(".gitignore", "alice.txt\n");
    ws.write(
        "envcloak.toml",
        "default_profile = \"dev\"\n\n[age]\nidentity = \"alice.txt\"\nrecipients_file = \"recipients.txt\"\n\n[profiles.dev]\nimport = [\"age://secrets.env.age\"]\n",
    );
    git(&ws, &["init", "-q", "-b", "main"]);
    git(&ws, &["config", "user.email", "dev@example.com"]);
    git(&ws, &["config", "user.name", "Dev"]);
    ws.envcloak().args(["git-setup", "--program", BIN]).run().expect(0);
    assert!(String::from_utf8(ws.read(".gitattributes")).unwrap().contains("*.env.age diff=envcloak merge=envcloak"));
    set(&ws, "ONE", VALUES[0]);
    set(&ws, "TWO", VALUES[1]);
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "secrets"]);
    ws
}

fn git(ws: &Workspace, args: &[&str]) -> String {
    let out = ws.command("git").args(args).run();
    out.expect(0);
    out.stdout()
}

fn set(ws: &Workspace, name: &str, value: &str) {
    ws.envcloak().args(["set", "secrets.env.age", name]).stdin(value).run().expect(0);
}

fn get(ws: &Workspace, name: &str) -> String {
    let out = ws.envcloak().args(["get", "secrets.env.age", name]).run();
    out.expect(0);
    out.stdout().trim_end_matches('\n').to_owned()
}

/// Every object git stores, and every file of the work tree and `.git/`,
/// holds none of the values.
fn assert_no_plaintext_stored(ws: &Workspace) {
    let objects = ws.command("git").args(["cat-file", "--batch-all-objects", "--batch"]).run();
    objects.expect(0);
    for (i, value) in VALUES.iter().enumerate() {
        assert!(!contains(&objects.stdout, value.as_bytes()), "value #{i} is in a git object");
        let found = crate::support::files_containing(&[(ws.path(), false)], value.as_bytes(), std::time::UNIX_EPOCH);
        assert!(found.is_empty(), "value #{i} is in {found:?}");
    }
}

#[test]
#[cfg_attr(missing_git, ignore = "needs git: apt-get install git")]
fn git_diff_and_log_show_names_and_fingerprints_never_values() {
    require!(Git);
    let ws = repository();
    set(&ws, "TWO", "fake-git-ours");
    let diff = ws.command("git").args(["diff"]).run();
    diff.expect(0).no_leak(&VALUES);
    let text = diff.stdout();
    assert!(text.contains("-TWO ") && text.contains("+TWO "), "the diff names the changed variable:\n{text}");
    assert!(!text.contains("-ONE") && !text.contains("+ONE"), "an unchanged variable shows as changed:\n{text}");
    git(&ws, &["commit", "-q", "-am", "change TWO"]);
    let log = ws.command("git").args(["log", "-p"]).run();
    log.expect(0).no_leak(&VALUES);
    assert!(log.stdout().contains("+TWO "), "git log -p shows the change");
    assert_no_plaintext_stored(&ws);

    // Without a key: the diff says so, and shows no value.
    std::fs::rename(ws.join("alice.txt"), ws.join("alice.moved")).unwrap();
    let out = ws.command("git").args(["log", "-p", "-1"]).run();
    out.expect(0).no_leak(&VALUES);
    assert!(out.stdout().contains("cannot decrypt with your identities"), "{}", out.diag());
}

#[test]
#[cfg_attr(missing_git, ignore = "needs git: apt-get install git")]
fn branches_adding_different_variables_merge_and_one_changed_twice_conflicts() {
    require!(Git);
    let ws = repository();
    git(&ws, &["checkout", "-q", "-b", "feature"]);
    set(&ws, "FEATURE", "fake-git-feature");
    git(&ws, &["commit", "-q", "-am", "feature"]);
    git(&ws, &["checkout", "-q", "main"]);
    set(&ws, "MAINLINE", "fake-git-mainline");
    git(&ws, &["commit", "-q", "-am", "mainline"]);
    let merged = ws.command("git").args(["merge", "-q", "--no-edit", "feature"]).run();
    merged.expect(0).no_leak(&VALUES);
    assert_eq!(get(&ws, "FEATURE"), "fake-git-feature");
    assert_eq!(get(&ws, "MAINLINE"), "fake-git-mainline");
    assert_eq!(get(&ws, "ONE"), VALUES[0]);

    // Both branches change TWO: a conflict, inside the encrypted file.
    git(&ws, &["checkout", "-q", "-b", "theirs"]);
    set(&ws, "TWO", VALUES[3]);
    git(&ws, &["commit", "-q", "-am", "theirs"]);
    git(&ws, &["checkout", "-q", "main"]);
    set(&ws, "TWO", VALUES[2]);
    git(&ws, &["commit", "-q", "-am", "ours"]);
    let conflicted = ws.command("git").args(["merge", "--no-edit", "theirs"]).run();
    assert_ne!(conflicted.code(), 0, "the merge must stop\n{}", conflicted.diag());
    conflicted.no_leak(&VALUES);
    assert!(conflicted.stderr().contains("TWO") || conflicted.stdout().contains("CONFLICT"), "{}", conflicted.diag());
    assert!(git(&ws, &["status", "--porcelain"]).contains("UU secrets.env.age"), "the file is marked conflicted");
    assert_no_plaintext_stored(&ws);
    let out = ws.envcloak().args(["run", "--", "true"]).run();
    out.expect(125).no_leak(&VALUES);

    // edit shows both sides; keeping theirs resolves it.
    ws.script(
        "resolve.sh",
        "#!/bin/sh\ngrep -q '^<<<<<<< ours$' \"$1\" && grep -q '^>>>>>>> theirs$' \"$1\" || exit 3\n\
         grep -v -e '^<<<<<<<' -e '^=======$' -e '^>>>>>>>' -e '^TWO=.*-ours$' \"$1\" > \"$1.new\" && mv \"$1.new\" \"$1\"\n",
    );
    ws.envcloak().args(["edit", "secrets.env.age"]).env("EDITOR", ws.join("resolve.sh")).run().expect(0);
    assert_eq!(get(&ws, "TWO"), VALUES[3]);
    assert_eq!(get(&ws, "FEATURE"), "fake-git-feature");
    git(&ws, &["commit", "-q", "-am", "merge theirs"]);
    assert_no_plaintext_stored(&ws);
}
