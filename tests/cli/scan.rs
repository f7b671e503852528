//! `envcloak scan`: finds the profile's values and their encoded forms in
//! files and in git history, flags plaintext dotenv files, and reports
//! `path:line: NAME` without ever printing a value.

use crate::support::{Workspace, PROJECT_TOML};

const API_TOKEN: &str = "fake-api-token-7Qx9";
const DB_URL: &str = "postgresql://app:fake pass/word@db/app";
const SIGNATURE: &str = "fake-signature-line-one\nfake-signature-line-two";

fn project() -> Workspace {
    let dotenv = format!(
        "API_TOKEN={API_TOKEN}\nDB_URL=\"{DB_URL}\"\nSIGNATURE=\"{}\"\nPORT=8080\n",
        SIGNATURE.replace('\n', "\\n")
    );
    let (ws, _) = Workspace::project(&dotenv);
    for value in [API_TOKEN, DB_URL, SIGNATURE, "fake-signature-line-one", "fake-signature-line-two"] {
        ws.secret(value);
    }
    ws
}

fn git(ws: &Workspace, args: &[&str]) {
    ws.command("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.test", "-c", "init.defaultBranch=main"])
        .args(args)
        .run()
        .expect(0);
}

const VALUES: [&str; 3] = [API_TOKEN, DB_URL, SIGNATURE];

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn a_clean_folder_passes_with_a_summary() {
    require!(Age);
    let ws = project();
    ws.write("app.py", "import os\nTOKEN = os.environ[\"API_TOKEN\"]\n");
    let out = ws.envcloak().arg("scan").run();
    out.expect(0).no_leak(&VALUES);
    assert_eq!(out.stdout(), "", "no findings expected\n{}", out.diag());
    out.stderr_has(&["no secret found", "for 3 secrets", "1 shorter than 8 bytes not searched"]);
    // -v names what was not searched; -q says nothing.
    ws.envcloak().args(["scan", "-v"]).run().expect(0).stderr_has(&["not searched for", "PORT"]);
    let quiet = ws.envcloak().args(["scan", "-q"]).run();
    quiet.expect(0);
    assert_eq!(quiet.stderr(), "", "-q prints nothing\n{}", quiet.diag());
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn a_pasted_value_and_its_encoded_forms_are_reported_by_name_and_line() {
    require!(Age);
    let ws = project();
    let b64 = "ZmFrZS1hcGktdG9rZW4tN1F4OQ=="; // base64 of API_TOKEN
    let url = "postgresql%3A%2F%2Fapp%3Afake%20pass%2Fword%40db%2Fapp"; // encodeURIComponent(DB_URL)
    ws.secret(b64);
    ws.secret(url);
    ws.write("app.py", format!("import os\n\nTOKEN = \"{API_TOKEN}\"\n"));
    ws.write("src/config.py", format!("# header\nENCODED = \"{b64}\"\nLINK = \"?db={url}\"\n"));
    ws.write("notes.json", "{\"sig\": \"fake-signature-line-one\\nfake-signature-line-two\"}\n");
    ws.write("mail.txt", "Regards,\nfake-signature-line-two\n");
    let out = ws.envcloak().arg("scan").run();
    out.expect(1).no_leak(&VALUES);
    let expected = [
        "app.py:3: API_TOKEN",
        "mail.txt:2: SIGNATURE (one line of the value)",
        "notes.json:1: SIGNATURE (JSON-escaped)",
        "src/config.py:2: API_TOKEN (base64)",
        "src/config.py:3: DB_URL (URL-encoded)",
    ];
    let lines: Vec<&str> =
        out.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| std::str::from_utf8(l).unwrap()).collect();
    assert_eq!(lines, expected, "\n{}", out.diag());
    out.stderr_has(&["5 findings in 4 files"]);
    // Named files are searched alone (a pre-commit hook passes them).
    let out = ws.envcloak().args(["scan", "mail.txt", "src"]).run();
    out.expect(1).no_leak(&VALUES);
    assert_eq!(out.stdout().lines().count(), 3, "\n{}", out.diag());
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn gitignore_is_respected_unless_no_ignore() {
    require!(Age);
    let ws = project();
    ws.write(".gitignore", "build/\n*.log\n");
    ws.write("build/app.js", format!("const t = '{API_TOKEN}';\n"));
    ws.write("debug.log", format!("token={API_TOKEN}\n"));
    ws.envcloak().arg("scan").run().expect(0).no_leak(&VALUES);
    let out = ws.envcloak().args(["scan", "--no-ignore"]).run();
    out.expect(1).no_leak(&VALUES);
    assert!(out.stdout().contains("build/app.js:1: API_TOKEN"), "\n{}", out.diag());
    assert!(out.stdout().contains("debug.log:1: API_TOKEN"), "\n{}", out.diag());
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn plaintext_dotenv_files_that_define_a_secret_name_are_flagged() {
    require!(Age);
    let ws = project();
    ws.write(".env", "# local\nDEBUG=1\nexport API_TOKEN=something-else-entirely\nDB_URL=\n");
    ws.write(".env.example", "API_TOKEN=put-yours-here\n");
    ws.write("config/prod.env", "SIGNATURE='other text'\n");
    let out = ws.envcloak().arg("scan").run();
    out.expect(1).no_leak(&VALUES);
    assert_eq!(
        out.stdout(),
        ".env:3: API_TOKEN (defined in a plaintext dotenv file)\n\
         config/prod.env:1: SIGNATURE (defined in a plaintext dotenv file)\n",
        "\n{}",
        out.diag()
    );
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_git, ignore = "needs git: apt-get install git")]
fn history_finds_a_value_that_a_later_commit_removed() {
    require!(Age, Git);
    let ws = project();
    std::fs::write(ws.join(".gitignore"), "key.txt\n").unwrap();
    git(&ws, &["init", "-q"]);
    ws.write("app.py", "A = 1\nB = 2\n");
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "first"]);
    ws.write("app.py", format!("A = 1\nB = 2\nTOKEN = '{API_TOKEN}'\n"));
    git(&ws, &["commit", "-q", "-am", "oops"]);
    let leaked = ws.command("git").args(["rev-parse", "HEAD"]).run();
    let leaked = leaked.stdout().trim().to_owned();
    ws.write("app.py", "A = 1\nB = 2\n");
    git(&ws, &["commit", "-q", "-am", "remove the token"]);

    ws.envcloak().arg("scan").run().expect(0).no_leak(&VALUES);
    let out = ws.envcloak().args(["scan", "--history"]).run();
    out.expect(1).no_leak(&VALUES);
    assert_eq!(out.stdout(), format!("app.py:3: API_TOKEN (commit {})\n", &leaked[..12]), "\n{}", out.diag());
    out.stderr_has(&["and 3 commits"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_git, ignore = "needs git: apt-get install git")]
