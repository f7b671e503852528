//! The fault matrix: each network backend (Vault/OpenBao, AWS Secrets
//! Manager through moto) behind a [`FaultProxy`] that refuses, resets,
//! stalls, truncates, throttles or fails requests, with a local age secret
//! beside it. For every fault: the command is started with every value or
//! not at all, a failure exits 125 and names the backend, the variable and
//! a reason, no value is printed, and the run ends within its `--timeout`.
//! Each backend's test prints a summary table (case, exit status, seconds,
//! requests the fault saw) on stderr.
//!
//! Also here: TLS host-name verification against a real OpenBao listener.

use std::time::{Duration, Instant};

use crate::support::net::Request;
use crate::support::proxy::{FaultProxy, Mode, Plan};
use crate::support::{contains, Cmd, Out, Workspace};
use crate::vault::DUMP_ENV_PY;

mod aws;
mod tls;
mod vault;

/// A run may end this much after its `--timeout`.
const MARGIN: Duration = Duration::from_millis(1500);

/// Where a case sends the backend's traffic.
pub(crate) enum Route {
    /// A loopback port nothing listens on.
    Nowhere,
    /// A [`FaultProxy`] in front of the real server: `plan` for the
    /// requests `select` picks, the rest passed.
    Proxy(fn(&Request) -> bool, Plan),
}

/// How a case must end.
pub(crate) enum Expect {
    /// Exit 0 with every value in the command's environment.
    Ok,
    /// Exit 125, the command not started; each of `vars` is reported on a
    /// line (`  NAME (REF): …`) that contains one of `reasons` (any case).
    Fail { vars: &'static [&'static str], reasons: &'static [&'static str] },
}

/// One row of a backend's matrix.
pub(crate) struct Case {
    pub name: &'static str,
    pub route: Route,
    /// `--timeout`, in seconds.
    pub timeout: u64,
    pub expect: Expect,
    /// Requests the fault must have seen (the selected ones), when that
    /// number is part of the contract (the retry budget).
    pub tries: Option<usize>,
    /// The run must take at least this long (a `Retry-After` was honoured).
    pub at_least: Option<Duration>,
}

/// What one case did.
pub(crate) struct Row {
    pub case: &'static str,
    pub code: i32,
    pub secs: f64,
    pub tries: Option<usize>,
    pub first_line: String,
}

/// The outcomes of one backend's cases, and what went wrong.
#[derive(Default)]
pub(crate) struct Matrix {
    rows: Vec<Row>,
    failures: Vec<String>,
}

