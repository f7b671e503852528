//! Exit status (the `env(1)` convention), in exec mode and supervised mode.

use crate::support::{Workspace, MODES};

const SECRETS: &str = "API_KEY=fake-exit-code-secret\n";

fn run(ws: &Workspace, mode: &[&str], command: &[&str]) -> crate::support::Out {
    ws.envcloak().arg("run").args(mode).arg("--").args(command).run()
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn child_exit_code_is_passed_through() {
    require!(Age);
    let (ws, _) = Workspace::project(SECRETS);
    for (mode, flags) in MODES {
        for code in [0, 1, 7, 124, 255] {
            let out = run(&ws, flags, &["sh", "-c", &format!("exit {code}")]);
            assert!(out.code() == code, "{mode}: child exit {code}\n{}", out.diag());
        }
    }
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn child_killed_by_signal_is_128_plus_n() {
    require!(Age);
    let (ws, _) = Workspace::project(SECRETS);
    for (mode, flags) in MODES {
        for (signal, code) in [("TERM", 143), ("KILL", 137), ("HUP", 129), ("USR1", 138)] {
            let out = run(&ws, flags, &["sh", "-c", &format!("kill -{signal} $$")]);
            assert!(out.code() == code, "{mode}: child killed by SIG{signal}, expected {code}\n{}", out.diag());
            // In supervised mode envcloak itself must exit with that code
            // (in exec mode it *is* the child, so it dies of the signal).
            if mode == "supervised" {
                assert!(
                    out.status.code() == Some(code),
                    "{mode}: envcloak should exit {code}, not die of a signal\n{}",
                    out.diag()
                );
            }
        }
    }
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn command_not_found_is_127() {
    require!(Age);
    let (ws, _) = Workspace::project(SECRETS);
    for (mode, flags) in MODES {
        for command in ["envcloak-test-no-such-command", "./no-such-file"] {
            let out = run(&ws, flags, &[command]);
            assert!(out.code() == 127, "{mode}: {command}\n{}", out.diag());
            out.stderr_has(&["command not found"]);
        }
    }
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn not_executable_is_126() {
    require!(Age);
    let (ws, _) = Workspace::project(SECRETS);
    ws.write("not-executable.sh", "#!/bin/sh\ntouch started.marker\n");
    std::fs::create_dir(ws.join("a-folder")).unwrap();
    for (mode, flags) in MODES {
        for command in ["./not-executable.sh", "./a-folder"] {
            let out = run(&ws, flags, &[command]);
            assert!(out.code() == 126, "{mode}: {command}\n{}", out.diag());
        }
    }
    assert!(!ws.join("started.marker").exists(), "the file without x bit ran");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn envcloak_failure_is_125_and_child_not_started() {
    require!(Age);
    let (ws, _) = Workspace::project(SECRETS);
    for (mode, flags) in MODES {
        let out = ws
            .envcloak()
            .arg("run")
            .args(flags)
            .args(["-e", "MISSING=age://secrets.env.age#NOT_THERE", "--", "sh", "-c", "touch started.marker"])
            .run();
        assert!(out.code() == 125, "{mode}\n{}", out.diag());
        out.stderr_has(&["MISSING", "NOT_THERE"]).no_leak(&["fake-exit-code-secret"]);
        assert!(!ws.join("started.marker").exists(), "{mode}: the child was started although a secret failed");
    }
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn run_without_command_is_125_with_usage() {
    require!(Age);
    let (ws, _) = Workspace::project(SECRETS);
    for (mode, flags) in MODES {
        for tail in [&[][..], &["--"][..]] {
            let out = ws.envcloak().arg("run").args(flags).args(tail).run();
            assert!(out.code() == 125, "{mode}\n{}", out.diag());
            out.stderr_has(&["Usage:"]);
        }
    }
}
