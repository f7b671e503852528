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
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn passphrase_file_without_terminal() {
    require!(Age, PythonDotenv);
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
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
#[cfg_attr(debug_assertions, ignore = "scrypt is too slow in a debug build: cargo test --release --test cli")]
fn passphrase_file_on_a_terminal_is_asked_for() {
    require!(Age, PythonDotenv);
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

/// Waits for the passphrase prompt on a new pseudo-terminal, types Ctrl-C
/// (unless `CTRL_C=0`: then it lets `--timeout` run out), and reports
/// envcloak's exit status and whether the terminal echoes again.
const CTRL_C_AT_PROMPT_PY: &str = r#"
import json, os, pty, select, sys, termios, time
pid, master = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
screen, typed, deadline = b"", False, time.monotonic() + 20
while True:
    if time.monotonic() > deadline:
        os.kill(pid, 9); print(json.dumps({"timed_out": True})); sys.exit()
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if not typed and b"assphrase" in screen and screen.rstrip().endswith(b":"):
        time.sleep(0.2)
        if os.environ.get("CTRL_C", "1") == "1":
            os.write(master, b"\x03")
        typed = True
    if select.select([master], [], [], 0.02)[0]:
        try: screen += os.read(master, 4096)
        except OSError: pass
echo = bool(termios.tcgetattr(master)[3] & termios.ECHO)
code = os.waitstatus_to_exitcode(status)
print(json.dumps({"exit": 128 - code if code < 0 else code, "typed": typed, "echo": echo}))
"#;

/// Ctrl-C at the passphrase prompt ends envcloak as SIGINT does (130) and
/// leaves the terminal echoing, not silent.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn ctrl_c_at_the_passphrase_prompt_turns_echo_back_on() {
    require!(Age, PythonDotenv);
    let (ws, _) = Workspace::project(&secrets());
    passphrase_file(&ws, "pass.env.age", &secrets(), "fake-passphrase-words");
    let out = ws
        .command(py())
        .args(["-c", CTRL_C_AT_PROMPT_PY, crate::support::BIN, "run", "-i", "age://pass.env.age", "--", "true"])
        .timeout(std::time::Duration::from_secs(30))
        .run();
    out.expect(0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("driver report");
    assert!(report["typed"] == true, "no passphrase prompt appeared: {report}");
    assert!(report["exit"] == 130, "envcloak did not end as SIGINT does: {report}");
    assert!(report["echo"] == true, "the terminal was left with echo off: {report}");
}

/// A passphrase-protected SSH key: the prompt running into `--timeout`
/// leaves the terminal echoing; without a terminal the error says the key is
/// locked, not that no identity matched.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_ssh_keygen, ignore = "needs ssh-keygen: apt-get install openssh-client")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn a_locked_ssh_key_times_out_echoing_and_is_named_without_a_terminal() {
    require!(Age, SshKeygen, PythonDotenv);
    let (ws, _) = Workspace::project(&secrets());
    ws.command("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "fake-ssh-passphrase", "-f", "ssh_key"])
        .run()
        .expect(0);
    crate::support::chmod(&ws.join("ssh_key"), 0o600);
    ws.command("age").args(["-R", "ssh_key.pub", "-o", "ssh.env.age"]).stdin(secrets()).run().expect(0);
    let args = ["run", "--timeout", "2s", "-i", "age://ssh.env.age", "--", "true"];
    let out = ws
        .command(py())
        .env("CTRL_C", "0")
        .env("ENVCLOAK_AGE_KEY_FILE", ws.join("ssh_key"))
        .args(["-c", CTRL_C_AT_PROMPT_PY, crate::support::BIN])
        .args(args)
        .timeout(std::time::Duration::from_secs(30))
        .run();
    out.expect(0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("driver report");
    assert!(report["typed"] == true, "no passphrase prompt appeared: {report}");
    assert!(report["exit"] == 125, "the timeout did not end the run with 125: {report}");
    assert!(report["echo"] == true, "the terminal was left with echo off: {report}");

    let out = ws.envcloak().env("ENVCLOAK_AGE_KEY_FILE", ws.join("ssh_key")).args(args).stdin("").run();
    out.expect(125).stderr_has(&["passphrase-protected SSH key", "no terminal"]);
}