impl Matrix {
    /// Runs `cmd run --timeout T -- python3 (dump env)` for `case` and
    /// checks it: `values` are (variable, value) pairs the command must get,
    /// `leaks` everything that must never be printed, `backend` a word the
    /// failure message must contain, `tries` what the proxy counted. Returns
    /// the output for checks of the caller's own.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &mut self,
        ws: &Workspace,
        cmd: Cmd,
        case: &Case,
        backend: &str,
        values: &[(&str, &str)],
        leaks: &[&str],
        tries: impl FnOnce() -> Option<usize>,
    ) -> Out {
        let dump = ws.join("child-env.json");
        let _ = std::fs::remove_file(&dump);
        let timeout = format!("{}s", case.timeout);
        let started = Instant::now();
        let out = cmd
            .args(["run", "--timeout", &timeout, "--", "python3", "-c", DUMP_ENV_PY])
            .arg(&dump)
            .timeout(Duration::from_secs(case.timeout + 15))
            .run();
        let took = started.elapsed();
        let tries = tries();
        let mut problems = outcome_problems(&out, case, &dump, values);
        let lower = out.stderr().to_lowercase();
        if matches!(case.expect, Expect::Fail { .. }) && !lower.contains(backend) {
            problems.push(format!("the message does not name the backend ({backend})"));
        }
        for (i, leak) in leaks.iter().enumerate() {
            if contains(&out.stdout, leak.as_bytes()) || contains(&out.stderr, leak.as_bytes()) {
                problems.push(format!("secret #{i} appears in the output"));
            }
        }
        if took > Duration::from_secs(case.timeout) + MARGIN {
            problems.push(format!("took {took:.2?}, past --timeout {timeout} + {MARGIN:?}"));
        }
        if let Some(least) = case.at_least {
            if took < least {
                problems.push(format!("took {took:.2?}, less than {least:?}: Retry-After was not honoured"));
            }
        }
        if case.tries.is_some() && tries != case.tries {
            problems.push(format!("the fault saw {tries:?} requests, expected {:?}", case.tries));
        }
        if !problems.is_empty() {
            self.failures.push(format!("case `{}`: {}\n{}", case.name, problems.join("; "), out.diag()));
        }
        // Shown in the summary: redacted like any failure message.
        let first_line = leaks.iter().fold(failure_line(&out.stderr()), |line, leak| line.replace(leak, "[SECRET]"));
        self.rows.push(Row { case: case.name, code: out.code(), secs: took.as_secs_f64(), tries, first_line });
        out
    }

    /// Prints the summary table and fails with every problem found.
    pub fn finish(self, backend: &str) {
        let mut table = format!("fault matrix, {backend}:\n| case | exit | seconds | requests seen | message |\n");
        table += "| --- | --- | --- | --- | --- |\n";
        for row in &self.rows {
            let tries = row.tries.map_or("-".to_owned(), |n| n.to_string());
            table += &format!(
                "| {} | {} | {:.2} | {tries} | {} |\n",
                row.case,
                row.code,
                row.secs,
                row.first_line.replace('|', "\\|")
            );
        }
        eprintln!("{table}");
        assert!(self.failures.is_empty(), "{backend} fault matrix:\n\n{}", self.failures.join("\n\n"));
    }
}

/// The first reported variable's reason (`  NAME (REF): reason`), without
/// the reference, or "-".
fn failure_line(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.starts_with("  ") && !l.trim_start().starts_with("hint:"))
        .and_then(|l| l.split_once("): "))
        .map_or("-".to_owned(), |(_, reason)| reason.trim().to_owned())
}

/// What is wrong with how the run ended, against `case.expect`.
fn outcome_problems(out: &Out, case: &Case, dump: &std::path::Path, values: &[(&str, &str)]) -> Vec<String> {
    let mut problems = Vec::new();
    match case.expect {
        Expect::Ok => {
            if out.code() != 0 {
                problems.push(format!("expected exit 0, got {}", out.code()));
                return problems;
            }
            let env: std::collections::BTreeMap<String, String> = match std::fs::read(dump) {
                Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
                Err(_) => {
                    problems.push("the command did not run".to_owned());
                    return problems;
                }
            };
            for (name, value) in values {
                match env.get(*name) {
                    Some(got) if got == value => {}
                    Some(got) => problems.push(format!("{name} has a wrong value ({} bytes)", got.len())),
                    None => problems.push(format!("{name} is missing in the command's environment")),
                }
            }
        }
        Expect::Fail { vars, reasons } => {
            if out.code() != 125 {
                problems.push(format!("expected exit 125, got {}", out.code()));
            }
            if dump.exists() {
                problems.push("the command was started".to_owned());
            }
            let stderr = out.stderr();
            for var in vars {
                let prefix = format!("  {var} (");
                match stderr.lines().find(|l| l.starts_with(&prefix)) {
                    None => problems.push(format!("no line reports {var}")),
                    Some(line) => {
                        let line = line.to_lowercase();
                        if !reasons.iter().any(|r| line.contains(&r.to_lowercase())) {
                            problems.push(format!("the line of {var} gives none of the reasons {reasons:?}"));
                        }
                    }
                }
            }
        }
    }
    problems
}

/// Starts what `route` asks for: a proxy in front of `target`, or
/// nothing; the address envcloak gets.
pub(crate) fn route(case: &Case, target: u16) -> (Option<FaultProxy>, String) {
    match &case.route {
        Route::Nowhere => (None, format!("http://127.0.0.1:{}", crate::support::net::free_port())),
        Route::Proxy(select, plan) => {
            let proxy = FaultProxy::start(target, Mode::Faults(*select, plan.clone()));
            let addr = proxy.addr();
            (Some(proxy), addr)
        }
    }
}