fn history_outside_a_repository_and_unresolvable_profiles_fail_with_125() {
    require!(Age, Git);
    let ws = project();
    let out = ws.envcloak().args(["scan", "--history"]).run();
    out.expect(125).stderr_has(&["not in a git repository", "hint:"]);

    let ws = Workspace::new();
    ws.write("envcloak.toml", PROJECT_TOML);
    let out = ws.envcloak().arg("scan").run();
    out.expect(125).stderr_has(&["cannot scan", "age://secrets.env.age", "every secret must resolve"]);
}

/// `scan` never reports clean when it did not look: history marked `-diff`
/// (or holding a NUL byte) is searched as text, a tracked file that
/// `.gitignore` also matches is searched, and a FIFO makes the scan fail
/// (even with `-q`, as the pre-commit hook runs it).
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn scan_does_not_report_clean_when_it_did_not_look() {
    require!(Age);
    let ws = project();
    git(&ws, &["init", "-q"]);
    ws.write(".gitattributes", "* -diff\n");
    ws.write("blob.bin", format!("\0binary {API_TOKEN}\n"));
    ws.write("tracked.log", format!("token: {API_TOKEN}\n"));
    git(&ws, &["add", "-f", ".gitattributes", "blob.bin", "tracked.log"]);
    git(&ws, &["commit", "-q", "-m", "add"]);
    ws.write(".gitignore", "*.log\n");
    git(&ws, &["rm", "-q", "--cached", "blob.bin"]);
    std::fs::remove_file(ws.join("blob.bin")).unwrap();
    git(&ws, &["add", ".gitignore"]);
    git(&ws, &["commit", "-q", "-m", "remove"]);

    let out = ws.envcloak().args(["scan", "--history"]).run();
    out.expect(1).no_leak(&VALUES);
    assert!(
        out.stdout().contains("tracked.log:1: API_TOKEN\n"),
        "the tracked, ignored file was not searched\n{}",
        out.diag()
    );
    assert!(
        out.stdout().contains("blob.bin:1: API_TOKEN (commit"),
        "history marked -diff was not searched\n{}",
        out.diag()
    );

    let clean = project();
    clean.command("mkfifo").arg(clean.join("pipe")).run().expect(0);
    let out = clean.envcloak().args(["-q", "scan"]).run();
    out.expect(125).stderr_has(&["not searched", "pipe"]);
}

/// A file name is escaped (a newline cannot fake a finding) and masked (a
/// file named after a secret is a finding, never printed in the clear).
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn file_names_are_escaped_and_masked() {
    require!(Age);
    let ws = project();
    ws.write(format!("notes-{API_TOKEN}.txt"), "nothing\n");
    ws.write("fake\napp.py:1: API_TOKEN", "nothing\n");
    let out = ws.envcloak().args(["scan"]).run();
    out.expect(1).no_leak(&VALUES);
    assert!(out.stdout().contains("notes-*****.txt: API_TOKEN (in the file name)"), "{}", out.diag());
    assert!(
        out.stdout().lines().all(|l| !l.starts_with("app.py:1:")),
        "a file name added a fake finding\n{}",
        out.diag()
    );
}
