//! Passphrase-encrypted age files (`age -p`): refused without a terminal,
//! asked for on the terminal otherwise. The python pty driver types the
//! passphrase, for `age -p` as for envcloak.

use crate::bad_input::{refused, secrets, CANARY};
use crate::support::{py, Workspace, CLI_DIR};

/// `age -p` needs a terminal, so the python pty driver types the passphrase.
pub fn passphrase_file(ws: &Workspace, rel: &str, plaintext: &str, passphrase: &str) {
    ws.write("passphrase-plain.env", plaintext);
    let driver = format!("{CLI_DIR}/pty_driver.py");
    let out = ws
        .command(py())
        .args([&driver, "answer", passphrase, "30", "age", "-p", "-o", rel, "passphrase-plain.env"])
        .run();
    out.expect(0);
    std::fs::remove_file(ws.join("passphrase-plain.env")).unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("driver report");
    assert!(report["exit"] == 0, "age -p failed: {report}");
}

#[test]
fn passphrase_file_without_terminal() {
    require!(have_age, have_python_dotenv);
    let (ws, _) = Workspace::project(&secrets());
    passphrase_file(&ws, "pass.env.age", &secrets(), "fake-passphrase-words");
    let out = refused(&ws, &["-i", "age://pass.env.age"], &["pass.env.age", "passphrase", "terminal"]);
    out.no_leak(&["fake-passphrase-words"]);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// On a terminal envcloak asks for the passphrase (on /dev/tty, echo off)
/// and decrypts; a wrong one is refused. scrypt (work factor 2^18, as `age
/// -p` writes it) takes about a minute in a debug build, more than the
/// default 30 s `--timeout`, so this runs only in release builds:
/// `cargo test --release --test cli`.
#[test]
fn passphrase_file_on_a_terminal_is_asked_for() {
    require!(have_age, have_python_dotenv);
    if cfg!(debug_assertions) {
        eprintln!("skipped: scrypt is too slow in a debug build; run cargo test --release --test cli");
        return;
    }
    let (ws, _) = crate::support::Workspace::project(&secrets());
    passphrase_file(&ws, "pass.env.age", &secrets(), "fake-passphrase-words");
    let driver = format!("{CLI_DIR}/pty_driver.py");
    let child = "printf '%s' \"$API_KEY\" | od -An -tx1 | tr -d ' \\n' > value.hex";
    for (answer, code) in [("fake-passphrase-words", 0), ("fake-wrong-words", 125)] {
        let _ = std::fs::remove_file(ws.join("value.hex"));
        let out = ws
            .command(py())
            .args([&driver, "answer", answer, "60"])
            .args([crate::support::BIN, "run", "-i", "age://pass.env.age", "--", "sh", "-c", child])
            .timeout(std::time::Duration::from_secs(70))
            .run();
        out.expect(0);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("driver report");
        assert!(report["exit"] == code && report["typed"] == 1, "answer {answer}: {report}");
        if code == 0 {
            let seen = String::from_utf8(ws.read("value.hex")).unwrap();
            assert!(seen == hex(CANARY.as_bytes()), "the child saw a different API_KEY");
        } else {
            assert!(!ws.join("value.hex").exists(), "the child started after a wrong passphrase");
        }
    }
}
