//! Redirects: a 301, 302, 307 or 308 to another origin (another host,
//! 127.0.0.2; another port of the same host; http:// from https://) is an
//! error naming both addresses, and the target gets no request at all: no
//! `X-Vault-Token` header, no AppRole login body, no signed AWS request.

use std::net::Ipv4Addr;

use super::{failure, host_port, refusal, report, trusted, APPROLE, AWS_PROFILE, PROFILE};
use crate::support::certs::make_certs;
use crate::support::net::{Answer, HttpStub};
use crate::support::tls_front::TlsFront;
use crate::support::{Out, Workspace};
use crate::vault::project;

const STATUSES: [u16; 4] = [301, 302, 307, 308];
const TOKEN: &str = "fake-redirect-vault-token";
const ROLE_ID: &str = "fake-redirect-role-id";
const SECRET_ID: &str = "fake-redirect-secret-id";

/// The other origins: another host, and another port of the same host.
const TARGETS: [(&str, Ipv4Addr); 2] =
    [("another host", Ipv4Addr::new(127, 0, 0, 2)), ("another port", Ipv4Addr::LOCALHOST)];

/// Where a redirect points: a stub on `ip` that records what reaches it
/// (and answers a Vault-style 404, should anything arrive).
fn target(ip: Ipv4Addr) -> HttpStub {
    HttpStub::start_on(ip, |_| Answer::vault(404, "fake target: nothing here"))
}

#[derive(Clone, Copy, Debug)]
enum Auth {
    /// `VAULT_TOKEN`: every request carries `X-Vault-Token`.
    Token,
    /// AppRole: the first request is a POST with the secret id in its body.
    AppRole,
}

/// envcloak for `auth` with fake credentials (redacted).
fn vault_cmd(ws: &Workspace, auth: Auth) -> crate::support::Cmd {
    ws.secret(TOKEN);
    ws.secret(SECRET_ID);
    let cmd = match auth {
        Auth::Token => ws.envcloak().env("VAULT_TOKEN", TOKEN),
        Auth::AppRole => ws.envcloak().env("VAULT_ROLE_ID", ROLE_ID).env("VAULT_SECRET_ID", SECRET_ID),
    };
    trusted(cmd)
}

/// What is wrong with a refused run that `from` redirected to `to`: besides
/// `problems`, stderr must say "redirect" and name both `host:port`s, `to`
/// must have seen nothing, and `from` must have been asked.
fn redirect_failure(
    case: &str,
    out: &Out,
    mut problems: Vec<String>,
    from: &str,
    asked: usize,
    to: &HttpStub,
) -> Option<String> {
    let stderr = out.stderr();
    if asked == 0 {
        problems.push(format!("the configured address {from} was never asked"));
    }
    if !stderr.to_lowercase().contains("redirect") {
        problems.push("stderr does not say `redirect`".to_owned());
    }
    for (what, addr) in [("the configured address", from), ("the redirect target", &to.host_port())] {
        if !stderr.contains(addr) {
            problems.push(format!("stderr does not name {what} {addr}"));
        }
    }
    if to.connections() > 0 {
        let heads = to.requests();
        let with_token = heads.iter().filter(|r| r.header("x-vault-token").is_some()).count();
        let with_body = heads.iter().filter(|r| r.header("content-length").is_some_and(|v| v != "0")).count();
        problems.push(format!(
            "the redirect target got {} connection(s), {} request(s) ({with_token} with X-Vault-Token, {with_body} with \
             a body): {:?}",
            to.connections(),
            heads.len(),
            to.request_lines()
        ));
    }
    failure(case, &problems, out)
}

/// Every status to every other origin, for `auth`.
fn vault_matrix(auth: Auth) {
    let mut failures = Vec::new();
    for status in STATUSES {
        for (kind, ip) in TARGETS {
            let to = target(ip);
            let from = HttpStub::redirect(status, &to.addr());
            let ws = project(&from.addr(), if matches!(auth, Auth::AppRole) { APPROLE } else { "" }, PROFILE);
            let (out, problems) = refusal(&ws, vault_cmd(&ws, auth), &["--timeout", "10s"]);
            let case = format!("{auth:?}: {status} from {} to {kind} ({})", from.host_port(), to.host_port());
            failures.extend(redirect_failure(&case, &out, problems, &from.host_port(), from.connections(), &to));
        }
    }
    report(&failures);
}

#[test]
fn vault_token_requests_follow_no_redirect_to_another_origin() {
    vault_matrix(Auth::Token);
}

#[test]
fn an_approle_login_follows_no_redirect_to_another_origin() {
    vault_matrix(Auth::AppRole);
}

/// `https://127.0.0.1:T` (a TLS front with a certificate from a CA given
/// in `ca_cert`) redirecting to `http://`: a downgrade, refused like any
/// other change of origin.
#[test]
#[cfg_attr(missing_openssl, ignore = "needs openssl: apt-get install openssl")]
fn an_https_vault_address_is_not_downgraded_by_a_redirect_to_http() {
    require!(Openssl);
    let certs = tempfile::Builder::new().prefix("envcloak-certs-").tempdir().expect("create a temporary folder");
    make_certs(certs.path(), &["127.0.0.1"]);
    let (cert, key, ca) =
        (certs.path().join("127.0.0.1.pem"), certs.path().join("127.0.0.1.key"), certs.path().join("ca.pem"));
    let mut failures = Vec::new();
    for status in STATUSES {
        for (kind, ip) in TARGETS {
            let to = target(ip);
            let redirector = HttpStub::redirect(status, &to.addr());
            let front = TlsFront::start(&cert, &key, redirector.port());
            let ws = project(&front.addr(), &format!("ca_cert = \"{}\"", ca.display()), PROFILE);
            let (out, mut problems) = refusal(&ws, vault_cmd(&ws, Auth::Token), &["--timeout", "10s"]);
            if front.handshakes().0 == 0 {
                problems.push("no TLS connection to the https address was completed".to_owned());
            }
            let from = host_port(&front.addr()).to_owned();
            let case = format!("{status} from https://{from} to http:// on {kind} ({})", to.host_port());
            failures.extend(redirect_failure(&case, &out, problems, &from, redirector.connections(), &to));
        }
    }
    report(&failures);
}

/// `[aws] endpoint_url` answering 307 to another origin.
#[test]
fn the_aws_endpoint_follows_no_redirect_to_another_origin() {
    let mut failures = Vec::new();
    for (kind, ip) in TARGETS {
        let to = HttpStub::start_on(ip, |_| Answer::aws(400, "ValidationException", "fake target: nothing here"));
        let from = HttpStub::redirect(307, &to.addr());
        let ws = crate::aws::project(&crate::aws::at(&from.addr()), AWS_PROFILE);
        let (out, problems) = refusal(&ws, trusted(crate::aws::envcloak(&ws)), &["--timeout", "10s"]);
        let case = format!("AWS: 307 from {} to {kind} ({})", from.host_port(), to.host_port());
        failures.extend(redirect_failure(&case, &out, problems, &from.host_port(), from.connections(), &to));
    }
    report(&failures);
}
