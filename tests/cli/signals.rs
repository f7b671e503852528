//! Signals: every catchable signal sent to envcloak reaches the child once,
//! and Ctrl-C on a terminal reaches it once, not twice.

use std::time::Duration;

use crate::support::{py, Workspace, CLI_DIR, MODES};

const SECRETS: &str = "API_KEY=fake-signal-secret\n";

/// (name, number) of the signals a process manager such as gunicorn uses.
const SIGNALS: &[(&str, i32)] = &[
    ("TERM", libc::SIGTERM),
    ("HUP", libc::SIGHUP),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("WINCH", libc::SIGWINCH),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
];

/// A child that appends every trapped signal's name to `count`, writes
/// `ready` once its traps are set, and after the first signal waits a
/// little (so a duplicate would be counted) and exits 3.
const CHILD: &str = r#"
dir=$1
got=
for s in TERM HUP USR1 USR2 INT QUIT WINCH TTIN TTOU; do
    trap "echo $s >> '$dir/count'; got=1" $s
done
echo ready > "$dir/ready"
i=0
while [ -z "$got" ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i + 1)); done
sleep 0.3
exit 3
"#;

fn counted(ws: &Workspace, dir: &str) -> Vec<String> {
    std::fs::read_to_string(ws.join(dir).join("count")).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// Sent to the envcloak process: the child sees it exactly once and
/// envcloak ends with the child's status. All cases run at once.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn every_forwarded_signal_reaches_the_child_once() {
    require!(Age);
    let (ws, _) = Workspace::project(SECRETS);
    ws.write("child.sh", CHILD);
    let mut running = Vec::new();
    for (mode, flags) in MODES {
        for (name, number) in SIGNALS {
            let dir = format!("{mode}-{name}");
            std::fs::create_dir(ws.join(&dir)).unwrap();
            let child = ws.envcloak().arg("run").args(flags).args(["--", "sh", "child.sh", &dir]).spawn();
            running.push((mode, *name, *number, dir, child));
        }
    }
    let mut problems = Vec::new();
    for (mode, name, number, dir, mut child) in running {
        if !child.wait_for_file(&ws.join(&dir).join("ready"), Duration::from_secs(15)) {
            problems.push(format!("{mode} {name}: the child never became ready"));
        }
        child.signal(number);
        let out = child.wait();
        let seen = counted(&ws, &dir);
        if seen != [name] {
            problems.push(format!("{mode} SIG{name}: the child saw {seen:?}, expected exactly [{name:?}]"));
        }
        if out.code() != 3 {
            problems.push(format!(
                "{mode} SIG{name}: envcloak ended with {} instead of the child's 3\n{}",
                out.code(),
                out.diag()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Runs envcloak on a pseudo-terminal and types Ctrl-C once.
fn ctrl_c(ws: &Workspace, dir: &str, flags: &[&str]) -> serde_json::Value {
    std::fs::create_dir(ws.join(dir)).unwrap();
    let driver = format!("{CLI_DIR}/pty_driver.py");
    let ready = ws.join(dir).join("ready");
    let out = ws
        .command(py())
        .arg(driver)
        .arg("ctrl-c")
        .arg(&ready)
        .args(["15", crate::support::BIN, "run"])
        .args(flags)
        .args(["--", "sh", "child.sh", dir])
        .run();
    out.expect(0);
    serde_json::from_slice(&out.stdout).expect("driver report")
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn ctrl_c_on_a_terminal_reaches_the_child_once() {
    require!(Age, PythonDotenv);
    let (ws, _) = Workspace::project(SECRETS);
    ws.write("child.sh", CHILD);
    let mut problems = Vec::new();
    for (mode, flags) in MODES {
        let report = ctrl_c(&ws, mode, flags);
        let seen = counted(&ws, mode);
        if report["timed_out"] == true || report["typed"] != 1 {
            problems.push(format!("{mode}: the driver did not get to type Ctrl-C: {report}"));
        }
        if seen != ["INT"] {
            problems.push(format!("{mode}: after one Ctrl-C the child saw {seen:?}, expected exactly [\"INT\"]"));
        }
        if report["exit"] != 3 {
            problems.push(format!("{mode}: envcloak ended with {} instead of the child's 3", report["exit"]));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Whether process `pid` still runs (a zombie waiting to be reaped does not).
pub(crate) fn running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

/// `timeout` ending a supervised run ends the whole command, not only the
/// process envcloak started: a grandchild holding the secrets in its
/// environment does not outlive it.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn a_forwarded_signal_reaches_the_grandchildren_too() {
    require!(Age);
    let (ws, _) = Workspace::project(SECRETS);
    let grandchild = "sh -c 'echo $$ > grandchild.pid; sleep 3; echo late > marker'; echo never";
    let out =
        ws.command("timeout").args(["2", crate::support::BIN, "run", "--mask", "--", "sh", "-c", grandchild]).run();
    out.expect(124);
    let pid = std::fs::read_to_string(ws.join("grandchild.pid")).expect("the grandchild started");
    std::thread::sleep(Duration::from_millis(3500));
    assert!(!ws.join("marker").exists(), "the grandchild outlived the run and wrote its marker\n{}", out.diag());
    assert!(!running(pid.trim()), "the grandchild is still running\n{}", out.diag());
}

/// `HUP` (a process manager's "reload") reaches the command alone, as in
/// exec mode: gunicorn's master reloads, and its workers, which a `HUP` of
/// their own would kill, are left to it.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn hup_reaches_the_supervised_command_alone() {
    require!(Age);
    let (ws, _) = Workspace::project(SECRETS);
    let script = "sh -c 'trap \"echo worker >> hups\" HUP; touch worker-ready; while :; do sleep 0.05; done' & \
                  trap 'echo master >> hups; kill $!; exit 0' HUP; while [ ! -e worker-ready ]; do sleep 0.05; done; \
                  touch ready; while :; do sleep 0.05; done";
    let mut run = ws.envcloak().args(["run", "--mask", "--", "sh", "-c", script]).spawn();
    assert!(run.wait_for_file(&ws.join("ready"), Duration::from_secs(15)), "the command never became ready");
    run.signal(libc::SIGHUP);
    run.wait().expect(0);
    let hups = std::fs::read_to_string(ws.join("hups")).unwrap_or_default();
    assert_eq!(hups, "master\n", "HUP went to the whole process group");
}

/// Job control on a terminal with `stty tostop`, driven through bash with
/// job control (`set -m`: each job is a process group whose parent, bash,
/// is in the same session, as in an interactive shell) on a
/// pseudo-terminal; each case writes `status` when envcloak is done.
fn on_terminal(ws: &Workspace, case: &str, script: &str) -> String {
    let (report, screen) = ws.on_pty(20, &["bash", "-c", script, crate::support::BIN]);
    let status = std::fs::read_to_string(ws.join("status")).unwrap_or_default();
    let _ = std::fs::remove_file(ws.join("status"));
    assert!(
        report["timed_out"] == false && status == "0\n",
        "{case}: envcloak did not finish with 0 (report {report}, status {status:?})\n--- terminal ---\n{}",
        ws.redact(&screen)
    );
    ws.redact(&screen)
}

/// With `stty tostop`, a masked command in the foreground that writes far
/// more than a pipe holds finishes (envcloak's own writes to the terminal
/// must not raise SIGTTOU over and over while the command has it).
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn tostop_and_lots_of_masked_output_finish() {
    require!(Age, PythonDotenv);
    let (ws, _) = Workspace::project(SECRETS);
    ws.secret("fake-signal-secret");
    let script =
        r#"set -m; stty tostop; "$0" run --mask -- sh -c 'seq 1 30000; echo "key=$API_KEY"'; echo $? > status"#;
    let screen = on_terminal(&ws, "foreground", script);
    assert!(screen.contains("30000\r\nkey=*****"), "the output is incomplete or not masked\n{screen}");
}

/// The terminal is found through stdout or /dev/tty when stdin is not one:
/// the command gets the foreground and can write to /dev/tty.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn the_terminal_is_found_when_stdin_is_a_pipe() {
    require!(Age, PythonDotenv);
    let (ws, _) = Workspace::project(SECRETS);
    let script = r#"set -m; stty tostop; true | "$0" run --mask -- sh -c 'echo direct > /dev/tty'; echo $? > status"#;
    let screen = on_terminal(&ws, "stdin a pipe", script);
    assert!(screen.contains("direct"), "the command's write to /dev/tty is missing\n{screen}");
}

/// `envcloak run --mask … &` then `fg`: the command, stopped because it
/// needs the terminal while the job is in the background, gets the
/// terminal and finishes once the job is in the foreground.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn a_background_job_brought_to_the_foreground_finishes() {
    require!(Age, PythonDotenv);
    let (ws, _) = Workspace::project(SECRETS);
    let script = r#"set -m; stty tostop
"$0" run --mask -- sh -c 'echo via-envcloak; sleep 0.5; echo direct > /dev/tty' &
sleep 1.5; fg >/dev/null; echo $? > status"#;
    let screen = on_terminal(&ws, "& then fg", script);
    assert!(screen.contains("via-envcloak") && screen.contains("direct"), "output is missing\n{screen}");
}
