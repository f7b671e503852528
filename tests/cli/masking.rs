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
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn mask_flag_masks_stdout_and_stderr_also_split_values() {
    require!(Age);
    let ws = project();
    assert_masked(&print(ws.envcloak(), &["--mask"]), "--mask");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn ci_true_masks_by_default() {
    require!(Age);
    let ws = project();
    for value in ["true", "1", "TRUE"] {
        assert_masked(&print(ws.envcloak().env("CI", value), &[]), &format!("CI={value}"));
    }
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn no_mask_or_no_ci_leaves_output_alone() {
    require!(Age);
    let ws = project();
    assert_unmasked(&print(ws.envcloak(), &[]), "no CI, no flag");
    assert_unmasked(&print(ws.envcloak().env("CI", "true"), &["--no-mask"]), "CI=true --no-mask");
    assert_unmasked(&print(ws.envcloak().env("CI", "false"), &[]), "CI=false");
    // The later of --mask/--no-mask wins.
    assert_masked(&print(ws.envcloak(), &["--no-mask", "--mask"]), "--no-mask --mask");
}

/// A prompt written without a newline shows up promptly, also through a
/// pipe, as long as it cannot be the start of a value (on a terminal even
/// a possible start shows after 0.2 s: see the terminal test below).
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn interactive_output_still_flows() {
    require!(Age);
    let ws = project();
    let script = "echo started; printf 'Token hint: '; sleep 2; echo; echo done";
    for flags in [&["--mask"][..], &[][..]] {
        let mut running = ws.envcloak().arg("run").args(flags).args(["--", "sh", "-c", script]).spawn();
        let started = running.stdout_until(Duration::from_secs(10), |out| contains(out, b"started\n"));
        let started = started.expect("the child's first line never arrived");
        let prompt = running.stdout_until(Duration::from_secs(3), |out| contains(out, b"Token hint: "));
        let out_of_time = prompt.map(|at| at.duration_since(started));
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
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn masked_output_is_complete() {
    require!(Age);
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
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn encoded_forms_and_lines_of_a_value_are_masked_even_split_across_writes() {
    require!(Age);
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

/// Runs `envcloak run --mask -- sh -c SCRIPT` through `sh` with `redirect`
/// (e.g. `> out.log 2>&1`) and returns the log file `out.log`.
fn run_into_log(ws: &Workspace, script: &str, redirect: &str) -> Vec<u8> {
    let outer = format!(r#""$0" run --mask -- sh -c "$1" {redirect}"#);
    ws.command("sh").args(["-c", &outer, crate::support::BIN, script]).run().expect(0);
    ws.read("out.log")
}

/// stdout and stderr into one file (`2>&1`): the command gets one pipe for
/// both, so lines keep their order and a value written half on stdout, half
/// on stderr is masked.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn stdout_and_stderr_into_one_file_keep_their_order_and_are_masked_as_one() {
    require!(Age);
    let ws = project();
    let script = r#"
for i in 1 2 3 4 5 6 7 8; do echo "out $i"; echo "err $i" >&2; done
printf 'split: fake-sec'; printf 'ret-value\n' >&2
echo end"#;
    let log = run_into_log(&ws, script, "> out.log 2>&1");
    let expected: String = (1..=8).map(|i| format!("out {i}\nerr {i}\n")).collect::<String>() + "split: *****\nend\n";
    assert!(log == expected.as_bytes(), "the log is out of order or not masked\n{}", ws.redact(&log));
}

/// Overlapping values are masked as their union: no part of either shows.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn overlapping_values_are_masked_as_their_union() {
    require!(Age);
    let (ws, _) = Workspace::project("PART_A=hunter2-alpha\nPART_B=alpha-secret-bravo-99\n");
    for value in ["hunter2-alpha", "alpha-secret-bravo-99", "secret-bravo-99", "hunter2"] {
        ws.secret(value);
    }
    let script = r#"printf 'joined: %s%s\n' "$PART_A" "${PART_B#alpha}""#;
    let out = ws.envcloak().args(["run", "--mask", "--", "sh", "-c", script]).run();
    out.expect(0);
    assert!(out.stdout == b"joined: *****\n", "part of a value shows\n{}", out.diag());
}

/// The two halves of the value, written 0.5 s apart.
const SLOW: &str = "printf 'slow: fake-sec'; sleep 0.5; printf 'ret-value\\n'";

/// To a file or a pipe, the start of a value is held until the rest decides
/// it, however long that takes.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn a_value_written_slowly_is_masked_in_files_and_pipes() {
    require!(Age);
    let ws = project();
    let log = run_into_log(&ws, SLOW, "> out.log");
    assert!(log == b"slow: *****\n", "file: the value leaked\n{}", ws.redact(&log));
    let out = ws.envcloak().args(["run", "--mask", "--", "sh", "-c", SLOW]).run();
    out.expect(0);
    assert!(out.stdout == b"slow: *****\n", "pipe: the value leaked\n{}", out.diag());
}

/// On a terminal the start of a value shows after 0.2 s (it may be a
/// prompt), but the rest is still masked.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn a_value_written_slowly_on_a_terminal_shows_only_its_start() {
    require!(Age, PythonDotenv);
    let ws = project();
    let (report, screen) = ws.on_pty(20, &[crate::support::BIN, "run", "--mask", "--", "sh", "-c", SLOW]);
    assert!(report["exit"] == 0, "envcloak failed: {report}\n{}", ws.redact(&screen));
    assert!(
        contains(&screen, b"slow: fake-sec*****") && !contains(&screen, b"ret-value"),
        "the rest of the value leaked\n{}",
        ws.redact(&screen)
    );
}
