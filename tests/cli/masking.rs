//! Masking in supervised mode: `--mask`, on by default when `CI` is true,
//! off with `--no-mask`; values split across writes are masked too, and
//! interactive output still flows.

use std::time::Duration;

use crate::support::{contains, count, Cmd, Workspace};

const SECRET: &str = "fake-secret-value";
const OTHER: &str = "fake-other-secret";

fn project() -> Workspace {
    let (ws, _) = Workspace::project(&format!("SECRET={SECRET}\nOTHER={OTHER}\nSHORT=abc\n"));
    ws.secret(SECRET);
    ws.secret(OTHER);
    ws
}

/// Prints the secret on stdout and stderr, whole and split across two writes
/// with a pause in between, plus the other secret and a short value.
const PRINTER: &str = r#"
echo "whole: $SECRET and $OTHER; short=$SHORT"
printf 'split: fake-sec'; sleep 0.05; printf 'ret-value\n'
echo "whole: $SECRET" >&2
printf 'split: fake-sec' >&2; sleep 0.05; printf 'ret-value\n' >&2
printf 'at the end without newline: %s' "$SECRET"
"#;

fn print(cmd: Cmd, flags: &[&str]) -> crate::support::Out {
    let out = cmd.arg("run").args(flags).args(["--", "sh", "-c", PRINTER]).run();
    out.expect(0);
    out
}

fn assert_masked(out: &crate::support::Out, case: &str) {
    out.no_leak(&[SECRET, OTHER]);
    assert!(
        count(&out.stdout, b"*****") >= 4,
        "{case}: stdout should have ***** for each of 4 occurrences\n{}",
        out.diag()
    );
    assert!(
        count(&out.stderr, b"*****") >= 2,
        "{case}: stderr should have ***** for each of 2 occurrences\n{}",
        out.diag()
    );
    assert!(contains(&out.stdout, b"split: *****\n"), "{case}: the split value is masked in place\n{}", out.diag());
    assert!(contains(&out.stdout, b"short=abc"), "{case}: values shorter than 4 bytes are left alone\n{}", out.diag());
}

fn assert_unmasked(out: &crate::support::Out, case: &str) {
    assert!(contains(&out.stdout, SECRET.as_bytes()), "{case}: the value should appear unmasked on stdout");
    assert!(contains(&out.stderr, SECRET.as_bytes()), "{case}: the value should appear unmasked on stderr");
    assert!(!contains(&out.stdout, b"*****"), "{case}: nothing should be masked\n{}", out.diag());
}

#[test]
fn mask_flag_masks_stdout_and_stderr_also_split_values() {
    require!(have_age);
    let ws = project();
    assert_masked(&print(ws.envcloak(), &["--mask"]), "--mask");
}

#[test]
fn ci_true_masks_by_default() {
    require!(have_age);
    let ws = project();
    for value in ["true", "1", "TRUE"] {
        assert_masked(&print(ws.envcloak().env("CI", value), &[]), &format!("CI={value}"));
    }
}

#[test]
fn no_mask_or_no_ci_leaves_output_alone() {
    require!(have_age);
    let ws = project();
    assert_unmasked(&print(ws.envcloak(), &[]), "no CI, no flag");
    assert_unmasked(&print(ws.envcloak().env("CI", "true"), &["--no-mask"]), "CI=true --no-mask");
    assert_unmasked(&print(ws.envcloak().env("CI", "false"), &[]), "CI=false");
    // The later of --mask/--no-mask wins.
    assert_masked(&print(ws.envcloak(), &["--no-mask", "--mask"]), "--no-mask --mask");
}

/// A prompt (here, the start of a value) written without a newline shows
/// up promptly even though it could be the start of a secret.
#[test]
fn interactive_output_still_flows() {
    require!(have_age);
    let ws = project();
    let script = "echo started; printf 'Token hint: fake-sec'; sleep 2; echo; echo done";
    for flags in [&["--mask"][..], &[][..]] {
        let mut running = ws.envcloak().arg("run").args(flags).args(["--", "sh", "-c", script]).spawn();
        let started = running.stdout_until(Duration::from_secs(10), |out| contains(out, b"started\n"));
        let started = started.expect("the child's first line never arrived");
        let prefix = running.stdout_until(Duration::from_secs(3), |out| contains(out, b"Token hint: fake-sec"));
        let out_of_time = prefix.map(|at| at.duration_since(started));
        let out = running.wait();
        out.expect(0);
        assert!(
            out_of_time.is_some_and(|d| d < Duration::from_secs(1)),
            "{flags:?}: the unterminated prompt took {out_of_time:?} to appear (limit 1 s)\n{}",
            out.diag()
        );
        assert!(contains(&out.stdout, b"done"), "{flags:?}: the rest of the output is missing");
    }
}

/// Output a child writes right before it ends is not lost by masking.
#[test]
fn masked_output_is_complete() {
    require!(have_age);
    let ws = project();
    let script = "i=0; while [ $i -lt 2000 ]; do echo \"line $i $SECRET\"; i=$((i + 1)); done; printf 'last'";
    let out = ws.envcloak().args(["run", "--mask", "--", "sh", "-c", script]).run();
    out.expect(0).no_leak(&[SECRET]);
    assert!(count(&out.stdout, b"*****") == 2000, "every line is masked once\n{}", out.stdout().len());
    assert!(out.stdout.ends_with(b"line 1999 *****\nlast"), "the end of the output is missing");
}

/// Prints every encoded form of `$SECRET` and `$MULTI`'s lines with Python's
/// own encoders, each split across two writes with a pause in between.
const ENCODED_PRINTER: &str = r#"
import base64, json, os, sys, time, urllib.parse
secret, multi = os.environ["SECRET"], os.environ["MULTI"]
raw = secret.encode()
forms = [
    base64.b64encode(raw).decode(), base64.b64encode(raw).decode().rstrip("="),
    base64.urlsafe_b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("="),
    urllib.parse.quote(secret, safe=""), urllib.parse.quote(secret), urllib.parse.quote_plus(secret),
    json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
] + multi.splitlines()
for i, form in enumerate(forms):
    half = len(form) // 2
    sys.stdout.write(f"form {i}: {form[:half]}"); sys.stdout.flush(); time.sleep(0.03)
    sys.stdout.write(f"{form[half:]} end\n"); sys.stdout.flush()
print(json.dumps({"config": {"token": secret}}))
"#;

#[test]
fn encoded_forms_and_lines_of_a_value_are_masked_even_split_across_writes() {
    require!(have_age);
    let secret = "fake pässwörd/+?é€\"x&y=z";
    let multi = "-----BEGIN FAKE KEY-----\nfakeline-one-abcdef\nfakeline-two-ghijkl\n-----END FAKE KEY-----";
    let dotenv = format!("SECRET='{secret}'\nMULTI=\"{}\"\n", multi.replace('\n', "\\n"));
    let (ws, _) = Workspace::project(&dotenv);
    let out = ws.envcloak().args(["run", "--mask", "--", "python3", "-c", ENCODED_PRINTER]).run();
    out.expect(0);
    let stdout = out.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 14, "9 encoded forms, 4 lines and the JSON document\n{}", out.diag());
    for (i, line) in lines[..13].iter().enumerate() {
        assert_eq!(*line, format!("form {i}: ***** end"), "form {i} is not masked in place");
    }
    assert_eq!(lines[13], r#"{"config": {"token": "*****"}}"#, "the JSON-escaped value inside a document");
}
